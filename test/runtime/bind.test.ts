import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingRunner } from '../../src/apply/runner.js';
import { run as runBind } from '../../src/cli/commands/bind.js';
import { run as runUnbind } from '../../src/cli/commands/unbind.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ApplyError, PreconditionError, UsageError } from '../../src/errors.js';
import { HostRoot } from '../../src/host/root.js';
import { executeBind, executeUnbind, planBind, planUnbind, readRuntimeRecord } from '../../src/runtime/index.js';
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
  const runner = recordingRunner({ onCall: (argv) => (argv[0] === 'modprobe' ? kernel.loadModule(argv[1]) : undefined) });
  return { dir, root: new HostRoot(dir), kernel, runner, deps: { root: dir, writer: kernel, runner } };
}

const drivers = (k: KernelFake, addrs: string[]) => Object.fromEntries(addrs.map((a) => [a, k.driverOf(a)]));
const GPU1 = ['0000:01:00.0', '0000:01:00.1', '0000:01:00.2', '0000:01:00.3'];
const ORIGINAL1 = { '0000:01:00.0': 'nvidia', '0000:01:00.1': 'snd_hda_intel', '0000:01:00.2': 'xhci_hcd', '0000:01:00.3': 'nvidia-gpu' };

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

describe('bind / unbind round trip', () => {
  it('binds every endpoint of the group with the kernel sequence, leaves the bridge, records originals; unbind restores them exactly', async () => {
    const { dir, kernel, runner, deps } = setup(desktopNvidia);
    const before = treeFingerprint(dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci']);
    const plan = planBind(dir, ['01:00.0']);
    expect(plan.problems).toEqual([]);
    expect(plan.loadModule).toBe(true);
    expect(plan.devices.map((d) => d.address)).toEqual(GPU1);
    const res = await executeBind(plan, deps);
    expect(runner.log()).toBe('modprobe vfio-pci\n');
    expect(drivers(kernel, GPU1)).toEqual(Object.fromEntries(GPU1.map((a) => [a, 'vfio-pci'])));
    expect(kernel.driverOf('0000:00:01.0')).toBe('pcieport');
    expect(kernel.driverOf('0000:00:02.0')).toBe('i915');
    expect(fs.existsSync(path.join(dir, 'dev/vfio/1'))).toBe(true);
    expect(res.groups).toEqual([{ id: 1, viable: true, devVfio: true, blockers: [] }]);
    // The sequence for the first device, in order.
    expect(kernel.writes.slice(0, 3)).toEqual([
      '/sys/bus/pci/devices/0000:01:00.0/driver_override ← "vfio-pci"',
      '/sys/bus/pci/drivers/nvidia/unbind ← "0000:01:00.0"',
      '/sys/bus/pci/drivers_probe ← "0000:01:00.0"',
    ]);
    expect(kernel.writes).toHaveLength(12);
    const rec = readRuntimeRecord(new HostRoot(dir));
    expect(Object.fromEntries(Object.entries(rec.devices).map(([a, e]) => [a, [e.originalDriver, e.originalOverride, e.pending]]))).toEqual(
      Object.fromEntries(Object.entries(ORIGINAL1).map(([a, d]) => [a, [d, null, false]])),
    );

    const un = planUnbind(dir, ['01:00.0']);
    expect(un.problems).toEqual([]);
    expect(un.devices.map((d) => [d.address, d.to.driver, d.recorded])).toEqual(GPU1.map((a) => [a, ORIGINAL1[a as keyof typeof ORIGINAL1], true]));
    await executeUnbind(un, deps);
    expect(drivers(kernel, GPU1)).toEqual(ORIGINAL1);
    expect(GPU1.map((a) => kernel.overrideOf(a))).toEqual([null, null, null, null]);
    expect(fs.existsSync(path.join(dir, 'dev/vfio/1'))).toBe(false);
    expect(readRuntimeRecord(new HostRoot(dir)).devices).toEqual({});
    expect(kernel.writes.slice(12, 15)).toEqual([
      '/sys/bus/pci/devices/0000:01:00.0/driver_override ← "\\n"',
      '/sys/bus/pci/drivers/vfio-pci/unbind ← "0000:01:00.0"',
      '/sys/bus/pci/drivers_probe ← "0000:01:00.0"',
    ]);
    expect(treeFingerprint(dir, ['var/lib/vfiokit', 'sys/bus/pci/drivers/vfio-pci'])).toEqual(before);
  });

  it('binding again is a no-op; vfio-pci already loaded means no modprobe', async () => {
    const { dir, kernel, runner, deps } = setup(desktopNvidia, { vfioLoaded: true });
    await executeBind(planBind(dir, ['01:00.0']), deps);
    const n = kernel.writes.length;
    const again = planBind(dir, ['01:00.0']);
    expect(again.devices.every((d) => d.skip)).toBe(true);
    await executeBind(again, deps);
    expect(kernel.writes).toHaveLength(n);
    expect(runner.calls).toEqual([]);
  });

  it('twin identical GPUs: only the chosen card (by address) moves', async () => {
    const { dir, kernel, deps } = setup(twinGpus, { vfioLoaded: true });
    await executeBind(planBind(dir, ['0b:00.0']), deps);
    expect(drivers(kernel, ['0000:0a:00.0', '0000:0a:00.1', '0000:0b:00.0', '0000:0b:00.1'])).toEqual({
      '0000:0a:00.0': 'nvidia',
      '0000:0a:00.1': 'snd_hda_intel',
      '0000:0b:00.0': 'vfio-pci',
      '0000:0b:00.1': 'vfio-pci',
    });
    expect(fs.existsSync(path.join(dir, 'dev/vfio/4'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'dev/vfio/3'))).toBe(false);
    // By vendor:device both match, and the host's card is the boot display: refused.
    const p = planBind(dir, ['10de:2204']);
    expect(p.problems.map((x) => x.code)).toEqual(['E_BOOT_VGA']);
  });

  it('unbind without a record returns the device to the kernel default match', async () => {
    const { dir, kernel, deps } = setup(serverSwitchSriov, { defaults: { '0000:04:02.1': 'iavf' } });
    const p = planUnbind(dir, ['04:02.1']);
    expect(p.devices.map((d) => [d.address, d.recorded, d.to.driver])).toEqual([['0000:04:02.1', false, '(kernel default)']]);
    await executeUnbind(p, deps);
    expect(kernel.driverOf('0000:04:02.1')).toBe('iavf');
    expect(fs.existsSync(path.join(dir, 'dev/vfio/9'))).toBe(false);
  });

  it('unbind pins the recorded driver when the default match would pick another one', async () => {
    const { dir, kernel, deps } = setup(desktopNvidia, { vfioLoaded: true, defaults: { '0000:01:00.0': 'nouveau' } });
    kernel.loadModule('nouveau');
    await executeBind(planBind(dir, ['01:00.0']), deps);
    await executeUnbind(planUnbind(dir, ['01:00.0']), deps);
    expect(kernel.driverOf('0000:01:00.0')).toBe('nvidia');
    expect(kernel.overrideOf('0000:01:00.0')).toBeNull();
  });
});

describe('refusals change nothing (exit 3)', () => {
  async function refused(host: FakeHost, selectors: string[], opts: { with?: string[]; force?: boolean } = {}, prep?: (dir: string) => void) {
    const s = setup(host, { vfioLoaded: true });
    prep?.(s.dir);
    const before = treeFingerprint(s.dir);
    const plan = planBind(s.dir, selectors, opts);
    const err = (await executeBind(plan, s.deps).catch((e) => e)) as PreconditionError;
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
    await executeBind(planBind(s.dir, ['01:00.0']), s.deps);
    qemuHolds(1)(s.dir);
    const n = s.kernel.writes.length;
    const p = planUnbind(s.dir, ['01:00.0']);
    expect(p.problems.map((x) => x.code)).toEqual(['E_GROUP_IN_USE']);
    await expect(executeUnbind(p, s.deps)).rejects.toMatchObject({ exitCode: 3 });
    expect(s.kernel.writes).toHaveLength(n);
  });

  it('the boot VGA device while it drives the console; --force takes it', async () => {
    const { err, codes } = await refused(desktopNvidia, ['00:02.0']);
    expect(codes).toEqual(['E_BOOT_VGA']);
    expect(err.problems[0].message).toContain('i915');
    const s = setup(desktopNvidia, { vfioLoaded: true });
    await executeBind(planBind(s.dir, ['00:02.0'], { force: true }), s.deps);
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
    await executeBind(planBind(s.dir, ['01:00.0'], { with: ['02:00.0', '02:00.1'], force: true }), s.deps);
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
});

describe('failure midway restores the devices already moved', () => {
  for (const n of [1, 2, 3, 5, 9, 12]) {
    it(`bind: sysfs write #${n} fails (EIO) → every device back on its original driver, exit 4`, async () => {
      const s = setup(desktopNvidia, { vfioLoaded: true, failAtWrite: n });
      const before = treeFingerprint(s.dir, ['var/lib/vfiokit']);
      const err = (await executeBind(planBind(s.dir, ['01:00.0']), s.deps).catch((e) => e)) as ApplyError;
      expect(err).toBeInstanceOf(ApplyError);
      expect(err.exitCode).toBe(4);
      expect(err.message).toContain('EIO');
      expect(drivers(s.kernel, GPU1)).toEqual(ORIGINAL1);
      expect(treeFingerprint(s.dir, ['var/lib/vfiokit'])).toEqual(before);
      expect(readRuntimeRecord(new HostRoot(s.dir)).devices).toEqual({});
    });
  }

  it('bind: when the restore fails too, exit 5 and the originals stay recorded', async () => {
    const s = setup(desktopNvidia, { vfioLoaded: true, failWhen: (p, v) => (p.endsWith('/driver_override') && v === '\n' ? 'EACCES' : p.endsWith('drivers/snd_hda_intel/unbind') ? 'EIO' : undefined) });
    const err = (await executeBind(planBind(s.dir, ['01:00.0']), s.deps).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(5);
    expect(err.message).toContain('INCOMPLETE');
    expect(err.message).toContain('EACCES');
    expect(Object.keys(readRuntimeRecord(new HostRoot(s.dir)).devices).sort()).toEqual(['0000:01:00.0', '0000:01:00.1']);
  });

  it('unbind: a failure midway puts the devices already returned back on vfio-pci, records kept', async () => {
    const s = setup(desktopNvidia, { vfioLoaded: true });
    await executeBind(planBind(s.dir, ['01:00.0']), s.deps);
    const bound = treeFingerprint(s.dir, ['var/lib/vfiokit']);
    const recBefore = readRuntimeRecord(new HostRoot(s.dir));
    let failed = false; // one failure, then the kernel behaves again
    const k2 = new KernelFake(s.dir, { defaults: ORIGINAL1, failWhen: (p, v) => (!failed && p === '/sys/bus/pci/drivers_probe' && v === '0000:01:00.2' ? ((failed = true), 'ENODEV') : undefined) });
    const err = (await executeUnbind(planUnbind(s.dir, ['01:00.0']), { ...s.deps, writer: k2 }).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(4);
    expect(err.message).toContain('unbind failed at 0000:01:00.2');
    expect(drivers(s.kernel, GPU1)).toEqual(Object.fromEntries(GPU1.map((a) => [a, 'vfio-pci'])));
    expect(treeFingerprint(s.dir, ['var/lib/vfiokit'])).toEqual(bound);
    expect(readRuntimeRecord(new HostRoot(s.dir)).devices).toEqual(recBefore.devices);
  });
});

describe('commands', () => {
  it('bind --yes --json prints the result; unbind --json restores', async () => {
    const s = setup(desktopNvidia);
    const b = ctx(s.dir, ['01:00.0'], { yes: true, json: true });
    expect(await runBind(b.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    const j = JSON.parse(b.out());
    expect(j).toMatchObject({ action: 'bind', changed: true, loadedModule: true, groups: [{ id: 1, viable: true, devVfio: '/dev/vfio/1', blockers: [] }] });
    expect(j.devices.map((d: { address: string; from: { driver: string }; after: { driver: string; override: string } }) => [d.address, d.from.driver, d.after.driver, d.after.override])).toEqual(
      GPU1.map((a) => [a, ORIGINAL1[a as keyof typeof ORIGINAL1], 'vfio-pci', 'vfio-pci']),
    );
    const u = ctx(s.dir, ['01:00.0'], { yes: true, json: true });
    expect(await runUnbind(u.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    const uj = JSON.parse(u.out());
    expect(uj.devices.map((d: { after: { driver: string } }) => d.after.driver)).toEqual(GPU1.map((a) => ORIGINAL1[a as keyof typeof ORIGINAL1]));
    const again = ctx(s.dir, ['01:00.0'], { yes: true });
    expect(await runUnbind(again.c, { writer: s.kernel, runner: s.runner })).toBe(0);
    expect(again.out()).toContain('nothing to do');
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
    const before = treeFingerprint(s.dir);
    const r = await runCli(['bind', '01:00.0', '--root', s.dir, '--yes']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no kernel behind it');
    const r2 = await runCli(['bind', '00:01.0', '--root', s.dir, '--yes', '--json']);
    expect(r2.code).toBe(3);
    expect(r2.stderr).toContain('bridge');
    expect(r2.stderr).toContain('fix:');
    const r3 = await runCli(['unbind', '--root', s.dir]);
    expect(r3.code).toBe(2);
    expect(treeFingerprint(s.dir)).toEqual(before);
    const help = await runCli(['--help']);
    for (const c of ['bind', 'unbind', 'recover']) expect(help.stdout).toContain(`  ${c} `);
  });
});
