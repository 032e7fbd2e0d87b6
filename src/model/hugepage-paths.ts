// Host paths of huge page pools (Documentation/admin-guide/mm/hugetlbpage.rst):
// the global pools under /sys/kernel/mm/hugepages, the per-NUMA-node pools
// under /sys/devices/system/node/nodeN/hugepages, each node's meminfo, and the
// compaction trigger (Documentation/admin-guide/sysctl/vm.rst). Named here so
// the pure planner and the readers in src/host share them.

import { SYS_HUGEPAGES } from './kernel-paths.js';

export const PROC_MEMINFO = '/proc/meminfo';
export const SYS_NODE = '/sys/devices/system/node';
/** Writing 1 compacts all zones, so free memory forms contiguous blocks for huge pages (CONFIG_COMPACTION). */
export const PROC_COMPACT_MEMORY = '/proc/sys/vm/compact_memory';
/** A pool's directory: global (node null) or one NUMA node's. */
export const hugepagePoolDir = (sizeKb: number, node: number | null): string => (node === null ? `${SYS_HUGEPAGES}/hugepages-${sizeKb}kB` : `${SYS_NODE}/node${node}/hugepages/hugepages-${sizeKb}kB`);
export const hugepageNodeDir = (node: number): string => `${SYS_NODE}/node${node}/hugepages`;
export const nodeMeminfo = (node: number): string => `${SYS_NODE}/node${node}/meminfo`;
