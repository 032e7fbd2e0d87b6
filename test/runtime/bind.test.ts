import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, listJournals, recoverInterrupted, SimulatedCrash, undoTransaction } from '../../src/apply/index.js';
import { recordingRunner } from '../../src/apply/runner.js';
import { run as runBind } from '../../src/cli/commands/bind.js';
import { run as runHistory } from '../../src/cli/commands/history.js';
import { run as runUnbind } from '../../src/cli/commands/unbind.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ApplyError, PreconditionError, UsageError } from '../../src/errors.js';
import { captureTree } from '../../src/host/capture.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { planBind } from '../../src/plan/runtime-plan.js';
import { treeFingerprint } from '../apply/_tree.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { amdNoAcs, desktopNvidia, iommuOff, serverSwitchSriov, twinGpus } from '../helpers/hosts.js';
import { KernelFake, type KernelFakeOptions } from '../helpers/kernel-fake.js';
import { runCli } from '../helpers/run-cli.js';

const dirs: string[] = [];
afterEach(() => {
  if (!process.env.KEEP_TMP) for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A fake host with /dev/vfio and /var/lib present (as on a real host), its kernel fake, and a runner whose modprobe registers the driver. */
function setup(host: FakeHost, opts: KernelFakeOptions & { vfioLoaded?: boolean } = {}) {
  const dir = buildFakeHost(host);
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'dev/vfio'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
  const kernel = new KernelFake(dir, opts);
  if (opts.vfioLoaded) kernel.loadModule('vfio-pci');
  const runner = recordingRunner({ onCall: (argv) => (argv[0] === 'modprobe' && argv[1] !== '-r' ? kernel.loadModule(argv[1]) : undefined) });
  return { dir, root: new HostRoot(dir), kernel, runner, deps: { root: dir, sysfs: kernel, runner } };
}

const planFor = (dir: string, selectors: string[], opts: { with?: string[]; force?: boolean } = {}) => planBind(inspect(dir), selectors, opts);
const drivers = (k: KernelFake, addrs: string[]) => Object.fromEntries(addrs.map((a) => [a, k.driverOf(a)]));
const overrides = (k: KernelFake, addrs: string[]) => addrs.map((a) => k.overrideOf(a));
const GPU1 = ['0000:01:00.0', '0000:01:00.1', '0000:01:00.2', '0000:01:00.3'];
const ORIGINAL1 = { '0000:01:00.0': 'nvidia', '0000:01:00.1': 'snd_hda_intel', '0000:01:00.2': 'xhci_hcd', '0000:01:00.3': 'nvidia-gpu' };
const ON_VFIO = Object.fromEntries(GPU1.map((a) => [a, 'vfio-pci']));

function ctx(root: string, positionals: string[], values: CommandContext['values'] = {}) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = {
    positionals,
    values,
    root: new HostRoot(root),
    io: { stdout: { write: (s: string) => (stdout += s), isTTY: false }, stderr: { write: (s: string) => (stderr += s), isTTY: false }, env: {} },
  };
  return { c, out: () => stdout, err: () => stderr };
}

describe('bind as a plan over the snapshot', () => {
  it('load vfio-pci, one bind-driver step per endpoint (bridges stay), then a viability wait per group', () => {
    const { dir } = setup(desktopNvidia);
    const plan = planFor(dir, ['01:00.0']);
    expect(plan.problems).toEqual([]);
    expect(plan.steps.map((s) => (s.kind === 'bind-driver' ? `bind ${s.address} ${s.before.driver}` : s.kind === 'module' ? `module ${s.action} ${s.module}` : s.kind === 'wait' ? `wait ${JSON.stringify(s.condition)}` : s.kind))).toEqual([
      'module load vfio-pci',
      ...GPU1.map((a) => `bind ${a} ${ORIGINAL1[a as keyof typeof ORIGINAL1]}`),
      'wait {"type":"group-viable","group":1}',
    ]);
  });

  it('is planned the same from a captured snapshot of the host (`vfiokit snapshot`), including a VM that holds a group', () => {
    const { dir } = setup(serverSwitchSriov, { vfioLoaded: true });
    fs.mkdirSync(path.join(dir, 'proc/777/fd'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'proc/777/comm'), 'qemu-system-x86\n');
    fs.writeFileSync(path.join(dir, 'proc/777/fd/3'), '');
    fs.symlinkSync('/home/user/secret.txt', path.join(dir, 'proc/777/fd/4'));
    fs.symlinkSync('/dev/vfio/9', path.join(dir, 'proc/777/fd/5'));
    const cap = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-cap-'));
    dirs.push(cap);
    captureTree(new HostRoot(dir), cap);
    for (const sel of [['04:02.1'], ['05:00.0'], ['03:00.0']]) {
      const a = planFor(dir, sel);
      const b = planFor(cap, sel);
      expect(b).toEqual(a);
    }
    expect(planFor(cap, ['04:02.1']).problems.map((p) => p.code)).toEqual(['E_GROUP_IN_USE']);
    // Only the link to /dev/vfio/N was kept, not the process's other open files.
    expect(fs.readdirSync(path.join(cap, 'proc/777/fd'))).toEqual(['5']);
  });
});

describe('bind / undo / unbind round trip on the kernel fake', () => {
  it('binds every endpoint with the kernel sequence, journals the originals; undo puts back exactly what was there', async () => {
    const { dir, kernel, runner, deps } = setup(desktopNvidia);
    const before = treeFingerprint(dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci']);
    const res = await applyPlan(planFor(dir, ['01:00.0']), deps);
    expect(runner.log()).toBe('modprobe vfio-pci\n');
    expect(drivers(kernel, GPU1)).toEqual(ON_VFIO);
    expect(kernel.driverOf('0000:00:01.0')).toBe('pcieport');
    expect(kernel.driverOf('0000:00:02.0')).toBe('i915');
    expect(fs.existsSync(path.join(dir, 'dev/vfio/1'))).toBe(true);
    expect(kernel.writes.slice(0, 3)).toEqual([
      '/sys/bus/pci/devices/0000:01:00.0/driver_override ← "vfio-pci"',
      '/sys/bus/pci/drivers/nvidia/unbind ← "0000:01:00.0"',
      '/sys/bus/pci/drivers_probe ← "0000:01:00.0"',
    ]);
    expect(kernel.writes).toHaveLength(12);
    const j = listJournals(dir).find((d) => d.txid === res.txid)!;
    expect(j.kind).toBe('runtime-bind');
    expect(j.steps.filter((s) => s.kind === 'bind-driver').map((s) => s.live)).toEqual(GPU1.map((a) => ({ driver: ORIGINAL1[a as keyof typeof ORIGINAL1], override: null })));

    await undoTransaction({ root: dir, runner, sysfs: kernel });
    expect(drivers(kernel, GPU1)).toEqual(ORIGINAL1);
    expect(overrides(kernel, GPU1)).toEqual([null, null, null, null]);
    expect(fs.existsSync(path.join(dir, 'dev/vfio/1'))).toBe(false);
    expect(kernel.writes.slice(12, 15)).toEqual([
      '/sys/bus/pci/devices/0000:01:00.3/driver_override ← "\\n"',
      '/sys/bus/pci/drivers/vfio-pci/unbind ← "0000:01:00.3"',
      '/sys/bus/pci/drivers_probe ← "0000:01:00.3"',
    ]);
    // vfio-pci stays loaded (keepOnUndo): a loaded vfio-pci harms nothing.
    expect(runner.log()).toBe('modprobe vfio-pci\n');
    expect(treeFingerprint(dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci'])).toEqual(before);
  });

  it('binding again is an empty plan; vfio-pci already loaded means no modprobe', async () => {
    const { dir, kernel, runner, deps } = setup(desktopNvidia, { vfioLoaded: true });
    await applyPlan(planFor(dir, ['01:00.0']), deps);
    const n = kernel.writes.length;
    expect(planFor(dir, ['01:00.0']).steps).toEqual([]);
    expect(kernel.writes).toHaveLength(n);
    expect(runner.calls).toEqual([]);
  });

  it('twin identical GPUs: only the chosen card (by address) moves; by IDs the boot display is refused', async () => {
    const { dir, kernel, deps } = setup(twinGpus, { vfioLoaded: true });
    await applyPlan(planFor(dir, ['0b:00.0']), deps);
    expect(drivers(kernel, ['0000:0a:00.0', '0000:0a:00.1', '0000:0b:00.0', '0000:0b:00.1'])).toEqual({ '0000:0a:00.0': 'nvidia', '0000:0a:00.1': 'snd_hda_intel', '0000:0b:00.0': 'vfio-pci', '0000:0b:00.1': 'vfio-pci' });
    expect(fs.existsSync(path.join(dir, 'dev/vfio/4'))).toBe(true);
    expect(planFor(dir, ['10de:2204']).problems.map((x) => x.code)).toEqual(['E_BOOT_VGA']);
  });

  it('undo pins the recorded driver when the default match would pick another one', async () => {
    const { dir, kernel, runner, deps } = setup(desktopNvidia, { vfioLoaded: true, defaults: { '0000:01:00.0': 'nouveau' } });
    kernel.loadModule('nouveau');
    await applyPlan(planFor(dir, ['01:00.0']), deps);
    await undoTransaction({ root: dir, runner, sysfs: kernel });
    expect(kernel.driverOf('0000:01:00.0')).toBe('nvidia');
    expect(kernel.overrideOf('0000:01:00.0')).toBeNull();
  });

  it('a driver_override the user had set is put back as it was', async () => {
    const { dir, kernel, runner, deps } = setup(desktopNvidia, { vfioLoaded: true });
    kernel.write('/sys/bus/pci/devices/0000:01:00.1/driver_override', 'snd_hda_intel');
    await applyPlan(planFor(dir, ['01:00.0']), deps);
    await undoTransaction({ root: dir, runner, sysfs: kernel });
    expect(overrides(kernel, GPU1)).toEqual([null, 'snd_hda_intel', null, null]);
    expect(drivers(kernel, GPU1)).toEqual(ORIGINAL1);
  });
});

describe('refusals change nothing (exit 3)', () => {
  async function refused(host: FakeHost, selectors: string[], opts: { with?: string[]; force?: boolean } = {}, prep?: (dir: string) => void) {
    const s = setup(host, { vfioLoaded: true });
    prep?.(s.dir);
    const before = treeFingerprint(s.dir);
    const plan = planFor(s.dir, selectors, opts);
    const err = (await applyPlan(plan, s.deps).catch((e) => e)) as PreconditionError;
    expect(err).toBeInstanceOf(PreconditionError);
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain('nothing was changed');
    expect(s.kernel.writes).toEqual([]);
    expect(s.runner.calls).toEqual([]);
    expect(treeFingerprint(s.dir)).toEqual(before);
    return { err, codes: err.problems.map((p) => p.code), s };
  }

  const qemuHolds = (group: number) => (dir: string) => {
    fs.mkdirSync(path.join(dir, 'proc/4242/fd'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'proc/4242/comm'), 'qemu-system-x86\n');
    fs.writeFileSync(path.join(dir, `dev/vfio/${group}`), '');
    fs.symlinkSync('/dev/null', path.join(dir, 'proc/4242/fd/0'));
    fs.symlinkSync(`/dev/vfio/${group}`, path.join(dir, 'proc/4242/fd/27'));
  };

  it('a group open by a running VM', async () => {
    const { err, codes } = await refused(desktopNvidia, ['01:00.0'], {}, qemuHolds(1));
    expect(codes).toEqual(['E_GROUP_IN_USE']);
    expect(err.problems[0].message).toContain('pid 4242 (qemu-system-x86)');
  });

  it('unbind while a VM holds the group', async () => {
    const s = setup(desktopNvidia, { vfioLoaded: true });
    await applyPlan(planFor(s.dir, ['01:00.0']), s.deps);
    qemuHolds(1)(s.dir);
    const n = s.kernel.writes.length;
    const u = ctx(s.dir, ['01:00.0'], { yes: true });
    await expect(runUnbind(u.c, { writer: s.kernel, runner: s.runner })).rejects.toMatchObject({ exitCode: 3, code: 'E_GROUP_IN_USE' });
    expect(s.kernel.writes).toHaveLength(n);
  });

  it('the boot VGA device while it drives the console; --force takes it', async () => {
    const { err, codes } = await refused(desktopNvidia, ['00:02.0']);
    expect(codes).toEqual(['E_BOOT_VGA']);
    expect(err.problems[0].message).toContain('i915');
    const s = setup(desktopNvidia, { vfioLoaded: true });
    await applyPlan(planFor(s.dir, ['00:02.0'], { force: true }), s.deps);
    expect(s.kernel.driverOf('0000:00:02.0')).toBe('vfio-pci');
  });

  it('a boot VGA device taken along with --with is checked too', async () => {
    const { codes } = await refused(amdNoAcs, ['01:00.0'], { with: ['02:00.0', '02:00.1'] });
    expect(codes).toEqual(['E_BOOT_VGA']);
  });

  it('a bridge', async () => {
    const { codes } = await refused(desktopNvidia, ['00:01.0']);
    expect(codes).toEqual(['E_BRIDGE']);
  });

  it('a partial group without --with; with --with (and --force for the boot GPU) the whole group moves, bridges stay', async () => {
    const { err, codes } = await refused(amdNoAcs, ['01:00.0']);
    expect(codes).toEqual(['E_GROUP_NOT_ISOLATED']);
    expect(err.problems[0].hint).toContain('--with 02:00.0');
    const s = setup(amdNoAcs, { vfioLoaded: true });
    await applyPlan(planFor(s.dir, ['01:00.0'], { with: ['02:00.0', '02:00.1'], force: true }), s.deps);
    expect(drivers(s.kernel, ['0000:01:00.0', '0000:02:00.0', '0000:02:00.1', '0000:00:01.1', '0000:00:01.2', '0000:00:01.0'])).toEqual({
      '0000:01:00.0': 'vfio-pci',
      '0000:02:00.0': 'vfio-pci',
      '0000:02:00.1': 'vfio-pci',
      '0000:00:01.1': 'pcieport',
      '0000:00:01.2': 'pcieport',
      '0000:00:01.0': null,
    });
  });

  it('IOMMU not active', async () => {
    const { codes } = await refused(iommuOff, ['01:00.1']);
    expect(codes).toEqual(['E_IOMMU_DISABLED']);
  });

  it('a device that changed driver since the plan was made: refused before the first write', async () => {
    const s = setup(desktopNvidia, { vfioLoaded: true });
    const plan = planFor(s.dir, ['01:00.0']);
    s.kernel.write('/sys/bus/pci/drivers/snd_hda_intel/unbind', '0000:01:00.1');
    const n = s.kernel.writes.length;
    await expect(applyPlan(plan, s.deps)).rejects.toMatchObject({ code: 'E_CHANGED_SINCE_PLAN', exitCode: 3 });
    expect(s.kernel.writes).toHaveLength(n);
  });
});

describe('fault injection: every step and every sysfs write of a runtime bind', () => {
  const stepsOf = () => {
    const s = setup(desktopNvidia);
    return planFor(s.dir, ['01:00.0']).steps.length;
  };
  const nSteps = stepsOf();
  for (let k = 0; k < nSteps; k++) {
    for (const after of [false, true]) {
      it(`step ${k + 1}/${nSteps} fails ${after ? 'after' : 'before'} its effect → every function back on its original driver and override, exit 4`, async () => {
        const s = setup(desktopNvidia);
        const before = treeFingerprint(s.dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci']);
        const err = (await applyPlan(planFor(s.dir, ['01:00.0']), { ...s.deps, failAt: { step: k, after } }).catch((e) => e)) as ApplyError;
        expect(err).toBeInstanceOf(ApplyError);
        expect(err.exitCode).toBe(4);
        expect(drivers(s.kernel, GPU1)).toEqual(ORIGINAL1);
        expect(overrides(s.kernel, GPU1)).toEqual([null, null, null, null]);
        expect(treeFingerprint(s.dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci'])).toEqual(before);
        expect(listJournals(s.dir)[0].state).toBe('rolled-back');
      });
    }
    it(`power cut at step ${k + 1}/${nSteps} → \`recover\` puts every function back`, async () => {
      const s = setup(desktopNvidia);
      const before = treeFingerprint(s.dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci']);
      await expect(applyPlan(planFor(s.dir, ['01:00.0']), { ...s.deps, failAt: { step: k, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
      expect(listJournals(s.dir)[0].state).toBe('applying');
      const reps = await recoverInterrupted(s.dir, s.runner, { sysfs: s.kernel, lock: { isAlive: () => false } });
      expect(reps.map((r) => r.toState)).toEqual(['rolled-back']);
      expect(drivers(s.kernel, GPU1)).toEqual(ORIGINAL1);
      expect(treeFingerprint(s.dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci'])).toEqual(before);
    });
  }
  for (const n of [1, 2, 3, 5, 9, 12]) {
    it(`sysfs write #${n} fails (EIO) → every device back, exit 4, the message names the errno`, async () => {
      const s = setup(desktopNvidia, { vfioLoaded: true, failAtWrite: n });
      const before = treeFingerprint(s.dir, ['var/lib/vfiokit']);
      const err = (await applyPlan(planFor(s.dir, ['01:00.0']), s.deps).catch((e) => e)) as ApplyError;
      expect(err).toBeInstanceOf(ApplyError);
      expect(err.exitCode).toBe(4);
      expect(err.message).toContain('EIO');
      expect(drivers(s.kernel, GPU1)).toEqual(ORIGINAL1);
      expect(treeFingerprint(s.dir, ['var/lib/vfiokit'])).toEqual(before);
    });
  }

  it('when a restore fails too: exit 5, the journal says rollback-failed, new applies are blocked, and `recover` finishes it once the kernel behaves', async () => {
    let broken = true;
    const s = setup(desktopNvidia, { vfioLoaded: true, failWhen: (p, v) => (broken && p.endsWith('/driver_override') && v === '\n' ? 'EACCES' : p.endsWith('drivers/snd_hda_intel/unbind') ? 'EIO' : undefined) });
    const err = (await applyPlan(planFor(s.dir, ['01:00.0']), s.deps).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain('INCOMPLETE');
    expect(err.message).toContain('EACCES');
    expect(listJournals(s.dir)[0].state).toBe('rollback-failed');
    expect(s.kernel.driverOf('0000:01:00.0')).toBe('vfio-pci');
    // Blocked, and never "nothing to do".
    await expect(applyPlan(planFor(s.dir, ['01:00.0']), { ...s.deps })).rejects.toMatchObject({ code: 'E_RECOVERY_INCOMPLETE', exitCode: 3 });
    const h = ctx(s.dir, []);
    expect(await runHistory(h.c)).toBe(3);
    expect(h.out()).toContain('rollback-failed');
    broken = false;
    const reps = await recoverInterrupted(s.dir, s.runner, { sysfs: s.kernel });
    expect(reps.map((r) => [r.fromState, r.toState])).toEqual([['rollback-failed', 'rolled-back']]);
    expect(drivers(s.kernel, GPU1)).toEqual(ORIGINAL1);
    expect(overrides(s.kernel, GPU1)).toEqual([null, null, null, null]);
  });
});

describe('commands', () => {
  it('bind --yes --json prints the result; unbind undoes the bind transaction and restores; history lists both', async () => {
    const s = setup(desktopNvidia);
    const b = ctx(s.dir, ['01:00.0'], { yes: true, json: true });
    expect(await runBind(b.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    const j = JSON.parse(b.out());
    expect(j).toMatchObject({ action: 'bind', changed: true, loadedModule: true, groups: [{ id: 1, viable: true, devVfio: '/dev/vfio/1', blockers: [] }] });
    expect(j.devices.map((d: { address: string; from: string; after: string }) => [d.address, d.from, d.after])).toEqual(GPU1.map((a) => [a, ORIGINAL1[a as keyof typeof ORIGINAL1], 'vfio-pci']));
    const u = ctx(s.dir, ['01:00.0'], { yes: true, json: true });
    expect(await runUnbind(u.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    const uj = JSON.parse(u.out());
    expect(uj.undone).toEqual([j.txid]);
    expect(uj.devices.map((d: { after: string }) => d.after)).toEqual(GPU1.map((a) => ORIGINAL1[a as keyof typeof ORIGINAL1]));
    const again = ctx(s.dir, ['01:00.0'], { yes: true });
    expect(await runUnbind(again.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    expect(again.out()).toContain('nothing to do');
    const h = ctx(s.dir, [], { json: true });
    expect(await runHistory(h.c)).toBe(0);
    expect(JSON.parse(h.out()).transactions.map((t: { kind: string; state: string }) => [t.kind, t.state])).toEqual([['runtime-bind', 'undone']]);
  });

  it('unbind without a bind transaction returns the device to the kernel default match', async () => {
    const s = setup(serverSwitchSriov, { defaults: { '0000:04:02.1': 'iavf' } });
    const u = ctx(s.dir, ['04:02.1'], { yes: true, json: true });
    expect(await runUnbind(u.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    expect(JSON.parse(u.out())).toMatchObject({ undone: [], devices: [{ address: '0000:04:02.1', from: 'vfio-pci', after: 'iavf' }] });
    expect(fs.existsSync(path.join(s.dir, 'dev/vfio/9'))).toBe(false);
  });

  it('--dry-run plans from the tree and changes nothing, even without a kernel', async () => {
    const s = setup(desktopNvidia);
    const before = treeFingerprint(s.dir, []);
    const b = ctx(s.dir, ['01:00.0'], { 'dry-run': true, json: true });
    expect(await runBind(b.c, {})).toBe(0);
    expect(JSON.parse(b.out()).steps.filter((x: { kind: string }) => x.kind === 'bind-driver')).toHaveLength(4);
    expect(treeFingerprint(s.dir, [])).toEqual(before);
  });

  it('without a terminal and without --yes nothing changes (exit 2); a "no" at the prompt changes nothing', async () => {
    const s = setup(desktopNvidia);
    const c = ctx(s.dir, ['01:00.0']);
    await expect(runBind(c.c, { writer: s.kernel, runner: s.runner })).rejects.toBeInstanceOf(UsageError);
    const asked: string[] = [];
    const c2 = ctx(s.dir, ['01:00.0']);
    expect(await runBind(c2.c, { writer: s.kernel, runner: s.runner, answer: async (q) => (asked.push(q), 'n') })).toBe(1);
    expect(asked).toEqual(['Bind 4 device(s) now? [y/N] ']);
    expect(c2.out()).toContain('01:00.1');
    expect(c2.out()).toContain('cancelled');
    expect(s.kernel.writes).toEqual([]);
    expect(s.runner.calls).toEqual([]);
  });

  it('through the CLI: a --root tree has no kernel, so bind refuses before any write (exit 3); refusals print their fix', async () => {
    const s = setup(desktopNvidia);
    const r = await runCli(['bind', '01:00.0', '--root', s.dir, '--yes']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no kernel behind it');
    const before = treeFingerprint(s.dir);
    const r2 = await runCli(['bind', '00:01.0', '--root', s.dir, '--yes', '--json']);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toContain('bridge');
    expect(r2.stderr).toContain('fix:');
    const r3 = await runCli(['unbind', '--root', s.dir]);
    expect(r3.code).toBe(2);
    expect(treeFingerprint(s.dir)).toEqual(before);
    const help = await runCli(['--help']);
    for (const c of ['bind', 'unbind', 'recover', 'history']) expect(help.stdout).toContain(`  ${c} `);
  });
});
