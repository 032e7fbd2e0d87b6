// vCPU pinning policy (pure). From the host's topology (snapshot.cpuTopology)
// choose host CPUs for the guest's vCPUs:
//   - whole cores: SMT siblings stay together and map to guest thread pairs;
//   - the core holding the lowest online CPU (core 0) and its siblings stay
//     with the host; QEMU's emulator and I/O threads are pinned there;
//   - efficiency cores of hybrid CPUs only when performance cores run out;
//   - prefer the GPU's NUMA node (numa_node / local_cpulist), then one L3
//     domain that fits the whole guest, then a domain not shared with core 0;
//   - the guest <topology> (sockets/dies/cores/threads) mirrors the cores
//     chosen, so the guest scheduler sees the real sibling and cache layout.

import type { Problem } from '../errors.js';
import type { CpuTopology, LogicalCpu, PciDevice } from '../model/snapshot.js';
import { formatCpuList, parseCpuList } from '../formats/cpu-list.js';

export interface GuestTopology {
  sockets: number;
  dies: number;
  cores: number;
  threads: number;
}

interface PinRequest {
  topology: CpuTopology;
  /** Requested vCPU count; null = choose (the best domain, at most half the host's threads). */
  vcpus: number | null;
  /** The passed-through device's NUMA node (null when unknown or -1). */
  preferNode: number | null;
  /** The device's local_cpulist when it is a strict subset of the online CPUs. */
  preferCpus: number[] | null;
}

export interface PinPlan {
  vcpus: number;
  /** vcpuPins[i] = the host CPU guest vCPU i runs on. */
  vcpuPins: number[];
  /** Host CPUs left to the host (core 0 and its siblings): emulatorpin and iothreadpin. */
  hostCpus: number[];
  topology: GuestTopology;
  /** NUMA nodes the vCPUs run on. */
  nodes: number[];
  /** Number of L3 domains the vCPUs span. */
  l3Domains: number;
  /** What was chosen and why, one line each. */
  notes: string[];
  warnings: string[];
}

interface Core {
  cpus: number[];
  package: number | null;
  node: number | null;
  l3: string;
  kind: LogicalCpu['kind'];
}

interface Domain {
  key: string;
  cores: Core[];
  node: number | null;
  package: number | null;
  threads: number;
  sharesHostL3: boolean;
}

/** Group online CPUs into cores by their sibling lists. */
export function coresOf(t: CpuTopology): Core[] {
  const online = new Set(t.online);
  const byKey = new Map<string, Core>();
  for (const c of t.cpus) {
    const sib = c.siblings.filter((x) => online.has(x));
    const cpus = sib.length ? sib : [c.id];
    const key = cpus.join(',');
    if (byKey.has(key)) continue;
    byKey.set(key, { cpus, package: c.package, node: c.node, l3: c.l3 ? formatCpuList(c.l3) : `package ${c.package ?? '?'}`, kind: c.kind });
  }
  return [...byKey.values()].sort((a, b) => a.cpus[0] - b.cpus[0]);
}

function domainsOf(cores: Core[], hostL3: string | null): Domain[] {
  const map = new Map<string, Domain>();
  for (const c of cores) {
    const key = `${c.kind ?? ''}|${c.l3}`;
    let d = map.get(key);
    if (!d) {
      d = { key, cores: [], node: c.node, package: c.package, threads: 0, sharesHostL3: c.l3 === hostL3 };
      map.set(key, d);
    }
    d.cores.push(c);
    d.threads += c.cpus.length;
  }
  return [...map.values()];
}

const countBy = <T>(xs: T[], f: (x: T) => string) => {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(f(x), [...(m.get(f(x)) ?? []), x]);
  return m;
};

/** Guest topology for the chosen cores (threads taken per core in order). */
export function guestTopology(chosen: { core: Core; take: number }[]): GuestTopology {
  const vcpus = chosen.reduce((n, c) => n + c.take, 0);
  const flat: GuestTopology = { sockets: 1, dies: 1, cores: vcpus, threads: 1 };
  if (!chosen.length) return flat;
  const threads = chosen[0].take;
  if (chosen.some((c) => c.take !== threads || c.take !== c.core.cpus.length)) return flat;
  const sockets = countBy(chosen, (c) => String(c.core.package));
  const diesPer = [...sockets.values()].map((cs) => countBy(cs, (c) => c.core.l3));
  const dies = diesPer[0].size;
  if (diesPer.some((d) => d.size !== dies)) return { ...flat, cores: vcpus / threads, threads };
  const coresPerDie = [...diesPer[0].values()][0].length;
  if (diesPer.some((d) => [...d.values()].some((cs) => cs.length !== coresPerDie))) return { ...flat, cores: vcpus / threads, threads };
  const t = { sockets: sockets.size, dies, cores: coresPerDie, threads };
  return t.sockets * t.dies * t.cores * t.threads === vcpus ? t : { ...flat, cores: vcpus / threads, threads };
}

/** Where the passed-through device wants the vCPUs: its NUMA node, else its local CPUs when they are a strict subset of the online ones. */
export function devicePreference(dev: Pick<PciDevice, 'numaNode' | 'localCpus'> | undefined, topo: CpuTopology): Pick<PinRequest, 'preferNode' | 'preferCpus'> {
  const preferNode = dev && dev.numaNode !== null && dev.numaNode >= 0 ? dev.numaNode : null;
  let preferCpus: number[] | null = null;
  if (dev?.localCpus) {
    const l = parseCpuList(dev.localCpus);
    if (l && l.length < topo.online.length && l.some((x) => topo.online.includes(x))) preferCpus = l;
  }
  return { preferNode, preferCpus };
}

export function planPinning(req: PinRequest): { plan: PinPlan | null; problems: Problem[] } {
  const t = req.topology;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const cores = coresOf(t);
  if (!cores.length) return { plan: null, problems: [{ code: 'E_PIN_NO_CPUS', subject: 'cpu', message: 'the CPU topology lists no online CPUs', hint: 'use --pin none' }] };
  const hostCore = cores[0];
  const hostCpus = hostCore.cpus;
  const hostL3 = hostCore.l3;
  const rest = cores.slice(1);
  const perf = rest.filter((c) => c.kind !== 'efficiency');
  const eff = rest.filter((c) => c.kind === 'efficiency');
  const threadsIn = (cs: Core[]) => cs.reduce((n, c) => n + c.cpus.length, 0);

  const inPreferred = (d: Domain): boolean => {
    if (req.preferNode !== null) return d.node === req.preferNode;
    if (req.preferCpus) {
      const s = new Set(req.preferCpus);
      return d.cores.every((c) => c.cpus.every((x) => s.has(x)));
    }
    return true;
  };
  const rank = (ds: Domain[], want: number) =>
    [...ds].sort(
      (a, b) =>
        Number(!inPreferred(a)) - Number(!inPreferred(b)) ||
        Number(a.threads < want) - Number(b.threads < want) ||
        Number(a.sharesHostL3) - Number(b.sharesHostL3) ||
        a.cores[0].cpus[0] - b.cores[0].cpus[0],
    );

  const perfDomains = domainsOf(perf, hostL3);
  const effDomains = domainsOf(eff, hostL3);
  let vcpus = req.vcpus;
  if (vcpus === null) {
    const best = rank(perfDomains.length ? perfDomains : effDomains, 0)[0];
    const smt = Math.max(1, ...perf.map((c) => c.cpus.length));
    const half = Math.max(1, Math.floor(t.online.length / 2 / smt) * smt);
    vcpus = Math.max(1, Math.min(best ? best.threads : 1, half));
    notes.push(`${vcpus} vCPUs chosen: ${best && best.threads <= half ? `the ${best.threads} threads of one L3 domain${best.node !== null && t.numaNodes.length > 1 ? ` on NUMA node ${best.node}` : ''} without core 0` : 'half the host threads'} (override with --vcpus)`);
  }
  const available = threadsIn(perf) + threadsIn(eff);
  if (vcpus > available) {
    problems.push({
      code: 'E_PIN_TOO_MANY',
      subject: 'vcpus',
      message: `${vcpus} vCPUs cannot be pinned: leaving core 0 (CPU ${formatCpuList(hostCpus)}) to the host and QEMU's own threads leaves ${available} host threads`,
      hint: `use --vcpus ${available} or fewer, or --pin none to let the host scheduler place vCPUs`,
    });
    return { plan: null, problems };
  }

  // Fill from ranked performance domains first; efficiency cores only when they run out.
  const order = [...rank(perfDomains, vcpus), ...rank(effDomains, vcpus)];
  const chosen: { core: Core; take: number; domain: Domain }[] = [];
  let left = vcpus;
  for (const d of order) {
    for (const c of d.cores) {
      if (left <= 0) break;
      const take = Math.min(left, c.cpus.length);
      chosen.push({ core: c, take, domain: d });
      left -= take;
    }
    if (left <= 0) break;
  }
  // Keep packages, then domains contiguous so guest sockets/dies are contiguous vCPU ranges.
  const pkgOrder = [...new Set(chosen.map((c) => String(c.core.package)))];
  const domOrder = [...new Set(chosen.map((c) => c.domain.key))];
  chosen.sort((a, b) => pkgOrder.indexOf(String(a.core.package)) - pkgOrder.indexOf(String(b.core.package)) || domOrder.indexOf(a.domain.key) - domOrder.indexOf(b.domain.key) || a.core.cpus[0] - b.core.cpus[0]);

  const vcpuPins = chosen.flatMap((c) => c.core.cpus.slice(0, c.take));
  const usedDomains = [...new Set(chosen.map((c) => c.domain))];
  const nodes = [...new Set(chosen.map((c) => c.core.node).filter((n): n is number => n !== null))].sort((a, b) => a - b);
  const topology = guestTopology(chosen);

  const partial = chosen.filter((c) => c.take < c.core.cpus.length);
  if (partial.length) warnings.push(`${vcpus} vCPUs do not fill whole cores: CPU ${formatCpuList(partial.flatMap((c) => c.core.cpus.slice(c.take)))} (sibling of a pinned vCPU) stays with the host; an even vCPU count keeps SMT pairs whole`);
  if (chosen.some((c) => c.core.kind === 'efficiency')) warnings.push(`not enough performance cores: ${chosen.filter((c) => c.core.kind === 'efficiency').length} efficiency core(s) (CPU ${formatCpuList(chosen.filter((c) => c.core.kind === 'efficiency').flatMap((c) => c.core.cpus))}) run vCPUs, which makes the guest's cores uneven`);
  if (usedDomains.length > 1) warnings.push(`the vCPUs span ${usedDomains.length} L3 cache domains (${usedDomains.map((d) => d.cores[0].l3).join(' | ')}); fewer vCPUs would keep the guest on one`);
  if (req.preferNode !== null && nodes.some((n) => n !== req.preferNode)) warnings.push(`some vCPUs run outside NUMA node ${req.preferNode}, where the GPU is attached`);
  if (req.preferNode === null && req.preferCpus && !vcpuPins.every((x) => req.preferCpus!.includes(x))) warnings.push(`some vCPUs run outside the GPU's local CPUs (${formatCpuList(req.preferCpus)})`);

  notes.push(
    `vCPUs 0-${vcpus - 1} → host CPU ${formatCpuList(vcpuPins)} (${chosen.length} core${chosen.length === 1 ? '' : 's'}${usedDomains.length === 1 ? `, one L3 domain ${usedDomains[0].cores[0].l3}` : ''}${nodes.length === 1 && t.numaNodes.length > 1 ? `, NUMA node ${nodes[0]}` : ''})`,
    `emulator and I/O threads → host CPU ${formatCpuList(hostCpus)} (core 0, left to the host)`,
    `guest topology: ${topology.sockets} socket(s) × ${topology.dies} die(s) × ${topology.cores} core(s) × ${topology.threads} thread(s)`,
  );
  if (t.hybrid) notes.push(`hybrid CPU: efficiency cores (CPU ${formatCpuList(t.hybrid.efficiency)}) are ${chosen.some((c) => c.core.kind === 'efficiency') ? 'used only for the remainder' : 'left to the host'}`);
  return { plan: { vcpus, vcpuPins, hostCpus, topology, nodes, l3Domains: usedDomains.length, notes, warnings }, problems };
}
