import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, listJournals, recordingRunner, SimulatedCrash, undoLatest } from '../../src/apply/index.js';
import { run as runHugepages } from '../../src/cli/commands/hugepages.js';
import { run as runUndo } from '../../src/cli/commands/undo.js';
import type { CommandContext } from '../../src/cli/context.js';
import { VfioError } from '../../src/errors.js';
import { captureTree } from '../../src/host/capture.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { planReserve, type ReserveIntent } from '../../src/plan/hugepages-plan.js';
import { treeFingerprint } from '../apply/_tree.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { KernelFake } from '../helpers/kernel-fake.js';
import { faultAtEveryStep } from '../helpers/fault-steps.js';
import { debianGrub } from '../helpers/distros.js';

const dirs: string[] = [];
afterEach(async () => {
  if (!process.env.KEEP_TMP) await Promise.all(dirs.splice(0).map((d) => fs.promises.rm(d, { recursive: true, force: true })));
});

const G = 1024 * 1024;
const flags = ['fpu', 'pae', 'vmx', 'pdpe1gb'];
// 8 CPUs; `numa` puts CPUs 4-7 on node 1.
function setup(o: { host?: Partial<FakeHost>; numa?: boolean; contiguousKb?: Record<number, number>; compactedKb?: Record<number, number> } = {}) {
  const cpus = o.numa ? { cpus: Array.from({ length: 8 }, (_, id) => ({ id, core: id, siblings: [id], l3: id < 4 ? [0, 1, 2, 3] : [4, 5, 6, 7], node: id < 4 ? 0 : 1 })) } : undefined;
  const dir = buildFakeHost({ ...debianGrub, cpu: { vendor: 'intel', flags }, ...(cpus ? { cpus } : {}), hugepages: [{ sizeKb: 2048, total: 16, free: 16 }, { sizeKb: G, total: 0, free: 0 }], ...o.host } as FakeHost);
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'var/lib'), { recursive: true });
  const kernel = new KernelFake(dir, { hugepages: { contiguousKb: o.contiguousKb ?? { 0: 8 * G, 1: 8 * G }, compactedKb: o.compactedKb } });
  return { dir, kernel, runner: recordingRunner() };
}

function ctx(dir: string, positionals: string[], values: Record<string, unknown> = {}) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = { positionals, values: values as never, root: new HostRoot(dir), io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {} } };
  return { c, out: () => stdout, err: () => stderr };
}

const read = (dir: string, p: string) => fs.readFileSync(path.join(dir, p), 'utf8').trim();
const NR = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
const FREE = '/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages';
const need = (sizeKb: number, more: Partial<ReserveIntent> = {}): ReserveIntent => ({ sizeKb, pageKb: 2048, node: null, domain: null, source: 'test', ...more });

describe('huge page facts in the snapshot', () => {
  it('reads global and per-node pools (with surplus), MemAvailable, node MemFree, pdpe1gb and compaction', () => {
    const { dir } = setup({ numa: true, host: { memory: { totalKb: 16 * G, availableKb: 12 * G, nodeFreeKb: { 0: 5 * G, 1: 6 * G } } } });
    const s = inspect(dir, { names: false });
    expect(s.hugepages[0]).toEqual({ sizeKb: 2048, total: 16, free: 16, surplus: 0 });
    expect(s.hugepageHost.pdpe1gb).toBe(true);
    expect(s.hugepageHost.availableKb).toBe(12 * G);
    expect(s.hugepageHost.compaction).toBe(true);
    expect(s.hugepageHost.nodes.map((n) => [n.id, n.memFreeKb, n.pools[0].total])).toEqual([[0, 5 * G, 16], [1, 6 * G, 0]]);
  });
});

describe('hugepages reserve plan', () => {
  it('compacts, then raises nr_hugepages by the shortfall only (free pages are reused)', () => {
    const { dir } = setup();
    const p = planReserve(inspect(dir, { names: false }), need(1 * G));
    expect(p.problems).toEqual([]);
    expect(p.steps.map((s) => [s.kind, (s as { path: string }).path, (s as { value: string }).value])).toEqual([
      ['write-attr', '/proc/sys/vm/compact_memory', '1'],
      ['write-attr', NR, String(16 + (512 - 16))],
    ]);
    expect(p.steps[0]).toMatchObject({ restore: null, oneShot: expect.stringContaining('nothing to restore') });
    expect(p.steps[1]).toMatchObject({ before: '16', restore: { value: '16' }, expect: '512' });
  });

  it('bad input: 1G without pdpe1gb, not a multiple, more than MemAvailable, absent node — each names value, rule and fix', () => {
    const { dir } = setup({ host: { cpu: { vendor: 'intel', flags: ['fpu', 'vmx'] }, memory: { totalKb: 16 * G, availableKb: 2 * G } } });
    const s = inspect(dir, { names: false });
    const cases: [ReserveIntent, string, RegExp][] = [
      [need(4 * G, { pageKb: G }), 'E_HUGEPAGE_SIZE_UNSUPPORTED', /pdpe1gb/],
      [need(1 * G + 1024), 'E_HUGEPAGES_NOT_MULTIPLE', /1025M is not a whole number of 2 MiB pages/],
      [need(4 * G), 'E_HUGEPAGES_NO_MEMORY', /MemAvailable .* is 2 GiB/],
      [need(1 * G, { node: 3 }), 'E_NUMA_NODE_ABSENT', /NUMA node 3 does not exist/],
    ];
    for (const [i, code, msg] of cases) {
      const p = planReserve(s, i);
      expect(p.problems.map((x) => x.code)).toEqual([code]);
      expect(p.problems[0].message).toMatch(msg);
      expect(p.problems[0].hint).toBeTruthy();
      expect(p.steps).toEqual([]);
    }
  });

  it('a node pool is checked against that node\'s MemFree', () => {
    const { dir } = setup({ numa: true, host: { memory: { totalKb: 16 * G, nodeFreeKb: { 0: 6 * G, 1: 512 * 1024 } } } });
    const s = inspect(dir, { names: false });
    expect(planReserve(s, need(1 * G, { node: 1 })).problems.map((x) => x.code)).toEqual(['E_HUGEPAGES_NO_MEMORY']);
    const p = planReserve(s, need(1 * G, { node: 0 }));
    expect(p.problems).toEqual([]);
    expect((p.steps[1] as { path: string }).path).toBe('/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages');
  });

  it('plans the same from a captured snapshot (vfiokit snapshot, read back with --root)', async () => {
    const { dir } = setup({ numa: true });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-hp-cap-'));
    dirs.push(out);
    captureTree(new HostRoot(dir), path.join(out, 'tree'));
    const live = planReserve(inspect(dir, { names: false }), need(2 * G, { node: 1 }));
    const captured = planReserve(inspect(path.join(out, 'tree'), { names: false }), need(2 * G, { node: 1 }));
    expect(captured.problems).toEqual([]);
    expect(captured.steps).toEqual(live.steps);
  });
});

describe('hugepages reserve / release through the engine', () => {
  it('reserve → the kernel has 496 more pages; again → no change; release → exactly as before', async () => {
    const { dir, kernel, runner } = setup();
    const before = treeFingerprint(dir);
    const a = ctx(dir, ['reserve', '1G']);
    expect(await runHugepages(a.c, { writer: kernel, runner })).toBe(0);
    expect(read(dir, NR)).toBe('512');
    expect(read(dir, FREE)).toBe('512');
    expect(kernel.compactions).toBe(1);
    const tx = listJournals(new HostRoot(dir)).find((d) => d.kind === 'hugepages')!;
    expect(tx.steps[0].live).toMatchObject({ nothingToRestore: expect.stringContaining('nothing to restore') });
    const writes = kernel.writes.length;
    const b = ctx(dir, ['reserve', '1G']);
    expect(await runHugepages(b.c, { writer: kernel, runner })).toBe(0);
    expect(b.out()).toMatch(/in effect already/);
    expect(kernel.writes.length).toBe(writes);
    const st = ctx(dir, ['status'], { json: true });
    await runHugepages(st.c, {});
    const status = JSON.parse(st.out());
    expect(status.pools.find((p: { sizeKb: number; node: number | null }) => p.sizeKb === 2048 && p.node === null)).toMatchObject({ total: 512, free: 512, heldBy: [tx.txid] });
    const r = ctx(dir, ['release']);
    expect(await runHugepages(r.c, { writer: kernel, runner })).toBe(0);
    expect(treeFingerprint(dir)).toEqual(before);
    const again = ctx(dir, ['release']);
    expect(await runHugepages(again.c, { writer: kernel, runner })).toBe(0);
    expect(again.out()).toMatch(/nothing to release/);
  });

  it('a second need does not take the free pages a first reservation promised; reservations are released in any order, each giving back its own share', async () => {
    const { dir, kernel, runner } = setup();
    expect(await runHugepages(ctx(dir, ['reserve', '1G']).c, { writer: kernel, runner })).toBe(0);
    expect(read(dir, NR)).toBe('512');
    const b = ctx(dir, ['reserve', '512M']);
    expect(await runHugepages(b.c, { writer: kernel, runner })).toBe(0);
    expect(b.out()).toMatch(/0 free for it \(512 free, 512 promised to other vfiokit reservations\)/);
    expect(read(dir, NR)).toBe('768');
    const first = listJournals(new HostRoot(dir)).filter((d) => d.kind === 'hugepages').sort((x, y) => x.seq - y.seq)[0];
    // The first VM stops first: its 496 pages go (768 - 496), the second's 256 stay.
    const u = await undoLatest({ root: dir, runner, sysfs: kernel, txid: first.txid });
    expect(u.restored.join('\n')).toMatch(/= 272 \(768 less the 496 this transaction added\)/);
    expect(read(dir, NR)).toBe('272');
    // The second's release says what it gives back and what the pool reads then, not "back to" the value it found (512).
    const dry = ctx(dir, ['release'], { 'dry-run': true });
    expect(await runHugepages(dry.c, { writer: kernel, runner })).toBe(0);
    expect(dry.out()).toMatch(/would release transaction \S+: the 256 page\(s\) it added to \S+nr_hugepages \(272 → 16\)/);
    const rel = ctx(dir, ['release']);
    expect(await runHugepages(rel.c, { writer: kernel, runner })).toBe(0);
    expect(rel.out()).toMatch(/Released \(transaction \S+\): the 256 page\(s\) it added to \S+nr_hugepages; it reads 16 now/);
    expect(read(dir, NR)).toBe('16');
    const again = ctx(dir, ['release']);
    expect(await runHugepages(again.c, { writer: kernel, runner })).toBe(0);
    expect(again.out()).toMatch(/nothing to release/);
  });

  it('--dry-run plans what reserve would do: free pages other reservations promised are not counted, the same need is in effect already', async () => {
    const { dir, kernel, runner } = setup();
    expect(await runHugepages(ctx(dir, ['reserve', '1G']).c, { writer: kernel, runner })).toBe(0);
    const before = treeFingerprint(dir, []);
    // 512 pages free, all of them promised to the first reservation: 256 more are needed.
    const d = ctx(dir, ['reserve', '512M'], { 'dry-run': true, json: true });
    expect(await runHugepages(d.c, { writer: kernel, runner })).toBe(0);
    const plan = JSON.parse(d.out());
    expect(plan.steps.map((s: { path: string; value: string }) => [s.path, s.value])).toEqual([['/proc/sys/vm/compact_memory', '1'], [NR, '768']]);
    const same = ctx(dir, ['reserve', '1G'], { 'dry-run': true });
    expect(await runHugepages(same.c, { writer: kernel, runner })).toBe(0);
    expect(same.out()).toMatch(/in effect already \(transaction \S+\); nothing to do/);
    const sameJson = ctx(dir, ['reserve', '1G'], { 'dry-run': true, json: true });
    expect(await runHugepages(sameJson.c, { writer: kernel, runner })).toBe(0);
    expect(JSON.parse(sameJson.out())).toMatchObject({ dryRun: true, changed: false, txid: expect.any(String), target: 512 });
    expect(treeFingerprint(dir, [])).toEqual(before);
    // The real run does what the dry run said.
    expect(await runHugepages(ctx(dir, ['reserve', '512M']).c, { writer: kernel, runner })).toBe(0);
    expect(read(dir, NR)).toBe('768');
  });

  it('undo --dry-run after a reboot lists no kernel change to reverse: the pages went with the earlier boot, as the undo itself skips them', async () => {
    const { dir, kernel, runner } = setup();
    const bootId = path.join(dir, 'proc/sys/kernel/random/boot_id');
    fs.mkdirSync(path.dirname(bootId), { recursive: true });
    fs.writeFileSync(bootId, '11111111-1111-4111-8111-111111111111\n');
    expect(await runHugepages(ctx(dir, ['reserve', '512M']).c, { writer: kernel, runner })).toBe(0);
    const same = ctx(dir, [], { 'dry-run': true, json: true });
    expect(await runUndo(same.c, { writer: kernel, runner })).toBe(0);
    const now = JSON.parse(same.out());
    expect(now.reverses.join('\n')).toMatch(/nr_hugepages/);
    expect(now.void).toEqual([]);
    fs.writeFileSync(bootId, '22222222-2222-4222-8222-222222222222\n');
    const later = ctx(dir, [], { 'dry-run': true, json: true });
    expect(await runUndo(later.c, { writer: kernel, runner })).toBe(0);
    const after = JSON.parse(later.out());
    expect(after.reverses.join('\n')).not.toMatch(/nr_hugepages/);
    expect(after.void.join('\n')).toMatch(/nr_hugepages/);
    const text = ctx(dir, [], { 'dry-run': true });
    expect(await runUndo(text.c, { writer: kernel, runner })).toBe(0);
    expect(text.out()).toMatch(/change\(s\) to the running kernel were made in an earlier boot and are gone with it/);
  });

  it('release --dry-run after a crash mid-reserve changes nothing (no recovery), and says recovery comes first', async () => {
    const { dir, kernel, runner } = setup();
    expect(await runHugepages(ctx(dir, ['reserve', '512M']).c, { writer: kernel, runner })).toBe(0);
    const plan = planReserve(inspect(dir, { names: false }), need(1 * G, { domain: 'w' }), 256);
    await expect(applyPlan(plan, { root: dir, runner, sysfs: kernel, failAt: { step: 1, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
    // The crashed vfiokit is gone: its lock is stale.
    fs.writeFileSync(path.join(dir, 'var/lib/vfiokit/lock'), '999999\n');
    const interrupted = listJournals(new HostRoot(dir)).find((d) => d.state === 'applying')!;
    const before = treeFingerprint(dir, []);
    const writes = kernel.writes.length;
    const d = ctx(dir, ['release'], { 'dry-run': true });
    expect(await runHugepages(d.c, { writer: kernel, runner })).toBe(0);
    expect(d.out()).toContain(`transaction ${interrupted.txid} is unfinished`);
    expect(d.out()).toMatch(/nothing was changed/);
    const j = ctx(dir, ['release'], { 'dry-run': true, json: true });
    expect(await runHugepages(j.c, { writer: kernel, runner })).toBe(0);
    expect(JSON.parse(j.out())).toMatchObject({ dryRun: true, unfinished: [interrupted.txid] });
    // `vfiokit undo --dry-run` says the same: the real undo recovers first, which may change what it undoes.
    const u = ctx(dir, [], { 'dry-run': true });
    expect(await runUndo(u.c, { writer: kernel, runner })).toBe(0);
    expect(u.out()).toContain(`first: transaction ${interrupted.txid} is unfinished; undo recovers it before anything else`);
    const uj = ctx(dir, [], { 'dry-run': true, json: true });
    expect(await runUndo(uj.c, { writer: kernel, runner })).toBe(0);
    expect(JSON.parse(uj.out())).toMatchObject({ dryRun: true, unfinished: [interrupted.txid] });
    expect(treeFingerprint(dir, [])).toEqual(before);
    expect(kernel.writes.length).toBe(writes);
  });

  it('fragmented memory: the kernel gives fewer pages → rolled back, exit 3 with the shortfall and the boot-time command', async () => {
    const { dir, kernel, runner } = setup({ contiguousKb: { 0: 256 * 1024 }, compactedKb: { 0: 512 * 1024 } });
    const before = treeFingerprint(dir);
    const a = ctx(dir, ['reserve', '2G']);
    const err = (await runHugepages(a.c, { writer: kernel, runner }).catch((e) => e)) as VfioError;
    expect(err).toBeInstanceOf(VfioError);
    expect(err.code).toBe('E_HUGEPAGES_SHORT');
    expect(err.exitCode).toBe(3);
    // Compaction raised 128 MiB of whole pages to 256 MiB: 256 pages of the 1008 more asked for.
    expect(err.message).toMatch(/gave 256 of the 1008 more 2 MiB pages/);
    expect(err.hint).toContain('vfiokit apply --hugepages 2G:2M');
    expect(treeFingerprint(dir)).toEqual(before);
  });

  it('enough pages free already: nothing written, no transaction', async () => {
    const { dir, kernel, runner } = setup();
    const a = ctx(dir, ['reserve', '32M']);
    // 32 MiB is below the guest minimum of the shared size parser: a usage error, nothing written.
    await expect(runHugepages(a.c, { writer: kernel, runner })).rejects.toMatchObject({ code: 'E_BAD_MEMORY', message: "hugepages reserve '32M' is below 128 MiB" });
    // The hints write a size the way this command takes one, not as another command's flag.
    const bare = ctx(dir, ['reserve', '2048']);
    await expect(runHugepages(bare.c, { writer: kernel, runner })).rejects.toMatchObject({ code: 'E_BAD_MEMORY', hint: expect.stringContaining('e.g. vfiokit hugepages reserve 2048M or vfiokit hugepages reserve 2G') });
    const b = ctx(dir, ['reserve', '8G'], { page: '2M', 'dry-run': true });
    expect(await runHugepages(b.c, {})).toBe(0);
    expect(kernel.writes).toEqual([]);
  });

  it('bad input through the command: malformed size, bad page, unknown domain, absent node — nothing written', async () => {
    const { dir, kernel, runner } = setup();
    const before = treeFingerprint(dir);
    for (const [pos, values, code] of [
      [['reserve', '8X'], {}, 'E_BAD_MEMORY'],
      [['reserve', '8G'], { page: '4M' }, 'E_BAD_PAGE_SIZE'],
      [['reserve'], { domain: 'nosuch' }, 'E_DOMAIN_NOT_DEFINED'],
      // libvirt refuses '/' in a name: no path is made of one (this would read /etc/libvirt/x.xml).
      [['reserve'], { domain: '../x' }, 'E_BAD_NAME'],
      [['reserve', '1G'], { node: '7' }, 'E_NUMA_NODE_ABSENT'],
      [['reserve', '1G'], { node: 'x' }, 'E_BAD_NUMA_NODE'],
    ] as const) {
      const a = ctx(dir, [...pos], values);
      await expect(runHugepages(a.c, { writer: kernel, runner })).rejects.toMatchObject({ code });
    }
    expect(kernel.writes).toEqual([]);
    expect(treeFingerprint(dir)).toEqual(before);
  });

  it('--domain: size from <memory>, page from <hugepages><page>, node of the pinned CPUs; release after the domain is gone', async () => {
    const { dir, kernel, runner } = setup({ numa: true });
    const xml = `<domain type='kvm'><name>win11</name><memory unit='GiB'>1</memory><memoryBacking><hugepages><page size='2048' unit='KiB'/></hugepages></memoryBacking><vcpu>2</vcpu><cputune><vcpupin vcpu='0' cpuset='4'/><vcpupin vcpu='1' cpuset='5'/></cputune></domain>`;
    fs.mkdirSync(path.join(dir, 'etc/libvirt/qemu'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'etc/libvirt/qemu/win11.xml'), xml);
    const node1 = '/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages';
    const before = read(dir, node1);
    const a = ctx(dir, ['reserve'], { domain: 'win11' });
    expect(await runHugepages(a.c, { writer: kernel, runner })).toBe(0);
    expect(read(dir, node1)).toBe(String(Number(before) + 512));
    expect(read(dir, NR)).toBe(String(16 + 512));
    fs.rmSync(path.join(dir, 'etc/libvirt/qemu/win11.xml'));
    const r = ctx(dir, ['release', 'win11']);
    expect(await runHugepages(r.c, { writer: kernel, runner })).toBe(0);
    expect(read(dir, node1)).toBe(before);
    expect(read(dir, NR)).toBe('16');
  });

  const plan = (dir: string) => planReserve(inspect(dir, { names: false }), need(1 * G));
  const { dir: probe } = setup();
  faultAtEveryStep(plan(probe).steps.length, setup, plan);
  dirs.push(probe);

  it('vfiokit undo gives the pages back too', async () => {
    const { dir, runner, kernel } = setup();
    const before = treeFingerprint(dir);
    await applyPlan(plan(dir), { root: dir, runner, sysfs: kernel });
    expect(read(dir, NR)).toBe('512');
    await undoLatest({ root: dir, runner, sysfs: kernel });
    expect(treeFingerprint(dir)).toEqual(before);
  });
});
