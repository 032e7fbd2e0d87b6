import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCpuTopology, readMemory } from '../../src/host/cpu-topology.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import type { SnapshotWarning } from '../../src/model/snapshot.js';
import { formatCpuList, parseCpuList } from '../../src/formats/cpu-list.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { alderLakeDesktop, dualXeonServer, ryzenDesktop } from './hosts.js';

const roots: string[] = [];
afterAll(async () => {
  await Promise.all([...roots].map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
const build = (h: Parameters<typeof buildFakeHost>[0]) => {
  const r = buildFakeHost(h);
  roots.push(r);
  return r;
};

describe('cpulist', () => {
  it('parses the kernel forms', () => {
    expect(parseCpuList('0-3,8,10-11')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('5\n')).toEqual([5]);
    expect(parseCpuList('0-7:2/4')).toEqual([0, 1, 4, 5]);
    for (const bad of ['a', '3-1', '1,,2', '0-', '-1']) expect(parseCpuList(bad)).toBeNull();
  });
  it('formats ranges and round-trips', () => {
    expect(formatCpuList([16, 0, 1, 2, 3, 17])).toBe('0-3,16-17');
    for (const s of ['0', '0-31', '0,2,4', '8-15,24-31']) expect(formatCpuList(parseCpuList(s)!)).toBe(s);
  });
});

describe('readCpuTopology', () => {
  it('Ryzen 9 5950X: 32 threads, SMT pairs n/n+16, two L3 domains (CCDs), one node', () => {
    const w: SnapshotWarning[] = [];
    const t = readCpuTopology(new HostRoot(build(ryzenDesktop)), w)!;
    expect(w).toEqual([]);
    expect(t.online).toHaveLength(32);
    expect(t.cpus[3].siblings).toEqual([3, 19]);
    expect(t.cpus[19].siblings).toEqual([3, 19]);
    const l3s = new Set(t.cpus.map((c) => formatCpuList(c.l3!)));
    expect([...l3s].sort()).toEqual(['0-7,16-23', '8-15,24-31']);
    expect(t.numaNodes).toEqual([{ id: 0, cpus: t.online }]);
    expect(t.hybrid).toBeNull();
    expect(t.cpus.every((c) => c.kind === null && c.package === 0 && c.die === 0)).toBe(true);
  });

  it('i9-12900K: P-core siblings adjacent, E-cores single-threaded and marked efficiency', () => {
    const t = readCpuTopology(new HostRoot(build(alderLakeDesktop)), [])!;
    expect(t.hybrid).toEqual({ performance: Array.from({ length: 16 }, (_, i) => i), efficiency: Array.from({ length: 8 }, (_, i) => 16 + i) });
    expect(t.cpus[4]).toMatchObject({ core: 8, siblings: [4, 5], kind: 'performance' });
    expect(t.cpus[20]).toMatchObject({ core: 36, siblings: [20], kind: 'efficiency' });
    expect(new Set(t.cpus.map((c) => formatCpuList(c.l3!)))).toEqual(new Set(['0-23']));
  });

  it('dual Xeon: two packages, two NUMA nodes, per-socket L3, core_id repeating across sockets', () => {
    const t = readCpuTopology(new HostRoot(build(dualXeonServer)), [])!;
    expect(t.numaNodes.map((n) => [n.id, formatCpuList(n.cpus)])).toEqual([[0, '0-9,20-29'], [1, '10-19,30-39']]);
    expect(t.cpus[10]).toMatchObject({ package: 1, core: 0, node: 1, siblings: [10, 30] });
    expect(t.cpus[0]).toMatchObject({ package: 0, core: 0, node: 0 });
    expect(formatCpuList(t.cpus[35].l3!)).toBe('10-19,30-39');
  });

  it('falls back to thread_siblings_list and skips offline CPUs', () => {
    const cpus = Array.from({ length: 8 }, (_, id) => ({ id, core: id % 4, siblings: [id % 4, (id % 4) + 4], l3: [0, 1, 2, 3, 4, 5, 6, 7], online: id !== 7 }));
    const root = build({ pci: [], cpus: { cpus } });
    for (let i = 0; i < 7; i++) fs.rmSync(path.join(root, `sys/devices/system/cpu/cpu${i}/topology/core_cpus_list`));
    const t = readCpuTopology(new HostRoot(root), [])!;
    expect(t.online).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(t.cpus.map((c) => c.id)).toEqual(t.online);
    expect(t.cpus[1].siblings).toEqual([1, 5]);
  });

  it('returns null with a warning when sysfs has no topology, and reads /proc/meminfo', () => {
    const root = build({ pci: [], memory: { totalKb: 8000000, hugepageSizeKb: 1048576 } });
    fs.rmSync(path.join(root, 'sys/devices/system/cpu'), { recursive: true });
    fs.mkdirSync(path.join(root, 'sys/devices/system/cpu'));
    const w: SnapshotWarning[] = [];
    expect(readCpuTopology(new HostRoot(root), w)).toBeNull();
    expect(w.map((x) => x.code)).toEqual(['W_NO_CPU_TOPOLOGY']);
    expect(readMemory(new HostRoot(root), w)).toEqual({ totalKb: 8000000, hugepageDefaultKb: 1048576 });
    fs.rmSync(path.join(root, 'proc/meminfo'));
    expect(readMemory(new HostRoot(root), w)).toEqual({ totalKb: null, hugepageDefaultKb: null });
    expect(w.map((x) => x.code)).toContain('W_NO_MEMINFO');
  });

  it('is part of the snapshot', () => {
    const s = inspect(build(dualXeonServer), { names: false });
    expect(s.cpuTopology?.online).toHaveLength(40);
    expect(s.memory.totalKb).toBe(131890820);
    expect(s.memory.hugepageDefaultKb).toBe(2048);
  });
});
