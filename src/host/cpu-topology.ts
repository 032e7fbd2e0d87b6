// CPU topology and memory size: which logical CPUs are SMT siblings, which
// share an L3 cache, which NUMA node holds them, which are efficiency cores on
// hybrid Intel parts, and how much memory the host has. Read from sysfs as
// described in Documentation/ABI/stable/sysfs-devices-system-cpu,
// Documentation/ABI/testing/sysfs-devices-system-cpu (cache/indexN) and
// Documentation/admin-guide/cputopology.rst. Tolerant: missing files give
// null fields and a warning, never an exception.
//
// Paths used here (they extend sysfs-paths.ts):
//   /sys/devices/system/cpu/online
//   /sys/devices/system/cpu/cpuN/topology/{core_cpus_list,thread_siblings_list,core_id,physical_package_id,die_id}
//   /sys/devices/system/cpu/cpuN/cache/indexK/{level,type,shared_cpu_list}
//   /sys/devices/system/node/nodeN/cpulist
//   /sys/devices/cpu_core/cpus, /sys/devices/cpu_atom/cpus   (hybrid PMUs)
//   /proc/meminfo

import type { CpuTopology, LogicalCpu, MemoryInfo, SnapshotWarning } from '../model/snapshot.js';
import { parseCpuList } from '../formats/cpu-list.js';
import type { HostRoot } from './root.js';
import { PROC_MEMINFO, SYS_CPU, SYS_CPU_ATOM_PMU, SYS_CPU_CORE_PMU, SYS_NODE } from './sysfs-paths.js';

export const SYS_CPU_ONLINE = `${SYS_CPU}/online`;

const cpuDir = (n: number) => `${SYS_CPU}/cpu${n}`;

function readInt(root: HostRoot, p: string): number | null {
  const v = root.tryReadAttr(p);
  if (v === undefined || !/^-?\d+$/.test(v)) return null;
  return Number(v);
}

function readList(root: HostRoot, p: string): number[] | null {
  const v = root.tryReadAttr(p);
  return v === undefined ? null : parseCpuList(v);
}

/** The level-3 cache's shared_cpu_list: index3 on every current x86 CPU, found by its `level` file. */
function readL3(root: HostRoot, n: number): number[] | null {
  const base = `${cpuDir(n)}/cache`;
  const entries = (root.tryList(base) ?? []).filter((e) => /^index\d+$/.test(e)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  for (const e of entries) {
    if (root.tryReadAttr(`${base}/${e}/level`) !== '3') continue;
    const type = root.tryReadAttr(`${base}/${e}/type`);
    if (type !== undefined && type !== 'Unified') continue;
    return readList(root, `${base}/${e}/shared_cpu_list`);
  }
  return null;
}

export function readCpuTopology(root: HostRoot, warnings: SnapshotWarning[]): CpuTopology | null {
  let online = readList(root, SYS_CPU_ONLINE);
  if (online === null) {
    // Without `online` (very old kernels, partial captures), every cpuN directory with a topology counts.
    online = (root.tryList(SYS_CPU) ?? [])
      .map((e) => /^cpu(\d+)$/.exec(e))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .filter((n) => root.exists(`${cpuDir(n)}/topology`))
      .sort((a, b) => a - b);
  }
  if (!online.length) {
    warnings.push({ code: 'W_NO_CPU_TOPOLOGY', subject: SYS_CPU, message: `${SYS_CPU} has no CPU topology: vCPU pinning cannot be planned (SMT siblings, L3 domains and NUMA nodes are unknown)` });
    return null;
  }

  const numaNodes: CpuTopology['numaNodes'] = [];
  for (const e of root.tryList(SYS_NODE) ?? []) {
    const m = /^node(\d+)$/.exec(e);
    if (!m) continue;
    const cpus = readList(root, `${SYS_NODE}/${e}/cpulist`);
    if (cpus !== null) numaNodes.push({ id: Number(m[1]), cpus });
  }
  numaNodes.sort((a, b) => a.id - b.id);
  const nodeOf = new Map<number, number>();
  for (const n of numaNodes) for (const c of n.cpus) nodeOf.set(c, n.id);

  const perf = readList(root, SYS_CPU_CORE_PMU);
  const eff = readList(root, SYS_CPU_ATOM_PMU);
  const hybrid = perf !== null && eff !== null && eff.length > 0 ? { performance: perf, efficiency: eff } : null;
  const perfSet = new Set(hybrid?.performance ?? []);
  const effSet = new Set(hybrid?.efficiency ?? []);

  const cpus: LogicalCpu[] = [];
  let missing = 0;
  for (const n of online) {
    const t = `${cpuDir(n)}/topology`;
    const siblings = readList(root, `${t}/core_cpus_list`) ?? readList(root, `${t}/thread_siblings_list`);
    if (siblings === null) missing++;
    cpus.push({
      id: n,
      package: readInt(root, `${t}/physical_package_id`),
      die: readInt(root, `${t}/die_id`),
      core: readInt(root, `${t}/core_id`),
      siblings: siblings ?? [n],
      l3: readL3(root, n),
      node: nodeOf.get(n) ?? null,
      kind: perfSet.has(n) ? 'performance' : effSet.has(n) ? 'efficiency' : null,
    });
  }
  if (missing) {
    warnings.push({ code: 'W_CPU_TOPOLOGY_PARTIAL', subject: SYS_CPU, message: `${missing} online CPU(s) have no core_cpus_list/thread_siblings_list: they are treated as cores without SMT siblings` });
  }
  return { online, cpus, numaNodes, hybrid };
}

export function readMemory(root: HostRoot, warnings: SnapshotWarning[]): MemoryInfo {
  const text = root.tryReadText(PROC_MEMINFO);
  if (text === undefined) {
    warnings.push({ code: 'W_NO_MEMINFO', subject: PROC_MEMINFO, message: `${PROC_MEMINFO} is missing: host memory size is unknown, so guest memory cannot be checked against it` });
    return { totalKb: null, hugepageDefaultKb: null };
  }
  const field = (name: string): number | null => {
    const m = new RegExp(`^${name}:\\s*(\\d+)\\s*kB\\s*$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return { totalKb: field('MemTotal'), hugepageDefaultKb: field('Hugepagesize') };
}
