// Huge pages for a running VM (pure): compact memory, then raise one pool's
// nr_hugepages (a NUMA node's where the VM's memory belongs, else the global
// one) by the pages still missing — pages already free are reused, not
// doubled. The value before is recorded, so undo (release) puts it back
// exactly; the write is checked against what the kernel actually gave.
// The boot-time alternative (hugepagesz= hugepages=) goes through the boot plan.
// Sources: Documentation/admin-guide/mm/hugetlbpage.rst, admin-guide/sysctl/vm.rst
// (compact_memory), kernel-parameters.txt (hugepagesz, hugepages, default_hugepagesz).

import type { Problem } from '../errors.js';
import { hugepagePoolDir, nodeMeminfo, PROC_COMPACT_MEMORY, PROC_MEMINFO } from '../model/hugepage-paths.js';
import { emptyPlan, type Plan } from '../model/plan.js';
import type { HostSnapshot, HugepagePool } from '../model/snapshot.js';
import { bootAlternative, HUGEPAGE_1G_KB as PAGE_1G_KB, HUGEPAGE_2M_KB as PAGE_2M_KB, pageArg, pageLabel } from '../vm/hugepages.js';
import { describeMemory, formatMemorySize } from '../vm/memory.js';

export { bootAlternative, PAGE_1G_KB, PAGE_2M_KB, pageArg, pageLabel };

export const HUGEPAGES_KIND = 'hugepages';

export interface ReserveIntent {
  /** Memory to back, KiB. */
  sizeKb: number;
  pageKb: number;
  /** NUMA node whose pool is raised; null: the global pool. */
  node: number | null;
  /** The domain the pages are for (tags the transaction), or null. */
  domain: string | null;
  /** Where size, page and node came from ("--page 1G", "domain win11 <memory>"…). */
  source: string;
}

/** What a reserve transaction records (its journal intent): enough for status, release and "in effect already". */
export interface ReserveRecord extends ReserveIntent {
  pages: number;
  /** The pool's nr_hugepages attribute. */
  attr: string;
  before: number;
  target: number;
}

const nrAttr = (pageKb: number, node: number | null): string => `${hugepagePoolDir(pageKb, node)}/nr_hugepages`;



/** The page size `--page` accepts: 2M or 1G (the x86-64 huge page sizes). */
export function parsePageSize(text: string): number | null {
  const t = text.trim().toLowerCase().replace(/i?b$/, '');
  if (t === '2m' || t === '2048k') return PAGE_2M_KB;
  if (t === '1g' || t === '1024m') return PAGE_1G_KB;
  return null;
}

const poolOf = (pools: HugepagePool[], kb: number) => pools.find((p) => p.sizeKb === kb) ?? null;

/**
 * 1 GiB pages need the CPU's pdpe1gb flag and a pool of that size; refusals
 * shared by the runtime reserve and the boot-time arguments.
 */
function pageSizeProblems(snap: Pick<HostSnapshot, 'hugepages' | 'hugepageHost'>, pageKb: number): Problem[] {
  if (pageKb === PAGE_1G_KB && snap.hugepageHost.pdpe1gb === false)
    return [{ code: 'E_HUGEPAGE_SIZE_UNSUPPORTED', subject: '1G', message: '1 GiB huge pages need a CPU that maps them (the pdpe1gb flag), and /proc/cpuinfo does not list pdpe1gb on this host', hint: 'use 2 MiB pages: --page 2M (the default)' }];
  if (!poolOf(snap.hugepages, pageKb))
    return [{ code: 'E_HUGEPAGE_SIZE_UNSUPPORTED', subject: pageArg(pageKb), message: `the kernel has no ${pageLabel(pageKb)} huge page pool (${hugepagePoolDir(pageKb, null)} is missing)`, hint: `use the sizes this kernel offers: ${snap.hugepages.map((p) => pageArg(p.sizeKb)).join(', ') || 'none (a kernel without CONFIG_HUGETLBFS)'}` }];
  return [];
}

/** Memory that is not a whole number of pages. */
function multipleProblems(sizeKb: number, pageKb: number): Problem[] {
  if (sizeKb % pageKb === 0) return [];
  const up = Math.ceil(sizeKb / pageKb) * pageKb;
  return [{ code: 'E_HUGEPAGES_NOT_MULTIPLE', subject: formatMemorySize(sizeKb), message: `${formatMemorySize(sizeKb)} is not a whole number of ${pageLabel(pageKb)} pages`, hint: `give a multiple of ${pageArg(pageKb)}, e.g. ${formatMemorySize(up)}` }];
}

/**
 * Boot-time huge pages (kernel-parameters.txt): hugepagesz=PAGE hugepages=N,
 * with default_hugepagesz=PAGE first when PAGE is not the kernel's default
 * (so `<hugepages/>` and /dev/hugepages use it). Reserved before memory fragments.
 */
export function bootHugepageArgs(snap: Pick<HostSnapshot, 'hugepages' | 'hugepageHost' | 'memory'>, want: { sizeKb: number; pageKb: number }): { args: string[]; problems: Problem[] } {
  const problems = [...pageSizeProblems(snap, want.pageKb), ...multipleProblems(want.sizeKb, want.pageKb)];
  if (problems.length) return { args: [], problems };
  const p = pageArg(want.pageKb);
  const isDefault = want.pageKb === (snap.memory.hugepageDefaultKb ?? PAGE_2M_KB);
  return { args: [...(isDefault ? [] : [`default_hugepagesz=${p}`]), `hugepagesz=${p}`, `hugepages=${want.sizeKb / want.pageKb}`], problems: [] };
}

/**
 * `held`: pages of this pool that other applied reservations promised to
 * their VMs — free ones among them are not free for this need.
 */
export function planReserve(snap: HostSnapshot, intent: ReserveIntent, held = 0): Plan {
  const plan = emptyPlan(HUGEPAGES_KIND, { ...intent });
  const refuse = (code: string, subject: string, message: string, hint: string) => plan.problems.push({ code, subject, message, hint });
  const hp = snap.hugepageHost;
  plan.problems.push(...pageSizeProblems(snap, intent.pageKb), ...multipleProblems(intent.sizeKb, intent.pageKb));
  const node = intent.node === null ? null : hp.nodes.find((n) => n.id === intent.node) ?? null;
  if (intent.node !== null && !node) refuse('E_NUMA_NODE_ABSENT', `node${intent.node}`, `NUMA node ${intent.node} does not exist on this host (nodes: ${hp.nodes.map((n) => n.id).join(', ') || 'none in sysfs'})`, hp.nodes.length ? `use one of them, e.g. --node ${hp.nodes[0].id}, or leave --node out (the global pool)` : 'leave --node out (the global pool)');
  if (plan.problems.length) return plan;

  const pool = node ? poolOf(node.pools, intent.pageKb) : poolOf(snap.hugepages, intent.pageKb);
  if (!pool) {
    refuse('E_HUGEPAGE_SIZE_UNSUPPORTED', pageArg(intent.pageKb), `NUMA node ${intent.node} has no ${pageLabel(intent.pageKb)} pool (${hugepagePoolDir(intent.pageKb, intent.node)} is missing)`, 'leave --node out (the global pool)');
    return plan;
  }
  const pages = intent.sizeKb / intent.pageKb;
  const where = node ? `node ${node.id}` : 'the host';
  const attr = nrAttr(intent.pageKb, intent.node);
  const free = Math.max(0, pool.free - held);
  const freeText = held ? `${free} free for it (${pool.free} free, ${held} promised to other vfiokit reservations)` : `${pool.free} free`;
  const missing = Math.max(0, pages - free);
  const record: ReserveRecord = { ...intent, pages, attr, before: pool.total, target: pool.total + missing };
  plan.intent = { ...record };
  if (!missing) {
    plan.summary.push(`${pages} × ${pageLabel(intent.pageKb)} for ${describeMemory(intent.sizeKb)}: ${where} has ${freeText} already (nr_hugepages ${pool.total}); nothing to reserve`);
    return plan;
  }
  const needKb = missing * intent.pageKb;
  const avail = node ? node.memFreeKb : hp.availableKb;
  const availWhat = node ? `MemFree in ${nodeMeminfo(node.id)}` : `MemAvailable in ${PROC_MEMINFO}`;
  if (avail !== null && needKb > avail)
    refuse('E_HUGEPAGES_NO_MEMORY', formatMemorySize(intent.sizeKb), `${missing} more ${pageLabel(intent.pageKb)} pages (${describeMemory(needKb)}) are more than the free memory of ${where}: ${availWhat} is ${describeMemory(avail)}`, `ask for less (at most ${formatMemorySize(Math.floor(avail / intent.pageKb) * intent.pageKb + free * intent.pageKb)}), free memory first, or reserve at boot: ${bootAlternative(intent.sizeKb, intent.pageKb)}`);
  if (plan.problems.length) return plan;

  plan.summary.push(`${pages} × ${pageLabel(intent.pageKb)} for ${describeMemory(intent.sizeKb)} on ${where} (${intent.source}): ${freeText} already, ${missing} more → nr_hugepages ${pool.total} → ${record.target}`);
  if (hp.compaction)
    plan.steps.push({ kind: 'write-attr', path: PROC_COMPACT_MEMORY, value: '1', before: null, restore: null, oneShot: 'compaction only moves pages together; it leaves no setting behind, so there is nothing to restore', reason: 'compact memory first, so free memory forms whole huge pages' });
  else plan.warnings.push(`${PROC_COMPACT_MEMORY} is missing (a kernel without CONFIG_COMPACTION): the pool is raised without compacting first, so fragmented memory may fall short`);
  plan.steps.push({ kind: 'write-attr', path: attr, value: String(record.target), before: String(pool.total), restore: { value: String(pool.total) }, expect: String(record.target), counter: true, reason: `${missing} more ${pageLabel(intent.pageKb)} pages on ${where}${intent.domain ? ` for ${intent.domain}` : ''} (given back by release)` });
  return plan;
}
