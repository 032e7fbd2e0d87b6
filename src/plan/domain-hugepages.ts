// What a libvirt domain asks of the huge page pools (pure): its <memory>, its
// page size and the NUMA node its memory belongs to. Apart from
// hugepages-plan.ts so that planning a boot (which takes hugepage kernel
// arguments from there) loads no XML parser.

import type { Problem } from '../errors.js';
import { parseCpuList } from '../formats/cpu-list.js';
import { children, hostdevSource, parseDomainXml } from '../formats/libvirt-domain.js';
import type { HostSnapshot } from '../model/snapshot.js';
import { HUGEPAGE_2M_KB as PAGE_2M_KB, pageLabel } from '../vm/hugepages.js';
import { describeMemory } from '../vm/memory.js';
import type { ReserveIntent } from './hugepages-plan.js';

/** Bytes in a libvirt <memory>/<page> unit (formatdomain: b, KB = 1000, k/KiB = 1024, …). */
const UNIT: Record<string, number> = { b: 1, bytes: 1, kb: 1e3, k: 1024, kib: 1024, mb: 1e6, m: 1024 ** 2, mib: 1024 ** 2, gb: 1e9, g: 1024 ** 3, gib: 1024 ** 3, tb: 1e12, t: 1024 ** 4, tib: 1024 ** 4 };
const kibOf = (value: string, unit: string | null): number | null => {
  const n = Number(value.trim());
  const f = UNIT[(unit ?? 'KiB').toLowerCase()];
  if (!/^\d+$/.test(value.trim()) || !f || (n * f) % 1024 !== 0) return null;
  return (n * f) / 1024;
};

/**
 * What a domain asks for: its <memory>, the page size of its
 * <memoryBacking><hugepages><page> (else 2 MiB), and the NUMA node of its
 * pinned CPUs (else of its passed GPU, else none) — a node only on a host
 * with more than one.
 */
export function domainHugepageNeed(xml: string, source: string, domain: string, snap: Pick<HostSnapshot, 'cpuTopology' | 'pci'>): { need: ReserveIntent | null; problems: Problem[] } {
  const d = parseDomainXml(xml, source).documentElement!;
  const mem = children(d, 'memory')[0];
  const sizeKb = mem ? kibOf(mem.textContent ?? '', mem.getAttribute('unit')) : null;
  if (sizeKb === null || sizeKb <= 0) return { need: null, problems: [{ code: 'E_DOMAIN_NO_MEMORY', subject: source, message: `${source} has no <memory> in whole KiB`, hint: 'fix the domain XML (virsh edit), or give the size: vfiokit hugepages reserve SIZE' }] };
  const page = children(d, 'memoryBacking').flatMap((m) => children(m, 'hugepages')).flatMap((h) => children(h, 'page'))[0];
  const pageKb = page ? kibOf(page.getAttribute('size') ?? '', page.getAttribute('unit')) : PAGE_2M_KB;
  if (pageKb === null) return { need: null, problems: [{ code: 'E_DOMAIN_NO_MEMORY', subject: source, message: `${source}: <hugepages><page size='${page?.getAttribute('size')}' unit='${page?.getAttribute('unit') ?? 'KiB'}'> is not a page size`, hint: "use <page size='2048' unit='KiB'/> or <page size='1' unit='G'/>" }] };
  const topo = snap.cpuTopology;
  let node: number | null = null;
  let how = 'no NUMA node (the global pool)';
  if (topo && topo.numaNodes.length > 1) {
    const pins = children(d, 'cputune').flatMap((t) => children(t, 'vcpupin')).flatMap((p) => parseCpuList(p.getAttribute('cpuset') ?? '') ?? []);
    const nodes = [...new Set(pins.map((c) => topo.cpus.find((x) => x.id === c)?.node ?? null))];
    const gpus = children(d, 'devices').flatMap((x) => children(x, 'hostdev')).map(hostdevSource).filter((a): a is string => Boolean(a));
    const gpu = snap.pci.find((p) => gpus.includes(p.address) && p.class.startsWith('03') && p.numaNode !== null && p.numaNode >= 0);
    if (pins.length && nodes.length === 1 && nodes[0] !== null) [node, how] = [nodes[0], `node ${nodes[0]} of its pinned CPUs`];
    else if (gpu) [node, how] = [gpu.numaNode, `node ${gpu.numaNode} of its GPU ${gpu.address}`];
  }
  return { need: { sizeKb, pageKb, node, domain, source: `domain ${domain}: <memory> ${describeMemory(sizeKb)}, ${page ? '<hugepages><page>' : 'default'} ${pageLabel(pageKb)} pages, ${how}` }, problems: [] };
}
