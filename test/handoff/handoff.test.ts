import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, listJournals } from '../../src/apply/index.js';
import { recordingRunner } from '../../src/apply/runner.js';
import { run as runHandoff } from '../../src/cli/commands/handoff.js';
import { run as runHooks } from '../../src/cli/commands/hooks.js';
import { run as runRecover } from '../../src/cli/commands/recover.js';
import { runVm } from '../../src/cli/commands/vm.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ApplyError, VfioError } from '../../src/errors.js';
import { parseHookScript, renderHookScript } from '../../src/formats/libvirt-hook.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { libvirtVersionFromSoname } from '../../src/host/system.js';
import { planHandoffPrepare } from '../../src/plan/handoff-plan.js';
import { renderStepPlan } from '../../src/render/handoff.js';
import { treeFingerprint } from '../apply/_tree.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { expectGolden, stableRoot } from '../helpers/golden.js';
import { KernelFake } from '../helpers/kernel-fake.js';
import { domainXml, singleAmd, singleNvidia } from './fixtures.js';

const dirs: string[] = [];
afterEach(() => {
  if (!process.env.KEEP_TMP) for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup(host: FakeHost, defaults: Record<string, string | null> = {}) {
  const dir = buildFakeHost(host);
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'dev/vfio'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
  const kernel = new KernelFake(dir, { defaults });
  // systemctl stop/start of the display manager: the fake removes/creates its cgroup (and Xorg's open card).
  const runner = recordingRunner({
    onCall: (argv) => {
      const r = kernel.modprobe(argv);
      if (r) return r;
      if (argv[0] === 'systemctl') {
        const procs = path.join(dir, `sys/fs/cgroup/system.slice/${argv[2]}/cgroup.procs`);
        if (argv[1] === 'stop') {
          fs.writeFileSync(procs, '');
          fs.rmSync(path.join(dir, 'proc/4242'), { recursive: true, force: true });
        } else fs.writeFileSync(procs, '1201\n');
      }
    },
  });
  return { dir, kernel, runner };
}

function ctx(dir: string, positionals: string[], values: Record<string, unknown> = {}) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = {
    positionals,
    values: values as never,
    root: new HostRoot(dir),
    io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} },
  };
  return { c, out: () => stdout, err: () => stderr };
}

const WIN11 = { domain: 'win11', hostdevs: ['0000:01:00.0', '0000:01:00.1'], singleGpu: true };

describe('handoff plans', () => {
  it('AMD single GPU: DM stop, wait for the card, fbcon unbind, both functions to vfio-pci (golden)', async () => {
    const { dir } = setup(singleAmd);
    const x = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true, 'dry-run': true });
    expect(await runHandoff(x.c)).toBe(0);
    expectGolden('handoff/prepare-amd.txt', x.out());
    const plan = planHandoffPrepare(inspect(dir), WIN11);
    expect(plan.steps.map((s) => s.kind)).toEqual(['run-command', 'wait', 'write-attr', 'module', 'bind-driver', 'bind-driver', 'wait']);
    // The system console vtcon0 is never touched; the waited-for nodes are the GPU's.
    expect(plan.steps.filter((s) => s.kind === 'write-attr').map((s) => s.kind === 'write-attr' && s.path)).toEqual(['/sys/class/vtconsole/vtcon1/bind']);
    expect(plan.steps[1]).toMatchObject({ condition: { type: 'no-open-files', paths: ['/dev/dri/card0', '/dev/dri/renderD128'] } });
  });

  it('NVIDIA: efifb released and the four modules unloaded dependants first (golden)', async () => {
    const { dir } = setup(singleNvidia);
    const x = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true, 'dry-run': true });
    expect(await runHandoff(x.c)).toBe(0);
    expectGolden('handoff/prepare-nvidia.txt', x.out());
    const plan = planHandoffPrepare(inspect(dir), WIN11);
    expect(plan.steps.find((s) => s.kind === 'module' && s.action === 'unload')).toMatchObject({ module: 'nvidia', also: ['nvidia_drm', 'nvidia_uvm', 'nvidia_modeset'] });
    expect(plan.steps.some((s) => s.kind === 'write-attr' && s.path === '/sys/bus/platform/drivers/efi-framebuffer/unbind' && s.value === 'efi-framebuffer.0')).toBe(true);
  });

  it('no framebuffer, no consoles, no display manager: only the bind', () => {
    const bare: FakeHost = { ...singleAmd, files: Object.fromEntries(Object.entries(singleAmd.files!).filter(([k]) => !/vtconsole|graphics|\/proc\/fb|cgroup/.test(k))), links: {} };
    const { dir } = setup(bare);
    const plan = planHandoffPrepare(inspect(dir), WIN11);
    expect(plan.problems).toEqual([]);
    expect(plan.steps.map((s) => s.kind)).toEqual(['wait', 'module', 'bind-driver', 'bind-driver', 'wait']);
    expect(plan.warnings.join('\n')).toMatch(/no display manager/);
  });

  it('Intel (i915): the function is unbound, the module stays loaded; a bound system console "(S)" is left alone', () => {
    const intel: FakeHost = {
      ...singleAmd,
      pci: singleAmd.pci!.map((d) => (d.addr === '01:00.0' ? { ...d, id: '8086:56a0', driver: 'i915' } : d.addr === '01:00.1' ? { ...d, id: '8086:4f90' } : d)),
      files: { ...singleAmd.files, '/proc/modules': 'i915 3932160 12 - Live 0x0\ndrm_display_helper 184320 1 i915, Live 0x0\nsnd_hda_intel 57344 2 - Live 0x0\n', '/sys/class/vtconsole/vtcon0/bind': '1\n' },
    };
    const { dir } = setup(intel);
    const plan = planHandoffPrepare(inspect(dir), WIN11);
    expect(plan.problems).toEqual([]);
    expect(plan.steps.filter((s) => s.kind === 'module' && s.action === 'unload')).toEqual([]);
    expect(plan.steps.find((s) => s.kind === 'bind-driver' && s.address === '0000:01:00.0')).toMatchObject({ driver: 'vfio-pci', before: { driver: 'i915' } });
    expect(plan.summary.join('\n')).toMatch(/01:00\.0: i915 is unbound from this function \(the module stays loaded/);
    expect(plan.summary.join('\n')).toMatch(/console vtcon0 \(\(S\) dummy device\) is a system console and stays bound/);
    expect(plan.steps.filter((s) => s.kind === 'write-attr').map((s) => (s as { path: string }).path)).toEqual(['/sys/class/vtconsole/vtcon1/bind']);
  });

  it('bad input: no hostdevs, a hostdev not on this host, the root disk group', () => {
    const { dir } = setup(singleAmd);
    const snap = inspect(dir);
    expect(planHandoffPrepare(snap, { ...WIN11, hostdevs: [] }).problems.map((p) => p.code)).toEqual(['E_NO_HOSTDEVS']);
    expect(planHandoffPrepare(snap, { ...WIN11, hostdevs: ['0000:09:00.0'] }).problems.map((p) => p.code)).toEqual(['E_HOSTDEV_MISSING']);
    snap.boot.rootStorage = ['0000:05:00.0'];
    expect(planHandoffPrepare(snap, { ...WIN11, hostdevs: ['0000:05:00.0'] }).problems.map((p) => p.code)).toContain('E_HOSTDEV_ROOT_DISK');
  });
});

describe('prepare and release through the engine', () => {
  it('prepare moves the pair, release gives back drivers, console and display manager, and verifies', async () => {
    const { dir, kernel, runner } = setup(singleAmd, { '0000:01:00.0': 'amdgpu', '0000:01:00.1': 'snd_hda_intel' });
    const before = treeFingerprint(dir);
    const p = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true, hook: true });
    expect(await runHandoff(p.c, { writer: kernel, runner, stdinText: domainXml('win11', ['0000:01:00.0', '0000:01:00.1']), sleep: async () => {} })).toBe(0);
    expect([kernel.driverOf('0000:01:00.0'), kernel.driverOf('0000:01:00.1')]).toEqual(['vfio-pci', 'vfio-pci']);
    expect(fs.readFileSync(path.join(dir, 'sys/class/vtconsole/vtcon1/bind'), 'utf8').trim()).toBe('0');
    expect(fs.existsSync(path.join(dir, 'dev/vfio/3'))).toBe(true);
    expect(runner.log()).toBe('systemctl stop gdm.service\nmodprobe vfio-pci\n');
    // A dry run now says what prepare would say: prepared already, nothing to do.
    const dry = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true, hook: true, 'dry-run': true });
    expect(await runHandoff(dry.c, { writer: kernel, runner, stdinText: domainXml('win11', ['0000:01:00.0', '0000:01:00.1']) })).toBe(0);
    expect(dry.out()).toMatch(/^win11 is prepared already \(transaction \S+; release it first\): prepare would do nothing/);
    expect(runner.log()).toBe('systemctl stop gdm.service\nmodprobe vfio-pci\n');
    // The Xorg stand-in is gone with the DM; bring it back for release to compare.
    const r = ctx(dir, ['release', 'win11'], { 'single-gpu': true, hook: true, reason: 'destroyed' });
    expect(await runHandoff(r.c, { writer: kernel, runner, stdinText: domainXml('win11', ['0000:01:00.0', '0000:01:00.1']) })).toBe(0);
    expect([kernel.driverOf('0000:01:00.0'), kernel.driverOf('0000:01:00.1')]).toEqual(['amdgpu', 'snd_hda_intel']);
    expect(fs.readFileSync(path.join(dir, 'sys/class/vtconsole/vtcon1/bind'), 'utf8').trim()).toBe('1');
    expect(runner.log().split('\n').filter(Boolean).pop()).toBe('systemctl start gdm.service');
    expect(r.err()).toMatch(/ok {3}console vtcon1 bound/);
    expect(r.err()).not.toMatch(/FAIL/);
    const after = treeFingerprint(dir);
    const changed = Object.keys({ ...before, ...after }).filter((k) => before[k] !== after[k] && !k.startsWith('proc/4242') && !k.includes('vfio-pci') && !k.includes('vfio_pci') && !k.startsWith('dev/vfio') && k !== 'proc/modules');
    // vfio-pci stays loaded (keepOnUndo); /proc/modules gains only it.
    expect(fs.readFileSync(path.join(dir, 'proc/modules'), 'utf8').trim().split('\n').pop()).toMatch(/^vfio-pci /);
    expect(changed).toEqual([]);
  });

  it('release tries every step after a failure and names the recovery command (each release step failing in turn)', async () => {
    for (const failing of ['/sys/bus/pci/drivers_probe', '/sys/class/vtconsole/vtcon1/bind']) {
      const dir = buildFakeHost(singleAmd);
      dirs.push(dir);
      fs.mkdirSync(path.join(dir, 'dev/vfio'), { recursive: true });
      fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
      let armed = false;
      const kernel = new KernelFake(dir, { defaults: { '0000:01:00.0': 'amdgpu', '0000:01:00.1': 'snd_hda_intel' }, failWhen: (p) => (armed && p === failing ? 'EIO' : undefined) });
      const runner = recordingRunner({ onCall: (argv) => kernel.modprobe(argv) });
      const xml = domainXml('win11', ['0000:01:00.0', '0000:01:00.1']);
      fs.rmSync(path.join(dir, 'proc/4242'), { recursive: true, force: true });
      expect(await runHandoff(ctx(dir, ['prepare', 'win11'], { 'single-gpu': true, hook: true }).c, { writer: kernel, runner, stdinText: xml, sleep: async () => {} })).toBe(0);
      armed = true;
      const r = ctx(dir, ['release', 'win11'], { 'single-gpu': true, hook: true, reason: 'crashed' });
      expect(await runHandoff(r.c, { writer: kernel, runner, stdinText: xml })).toBe(1);
      // The display manager is started whatever failed before it.
      expect(runner.log().split('\n').filter(Boolean).pop()).toBe('systemctl start gdm.service');
      expect(r.err()).toMatch(/FAIL/);
      expect(r.err()).toMatch(/fix: /);
    }
  });

  it('a failure at every step of prepare rolls back to the same tree and exits non-zero', async () => {
    const probe = setup(singleAmd);
    probe.kernel.modprobe(['modprobe', 'vfio-pci']);
    const n = planHandoffPrepare(inspect(probe.dir), WIN11).steps.length;
    expect(n).toBe(6);
    for (let k = 0; k < n; k++) {
      const { dir, kernel, runner } = setup(singleAmd, { '0000:01:00.0': 'amdgpu', '0000:01:00.1': 'snd_hda_intel' });
      // vfio-pci loaded beforehand: its load step is kept on rollback by design (keepOnUndo), everything else must be undone.
      kernel.modprobe(['modprobe', 'vfio-pci']);
      const plan = planHandoffPrepare(inspect(dir), WIN11);
      const before = treeFingerprint(dir, ['var/lib/vfiokit', 'proc/4242']);
      await expect(applyPlan(plan, { root: dir, runner, sysfs: kernel, failAt: k, sleep: async () => {} })).rejects.toBeInstanceOf(ApplyError);
      expect(treeFingerprint(dir, ['var/lib/vfiokit', 'proc/4242']), `failure at step ${k + 1}`).toEqual(before);
    }
  });

  it('a process that keeps the card open: prepare refused (exit 4), display manager started again', async () => {
    const { dir, kernel, runner } = setup(singleAmd, { '0000:01:00.0': 'amdgpu' });
    fs.mkdirSync(path.join(dir, 'proc/5555/fd'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'proc/5555/comm'), 'steam\n');
    fs.symlinkSync('/dev/dri/renderD128', path.join(dir, 'proc/5555/fd/7'));
    const p = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true, timeout: '1' });
    await expect(runHandoff(p.c, { writer: kernel, runner, sleep: async () => {} })).rejects.toMatchObject({ exitCode: 4, message: expect.stringMatching(/renderD128 by pid 5555 \(steam\)/), hint: 'nothing remains changed; stop steam (pid 5555) — a desktop session or compositor, Xorg, a CUDA or monitoring program — then try again' });
    expect(runner.log()).toBe('systemctl stop gdm.service\nsystemctl start gdm.service\n');
    expect(kernel.driverOf('0000:01:00.0')).toBe('amdgpu');
  });

  it('a display manager that does not stop: prepare refused, nothing else touched', async () => {
    const { dir, kernel } = setup(singleAmd, { '0000:01:00.0': 'amdgpu', '0000:01:00.1': 'snd_hda_intel' });
    const runner = recordingRunner({ onCall: (argv) => (argv[0] === 'systemctl' && argv[1] === 'stop' ? { code: 1, stdout: '', stderr: 'Job for gdm.service canceled.\n' } : kernel.modprobe(argv)) });
    const p = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true });
    await expect(runHandoff(p.c, { writer: kernel, runner, sleep: async () => {} })).rejects.toMatchObject({ message: expect.stringMatching(/systemctl stop gdm\.service/) });
    expect([kernel.driverOf('0000:01:00.0'), kernel.driverOf('0000:01:00.1')]).toEqual(['amdgpu', 'snd_hda_intel']);
    expect(fs.readFileSync(path.join(dir, 'sys/class/vtconsole/vtcon1/bind'), 'utf8').trim()).toBe('1');
    expect(listJournals(dir).map((j) => j.state)).toEqual(['rolled-back']);
  });

  it('NVIDIA module in use: rolled back, the consoles bound again', async () => {
    const { dir, kernel, runner } = setup(singleNvidia, { '0000:01:00.0': 'nvidia', '0000:01:00.1': 'snd_hda_intel' });
    kernel.busy.add('nvidia_drm');
    const p = ctx(dir, ['prepare', 'win11'], { 'single-gpu': true });
    const e = await runHandoff(p.c, { writer: kernel, runner, sleep: async () => {} }).catch((x: unknown) => x);
    expect(e).toMatchObject({ exitCode: 4 });
    expect(fs.readFileSync(path.join(dir, 'sys/class/vtconsole/vtcon1/bind'), 'utf8').trim()).toBe('1');
    expect(kernel.driverOf('0000:01:00.0')).toBe('nvidia');
  });

  it('release without a recorded prepare goes by the domain: clears overrides, binds consoles, starts the DM', async () => {
    const { dir, kernel, runner } = setup(singleAmd, { '0000:01:00.0': 'amdgpu', '0000:01:00.1': 'snd_hda_intel' });
    const x = ctx(dir, ['release', 'win11'], { 'dry-run': true, 'single-gpu': true });
    expect(await runHandoff(x.c, { writer: kernel, runner })).toBe(0);
    expect(x.out()).toMatch(/no prepare transaction recorded/);
    expect(listJournals(dir)).toEqual([]);
  });
});

describe('a hook killed midway', () => {
  // prepare cut off after the console unbind and the first bind (the process killed, its journal left "applying").
  const XML = domainXml('win11', ['0000:01:00.0', '0000:01:00.1']);
  async function killedPrepare() {
    const h = setup(singleAmd, { '0000:01:00.0': 'amdgpu', '0000:01:00.1': 'snd_hda_intel' });
    h.kernel.modprobe(['modprobe', 'vfio-pci']);
    fs.rmSync(path.join(h.dir, 'proc/4242'), { recursive: true, force: true });
    const before = treeFingerprint(h.dir, ['var/lib/vfiokit']);
    const plan = planHandoffPrepare(inspect(h.dir), WIN11);
    const at = plan.steps.findIndex((s) => s.kind === 'bind-driver');
    await expect(applyPlan(plan, { root: h.dir, runner: h.runner, sysfs: h.kernel, failAt: { step: at, after: true, crash: true }, sleep: async () => {} })).rejects.toThrow();
    expect(listJournals(h.dir).map((j) => j.state)).toEqual(['applying']);
    fs.writeFileSync(path.join(h.dir, 'var/lib/vfiokit/lock'), '999999999\n'); // the killed hook's lock
    expect([h.kernel.driverOf('0000:01:00.0'), h.kernel.driverOf('0000:01:00.1')]).toEqual(['vfio-pci', 'snd_hda_intel']);
    expect(fs.readFileSync(path.join(h.dir, 'sys/class/vtconsole/vtcon1/bind'), 'utf8').trim()).toBe('0');
    return { ...h, before };
  }
  const restored = (h: Awaited<ReturnType<typeof killedPrepare>>) => {
    expect([h.kernel.driverOf('0000:01:00.0'), h.kernel.driverOf('0000:01:00.1')]).toEqual(['amdgpu', 'snd_hda_intel']);
    expect(fs.readFileSync(path.join(h.dir, 'sys/class/vtconsole/vtcon1/bind'), 'utf8').trim()).toBe('1');
    expect(h.runner.log().split('\n').filter(Boolean).pop()).toBe('systemctl start gdm.service');
  };

  it('the release libvirt runs next (the start failed) rolls the cut-off prepare back first, then verifies the display', async () => {
    const h = await killedPrepare();
    const r = ctx(h.dir, ['release', 'win11'], { 'single-gpu': true, hook: true, reason: 'failed' });
    expect(await runHandoff(r.c, { writer: h.kernel, runner: h.runner, stdinText: XML })).toBe(0);
    restored(h);
    expect(listJournals(h.dir).map((j) => `${j.kind}:${j.state}`)).toEqual(['handoff-prepare:rolled-back']);
    expect(treeFingerprint(h.dir, ['var/lib/vfiokit'])).toEqual(h.before);
  });

  it('`vfiokit recover` finishes it the same way', async () => {
    const h = await killedPrepare();
    const r = ctx(h.dir, []);
    expect(await runRecover(r.c, { writer: h.kernel, runner: h.runner })).toBe(0);
    restored(h);
    expect(listJournals(h.dir).map((j) => `${j.kind}:${j.state}`)).toEqual(['handoff-prepare:rolled-back']);
    expect(treeFingerprint(h.dir, ['var/lib/vfiokit'])).toEqual(h.before);
  });

  it('the next prepare recovers the cut-off one, then prepares afresh', async () => {
    const h = await killedPrepare();
    const p = ctx(h.dir, ['prepare', 'win11'], { 'single-gpu': true, hook: true });
    expect(await runHandoff(p.c, { writer: h.kernel, runner: h.runner, stdinText: XML, sleep: async () => {} })).toBe(0);
    expect([h.kernel.driverOf('0000:01:00.0'), h.kernel.driverOf('0000:01:00.1')]).toEqual(['vfio-pci', 'vfio-pci']);
    expect(listJournals(h.dir).map((j) => `${j.kind}:${j.state}`)).toEqual(['handoff-prepare:rolled-back', 'handoff-prepare:applied']);
  });
});

describe('hostdev groups the host cannot give away', () => {
  // The NVMe (05:00.0) holds /, the NIC (06:00.0) carries the default route; the GPU group also holds a second NIC.
  const host: FakeHost = {
    ...singleAmd,
    pci: [
      ...singleAmd.pci!,
      { addr: '00:08.2', id: '1022:1485', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 7 },
      { addr: '06:00.0', id: '8086:15f3', class: 0x020000, parent: '00:08.2', driver: 'igc', group: 8 },
      { addr: '01:00.2', id: '8086:15f3', class: 0x020000, parent: '00:01.1', driver: 'igc', group: 3 },
    ],
    files: {
      ...singleAmd.files,
      '/etc/libvirt/qemu/disk.xml': domainXml('disk', ['0000:05:00.0']),
      '/etc/libvirt/qemu/nic.xml': domainXml('nic', ['0000:06:00.0']),
    },
    blocks: [{ name: 'nvme0n1', dev: '259:0', pci: '05:00.0', parts: { nvme0n1p1: '259:1', nvme0n1p2: '259:2' } }],
    rootMount: { source: '/dev/nvme0n1p2' },
    nets: [{ name: 'enp6s0', pci: '06:00.0' }, { name: 'enp1s0f2', pci: '01:00.2', mac: '52:54:00:12:34:57' }],
    defaultRoutes: [{ iface: 'enp6s0' }],
  };

  it.each([
    ['disk', 'E_HOSTDEV_ROOT_DISK', /05:00\.0 \(group 6\) holds the root filesystem's disk/],
    ['nic', 'E_HOSTDEV_DEFAULT_NIC', /06:00\.0 \(group 8\) carries the default route/],
  ])('a domain passing the %s: prepare refused with %s, nothing written', async (domain, code, message) => {
    const { dir, kernel, runner } = setup(host);
    const before = treeFingerprint(dir);
    const p = ctx(dir, ['prepare', domain], {});
    await expect(runHandoff(p.c, { writer: kernel, runner, sleep: async () => {} })).rejects.toMatchObject({ exitCode: 3, code, message: expect.stringMatching(/refused/) });
    const e = await runHandoff(ctx(dir, ['prepare', domain], {}).c, { writer: kernel, runner }).catch((x: { problems?: { message: string }[] }) => x);
    expect((e as { problems: { message: string }[] }).problems.map((x) => x.message).join('\n')).toMatch(message);
    expect(runner.log()).toBe('');
    expect(listJournals(dir)).toEqual([]);
    expect(treeFingerprint(dir, ['var/lib/vfiokit'])).toEqual(before);
  });

  it('the default-route NIC inside the GPU\'s group refuses the GPU\'s prepare too', () => {
    const { dir } = setup({ ...host, defaultRoutes: [{ iface: 'enp1s0f2' }] });
    const plan = planHandoffPrepare(inspect(dir), WIN11);
    expect(plan.problems.map((p) => `${p.code} ${p.subject}`)).toContain('E_HOSTDEV_DEFAULT_NIC 0000:01:00.2');
    expect(plan.steps).toEqual([]);
  });
});

describe('vm define --hooks single-gpu', () => {
  /** virsh as libvirtd would answer it: define writes /etc/libvirt/qemu/NAME.xml under the root. */
  function virshIn(dir: string) {
    const calls: string[][] = [];
    const runner = {
      async run(argv: string[]) {
        calls.push(argv);
        const res = (code: number, stdout = '', stderr = '') => ({ argv, code, stdout, stderr, durationMs: 1, signal: null });
        if (argv[1] === 'domuuid') return fs.existsSync(path.join(dir, `etc/libvirt/qemu/${argv[2]}.xml`)) ? res(0, 'uuid\n') : res(1, '', 'error: failed to get domain');
        if (argv[1] === 'define') {
          const xml = fs.readFileSync(argv[2], 'utf8');
          fs.writeFileSync(path.join(dir, `etc/libvirt/qemu/${/<name>([^<]+)<\/name>/.exec(xml)![1]}.xml`), xml);
          return res(0, 'Domain defined\n');
        }
        return res(1, '', `unexpected ${argv.join(' ')}`);
      },
    };
    return { runner, calls };
  }
  const ARGS = { device: ['01:00.0'], memory: '2G', vcpus: '2', pin: 'none', os: 'linux' };

  it('defines the domain (the boot GPU allowed) and installs its single-GPU hook: two transactions in the history', async () => {
    const { dir } = setup(singleAmd);
    const v = virshIn(dir);
    const d = ctx(dir, ['define', 'game'], { ...ARGS, hooks: 'single-gpu' });
    expect(await runVm(d.c, v.runner)).toBe(0);
    expect(v.calls.map((a) => a[1])).toEqual(['domuuid', 'define']);
    const hook = fs.readFileSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-game'), 'utf8');
    expect(parseHookScript(hook)).toEqual({ domain: 'game', singleGpu: true, isolate: false, hugepages: false });
    expect(listJournals(dir).map((j) => `${j.kind}:${j.state}`)).toEqual(['vm-define:applied', 'hooks-install:applied']);
    const [def, hk] = listJournals(dir);
    expect(d.out()).toContain(`transaction ${def.txid}: \`vfiokit undo --id ${def.txid}\` undefines it again`);
    expect(d.out()).toContain(`transaction ${hk.txid}: \`vfiokit undo --id ${hk.txid}\` removes the hook`);
    expect(d.err()).toMatch(/first qemu hook: .*systemctl restart libvirtd/);
  });

  it('--hooks single-gpu,hugepages: the domain on hugepages and a hook with both parts; --hooks isolate refused on a host without systemd, before anything is defined', async () => {
    const { dir } = setup(singleAmd);
    const v = virshIn(dir);
    const d = ctx(dir, ['define', 'game'], { ...ARGS, hooks: 'single-gpu,hugepages' });
    expect(await runVm(d.c, v.runner)).toBe(0);
    expect(parseHookScript(fs.readFileSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-game'), 'utf8'))).toEqual({ domain: 'game', singleGpu: true, isolate: false, hugepages: true });
    expect(fs.readFileSync(path.join(dir, 'etc/libvirt/qemu/game.xml'), 'utf8')).toMatch(/<memoryBacking>\s*<hugepages>\s*<page size='2048' unit='KiB'\/>/);
    const b = setup(singleAmd);
    const vb = virshIn(b.dir);
    await expect(runVm(ctx(b.dir, ['define', 'game2'], { ...ARGS, hooks: 'isolate', 'allow-boot-vga': true }).c, vb.runner)).rejects.toMatchObject({ exitCode: 3, code: 'E_NO_SYSTEMD', message: expect.stringMatching(/cannot install the hook for 'game2': .*nothing was defined/) });
    expect(vb.calls.filter((c) => c[1] === 'define')).toEqual([]);
  });

  it('refused before anything is defined: a foreign file where the hook goes, libvirt missing; bad --hooks usage', async () => {
    const a = setup(singleAmd);
    fs.mkdirSync(path.join(a.dir, 'etc/libvirt/hooks/qemu.d'), { recursive: true });
    fs.writeFileSync(path.join(a.dir, 'etc/libvirt/hooks/qemu.d/vfiokit-game'), '#!/bin/sh\necho mine\n');
    const va = virshIn(a.dir);
    await expect(runVm(ctx(a.dir, ['define', 'game'], { ...ARGS, hooks: 'single-gpu' }).c, va.runner)).rejects.toMatchObject({ code: 'E_HOOK_NOT_OURS', message: expect.stringMatching(/nothing was defined/) });
    expect(va.calls.filter((c) => c[1] === 'define')).toEqual([]);
    expect(fs.readFileSync(path.join(a.dir, 'etc/libvirt/hooks/qemu.d/vfiokit-game'), 'utf8')).toBe('#!/bin/sh\necho mine\n');
    const b = setup({ ...singleAmd, libvirt: false, execs: ['/usr/bin/qemu-system-x86_64'], files: Object.fromEntries(Object.entries(singleAmd.files!).filter(([k]) => !k.includes('libvirt'))) });
    const vb = virshIn(b.dir);
    await expect(runVm(ctx(b.dir, ['define', 'game'], { ...ARGS, hooks: 'single-gpu' }).c, vb.runner)).rejects.toMatchObject({ code: 'E_LIBVIRT_MISSING' });
    expect(vb.calls).toEqual([]);
    expect(listJournals(b.dir)).toEqual([]);
    for (const [sub, values, msg] of [['define', { hooks: 'gpu' }, /--hooks 'gpu': 'gpu' is not a hook part/], ['define', { hooks: 'single-gpu,cpus' }, /'cpus' is not a hook part/], ['xml', { hooks: 'single-gpu' }, /applies to `vm define` only/], ['define', { hooks: 'single-gpu', connect: 'qemu:///session' }, /needs the system daemon/]] as const) {
      await expect(runVm(ctx(a.dir, [sub, 'game'], { ...ARGS, ...values }).c, va.runner)).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(msg) });
    }
  });
});

describe('hooks', () => {
  const hook = (domain: string, single = true) => renderHookScript({ domain, singleGpu: single, isolate: false, hugepages: false, vfiokit: ['/usr/bin/vfiokit'] });

  it('the hook file (golden) round-trips its header', () => {
    expectGolden('handoff/hook-win11.sh', hook('win11'));
    expectGolden('handoff/hook-quoted.sh', hook("it's \"mine\"", false));
    expect(parseHookScript(hook("it's \"mine\""))).toEqual({ domain: "it's \"mine\"", singleGpu: true, isolate: false, hugepages: false });
    expect(parseHookScript('#!/bin/sh\necho hi\n')).toBeNull();
  });

  it('invoked exactly as libvirt does: other domains exit 0 at once; ours execs vfiokit with the arguments and stdin', () => {
    const dir = fs.mkdtempSync('/tmp/vfiokit-hook-');
    dirs.push(dir);
    const fake = path.join(dir, 'vfiokit');
    fs.writeFileSync(fake, `#!/bin/sh\necho "$@" > ${dir}/args\ncat > ${dir}/stdin\n`, { mode: 0o755 });
    const file = path.join(dir, 'hook');
    fs.writeFileSync(file, renderHookScript({ domain: 'win11', singleGpu: true, isolate: false, hugepages: false, vfiokit: [fake] }), { mode: 0o755 });
    const other = spawnSync(file, ['other', 'prepare', 'begin', '-'], { input: '<domain/>' });
    expect(other.status).toBe(0);
    expect(fs.existsSync(`${dir}/args`)).toBe(false);
    expect(spawnSync(file, ['win11', 'started', 'begin', '-'], { input: '' }).status).toBe(0);
    expect(fs.existsSync(`${dir}/args`)).toBe(false);
    execFileSync(file, ['win11', 'prepare', 'begin', '-'], { input: '<domain>x</domain>' });
    expect(fs.readFileSync(`${dir}/args`, 'utf8')).toBe('handoff prepare --hook --single-gpu -- win11\n');
    expect(fs.readFileSync(`${dir}/stdin`, 'utf8')).toBe('<domain>x</domain>');
    execFileSync(file, ['win11', 'release', 'end', 'destroyed'], { input: '' });
    expect(fs.readFileSync(`${dir}/args`, 'utf8')).toBe('handoff release --hook --single-gpu --reason destroyed -- win11\n');
  });

  it('install is one transaction next to an untouched main hook; says to restart libvirtd for a first hook; remove and list', async () => {
    const { dir, runner } = setup({ ...singleAmd, files: { ...singleAmd.files, '/etc/libvirt/hooks/qemu': '#!/bin/sh\n# my own hook\n' } });
    fs.chmodSync(path.join(dir, 'etc/libvirt/hooks/qemu'), 0o644);
    const i = ctx(dir, ['install', 'win11'], { 'single-gpu': true, vfiokit: '/usr/bin/vfiokit' });
    expect(await runHooks(i.c, { runner })).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'), 'utf8')).toBe(hook('win11'));
    expect(fs.statSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11')).mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(path.join(dir, 'etc/libvirt/hooks/qemu'), 'utf8')).toBe('#!/bin/sh\n# my own hook\n');
    expect(i.err()).toMatch(/systemctl restart libvirtd/);
    const again = ctx(dir, ['install', 'win11'], { 'single-gpu': true, vfiokit: '/usr/bin/vfiokit' });
    expect(await runHooks(again.c, { runner })).toBe(0);
    expect(again.out()).toMatch(/installed already/);
    const l = ctx(dir, ['list'], { json: true });
    await runHooks(l.c);
    expect(JSON.parse(l.out()).hooks).toEqual([{ path: '/etc/libvirt/hooks/qemu.d/vfiokit-win11', domain: 'win11', singleGpu: true, isolate: false, hugepages: false, executable: true }]);
    expect(await runHooks(ctx(dir, ['remove', 'win11']).c, { runner })).toBe(0);
    expect(fs.existsSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'))).toBe(false);
  });

  it('install and remove --json print JSON: changed, the transaction, the hook path; installed already and nothing to remove too', async () => {
    const { dir, runner } = setup(singleAmd);
    const json = async (sub: string) => {
      const x = ctx(dir, [sub, 'win11'], { json: true, vfiokit: '/usr/bin/vfiokit' });
      expect(await runHooks(x.c, { runner })).toBe(0);
      return JSON.parse(x.out());
    };
    const i = await json('install');
    expect(i).toMatchObject({ action: 'hooks-install', domain: 'win11', changed: true, txid: expect.any(String), path: '/etc/libvirt/hooks/qemu.d/vfiokit-win11' });
    expect(i.warnings.join('\n')).toMatch(/systemctl restart libvirtd/);
    expect(await json('install')).toMatchObject({ action: 'hooks-install', changed: false, txid: null, summary: [expect.stringMatching(/installed already/)] });
    const r = await json('remove');
    expect(r).toMatchObject({ action: 'hooks-remove', domain: 'win11', changed: true, txid: expect.any(String) });
    expect(r.txid).not.toBe(i.txid);
    expect(await json('remove')).toMatchObject({ action: 'hooks-remove', changed: false, txid: null });
  });

  it('refusals: unknown domain, libvirt missing, libvirt too old, a foreign file in the way', async () => {
    const { dir } = setup(singleAmd);
    await expect(runHooks(ctx(dir, ['install', 'nosuch']).c)).rejects.toMatchObject({ code: 'E_DOMAIN_NOT_DEFINED', exitCode: 3 });
    await expect(runHooks(ctx(dir, ['install', 'a/b']).c)).rejects.toMatchObject({ code: 'E_BAD_NAME', exitCode: 2 });
    fs.renameSync(path.join(dir, 'usr/lib/x86_64-linux-gnu/libvirt.so.0.9000.0'), path.join(dir, 'usr/lib/x86_64-linux-gnu/libvirt.so.0.6004.0'));
    await expect(runHooks(ctx(dir, ['install', 'win11']).c)).rejects.toMatchObject({ code: 'E_LIBVIRT_TOO_OLD' });
    fs.renameSync(path.join(dir, 'usr/lib/x86_64-linux-gnu/libvirt.so.0.6004.0'), path.join(dir, 'usr/lib/x86_64-linux-gnu/libvirt.so.0.6005.0'));
    fs.mkdirSync(path.join(dir, 'etc/libvirt/hooks/qemu.d'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'), '#!/bin/sh\n');
    await expect(runHooks(ctx(dir, ['install', 'win11']).c)).rejects.toMatchObject({ code: 'E_HOOK_NOT_OURS' });
    for (const f of ['usr/sbin/libvirtd']) fs.rmSync(path.join(dir, f));
    await expect(runHooks(ctx(dir, ['install', 'win11']).c)).rejects.toMatchObject({ code: 'E_LIBVIRT_MISSING' });
    expect(fs.readFileSync(path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'), 'utf8')).toBe('#!/bin/sh\n');
  });

  it('two domains whose names share a hook file name ("win 11", "win_11"): neither install nor remove touches the other domain\'s hook', async () => {
    const { dir, runner } = setup({ ...singleAmd, files: { ...singleAmd.files, '/etc/libvirt/qemu/win 11.xml': domainXml('win 11', ['0000:01:00.0']), '/etc/libvirt/qemu/win_11.xml': domainXml('win_11', ['0000:01:00.0']) } });
    expect(await runHooks(ctx(dir, ['install', 'win 11'], { vfiokit: '/usr/bin/vfiokit' }).c, { runner })).toBe(0);
    const file = path.join(dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win_11');
    const mine = fs.readFileSync(file, 'utf8');
    expect(parseHookScript(mine)?.domain).toBe('win 11');
    for (const [sub, values] of [['install', { vfiokit: '/usr/bin/vfiokit' }], ['install', { 'dry-run': true }], ['remove', {}], ['remove', { 'dry-run': true }]] as const) {
      const err = (await runHooks(ctx(dir, [sub, 'win_11'], values).c, { runner }).catch((e) => e)) as VfioError;
      expect(err).toBeInstanceOf(VfioError);
      expect(err).toMatchObject({ code: 'E_HOOK_NOT_OURS', exitCode: 3 });
      expect(JSON.stringify((err as { problems?: unknown }).problems)).toMatch(/the hook of the domain 'win 11'/);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(mine);
    expect(await runHooks(ctx(dir, ['remove', 'win 11']).c, { runner })).toBe(0);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('libvirt version from the soname', () => {
    expect(libvirtVersionFromSoname('libvirt.so.0.9000.0')).toBe('9.0.0');
    expect(libvirtVersionFromSoname('libvirt.so.0.10010.1')).toBe('10.10.1');
    expect(libvirtVersionFromSoname('libvirt.so.0')).toBeNull();
  });
});

// stableRoot and renderStepPlan keep the imports honest for golden helpers.
void stableRoot;
void renderStepPlan;
