// Huge page facts: the pools (global and per NUMA node: nr_hugepages,
// free_hugepages, surplus_hugepages), MemAvailable, each node's MemFree,
// whether the CPU maps 1 GiB pages (pdpe1gb) and whether the kernel can
// compact memory. Read only; `vfiokit hugepages` plans from these.

import type { HugepageHostFacts, HugepagePool } from '../model/snapshot.js';
import { hugepageNodeDir, nodeMeminfo, PROC_COMPACT_MEMORY } from '../model/hugepage-paths.js';
import type { HostRoot } from './root.js';
import { PROC_CPUINFO, PROC_MEMINFO, SYS_HUGEPAGES, SYS_NODE } from './sysfs-paths.js';

const count = (root: HostRoot, p: string): number | undefined => {
  const t = root.tryReadAttr(p);
  if (t === undefined) return undefined;
  const n = Number(t.trim());
  return Number.isFinite(n) ? n : undefined;
};

/** The pools in one hugepages directory (hugepages-SIZEkB entries), ascending by size. */
function readPools(root: HostRoot, dir: string): HugepagePool[] {
  const pools: HugepagePool[] = [];
  for (const name of root.tryList(dir) ?? []) {
    const m = /^hugepages-(\d+)kB$/.exec(name);
    if (!m) continue;
    const base = `${dir}/${name}`;
    const surplus = count(root, `${base}/surplus_hugepages`);
    pools.push({ sizeKb: Number(m[1]), total: count(root, `${base}/nr_hugepages`) ?? 0, free: count(root, `${base}/free_hugepages`) ?? 0, ...(surplus === undefined ? {} : { surplus }) });
  }
  return pools.sort((a, b) => a.sizeKb - b.sizeKb);
}

/** A `Key: N kB` field of a meminfo text (the per-node files prefix "Node N "). */
function meminfoField(text: string | undefined, key: string): number | null {
  if (text === undefined) return null;
  const m = new RegExp(`^(?:Node \\d+ )?${key}:\\s*(\\d+)\\s*kB\\s*$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

export function readHugepageHost(root: HostRoot): HugepageHostFacts {
  const cpuinfo = root.tryReadText(PROC_CPUINFO);
  const flags = cpuinfo === undefined ? null : new Set((/^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? '').split(/\s+/));
  const nodes: HugepageHostFacts['nodes'] = [];
  for (const e of root.tryList(SYS_NODE) ?? []) {
    const m = /^node(\d+)$/.exec(e);
    if (!m) continue;
    const id = Number(m[1]);
    nodes.push({ id, memFreeKb: meminfoField(root.tryReadText(nodeMeminfo(id)), 'MemFree'), pools: readPools(root, hugepageNodeDir(id)) });
  }
  nodes.sort((a, b) => a.id - b.id);
  return {
    pdpe1gb: flags === null ? null : flags.has('pdpe1gb'),
    availableKb: meminfoField(root.tryReadText(PROC_MEMINFO), 'MemAvailable'),
    compaction: root.probe(PROC_COMPACT_MEMORY),
    nodes,
  };
}

/** The global pools (/sys/kernel/mm/hugepages). */
export const readGlobalPools = (root: HostRoot): HugepagePool[] => readPools(root, SYS_HUGEPAGES);
