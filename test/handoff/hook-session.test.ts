// The hook's parts (hugepages reserve, device handoff, CPU isolation) through
// `vfiokit handoff prepare|release --hook --isolate --hugepages`: order, the
// rollback of earlier parts when a later one fails, and a release after a
// crash that gives back AllowedCPUs, IRQs, workqueues and pages exactly.
//
// The host: the isolation fake (cgroup v2 tree, fake systemctl, IRQs) plus a
// NIC passed to the domain (KernelFake binds it) and 2 MiB hugepages. The
// `hugepages` command is a stand-in for its contract (`hugepages reserve
// --domain D --hook --json`: one transaction tagged with the domain, exit
// non-zero and rolled back when pages fall short; `hugepages release D`
// undoes it), built on the same engine.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, listJournals, recordingRunner, SimulatedCrash, undoTransaction } from '../../src/apply/index.js';
import type { SysfsWriter } from '../../src/apply/sysfs-writer.js';
import { run as runHandoff, type CommandRunner, type HandoffDeps } from '../../src/cli/commands/handoff.js';
import { run as runHooks } from '../../src/cli/commands/hooks.js';
import { run as runUndo } from '../../src/cli/commands/undo.js';
import type { CommandContext } from '../../src/cli/context.js';
import { PreconditionError, VfioError } from '../../src/errors.js';
import { parseHookScript, renderHookScript } from '../../src/formats/libvirt-hook.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { emptyPlan } from '../../src/model/plan.js';
import { planHandoffPrepare } from '../../src/plan/handoff-plan.js';
import { hookIsolateIntent } from '../../src/plan/domain-vm-cpus.js';
import { planIsolate } from '../../src/plan/isolate-plan.js';
import { treeFingerprint } from '../apply/_tree.js';
import { expectGolden } from '../helpers/golden.js';
import { buildIsolationHost, DROPIN, FakeSystemd, IsolationKernel, type IsolationHostOptions } from '../helpers/isolation-fake.js';
import { KernelFake } from '../helpers/kernel-fake.js';

const dirs: string[] = [];
afterEach(async () => {
  if (!process.env.KEEP_TMP) await Promise.all(dirs.splice(0).map((d) => fs.promises.rm(d, { recursive: true, force: true })));
});

const NIC = '0000:02:00.0';
const NR = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
const STATE = ['var/lib/vfiokit'];

/** A domain with the NIC, 1 GiB on 2 MiB pages, vCPUs pinned to CPU 3 and its SMT sibling 7. */
function domainXml(name: string): string {
  return `<domain type='kvm'>\n  <name>${name}</name>\n  <memory unit='KiB'>1048576</memory>\n  <memoryBacking>\n    <hugepages/>\n  </memoryBacking>\n  <vcpu placement='static'>2</vcpu>\n  <cputune>\n    <vcpupin vcpu='0' cpuset='3'/>\n    <vcpupin vcpu='1' cpuset='7'/>\n  </cputune>\n  <devices>\n    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source>\n        <address domain='0x0000' bus='0x02' slot='0x00' function='0x0'/>\n      </source>\n    </hostdev>\n  </devices>\n</domain>\n`;
}
const XML = domainXml('win11');

const G = 1024 * 1024;

/** `contiguousKb`: memory the kernel can still make into 2 MiB pages (KernelFake's hugepages model; default plenty). */
function setup(o: IsolationHostOptions & { contiguousKb?: number } = {}) {
  const { dir } = buildIsolationHost({
    ...o,
    extra: {
      iommu: 'intel',
      libvirt: true,
      pci: [
        { addr: '00:00.0', id: '8086:3e30', class: 0x060000, pcie: null, group: 0 },
        { addr: '00:1c.0', id: '8086:a33c', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 6 },
        { addr: '02:00.0', id: '8086:1533', class: 0x020000, parent: '00:1c.0', driver: 'igb', group: 7, flr: true },
      ],
      execs: ['/usr/sbin/libvirtd', '/usr/bin/virsh', '/usr/bin/qemu-system-x86_64'],
      hugepages: [{ sizeKb: 2048, total: 0, free: 0 }],
      ...o.extra,
      files: { '/etc/libvirt/qemu/win11.xml': XML, '/usr/lib/x86_64-linux-gnu/libvirt.so.0.9000.0': '', '/proc/modules': 'igb 286720 0 - Live 0x0\n', ...o.extra?.files },
    },
  });
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'dev/vfio'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
  const systemd = new FakeSystemd(dir);
  const iso = new IsolationKernel(dir);
  const pci = new KernelFake(dir, { defaults: { [NIC]: 'igb' }, hugepages: { contiguousKb: { 0: o.contiguousKb ?? 8 * G } } });
  pci.modprobe(['modprobe', 'vfio-pci']); // loaded before: vfiokit never unloads vfio modules, so it stays either way
  const failPci: { when?: (p: string, v: string) => boolean } = {};
  const writer: SysfsWriter = {
    write(p, v) {
      if (/^\/proc\/irq\/|^\/sys\/fs\/cgroup\/|^\/sys\/devices\/virtual\/workqueue\/|\/cpufreq\//.test(p)) return iso.write(p, v);
      if (failPci.when?.(p, v)) throw Object.assign(new Error(`EIO: injected failure writing ${p}`), { code: 'EIO' });
      return pci.write(p, v);
    },
  };
  let failSetProperty = 0;
  let setProperties = 0;
  const runner = recordingRunner({
    onCall: (argv) => {
      if (argv[0] === 'systemctl' && argv[1] === 'set-property' && ++setProperties === failSetProperty) return { code: 1, stderr: 'Failed to set unit properties on system.slice: Access denied' };
      return pci.modprobe(argv) ?? systemd.onCall(argv);
    },
  });
  return { dir, systemd, pci, writer, runner, failPci, failSetPropertyAt: (n: number) => ((failSetProperty = n), (setProperties = 0)) };
}

/** Stand-in for `vfiokit hugepages` (its contract), on the engine: reserve 512 × 2 MiB for the domain, or fall short. */
function hugepagesCommand(o: { shortfall?: boolean; releaseFails?: boolean } = {}) {
  const calls: string[] = [];
  const command: CommandRunner = async (name, c, deps) => {
    if (name !== 'hugepages') throw new Error(`unexpected command ${name}`);
    const [sub, dom] = c.positionals;
    calls.push([sub, dom ?? `--domain ${String(c.values.domain)}`, c.values.hook ? '--hook' : ''].filter(Boolean).join(' '));
    const nr = () => fs.readFileSync(c.root.path(NR), 'utf8').trim();
    if (sub === 'reserve') {
      if (o.shortfall) throw new PreconditionError('E_HUGEPAGES_SHORT', `only 212 of 512 2 MiB pages could be reserved for ${String(c.values.domain)} (memory is fragmented); rolled back, nothing changed`, 'reserve them at boot: vfiokit plan --hugepages 512x2M');
      const plan = emptyPlan('hugepages', { domain: c.values.domain });
      plan.steps.push({ kind: 'write-attr', path: NR, value: '512', before: nr(), restore: { value: nr() }, reason: 'reserve' });
      const r = await applyPlan(plan, { root: c.root, runner: deps.runner!, sysfs: deps.writer! });
      c.io.stdout.write(JSON.stringify({ action: 'reserve', changed: true, txid: r.txid }) + '\n');
      return 0;
    }
    if (o.releaseFails) return 1;
    const tx = listJournals(c.root).find((d) => d.kind === 'hugepages' && d.state === 'applied' && (d.intent as { domain?: string }).domain === dom);
    if (tx) await undoTransaction({ root: c.root, runner: deps.runner!, sysfs: deps.writer!, txid: tx.txid });
    return 0;
  };
  return { command, calls };
}

function ctx(dir: string, positionals: string[], values: Record<string, unknown> = {}) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = { positionals, values: values as never, root: new HostRoot(dir), io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} } };
  return { c, out: () => stdout, err: () => stderr };
}

type Host = ReturnType<typeof setup>;
const deps = (h: Host, command: CommandRunner): HandoffDeps => ({ runner: h.runner, writer: h.writer, stdinText: XML, command, sleep: async () => {} });
const flags = (isolate: boolean, hugepages: boolean) => ({ hook: true, ...(isolate ? { isolate: true } : {}), ...(hugepages ? { hugepages: true } : {}) });
const prepare = (h: Host, f: Record<string, unknown>, command: CommandRunner) => {
  const x = ctx(h.dir, ['prepare', 'win11'], f);
  return { x, done: runHandoff(x.c, deps(h, command)) };
};
const release = async (h: Host, f: Record<string, unknown>, command: CommandRunner, reason = 'destroyed') => {
  const x = ctx(h.dir, ['release', 'win11'], { ...f, reason });
  return { x, code: await runHandoff(x.c, deps(h, command)) };
};
const read = (h: Host, p: string) => fs.readFileSync(path.join(h.dir, p), 'utf8');
/** A unit's granted CPUs; the file is there only while its parent enables cpuset (no unit restricted: it is not). */
const effective = (h: Host, unit: string) => (fs.existsSync(path.join(h.dir, `sys/fs/cgroup/${unit}/cpuset.cpus.effective`)) ? read(h, `sys/fs/cgroup/${unit}/cpuset.cpus.effective`).trim() : 'cpuset off');
const kinds = (h: Host) => listJournals(h.dir).map((j) => `${j.kind}:${j.state}`);

describe('handoff prepare with the hook\'s parts', () => {
  for (const [isolate, hugepages] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    it(`${isolate ? '--isolate ' : ''}${hugepages ? '--hugepages ' : ''}${!isolate && !hugepages ? '(the device alone) ' : ''}: parts in order, each a transaction; release gives every byte back`, async () => {
      const h = setup();
      const hp = hugepagesCommand();
      const before = treeFingerprint(h.dir, STATE);
      const p = prepare(h, flags(isolate, hugepages), hp.command);
      expect(await p.done).toBe(0);
      expect(kinds(h)).toEqual([...(hugepages ? ['hugepages:applied'] : []), 'handoff-prepare:applied', ...(isolate ? ['isolate:applied'] : [])]);
      expect(hp.calls).toEqual(hugepages ? ['reserve --domain win11 --hook'] : []);
      expect(h.pci.driverOf(NIC)).toBe('vfio-pci');
      expect(read(h, NR.slice(1))).toBe(hugepages ? '512\n' : '0\n');
      // The host units get every CPU but the VM's (3 and its sibling 7); the VM's slice keeps them all.
      expect(effective(h, 'system.slice')).toBe(isolate ? '0-2,4-6' : 'cpuset off');
      if (isolate) expect(effective(h, 'machine.slice')).toBe('0-7');
      expect(read(h, 'proc/irq/24/smp_affinity_list')).toBe(isolate ? '0-2,4-6\n' : '3\n');
      if (isolate) expect(read(h, 'sys/devices/virtual/workqueue/cpumask')).toBe('77\n');
      // The isolation is tagged with the domain and came from its <vcpupin>s.
      if (isolate) expect(listJournals(h.dir).find((j) => j.kind === 'isolate')!.intent).toMatchObject({ domain: 'win11', vmCpus: [3, 7], irqs: true, workqueues: true });

      const r = await release(h, flags(isolate, hugepages), hp.command);
      expect(r.code).toBe(0);
      expect(hp.calls).toEqual(hugepages ? ['reserve --domain win11 --hook', 'release win11'] : []);
      expect(treeFingerprint(h.dir, STATE)).toEqual(before);
      expect(kinds(h).every((k) => k.endsWith(':undone'))).toBe(true);
      if (isolate || hugepages) expect(r.x.err()).toMatch(new RegExp(`release of win11: ${[isolate && 'isolate', 'handoff', hugepages && 'hugepages'].filter(Boolean).join(', ')} given back`));
    });
  }

  it('--dry-run shows the three plans (the isolation from the XML on stdin) and changes nothing', async () => {
    const h = setup();
    const before = treeFingerprint(h.dir);
    const x = ctx(h.dir, ['prepare', 'win11'], { ...flags(true, true), 'dry-run': true, json: true });
    expect(await runHandoff(x.c, deps(h, hugepagesCommand().command))).toBe(0);
    const j = JSON.parse(x.out());
    expect(j.hugepages).toEqual({ reserve: 'win11' });
    expect(j.handoff.steps.map((s: { kind: string }) => s.kind)).toContain('bind-driver');
    expect(j.isolate.intent).toMatchObject({ vmCpus: [3, 7], domain: 'win11' });
    expect(j.isolate.steps.filter((s: { kind: string }) => s.kind === 'unit-property').map((s: { unit: string }) => s.unit).sort()).toEqual(['init.scope', 'system.slice', 'user.slice']);
    expect(treeFingerprint(h.dir)).toEqual(before);
  });

  it('prepared already (a second prepare): nothing changes and nothing is rolled back', async () => {
    const h = setup();
    const hp = hugepagesCommand();
    expect(await prepare(h, flags(true, false), hp.command).done).toBe(0);
    const mid = treeFingerprint(h.dir, STATE);
    const again = prepare(h, flags(true, false), hp.command);
    expect(await again.done).toBe(0);
    expect(again.x.err()).toMatch(/prepared already/);
    expect(again.x.err()).toMatch(/CPU isolation in effect already/);
    expect(treeFingerprint(h.dir, STATE)).toEqual(mid);
    // A dry run now says the same of each part, instead of planning from the prepared host.
    const dry = ctx(h.dir, ['prepare', 'win11'], { ...flags(true, false), 'dry-run': true, json: true });
    expect(await runHandoff(dry.c, deps(h, hp.command))).toBe(0);
    const j = JSON.parse(dry.out());
    expect(j.handoff).toEqual({ preparedAlready: expect.any(String) });
    expect(j.isolate).toEqual({ inEffectAlready: expect.any(String) });
    const text = ctx(h.dir, ['prepare', 'win11'], { ...flags(true, false), 'dry-run': true });
    expect(await runHandoff(text.c, deps(h, hp.command))).toBe(0);
    expect(text.out()).toMatch(/handoff: win11 is prepared already \(transaction \S+\): nothing to do/);
    expect(text.out()).toMatch(/then isolate: in effect already \(transaction \S+\): nothing to do/);
    expect(treeFingerprint(h.dir, STATE)).toEqual(mid);
  });
});

describe('--json of the writing runs', () => {
  it('handoff prepare --json prints one JSON object, also when the domain is prepared already (txid null)', async () => {
    const h = setup();
    const first = prepare(h, { hook: true, json: true }, hugepagesCommand().command);
    expect(await first.done).toBe(0);
    const j = JSON.parse(first.x.out());
    expect(j).toMatchObject({ action: 'prepare', domain: 'win11' });
    expect(j.txid).toBe(listJournals(h.dir)[0].txid);
    const again = prepare(h, { hook: true, json: true }, hugepagesCommand().command);
    expect(await again.done).toBe(0);
    expect(JSON.parse(again.x.out())).toEqual({ action: 'prepare', domain: 'win11', txid: null });
  });

  it('hooks install/remove --json print the result as JSON (changed, txid, summary), not text', async () => {
    const h = setup();
    const i = ctx(h.dir, ['install', 'win11'], { vfiokit: '/usr/bin/vfiokit', json: true });
    expect(await runHooks(i.c, { runner: h.runner })).toBe(0);
    const ji = JSON.parse(i.out());
    expect(ji).toMatchObject({ action: 'hooks-install', domain: 'win11', changed: true, txid: listJournals(h.dir)[0].txid });
    expect(ji.summary.join('\n')).toMatch(/vfiokit-win11/);
    const again = ctx(h.dir, ['install', 'win11'], { vfiokit: '/usr/bin/vfiokit', json: true });
    expect(await runHooks(again.c, { runner: h.runner })).toBe(0);
    expect(JSON.parse(again.out())).toMatchObject({ action: 'hooks-install', changed: false, txid: null });
    const r = ctx(h.dir, ['remove', 'win11'], { json: true });
    expect(await runHooks(r.c, { runner: h.runner })).toBe(0);
    expect(JSON.parse(r.out())).toMatchObject({ action: 'hooks-remove', domain: 'win11', changed: true, txid: listJournals(h.dir).find((d) => d.kind === 'hooks-remove')?.txid });
    expect(fs.existsSync(path.join(h.dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'))).toBe(false);
  });
});

describe('a failing part undoes the parts before it', () => {
  it('hugepages fall short: refused as the hugepages command said (exit 3), nothing else attempted', async () => {
    const h = setup();
    const before = treeFingerprint(h.dir, STATE);
    const hp = hugepagesCommand({ shortfall: true });
    const err = (await prepare(h, flags(true, true), hp.command).done.catch((e) => e)) as VfioError;
    expect(err).toBeInstanceOf(PreconditionError);
    expect(err).toMatchObject({ code: 'E_HUGEPAGES_SHORT', exitCode: 3 });
    expect(err.message).toMatch(/^hugepages: only 212 of 512/);
    expect(err.hint).toMatch(/reserve them at boot/);
    expect(h.pci.driverOf(NIC)).toBe('igb');
    expect(kinds(h)).toEqual([]);
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });

  it('the device handoff fails (the bind refused): rolled back, then the pages released (exit 4)', async () => {
    const h = setup();
    const before = treeFingerprint(h.dir, STATE);
    const hp = hugepagesCommand();
    h.failPci.when = (p) => p.endsWith('/driver_override');
    const p = prepare(h, flags(true, true), hp.command);
    const err = (await p.done.catch((e) => e)) as VfioError;
    expect(err.exitCode).toBe(4);
    expect(err.message).toMatch(/^handoff: apply failed at step .*driver_override.*\nundone before it: hugepages$/s);
    expect(hp.calls).toEqual(['reserve --domain win11 --hook', 'release win11']);
    expect(kinds(h)).toEqual(['hugepages:undone', 'handoff-prepare:rolled-back']);
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });

  it('the isolation fails (systemctl refuses a unit): its own units rolled back, then the device and the pages given back (exit 4)', async () => {
    const h = setup();
    const before = treeFingerprint(h.dir, STATE);
    const hp = hugepagesCommand();
    h.failSetPropertyAt(2);
    const p = prepare(h, flags(true, true), hp.command);
    const err = (await p.done.catch((e) => e)) as VfioError;
    expect(err.exitCode).toBe(4);
    expect(err.message).toMatch(/^isolate: .*Access denied.*\nundone before it: handoff, hugepages$/s);
    expect(p.x.err()).toMatch(/prepare isolate failed; releasing handoff, hugepages/);
    expect(kinds(h)).toEqual(['hugepages:undone', 'handoff-prepare:undone', 'isolate:rolled-back']);
    expect(h.pci.driverOf(NIC)).toBe('igb');
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });

  it('the isolation is refused (cgroup v1): exit 3 with the isolate refusal, after the device and pages are given back', async () => {
    const h = setup({ layout: 'v1' });
    const before = treeFingerprint(h.dir, STATE);
    const err = (await prepare(h, flags(true, true), hugepagesCommand().command).done.catch((e) => e)) as PreconditionError;
    expect(err).toBeInstanceOf(PreconditionError);
    expect(err.exitCode).toBe(3);
    expect(err.problems.map((x) => x.code)).toContain('E_CGROUP_V1');
    expect(err.message).toBe('isolate: isolate refused; nothing was changed\nundone before it: handoff, hugepages');
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });

  it('a part that cannot be given back during the rollback: exit 5 (E_ROLLBACK_INCOMPLETE) naming it', async () => {
    const h = setup();
    h.failSetPropertyAt(1);
    const err = (await prepare(h, flags(true, true), hugepagesCommand({ releaseFails: true }).command).done.catch((e) => e)) as VfioError;
    expect(err).toMatchObject({ code: 'E_ROLLBACK_INCOMPLETE', exitCode: 5 });
    expect(err.message).toMatch(/\nundone before it: handoff\nNOT given back: hugepages \(hugepages release win11 exited 1/);
    expect(h.pci.driverOf(NIC)).toBe('igb');
  });
});

describe('release after a crash', () => {
  it('QEMU killed, the domain shut off: libvirt\'s release gives back AllowedCPUs, IRQs, workqueues, the device and the pages', async () => {
    const h = setup({ preset: { 'user.slice': '0-6' } });
    const hp = hugepagesCommand();
    const before = treeFingerprint(h.dir, STATE);
    const userDropIn = read(h, DROPIN('user.slice'));
    expect(await prepare(h, flags(true, true), hp.command).done).toBe(0);
    expect(read(h, 'sys/fs/cgroup/user.slice/cpuset.cpus')).toBe('0-2,4-6\n');
    // The crash: no QEMU, nothing holds /dev/vfio, libvirt has reattached nothing yet — and calls release/end.
    const r = await release(h, flags(true, true), hp.command, 'crashed');
    expect(r.code).toBe(0);
    expect(read(h, DROPIN('user.slice'))).toBe(userDropIn); // the value set before isolation, byte for byte
    expect(fs.existsSync(path.join(h.dir, DROPIN('system.slice')))).toBe(false); // "not set" again
    expect(read(h, 'proc/irq/24/smp_affinity_list')).toBe('3\n');
    expect(read(h, NR.slice(1))).toBe('0\n');
    expect(h.pci.driverOf(NIC)).toBe('igb');
    // init.scope holds PID 1: the kernel refuses it an empty set (see the isolate tests); everything else is byte-identical.
    const now = treeFingerprint(h.dir, STATE);
    delete now['sys/fs/cgroup/init.scope/cpuset.cpus'];
    delete before['sys/fs/cgroup/init.scope/cpuset.cpus'];
    expect(now).toEqual(before);
  });

  it('every part is tried at release even when one fails; the exit (1) and the log name what did not come back', async () => {
    const h = setup();
    expect(await prepare(h, flags(true, true), hugepagesCommand().command).done).toBe(0);
    const r = await release(h, flags(true, true), hugepagesCommand({ releaseFails: true }).command, 'crashed');
    expect(r.code).toBe(1);
    expect(r.x.err()).toMatch(/NOT back: hugepages/);
    expect(h.pci.driverOf(NIC)).toBe('igb');
    expect(fs.existsSync(path.join(h.dir, DROPIN('system.slice')))).toBe(false);
    const j = await release(h, { ...flags(true, true), json: true }, hugepagesCommand({ releaseFails: true }).command, 'crashed');
    expect(JSON.parse(j.x.out()).parts.map((p: { part: string; failures: string[] }) => `${p.part}:${p.failures.length}`)).toEqual(['isolate:0', 'handoff:0', 'hugepages:1']);
  });

  it('vfiokit killed in the handoff part (pages reserved, the NIC\'s bind cut off): release recovers it, the isolation never started, the pages released', async () => {
    const h = setup();
    const hp = hugepagesCommand();
    const before = treeFingerprint(h.dir, STATE);
    const x = ctx(h.dir, ['reserve'], { domain: 'win11', hook: true });
    expect(await hp.command('hugepages', x.c, deps(h, hp.command))).toBe(0);
    const plan = planHandoffPrepare(inspect(h.dir), { domain: 'win11', hostdevs: [NIC], singleGpu: false });
    const at = plan.steps.findIndex((s) => s.kind === 'bind-driver');
    await expect(applyPlan(plan, { root: h.dir, runner: h.runner, sysfs: h.writer, failAt: { step: at, after: true, crash: true }, sleep: async () => {} })).rejects.toBeInstanceOf(SimulatedCrash);
    fs.writeFileSync(path.join(h.dir, 'var/lib/vfiokit/lock'), '999999999\n');
    expect(h.pci.driverOf(NIC)).toBe('vfio-pci');
    const r = await release(h, flags(true, true), hp.command, 'failed');
    expect(r.code).toBe(0);
    expect(kinds(h)).toEqual(['hugepages:undone', 'handoff-prepare:rolled-back']);
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });

  it('vfiokit killed in the isolation part: the release libvirt runs for the failed start recovers it and gives back the rest', async () => {
    const h = setup();
    const hp = hugepagesCommand();
    const before = treeFingerprint(h.dir, STATE);
    // hugepages and handoff done, then the isolate transaction cut off midway (the process killed).
    expect(await prepare(h, flags(false, true), hp.command).done).toBe(0);
    const snap = inspect(h.dir, { names: false });
    const plan = planIsolate(snap, hookIsolateIntent(XML, 'stdin', 'win11', snap).intent!);
    const at = plan.steps.findIndex((s) => s.kind === 'unit-property') + 1;
    await expect(applyPlan(plan, { root: h.dir, runner: h.runner, sysfs: h.writer, failAt: { step: at, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
    fs.writeFileSync(path.join(h.dir, 'var/lib/vfiokit/lock'), '999999999\n');
    expect(effective(h, 'system.slice')).not.toBe('cpuset off');
    const r = await release(h, flags(true, true), hp.command, 'failed');
    expect(r.code).toBe(0);
    expect(kinds(h)).toEqual(['hugepages:undone', 'handoff-prepare:undone', 'isolate:rolled-back']);
    const now = treeFingerprint(h.dir, STATE);
    delete now['sys/fs/cgroup/init.scope/cpuset.cpus'];
    delete before['sys/fs/cgroup/init.scope/cpuset.cpus'];
    expect(now).toEqual(before);
  });
});

describe('hooks install with parts', () => {
  it('the hook with every part (golden): header, and the flags passed at prepare and release', () => {
    const text = renderHookScript({ domain: 'win11', singleGpu: true, isolate: true, hugepages: true, vfiokit: ['/usr/bin/vfiokit'] });
    expectGolden('handoff/hook-parts.sh', text);
    expect(parseHookScript(text)).toEqual({ domain: 'win11', singleGpu: true, isolate: true, hugepages: true });
    expect(parseHookScript(renderHookScript({ domain: 'w', singleGpu: false, isolate: true, hugepages: false, vfiokit: ['v'] }))).toEqual({ domain: 'w', singleGpu: false, isolate: true, hugepages: false });
    // An unknown word in the header is not a vfiokit hook this version understands.
    expect(parseHookScript(text.replace('(single-gpu, isolate, hugepages)', '(single-gpu, turbo)'))).toBeNull();
  });

  it('install, re-install with other flags (one transaction each), list shows the flags; undo gives the old hook back byte for byte', async () => {
    const h = setup();
    const i = ctx(h.dir, ['install', 'win11'], { vfiokit: '/usr/bin/vfiokit' });
    expect(await runHooks(i.c, { runner: h.runner })).toBe(0);
    const file = path.join(h.dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11');
    const first = fs.readFileSync(file);
    const j = ctx(h.dir, ['install', 'win11'], { vfiokit: '/usr/bin/vfiokit', isolate: true, hugepages: true });
    expect(await runHooks(j.c, { runner: h.runner })).toBe(0);
    expect(j.out()).toMatch(/→ vfiokit handoff prepare\|release win11 --isolate --hugepages \(replaces the installed one: no flags; undo puts it back\)/);
    expect(j.out()).toMatch(/at prepare: reserve the domain's hugepages, then hand its devices to vfio-pci, then move the host's units, IRQs and unbound workqueues off the VM's CPUs/);
    expect(fs.readFileSync(file, 'utf8')).toContain('handoff prepare --hook --isolate --hugepages -- "$1"');
    const l = ctx(h.dir, ['list']);
    await runHooks(l.c);
    expect(l.out()).toMatch(/^win11: \/etc\/libvirt\/hooks\/qemu\.d\/vfiokit-win11 \(--isolate --hugepages\)$/m);
    const lj = ctx(h.dir, ['list'], { json: true });
    await runHooks(lj.c);
    expect(JSON.parse(lj.out()).hooks[0]).toMatchObject({ domain: 'win11', singleGpu: false, isolate: true, hugepages: true });
    expect(kinds(h)).toEqual(['hooks-install:applied', 'hooks-install:applied']);
    expect(await runUndo(ctx(h.dir, [], { id: listJournals(h.dir)[1].txid, yes: true }).c, { runner: h.runner })).toBe(0);
    expect(fs.readFileSync(file)).toEqual(first);
  });

  it('--isolate and --hugepages are checked at install: refused on cgroup v1, for a domain taking every CPU, for a domain not on hugepages; nothing written', async () => {
    const v1 = setup({ layout: 'v1' });
    await expect(runHooks(ctx(v1.dir, ['install', 'win11'], { isolate: true }).c, { runner: v1.runner })).rejects.toMatchObject({ code: 'E_CGROUP_V1', exitCode: 3, problems: [expect.objectContaining({ hint: expect.stringMatching(/install the hook without --isolate$/) })] });
    expect(fs.existsSync(path.join(v1.dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'))).toBe(false);
    const all = setup({ extra: { files: { '/etc/libvirt/qemu/win11.xml': XML.replace("cpuset='3'", "cpuset='0-7'") } } });
    await expect(runHooks(ctx(all.dir, ['install', 'win11'], { isolate: true }).c, { runner: all.runner })).rejects.toMatchObject({ code: 'E_NO_HOST_CPU' });
    // No systemd and a domain whose vCPUs cannot be pinned here: the host's refusal comes first, then the CPUs'.
    const bare = setup({ systemd: false, cpus: 2, smt: false, extra: { files: { '/etc/libvirt/qemu/win11.xml': XML.replace(/  <cputune>[^]*<\/cputune>\n/, '') } } });
    const e = (await runHooks(ctx(bare.dir, ['install', 'win11'], { isolate: true }).c, { runner: bare.runner }).catch((x) => x)) as PreconditionError;
    expect(e.code).toBe('E_NO_SYSTEMD');
    expect(e.problems.map((p) => p.code)).toEqual(['E_NO_SYSTEMD', 'E_PIN_TOO_MANY']);
    // --hugepages for a domain not on hugepages: nothing to reserve.
    const plain = setup({ extra: { files: { '/etc/libvirt/qemu/win11.xml': XML.replace(/  <memoryBacking>[^]*<\/memoryBacking>\n/, '') } } });
    await expect(runHooks(ctx(plain.dir, ['install', 'win11'], { hugepages: true }).c, { runner: plain.runner })).rejects.toMatchObject({ code: 'E_DOMAIN_NO_HUGEPAGES', exitCode: 3 });
    expect(fs.existsSync(path.join(plain.dir, 'etc/libvirt/hooks/qemu.d/vfiokit-win11'))).toBe(false);
    // Without --isolate the same host takes the hook.
    expect(await runHooks(ctx(v1.dir, ['install', 'win11'], { hugepages: true, vfiokit: '/usr/bin/vfiokit' }).c, { runner: v1.runner })).toBe(0);
  });
});

describe('release --dry-run with the parts', () => {
  it('names the isolation to undo, the handoff plan and the hugepages release; changes nothing', async () => {
    const h = setup();
    expect(await prepare(h, flags(true, true), hugepagesCommand().command).done).toBe(0);
    const iso = listJournals(h.dir).find((j) => j.kind === 'isolate')!;
    const mid = treeFingerprint(h.dir);
    const x = ctx(h.dir, ['release', 'win11'], { ...flags(true, true), 'dry-run': true });
    expect(await runHandoff(x.c, deps(h, hugepagesCommand().command))).toBe(0);
    expect(x.out()).toMatch(new RegExp(`^first: vfiokit isolate --undo of win11's isolation \\(transaction ${iso.txid}\\)\\n`));
    expect(x.out()).toMatch(/handoff release win11 \(dry run: nothing is changed\): undoes transaction/);
    expect(x.out()).toMatch(/\nlast: vfiokit hugepages release win11\n$/);
    expect(treeFingerprint(h.dir)).toEqual(mid);
  });
});

describe("with this build's `vfiokit hugepages` (the registry's command, in the hook's process)", () => {
  const real = (h: Host): HandoffDeps => ({ runner: h.runner, writer: h.writer, stdinText: XML, sleep: async () => {} });

  it('prepare reserves 512 × 2 MiB for the domain (from its XML on stdin), then the device, then the CPUs; release gives every byte back', async () => {
    const h = setup();
    const before = treeFingerprint(h.dir, STATE);
    const p = ctx(h.dir, ['prepare', 'win11'], flags(true, true));
    expect(await runHandoff(p.c, real(h))).toBe(0);
    expect(kinds(h)).toEqual(['hugepages:applied', 'handoff-prepare:applied', 'isolate:applied']);
    expect(listJournals(h.dir)[0].intent).toMatchObject({ domain: 'win11', pageKb: 2048, sizeKb: G });
    expect(read(h, NR.slice(1))).toBe('512\n');
    expect(h.pci.driverOf(NIC)).toBe('vfio-pci');
    const r = ctx(h.dir, ['release', 'win11'], { ...flags(true, true), reason: 'crashed' });
    expect(await runHandoff(r.c, real(h))).toBe(0);
    expect(read(h, NR.slice(1))).toBe('0\n');
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });

  it('memory too fragmented: the reserve falls short and rolls back (E_HUGEPAGES_SHORT, exit 3); the device and CPUs are never touched', async () => {
    const h = setup({ contiguousKb: 100 * 2048 });
    const before = treeFingerprint(h.dir, STATE);
    const err = (await runHandoff(ctx(h.dir, ['prepare', 'win11'], flags(true, true)).c, real(h)).catch((e) => e)) as PreconditionError;
    expect(err).toMatchObject({ code: 'E_HUGEPAGES_SHORT', exitCode: 3 });
    expect(err.message).toMatch(/^hugepages: the kernel gave 100 of the 512 more 2 MiB pages/);
    expect(h.pci.driverOf(NIC)).toBe('igb');
    expect(kinds(h)).toEqual(['hugepages:rolled-back']);
    expect(treeFingerprint(h.dir, STATE)).toEqual(before);
  });
});
