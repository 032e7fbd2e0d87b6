// IOMMU group analysis (pure): predicts the kernel's groups from topology and
// ACS, explains each observed group, and gives a verdict a user can act on.
//
// The prediction replays drivers/iommu/iommu.c pci_device_group() for every
// function in the kernel's probe order (each bus's functions by devfn, then
// the buses below each bridge), with pci_acs_enabled() /
// pci_acs_path_enabled() evaluated from the parsed config space:
//   A. DMA aliases: walking up, a PCIe-to-PCI bridge (or conventional bridge)
//      takes over the requester ID; if it already has a group, join it.
//   B. From there, climb while the path to the root does not have SV|RR|CR|UF
//      everywhere; the bridge reached joins/absorbs the device.
//   D. A multifunction device failing ACS joins a sibling function that also
//      fails it.
//   E. Otherwise a new group.
// Same-bus DMA alias quirks (step C) are not visible in sysfs and are not
// replayed; when the kernel disagrees with the prediction we say so.

import { acsFlagsEnabled, acsMissing } from '../model/config-space.js';
import { comparePciAddress, shortAddress, slotOf } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { acsQuirk } from './acs-quirks.js';

export type Verdict = 'isolated' | 'gpu-functions-only' | 'device-functions-only' | 'shares' | 'no-iommu';

export interface GroupMember {
  address: string;
  vendor: string;
  device: string;
  class: string;
  name: string | null;
  driver: string | null;
  role: 'endpoint' | 'bridge';
}

export interface GroupReport {
  id: number;
  devices: string[];
  members: GroupMember[];
  verdict: Verdict;
  /** One sentence: "isolated", "GPU and its own functions only", "shares with … because …". */
  explanation: string;
  /** Endpoints a user must pass along with the group's main device. */
  sharesWith: string[];
  reasons: string[];
  hasGpu: boolean;
}

export interface Prediction {
  available: boolean;
  /** Why the prediction could not be made, when unavailable. */
  reason: string | null;
  groups: string[][];
  matchesKernel: boolean | null;
  differences: string[];
}

export interface GroupsReport {
  iommuActive: boolean;
  groups: GroupReport[];
  prediction: Prediction;
}

interface AcsAnswer {
  ok: boolean;
  why: string;
}

const isGpuClass = (cls: string) => cls.startsWith('03');

export function describeKind(d: PciDevice): string {
  switch (d.caps?.pcieType) {
    case 'root-port':
      return 'root port';
    case 'downstream-port':
      return 'switch downstream port';
    case 'upstream-port':
      return 'switch upstream port';
    case 'pcie-to-pci-bridge':
      return 'PCIe-to-PCI bridge';
    case 'pci-to-pcie-bridge':
      return 'PCI-to-PCIe bridge';
    default:
      return d.isBridge ? 'bridge' : 'device';
  }
}

/** The kernel's pci_acs_enabled(dev, REQ_ACS_FLAGS), with the reason. */
export function acsEnabled(d: PciDevice): AcsAnswer {
  const a = shortAddress(d.address);
  const quirk = acsQuirk(d);
  if (quirk) return { ok: quirk.isolated, why: `${describeKind(d)} ${a} ${quirk.isolated ? 'is isolated by the kernel\'s' : 'is not isolated per the kernel\'s'} ${quirk.quirk}` };
  if (!d.caps) return { ok: false, why: `ACS of ${a} is unknown (config space not readable; run as root)` };
  if (!d.caps.pcie) return { ok: false, why: `${a} is a conventional PCI ${d.isBridge ? 'bridge' : 'device'}, which cannot isolate peers` };
  const kind = describeKind(d);
  switch (d.caps.pcieType) {
    case 'pcie-to-pci-bridge':
    case 'pci-to-pcie-bridge':
    case 'rc-event-collector':
      return { ok: false, why: `${kind} ${a} never isolates the devices behind it` };
    case 'root-port':
    case 'downstream-port':
      if (!d.caps.acs) return { ok: false, why: `${kind} ${a} has no ACS` };
      if (!acsFlagsEnabled(d.caps.acs)) return { ok: false, why: `${kind} ${a} does not enable ACS ${acsMissing(d.caps.acs).join('/')}` };
      return { ok: true, why: `${kind} ${a} enables ACS` };
    default:
      if (!d.multifunction) return { ok: true, why: `${a} is a single-function ${kind}` };
      if (!d.caps.acs) return { ok: false, why: `multifunction device ${shortAddress(slotOf(d.address))} has no ACS` };
      if (!acsFlagsEnabled(d.caps.acs)) return { ok: false, why: `multifunction device ${shortAddress(slotOf(d.address))} does not enable ACS ${acsMissing(d.caps.acs).join('/')}` };
      return { ok: true, why: `multifunction ${a} enables ACS` };
  }
}

/** Kernel probe order: a bus's functions by devfn, then each bridge's bus below. */
export function probeOrder(devices: PciDevice[]): PciDevice[] {
  const children = new Map<string | null, PciDevice[]>();
  for (const d of devices) {
    const key = d.parent ?? `root:${d.hostBridge ?? d.address.slice(0, d.address.lastIndexOf(':'))}`;
    children.set(key, [...(children.get(key) ?? []), d]);
  }
  for (const list of children.values()) list.sort((a, b) => comparePciAddress(a.address, b.address));
  const out: PciDevice[] = [];
  const walk = (list: PciDevice[]) => {
    out.push(...list);
    for (const d of list) {
      const below = children.get(d.address);
      if (below) walk(below);
    }
  };
  const roots = [...children.keys()].filter((k): k is string => k !== null && k.startsWith('root:')).sort();
  for (const r of roots) walk(children.get(r)!);
  return out;
}

interface SimResult {
  groupOf: Map<string, number>;
  reasons: Map<number, Set<string>>;
}

/** Replay pci_device_group() over all functions. */
export function simulateGroups(devices: PciDevice[]): SimResult {
  const byAddr = new Map(devices.map((d) => [d.address, d]));
  const groupOf = new Map<string, number>();
  const reasons = new Map<number, Set<string>>();
  let next = 0;
  const acsCache = new Map<string, AcsAnswer>();
  const acs = (d: PciDevice) => {
    let a = acsCache.get(d.address);
    if (!a) acsCache.set(d.address, (a = acsEnabled(d)));
    return a;
  };
  const note = (g: number, why: string) => {
    if (!reasons.has(g)) reasons.set(g, new Set());
    reasons.get(g)!.add(why);
  };
  const parentOf = (d: PciDevice) => (d.parent ? byAddr.get(d.parent) ?? null : null);
  /** pci_acs_path_enabled(start, NULL): first failing bridge from start to the root. */
  const pathFailure = (start: PciDevice): AcsAnswer | null => {
    for (let p: PciDevice | null = start; p; p = parentOf(p)) {
      const a = acs(p);
      if (!a.ok) return a;
    }
    return null;
  };

  for (const dev of probeOrder(devices)) {
    // Step A: DMA alias walk.
    let pdev = dev;
    let joined: number | undefined;
    let aliasWhy: string | null = null;
    for (let b = parentOf(dev); b && joined === undefined; b = parentOf(b)) {
      const t = b.caps?.pcieType;
      if (b.caps?.pcie && (t === 'root-port' || t === 'upstream-port' || t === 'downstream-port')) continue;
      if (b.caps?.pcie && t !== 'pcie-to-pci-bridge' && t !== 'pci-to-pcie-bridge') continue;
      pdev = b;
      aliasWhy = `devices behind ${describeKind(b)} ${shortAddress(b.address)} share its requester ID`;
      joined = groupOf.get(b.address);
    }
    if (joined !== undefined) {
      groupOf.set(dev.address, joined);
      note(joined, aliasWhy!);
      continue;
    }
    // Step B: climb while ACS is missing on the path to the root.
    let climbWhy: string | null = null;
    for (let self = parentOf(pdev); self; self = parentOf(self)) {
      const fail = pathFailure(self);
      if (!fail) break;
      climbWhy = fail.why;
      pdev = self;
      const g = groupOf.get(self.address);
      if (g !== undefined) {
        joined = g;
        break;
      }
    }
    if (joined !== undefined) {
      groupOf.set(dev.address, joined);
      note(joined, climbWhy!);
      continue;
    }
    // Step D: multifunction siblings without ACS.
    const own = acs(pdev);
    if (pdev.multifunction && !own.ok) {
      for (const tmp of devices) {
        if (tmp === pdev || slotOf(tmp.address) !== slotOf(pdev.address) || acs(tmp).ok) continue;
        const g = groupOf.get(tmp.address);
        if (g !== undefined) {
          joined = g;
          break;
        }
      }
    }
    if (joined !== undefined) {
      groupOf.set(dev.address, joined);
      note(joined, own.why);
      if (climbWhy) note(joined, climbWhy);
      continue;
    }
    // Step E: a new group.
    const g = next++;
    groupOf.set(dev.address, g);
    if (aliasWhy) note(g, aliasWhy);
    if (climbWhy) note(g, climbWhy);
  }
  return { groupOf, reasons };
}

function partitionKey(groups: string[][]): string[] {
  return groups.map((g) => [...g].sort(comparePciAddress).join(' ')).sort();
}

export function predictGroups(snapshot: HostSnapshot): { prediction: Prediction; sim: SimResult | null } {
  const kernelGrouped = snapshot.pci.filter((d) => d.iommuGroup !== null);
  if (!snapshot.iommu.active) {
    return { prediction: { available: false, reason: 'the IOMMU is not active, so the kernel made no groups to compare with', groups: [], matchesKernel: null, differences: [] }, sim: null };
  }
  const unknown = snapshot.pci.filter((d) => !d.caps);
  if (unknown.length) {
    return {
      prediction: {
        available: false,
        reason: `config space of ${unknown.length} device(s) (e.g. ${shortAddress(unknown[0].address)}) is not readable; run as root to predict groups from ACS`,
        groups: [],
        matchesKernel: null,
        differences: [],
      },
      sim: null,
    };
  }
  const sim = simulateGroups(snapshot.pci);
  const inKernel = new Set(kernelGrouped.map((d) => d.address));
  const predicted = new Map<number, string[]>();
  for (const [addr, g] of sim.groupOf) {
    if (!inKernel.has(addr)) continue; // functions the IOMMU does not cover (e.g. the AMD IOMMU itself)
    predicted.set(g, [...(predicted.get(g) ?? []), addr]);
  }
  const groups = [...predicted.values()].map((g) => g.sort(comparePciAddress)).sort((a, b) => comparePciAddress(a[0], b[0]));
  const kernel = new Map<number, string[]>();
  for (const d of kernelGrouped) kernel.set(d.iommuGroup!, [...(kernel.get(d.iommuGroup!) ?? []), d.address]);
  const pk = new Set(partitionKey(groups));
  const kk = new Set(partitionKey([...kernel.values()]));
  const differences: string[] = [];
  for (const k of kk) if (!pk.has(k)) differences.push(`kernel groups {${k.split(' ').map(shortAddress).join(', ')}} together; predicted differently`);
  for (const k of pk) if (!kk.has(k)) differences.push(`predicted {${k.split(' ').map(shortAddress).join(', ')}} as one group; the kernel differs`);
  const matches = differences.length === 0;
  return {
    prediction: {
      available: true,
      reason: matches
        ? null
        : 'the kernel applied something not visible in sysfs: a device-specific ACS or DMA-alias quirk (drivers/pci/quirks.c), an ACS override patch (pcie_acs_override=), or pci=config_acs=',
      groups,
      matchesKernel: matches,
      differences,
    },
    sim,
  };
}

export function analyzeGroups(snapshot: HostSnapshot, names?: (d: PciDevice) => string | null): GroupsReport {
  const byAddr = new Map(snapshot.pci.map((d) => [d.address, d]));
  const { prediction, sim } = predictGroups(snapshot);
  const groups: GroupReport[] = [];
  for (const g of snapshot.iommu.groups) {
    const members: GroupMember[] = g.devices.map((a) => {
      const d = byAddr.get(a);
      return {
        address: a,
        vendor: d?.vendor ?? '????',
        device: d?.device ?? '????',
        class: d?.class ?? '000000',
        name: d ? (names ? names(d) : d.deviceName) : null,
        driver: d?.driver ?? null,
        role: d?.isBridge ? 'bridge' : 'endpoint',
      };
    });
    const endpoints = members.filter((m) => m.role === 'endpoint');
    const bridges = members.filter((m) => m.role === 'bridge');
    const hasGpu = endpoints.some((m) => isGpuClass(m.class));
    const slots = new Set(endpoints.map((m) => slotOf(m.address)));
    const gpuSlot = endpoints.find((m) => isGpuClass(m.class));
    const main = gpuSlot ?? endpoints[0];
    const sharesWith = main ? endpoints.filter((m) => slotOf(m.address) !== slotOf(main.address)).map((m) => m.address) : [];
    const reasons = explainGroup(g.devices, byAddr, sim);
    const bridgeNote = bridges.length ? ` (with ${bridges.map((b) => shortAddress(b.address)).join(', ')}: bridges stay on the host and do not block passthrough)` : '';
    let verdict: Verdict;
    let explanation: string;
    if (endpoints.length <= 1) {
      verdict = 'isolated';
      explanation = `isolated${bridgeNote}`;
    } else if (slots.size === 1) {
      verdict = hasGpu ? 'gpu-functions-only' : 'device-functions-only';
      explanation = `${hasGpu ? 'GPU' : 'one device'} and its own functions only${bridgeNote}`;
    } else {
      verdict = 'shares';
      explanation = `shares with ${sharesWith.map(shortAddress).join(', ')} because ${reasons.length ? reasons.join('; ') : 'of a reason not visible in sysfs (a kernel quirk)'}`;
    }
    groups.push({ id: g.id, devices: g.devices, members, verdict, explanation, sharesWith, reasons, hasGpu });
  }
  return { iommuActive: snapshot.iommu.active, groups, prediction };
}

function explainGroup(addrs: string[], byAddr: Map<string, PciDevice>, sim: SimResult | null): string[] {
  if (sim) {
    const ids = new Set(addrs.map((a) => sim.groupOf.get(a)).filter((x) => x !== undefined));
    const out = new Set<string>();
    for (const id of ids) for (const r of sim.reasons.get(id!) ?? []) out.add(r);
    if (out.size) return [...out];
  }
  // Without a simulation, say what topology alone shows.
  const out = new Set<string>();
  for (const a of addrs) {
    const d = byAddr.get(a);
    if (!d) continue;
    for (const up of d.upstream) {
      const b = byAddr.get(up);
      if (b && !b.caps) out.add(`ACS of ${shortAddress(up)} is unknown (config space not readable; run as root)`);
    }
  }
  return [...out];
}
