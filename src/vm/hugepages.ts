// Huge page sizing for guest memory (pure). VFIO pins all guest RAM; backing
// it with huge pages makes the pinning (and VM start) much faster and keeps
// the DMA mapping count low. Pages must be reserved on the host beforehand:
// 2 MiB pages at runtime, 1 GiB pages reliably only at boot
// (Documentation/admin-guide/mm/hugetlbpage.rst).

import type { HugepagePool } from '../model/snapshot.js';
import { describeMemory, formatMemorySize } from './memory.js';

export const HUGEPAGE_2M_KB = 2048;
export const HUGEPAGE_1G_KB = 1048576;

interface HugepageNeed {
  sizeKb: number;
  pages: number;
  /** Pool as observed (null when the host has no pool of this size). */
  pool: HugepagePool | null;
  /** The guest memory is a whole number of pages of this size. */
  fits: boolean;
  /** Free pages cover the guest. */
  enough: boolean;
}

export interface HugepagePlan {
  /** Chosen page size when --hugepages was asked for and a size fits. */
  sizeKb: number | null;
  pages: number;
  needs: HugepageNeed[];
  /** Free pages already cover the guest. */
  reserved: boolean;
  /** Exactly how to reserve them when they are not (commands / kernel arguments). */
  howTo: string[];
  notes: string[];
  warnings: string[];
}

const label = (kb: number) => (kb >= HUGEPAGE_1G_KB ? `${kb / HUGEPAGE_1G_KB} GiB` : `${kb / 1024} MiB`);
export const pageLabel = label;
export const pageArg = (kb: number): string => formatMemorySize(kb);

/** The boot-time alternative, as the command that plans it. */
export const bootAlternative = (sizeKb: number, pageKb: number): string => `vfiokit apply --hugepages ${formatMemorySize(sizeKb)}:${pageArg(pageKb)}`;

/** The command that reserves the pages at runtime (what `vm xml --hugepages` points to). */
function reserveCommand(sizeKb: number, pageKb: number, node: number | null, domain: string | null = null): string {
  if (domain) return `vfiokit hugepages reserve --domain ${domain}`;
  return `vfiokit hugepages reserve ${formatMemorySize(sizeKb)}${pageKb === HUGEPAGE_2M_KB ? '' : ` --page ${pageArg(pageKb)}`}${node === null ? '' : ` --node ${node}`}`;
}


/** Where the pages go: the NUMA node of the guest memory (null: the global pool) and the domain's name (for the command that reserves them). */
interface HugepageTarget {
  node: number | null;
  domain: string | null;
}

export function planHugepages(memoryKib: number, pools: HugepagePool[], defaultSizeKb: number | null, want: boolean, target: HugepageTarget = { node: null, domain: null }): HugepagePlan {
  const sizes = [...new Set([HUGEPAGE_2M_KB, HUGEPAGE_1G_KB, ...pools.map((p) => p.sizeKb)])].sort((a, b) => a - b);
  const needs: HugepageNeed[] = sizes.map((sizeKb) => {
    const pool = pools.find((p) => p.sizeKb === sizeKb) ?? null;
    const pages = Math.ceil(memoryKib / sizeKb);
    return { sizeKb, pages, pool, fits: memoryKib % sizeKb === 0, enough: pool !== null && pool.free >= pages };
  });
  const poolText = pools.length ? pools.map((p) => `${label(p.sizeKb)}: ${p.free} free of ${p.total}`).join(', ') : 'none';
  const notes = [`huge pages for ${describeMemory(memoryKib)}: ${needs.filter((n) => n.fits && (n.pool || n.sizeKb === HUGEPAGE_2M_KB || n.sizeKb === HUGEPAGE_1G_KB)).map((n) => `${n.pages} × ${label(n.sizeKb)}`).join(' or ')}; host pools: ${poolText}`];
  const warnings: string[] = [];
  if (!want) {
    return { sizeKb: null, pages: 0, needs, reserved: false, howTo: [], notes: [...notes, 'guest memory uses normal pages (add --hugepages to back it with huge pages: faster VM start, fewer DMA mappings)'], warnings };
  }
  const usable = needs.filter((n) => n.fits && n.pool !== null);
  // Largest page size whose free pages already cover the guest; otherwise 2 MiB (reservable at runtime).
  const ready = [...usable].reverse().find((n) => n.enough);
  if (ready) {
    notes.push(`backing guest memory with ${ready.pages} reserved ${label(ready.sizeKb)} pages`);
    return { sizeKb: ready.sizeKb, pages: ready.pages, needs, reserved: true, howTo: [], notes, warnings };
  }
  const twoM = needs.find((n) => n.sizeKb === HUGEPAGE_2M_KB)!;
  const oneG = needs.find((n) => n.sizeKb === HUGEPAGE_1G_KB)!;
  const choice = twoM.fits && twoM.pool ? twoM : usable[0] ?? null;
  if (!choice) {
    warnings.push(`--hugepages: ${describeMemory(memoryKib)} is not a whole number of 2 MiB pages and the host has no pool that fits; guest memory stays on normal pages (use a multiple of 2M, e.g. --memory ${Math.ceil(memoryKib / 2048) * 2}M)`);
    return { sizeKb: null, pages: 0, needs, reserved: false, howTo: [], notes, warnings };
  }
  const pool = choice.pool!;
  const howTo = [`${reserveCommand(memoryKib, choice.sizeKb, target.node)}   # as root, now: ${choice.pages - pool.free} more ${label(choice.sizeKb)} pages as one undoable transaction (compaction first; exit 3 with the shortfall when memory is too fragmented)${target.domain ? `; once defined: ${reserveCommand(memoryKib, choice.sizeKb, target.node, target.domain)}` : ''}`];
  if (oneG.fits) howTo.push(`${bootAlternative(memoryKib, HUGEPAGE_1G_KB)}   # or: reserved at boot (${defaultSizeKb === HUGEPAGE_1G_KB ? '' : 'default_hugepagesz=1G '}hugepagesz=1G hugepages=${oneG.pages}), the reliable way for 1 GiB pages; reboot, then run vfiokit again so the guest uses them`);
  warnings.push(`--hugepages: the host has ${pool.free} free ${label(choice.sizeKb)} pages, the guest needs ${choice.pages}; the VM will not start until they are reserved:\n  ${howTo.join('\n  ')}`);
  notes.push(`backing guest memory with ${choice.pages} ${label(choice.sizeKb)} pages (not yet reserved)`);
  return { sizeKb: choice.sizeKb, pages: choice.pages, needs, reserved: false, howTo, notes, warnings };
}

