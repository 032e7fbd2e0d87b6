import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, listJournals, recordingRunner, undoTransaction } from '../../src/apply/index.js';
import { run as runIsolate } from '../../src/cli/commands/isolate.js';
import type { CommandContext } from '../../src/cli/context.js';
import { ApplyError, VfioError } from '../../src/errors.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { planIsolate, type IsolateIntent } from '../../src/plan/isolate-plan.js';
import { treeFingerprint } from '../apply/_tree.js';
import { faultAtEveryStep } from '../helpers/fault-steps.js';
import { buildIsolationHost, DROPIN, FakeSystemd, IsolationKernel, type IsolationHostOptions } from '../helpers/isolation-fake.js';

const dirs: string[] = [];
// Asynchronous removal keeps the worker's event loop free to answer vitest on a loaded machine.
afterEach(async () => {
  if (!process.env.KEEP_TMP) await Promise.all(dirs.splice(0).map((d) => fs.promises.rm(d, { recursive: true, force: true })));
});

function setup(o: IsolationHostOptions = {}) {
  const { dir } = buildIsolationHost(o);
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
  const systemd = new FakeSystemd(dir);
  const runner = recordingRunner({ onCall: (argv) => systemd.onCall(argv) });
  const kernel = new IsolationKernel(dir);
  return { dir, systemd, runner, kernel };
}

function ctx(dir: string, positionals: string[], values: Record<string, unknown> = {}) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = { positionals, values: values as never, root: new HostRoot(dir), io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} } };
  return { c, out: () => stdout, err: () => stderr };
}

const read = (dir: string, p: string) => fs.readFileSync(path.join(dir, p), 'utf8');
const intent = (vmCpus: number[], more: Partial<IsolateIntent> = {}): IsolateIntent => ({ vmCpus, source: 'test', domain: null, irqs: true, workqueues: true, governor: 'performance', allowSmtSplit: false, ...more });

describe('isolation facts in the snapshot', () => {
  it('reads the layout, the units (cpuset not enabled = file absent), IRQs, masks and governors', () => {
    const { dir } = setup({ preset: { 'user.slice': '0-7' } });
    const iso = inspect(dir, { names: false }).isolation;
    expect(iso.cgroup).toBe('v2');
    expect(iso.controllers).toContain('cpuset');
    expect(iso.systemd).toBe(true);
    const user = iso.units.find((u) => u.unit === 'user.slice')!;
    expect(user.cpus).toBe('0-7');
    expect(user.dropIn).toContain('AllowedCPUs=0-7');
    const sys = iso.units.find((u) => u.unit === 'system.slice')!;
    expect(sys.cpus).toBe('');
    expect(sys.dropIn).toBeNull();
    expect(iso.irqs.find((i) => i.irq === 24)?.affinity).toBe('3');
    expect(iso.defaultIrqAffinity).toBe('ff');
    expect(iso.workqueueMask).toBe('ff');
    expect(iso.governors).toHaveLength(8);
    expect(iso.presentCpus).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('tells v1 and hybrid apart', () => {
    expect(inspect(setup({ layout: 'v1' }).dir, { names: false }).isolation.cgroup).toBe('v1');
    expect(inspect(setup({ layout: 'hybrid' }).dir, { names: false }).isolation.cgroup).toBe('hybrid');
  });
});

describe('vfiokit isolate', () => {
  it('restricts the host units, moves IRQs, workqueues and governors; --undo gives every byte back', async () => {
    const { dir, runner, kernel, systemd } = setup({ managed: [25] });
    const before = treeFingerprint(dir);
    const t = ctx(dir, [], { cpus: '2-3,6-7', irqs: true, workqueues: true, governor: 'performance' });
    expect(await runIsolate(t.c, { runner, writer: kernel })).toBe(0);
    for (const u of ['system.slice', 'user.slice', 'init.scope']) {
      expect(read(dir, `sys/fs/cgroup/${u}/cpuset.cpus.effective`)).toBe('0-1,4-5\n');
      expect(read(dir, DROPIN(u))).toContain('AllowedCPUs=0-1,4-5');
    }
    expect(read(dir, 'sys/fs/cgroup/machine.slice/cpuset.cpus.effective')).toBe('0-7\n');
    expect(systemd.calls.every((c) => c[1] !== 'set-property' || c[2] === '--runtime')).toBe(true);
    expect(read(dir, 'proc/irq/24/smp_affinity_list')).toBe('0-1,4-5\n'); // was on CPU 3 only
    expect(read(dir, 'proc/irq/1/smp_affinity_list')).toBe('0-1,4-5\n');
    expect(read(dir, 'proc/irq/0/smp_affinity_list')).toBe('0\n'); // never on a VM CPU: untouched
    expect(read(dir, 'proc/irq/25/smp_affinity_list')).toBe('0-7\n'); // managed: the kernel keeps it
    expect(read(dir, 'proc/irq/default_smp_affinity')).toBe('33\n');
    expect(read(dir, 'sys/devices/virtual/workqueue/cpumask')).toBe('33\n');
    expect(read(dir, 'sys/devices/system/cpu/cpu6/cpufreq/scaling_governor')).toBe('performance\n');
    expect(read(dir, 'sys/devices/system/cpu/cpu0/cpufreq/scaling_governor')).toBe('schedutil\n');
    expect(t.out()).toMatch(/IRQs moved: 3; kept by the kernel \(managed or not movable\): 1 \(25\)/);
    expect(t.out()).toContain('system.slice: AllowedCPUs=0-1,4-5 (was not set)');

    const u = ctx(dir, [], { undo: true });
    expect(await runIsolate(u.c, { runner, writer: kernel })).toBe(0);
    expect(treeFingerprint(dir)).toEqual(before);
    expect(systemd.calls.map((c) => c.join(' '))).toContain('systemctl set-property --runtime -- system.slice AllowedCPUs=');
    // Nothing left to undo.
    const again = ctx(dir, [], { undo: true });
    expect(await runIsolate(again.c, { runner, writer: kernel })).toBe(0);
    expect(again.out()).toMatch(/nothing to undo/);
  });

  it('a unit whose AllowedCPUs was set before gets exactly that value and drop-in back', async () => {
    const { dir, runner, kernel } = setup({ preset: { 'user.slice': '0-6' } });
    const dropIn = read(dir, 'run/systemd/system.control/user.slice.d/50-AllowedCPUs.conf');
    const before = treeFingerprint(dir);
    expect(await runIsolate(ctx(dir, [], { cpus: '3,7' }).c, { runner, writer: kernel })).toBe(0);
    expect(read(dir, 'sys/fs/cgroup/user.slice/cpuset.cpus')).toBe('0-2,4-6\n');
    expect(await runIsolate(ctx(dir, [], { undo: true }).c, { runner, writer: kernel })).toBe(0);
    expect(read(dir, 'sys/fs/cgroup/user.slice/cpuset.cpus')).toBe('0-6\n');
    expect(read(dir, 'run/systemd/system.control/user.slice.d/50-AllowedCPUs.conf')).toBe(dropIn);
    // user.slice keeps cpuset on, and init.scope holds PID 1: the kernel refuses it an empty set, so it
    // is given every CPU (unrestricted) instead of "" — the one value that cannot come back byte for byte.
    const now = treeFingerprint(dir);
    expect(read(dir, 'sys/fs/cgroup/init.scope/cpuset.cpus')).toBe('0-7\n');
    delete now['sys/fs/cgroup/init.scope/cpuset.cpus'];
    delete before['sys/fs/cgroup/init.scope/cpuset.cpus'];
    expect(now).toEqual(before);
  });

  it('systemd leaves a reset unit\'s cgroup restricted while another unit keeps cpuset on: undo puts the kernel in line', async () => {
    const { dir, runner, kernel } = setup({ preset: { 'machine.slice': '0-7' } });
    expect(await runIsolate(ctx(dir, [], { cpus: '3,7' }).c, { runner, writer: kernel })).toBe(0);
    expect(await runIsolate(ctx(dir, [], { undo: true }).c, { runner, writer: kernel })).toBe(0);
    expect(read(dir, 'sys/fs/cgroup/system.slice/cpuset.cpus')).toBe('\n');
    expect(read(dir, 'sys/fs/cgroup/system.slice/cpuset.cpus.effective')).toBe('0-7\n');
    expect(kernel.writes).toContain('/sys/fs/cgroup/system.slice/cpuset.cpus ← "\\n"');
    // init.scope holds PID 1: the kernel refuses an empty set (ENOSPC), so it gets every CPU its parent grants.
    expect(kernel.writes).toContain('/sys/fs/cgroup/init.scope/cpuset.cpus ← "0-7"');
    expect(read(dir, 'sys/fs/cgroup/init.scope/cpuset.cpus.effective')).toBe('0-7\n');
  });

  it('a unit without a cgroup yet (user.slice before any login) still gets AllowedCPUs, and undo removes it exactly', async () => {
    const { dir, runner, kernel, systemd } = setup();
    fs.rmSync(path.join(dir, 'sys/fs/cgroup/user.slice'), { recursive: true });
    const before = treeFingerprint(dir);
    expect(await runIsolate(ctx(dir, [], { cpus: '3,7' }).c, { runner, writer: kernel })).toBe(0);
    expect(read(dir, DROPIN('user.slice'))).toContain('AllowedCPUs=0-2,4-6');
    expect(await runIsolate(ctx(dir, [], { undo: true }).c, { runner, writer: kernel })).toBe(0);
    expect(systemd.calls.map((c) => c.join(' '))).toContain('systemctl set-property --runtime -- user.slice AllowedCPUs=');
    expect(treeFingerprint(dir)).toEqual(before);
  });

  it('values changed by hand since the isolation (AllowedCPUs, an IRQ affinity): --undo leaves those as they are, names each, and gives every other value back', async () => {
    const { dir, runner, kernel, systemd } = setup();
    const before = treeFingerprint(dir);
    expect(await runIsolate(ctx(dir, [], { cpus: '2-3,6-7', irqs: true }).c, { runner, writer: kernel })).toBe(0);
    expect(read(dir, 'proc/irq/24/smp_affinity_list')).toBe('0-1,4-5\n');
    // The user (or irqbalance), while the VM runs: user.slice may use every CPU again, IRQ 24 goes to CPU 4 only.
    systemd.onCall(['systemctl', 'set-property', '--runtime', '--', 'user.slice', 'AllowedCPUs=0-7']);
    kernel.write('/proc/irq/24/smp_affinity_list', '4');
    const changed = treeFingerprint(dir);

    // A dry run says beforehand which values it would leave, and changes nothing.
    const d = ctx(dir, [], { undo: true, 'dry-run': true });
    expect(await runIsolate(d.c, { runner, writer: kernel })).toBe(0);
    expect(d.out()).toMatch(/would leave as it is \(changed since; --force restores what the transaction found\): user\.slice: \/sys\/fs\/cgroup\/user\.slice\/cpuset\.cpus now reads "0-7"/);
    expect(d.out()).toMatch(/would leave as it is .*: \/proc\/irq\/24\/smp_affinity_list now reads "4"/);
    expect(d.out().match(/would leave/g)).toHaveLength(2);
    const dj = ctx(dir, [], { undo: true, 'dry-run': true, json: true });
    expect(await runIsolate(dj.c, { runner, writer: kernel })).toBe(0);
    expect(JSON.parse(dj.out())).toMatchObject({ dryRun: true, kept: [expect.stringContaining('user.slice'), expect.stringContaining('/proc/irq/24/')], refused: [], forcedOver: [] });
    const df = ctx(dir, [], { undo: true, 'dry-run': true, force: true, json: true });
    expect(await runIsolate(df.c, { runner, writer: kernel })).toBe(0);
    expect(JSON.parse(df.out())).toMatchObject({ kept: [], forcedOver: [expect.stringContaining('user.slice'), expect.stringContaining('/proc/irq/24/')] });
    expect(treeFingerprint(dir)).toEqual(changed);

    const u = ctx(dir, [], { undo: true });
    expect(await runIsolate(u.c, { runner, writer: kernel })).toBe(0);
    expect(u.out()).toMatch(/note: left as it is \(changed since transaction .*\): user\.slice: \/sys\/fs\/cgroup\/user\.slice\/cpuset\.cpus now reads "0-7", not "0-1,4-5"/);
    expect(u.out()).toMatch(/note: left as it is \(changed since transaction .*\): \/proc\/irq\/24\/smp_affinity_list now reads "4", not "0-1,4-5"/);
    // The two changed values are theirs; everything else is given back: system.slice and
    // init.scope may use every CPU again (with user.slice still setting AllowedCPUs, systemd keeps
    // the cpuset controller on, so their cpuset files stay, empty = the parent's set).
    expect(read(dir, 'sys/fs/cgroup/user.slice/cpuset.cpus')).toBe('0-7\n');
    expect(read(dir, 'proc/irq/24/smp_affinity_list')).toBe('4\n');
    for (const u of ['system.slice', 'init.scope']) expect(read(dir, `sys/fs/cgroup/${u}/cpuset.cpus.effective`)).toBe('0-7\n');
    expect(read(dir, 'sys/fs/cgroup/system.slice/cpuset.cpus')).toBe('\n');
    const after = treeFingerprint(dir);
    const moved = Object.keys(before).filter((k) => k.startsWith('proc/irq/') && !k.includes('irq/24/') && after[k] !== before[k]);
    expect(moved).toEqual([]);
    for (const u of ['system.slice', 'init.scope']) expect(fs.existsSync(path.join(dir, DROPIN(u)))).toBe(false);
    expect(listJournals(dir).find((j) => j.kind === 'isolate')?.state).toBe('undone');
  });

  it('--undo --force restores over values changed since and says so: every value as before', async () => {
    const { dir, runner, kernel, systemd } = setup();
    const before = treeFingerprint(dir);
    expect(await runIsolate(ctx(dir, [], { cpus: '2-3,6-7', irqs: true }).c, { runner, writer: kernel })).toBe(0);
    systemd.onCall(['systemctl', 'set-property', '--runtime', '--', 'user.slice', 'AllowedCPUs=0-7']);
    kernel.write('/proc/irq/24/smp_affinity_list', '4');
    const f = ctx(dir, [], { undo: true, force: true });
    expect(await runIsolate(f.c, { runner, writer: kernel })).toBe(0);
    expect(f.out()).toMatch(/note: restored over a change made since \(--force\): user\.slice: .*cpuset\.cpus now reads "0-7"/);
    expect(f.out()).toMatch(/note: restored over a change made since \(--force\): \/proc\/irq\/24\/smp_affinity_list now reads "4"/);
    expect(treeFingerprint(dir)).toEqual(before);
  });

  it('isolate --help says what --undo does with a value changed since (left as it is, the rest given back), as undo --help does', async () => {
    const { COMMANDS } = await import('../../src/cli/registry.js');
    const help = COMMANDS.find((c) => c.name === 'isolate')!.description!;
    expect(help).not.toMatch(/refused by name/);
    expect(help).toMatch(/changed since the isolation .* is left as it is and named, and every other value is given back/);
  });

  it('a unit without a cgroup: AllowedCPUs set by hand shows in its runtime drop-in, and undo leaves it and says so', async () => {
    const { dir, runner, kernel, systemd } = setup();
    fs.rmSync(path.join(dir, 'sys/fs/cgroup/user.slice'), { recursive: true });
    expect(await runIsolate(ctx(dir, [], { cpus: '3,7' }).c, { runner, writer: kernel })).toBe(0);
    systemd.onCall(['systemctl', 'set-property', '--runtime', '--', 'user.slice', 'AllowedCPUs=0-1']);
    const u = ctx(dir, [], { undo: true });
    expect(await runIsolate(u.c, { runner, writer: kernel })).toBe(0);
    expect(u.out()).toContain('user.slice: AllowedCPUs=0-1 was set, not AllowedCPUs=0-2,4-6 as vfiokit left it');
    expect(read(dir, DROPIN('user.slice'))).toContain('AllowedCPUs=0-1');
    expect(systemd.calls.map((c) => c.join(' '))).not.toContain('systemctl set-property --runtime -- user.slice AllowedCPUs=');
  });

  it('isolating twice changes nothing; another CPU set is refused until undone', async () => {
    const { dir, runner, kernel } = setup();
    expect(await runIsolate(ctx(dir, [], { cpus: '2-3,6-7' }).c, { runner, writer: kernel })).toBe(0);
    const n = runner.calls.length;
    const t = ctx(dir, [], { cpus: '2-3,6-7' });
    expect(await runIsolate(t.c, { runner, writer: kernel })).toBe(0);
    expect(t.out()).toMatch(/in effect already/);
    expect(runner.calls.length).toBe(n);
    await expect(runIsolate(ctx(dir, [], { cpus: '3,7' }).c, { runner, writer: kernel })).rejects.toMatchObject({ code: 'E_ALREADY_ISOLATED', exitCode: 3 });
    expect(listJournals(new HostRoot(dir)).filter((j) => j.kind === 'isolate')).toHaveLength(1);
  });

  it('the same CPUs with more asked (--irqs, --workqueues, another --governor) are not "in effect already": refused, naming what is missing', async () => {
    const { dir, runner, kernel } = setup();
    expect(await runIsolate(ctx(dir, [], { cpus: '2-3,6-7' }).c, { runner, writer: kernel })).toBe(0);
    const n = runner.calls.length;
    const before = treeFingerprint(dir);
    for (const [more, missing] of [[{ irqs: true }, /without --irqs/], [{ workqueues: true }, /without --workqueues/], [{ governor: 'performance' }, /without --governor performance/]] as const) {
      const err = (await runIsolate(ctx(dir, [], { cpus: '2-3,6-7', ...more }).c, { runner, writer: kernel }).catch((e) => e)) as VfioError;
      expect(err).toBeInstanceOf(VfioError);
      expect(err).toMatchObject({ code: 'E_ALREADY_ISOLATED', exitCode: 3 });
      expect(err.message).toMatch(missing);
      expect(err.hint).toMatch(/vfiokit isolate --undo/);
    }
    expect(treeFingerprint(dir)).toEqual(before);
    expect(runner.calls.length).toBe(n);
    // Less than is in effect is covered by it.
    expect(await runIsolate(ctx(dir, [], { undo: true }).c, { runner, writer: kernel })).toBe(0);
    expect(await runIsolate(ctx(dir, [], { cpus: '2-3,6-7', irqs: true, governor: 'performance' }).c, { runner, writer: kernel })).toBe(0);
    const t = ctx(dir, [], { cpus: '2-3,6-7', irqs: true });
    expect(await runIsolate(t.c, { runner, writer: kernel })).toBe(0);
    expect(t.out()).toMatch(/in effect already/);
  });

  it('--dry-run over an isolation in effect says what isolate would: in effect already, or refused for other CPUs', async () => {
    const { dir, runner, kernel } = setup();
    expect(await runIsolate(ctx(dir, [], { cpus: '2-3,6-7' }).c, { runner, writer: kernel })).toBe(0);
    const before = treeFingerprint(dir, []);
    const same = ctx(dir, [], { cpus: '2-3,6-7', 'dry-run': true });
    expect(await runIsolate(same.c, { runner, writer: kernel })).toBe(0);
    expect(same.out()).toMatch(/in effect already \(transaction \S+\); nothing to do/);
    expect(same.out()).not.toMatch(/Steps:/);
    const sameJson = ctx(dir, [], { cpus: '2-3,6-7', 'dry-run': true, json: true });
    expect(await runIsolate(sameJson.c, { runner, writer: kernel })).toBe(0);
    expect(JSON.parse(sameJson.out())).toMatchObject({ action: 'isolate', dryRun: true, changed: false, txid: expect.any(String) });
    await expect(runIsolate(ctx(dir, [], { cpus: '3,7', 'dry-run': true }).c, { runner, writer: kernel })).rejects.toMatchObject({ code: 'E_ALREADY_ISOLATED', exitCode: 3 });
    expect(treeFingerprint(dir, [])).toEqual(before);
  });

  it('takes the VM CPUs from the domain\'s <vcpupin>s', async () => {
    const { dir, runner, kernel } = setup();
    fs.mkdirSync(path.join(dir, 'etc/libvirt/qemu'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'etc/libvirt/qemu/win11.xml'), "<domain type='kvm'><name>win11</name><vcpu placement='static'>4</vcpu><cputune><vcpupin vcpu='0' cpuset='2'/><vcpupin vcpu='1' cpuset='6'/><vcpupin vcpu='2' cpuset='3'/><vcpupin vcpu='3' cpuset='7'/><emulatorpin cpuset='0,4'/></cputune></domain>\n");
    const t = ctx(dir, ['win11'], { json: true });
    expect(await runIsolate(t.c, { runner, writer: kernel })).toBe(0);
    const j = JSON.parse(t.out());
    expect(j.vmCpus).toBe('2-3,6-7');
    expect(j.hostCpus).toBe('0-1,4-5');
    expect(read(dir, 'sys/fs/cgroup/system.slice/cpuset.cpus')).toBe('0-1,4-5\n');
  });

  it('--dry-run shows the steps with what undo restores and changes nothing', async () => {
    const { dir, runner, kernel } = setup();
    const before = treeFingerprint(dir);
    const t = ctx(dir, [], { cpus: '2-3,6-7', irqs: true, 'dry-run': true });
    expect(await runIsolate(t.c, { runner, writer: kernel })).toBe(0);
    expect(t.out()).toContain('systemctl set-property --runtime -- system.slice AllowedCPUs=0-1,4-5 (undo: AllowedCPUs=, not set; drop-in removed)');
    expect(t.out()).toContain('/proc/irq/24/smp_affinity_list');
    expect(runner.calls).toHaveLength(0);
    expect(kernel.writes).toHaveLength(0);
    expect(treeFingerprint(dir)).toEqual(before);
  });
});

describe('refusals and bad input: a clear error, nothing changed', () => {
  const cases: { name: string; host?: IsolationHostOptions; positionals?: string[]; values: Record<string, unknown>; code: string; exit: number; says: RegExp }[] = [
    { name: 'cgroup v1', host: { layout: 'v1' }, values: { cpus: '2-3,6-7' }, code: 'E_CGROUP_V1', exit: 3, says: /cgroup v1 only.*systemd\.unified_cgroup_hierarchy=1/s },
    { name: 'hybrid cgroups', host: { layout: 'hybrid' }, values: { cpus: '2-3,6-7' }, code: 'E_CGROUP_HYBRID', exit: 3, says: /hybrid/ },
    { name: 'no systemd', host: { systemd: false }, values: { cpus: '2-3,6-7' }, code: 'E_NO_SYSTEMD', exit: 3, says: /systemd is not running/ },
    { name: 'no cpuset controller', host: { cpusetController: false }, values: { cpus: '2-3,6-7' }, code: 'E_NO_CPUSET_CONTROLLER', exit: 3, says: /cpuset controller/ },
    { name: 'CPUs that do not exist (0-999)', values: { cpus: '0-999' }, code: 'E_CPU_NOT_PRESENT', exit: 3, says: /CPU 8-999 .*does not exist.*present: 0-7/ },
    { name: 'a malformed list (a-b)', values: { cpus: 'a-b' }, code: 'E_BAD_CPU_LIST', exit: 2, says: /--cpus "a-b" is not a CPU list/ },
    { name: 'an offline CPU', host: { offline: [3] }, values: { cpus: '3,7', 'allow-smt-split': true }, code: 'E_CPU_OFFLINE', exit: 3, says: /CPU 3 .*offline/ },
    { name: 'no CPU left to the host', values: { cpus: '0-7' }, code: 'E_NO_HOST_CPU', exit: 3, says: /host would have none left/ },
    { name: 'SMT siblings split', values: { cpus: '2-3' }, code: 'E_SMT_SPLIT', exit: 3, says: /CPU 2,6.*CPU 3,7.*--allow-smt-split/s },
    { name: 'an unknown domain', positionals: ['nosuchvm'], values: {}, code: 'E_DOMAIN_NOT_DEFINED', exit: 3, says: /no libvirt domain 'nosuchvm'/ },
    { name: 'a domain name libvirt refuses', positionals: ['../../shadow'], values: {}, code: 'E_BAD_NAME', exit: 2, says: /'\.\.\/\.\.\/shadow' cannot be a libvirt domain's name/ },
    { name: 'a governor the CPU lacks', values: { cpus: '2-3,6-7', governor: 'ondemand' }, code: 'E_GOVERNOR_UNAVAILABLE', exit: 3, says: /does not offer the governor 'ondemand'/ },
    { name: 'a governor without cpufreq', host: { governors: null }, values: { cpus: '2-3,6-7', governor: 'performance' }, code: 'E_NO_CPUFREQ', exit: 3, says: /no cpufreq governor/ },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const { dir, runner, kernel } = setup(c.host);
      const before = treeFingerprint(dir);
      const err = (await runIsolate(ctx(dir, c.positionals ?? [], c.values).c, { runner, writer: kernel }).catch((e) => e)) as VfioError & { problems?: { code: string; message: string; hint?: string }[] };
      expect(err).toBeInstanceOf(VfioError);
      const all = [err, ...(err.problems ?? [])];
      expect(all.map((e) => e.code)).toContain(c.code);
      expect(err.exitCode).toBe(c.exit);
      expect(all.map((e) => `${e.message} ${e.hint ?? ''}`).join('\n')).toMatch(c.says);
      expect((err.problems?.length ? err.problems : [err]).every((e) => e.hint)).toBe(true);
      expect(runner.calls).toHaveLength(0);
      expect(kernel.writes).toHaveLength(0);
      expect(treeFingerprint(dir)).toEqual(before);
    });
  }

  it('SMT split is allowed with --allow-smt-split (a warning)', async () => {
    const { dir, runner, kernel } = setup();
    const t = ctx(dir, [], { cpus: '2-3', 'allow-smt-split': true });
    expect(await runIsolate(t.c, { runner, writer: kernel })).toBe(0);
    expect(t.err()).toMatch(/warning: the VM CPUs split 2 core/);
    expect(read(dir, 'sys/fs/cgroup/init.scope/cpuset.cpus')).toBe('0-1,4-7\n');
  });
});

describe('the isolate transaction under faults', () => {
  const plan = (dir: string) => planIsolate(inspect(dir, { names: false }), intent([2, 3, 6, 7]));

  it('has every kind of step the command makes', () => {
    const { dir } = setup();
    const p = plan(dir);
    expect(p.problems).toEqual([]);
    expect(p.steps.map((s) => s.kind)).toEqual(['unit-property', 'unit-property', 'unit-property', 'write-attr', 'write-attr', 'write-attr', 'write-attr', 'write-attr', 'write-attr', 'write-attr', 'write-attr', 'write-attr', 'write-attr']);
    expect(p.steps.filter((s) => s.kind === 'write-attr' && s.optional).map((s) => (s as { path: string }).path)).toEqual(['/proc/irq/1/smp_affinity_list', '/proc/irq/9/smp_affinity_list', '/proc/irq/24/smp_affinity_list', '/proc/irq/25/smp_affinity_list']);
  });

  const { dir: probe } = setup();
  faultAtEveryStep(plan(probe).steps.length, setup, plan);
  dirs.push(probe);

  it('a failing systemctl (exit 1) rolls back the units already set', async () => {
    const { dir, systemd, kernel } = setup();
    const before = treeFingerprint(dir);
    let n = 0;
    const runner = recordingRunner({ onCall: (argv) => (argv[1] === 'set-property' && ++n === 2 ? { code: 1, stderr: 'Failed to set unit properties' } : systemd.onCall(argv)) });
    await expect(applyPlan(plan(dir), { root: dir, runner, sysfs: kernel })).rejects.toBeInstanceOf(ApplyError);
    expect(treeFingerprint(dir)).toEqual(before);
  });

  it('undo after the host changed: an IRQ vanished (MSI freed) and one became managed — restored what can be, no failure', async () => {
    const { dir, runner, kernel } = setup();
    const r = await applyPlan(plan(dir), { root: dir, runner, sysfs: kernel });
    fs.rmSync(path.join(dir, 'proc/irq/1'), { recursive: true });
    fs.writeFileSync(path.join(dir, '.managed-irqs'), JSON.stringify([0, 9]));
    const u = await undoTransaction({ root: dir, runner, sysfs: kernel, txid: r.txid! });
    expect(u.txid).toBe(r.txid);
    expect(read(dir, 'proc/irq/24/smp_affinity_list')).toBe('3\n');
    expect(fs.existsSync(path.join(dir, 'sys/fs/cgroup/system.slice/cpuset.cpus'))).toBe(false); // no unit sets AllowedCPUs: systemd disables cpuset again
    expect(fs.existsSync(path.join(dir, 'run/systemd/system.control'))).toBe(false);
  });
});
