// IOMMU group analysis (pure): predicts the kernel's groups from topology and
// ACS, explains each observed group, and gives a verdict a user can act on.
//
// The prediction replays drivers/iommu/iommu.c pci_device_group() for every
// function the IOMMU driver probes, in the kernel's probe order (each bus's
// functions by devfn, then the buses below each bridge: pci_bus_add_devices()),
// with pci_acs_enabled() / pci_acs_path_enabled() (drivers/pci/pci.c)
// evaluated from the parsed config space and the kernel's device quirks
// (acs-quirks.ts):
//   A. DMA aliases (pci_for_each_dma_alias, drivers/pci/search.c): walking up,
//      a PCIe-to-PCI bridge (or conventional bridge) takes over the requester
//      ID; if it already has a group, join it.
//   B. From there, climb while the path to the root does not have SV|RR|CR|UF
//      everywhere; the bridge reached joins/absorbs the device.
//   C. Same-bus DMA alias quirks (get_pci_alias_group): join an alias's group.
//   D. A multifunction device failing ACS joins a sibling function that also
//      fails it (get_pci_function_alias_group).
//   E. Otherwise a new group.
// This is the algorithm of the kernels in use through 6.x; what it cannot see
// (aliases the AMD IOMMU driver adds from IVRS, ACS override patches,
// pci=config_acs=) is named when the kernel disagrees.

import { acsFlagsEnabled, acsMissing } from '../model/config-space.js';
import { comparePciAddress, shortAddress, slotOf } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { acsQuirk, dmaAliases, isXlateRoot, type QuirkContext } from './acs-quirks.js';

export type Verdict = 'isolated' | 'gpu-functions-only' | 'device-functions-only' | 'shares' | 'no-iommu';

interface GroupMember {
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

/**
 * Functions that are never passed through and never block a group: PCI
 * bridges (driver pcieport is driver_managed_dma) and host bridges (class
 * 0600, normally without a driver). ISA/LPC bridges (0601) are real chipset
 * endpoints and are not included.
 */
export function isBridgeRole(d: Pick<PciDevice, 'isBridge' | 'class'>): boolean {
  return d.isBridge || d.class.startsWith('0600');
}

/**
 * PCI classes (base+sub) of chipset functions the host itself relies on:
 * never passed through without an explicit flag.
 */
const CHIPSET_CLASSES: Record<string, string> = {
  '0601': 'an ISA/LPC bridge',
  '0c05': 'an SMBus controller',
  '0580': 'a memory controller',
  '0800': 'an interrupt controller',
  '0801': 'a DMA controller',
  '0802': 'a system timer',
  '0803': 'a real-time clock',
  '0806': 'an IOMMU',
};

/** What kind of chipset function a class code (6 hex digits) is, or null. */
export function chipsetFunctionKind(cls: string): string | null {
  return CHIPSET_CLASSES[cls.slice(0, 4)] ?? null;
}

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
function acsEnabled(d: PciDevice, ctx: QuirkContext = { iommuVendor: null }): AcsAnswer {
  const a = shortAddress(d.address);
  const quirk = acsQuirk(d, ctx);
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
function probeOrder(devices: PciDevice[]): PciDevice[] {
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

interface SimOptions {
  /** The active IOMMU's vendor (the AMD southbridge ACS quirk needs an AMD IOMMU). */
  iommuVendor?: 'intel' | 'amd' | null;
  /**
   * Functions the IOMMU driver probes. The kernel calls pci_device_group()
   * only for those (AMD-Vi skips the IOMMU's own function and what IVRS does
   * not describe; VT-d what no DMAR scope covers): the others never hold a
   * group another device could join. Default: every function.
   */
  covered?: Set<string>;
}

/** Replay pci_device_group() (drivers/iommu/iommu.c) over all probed functions, in probe order. */
function simulateGroups(devices: PciDevice[], opts: SimOptions = {}): SimResult {
  const ctx = { iommuVendor: opts.iommuVendor ?? null };
  const byAddr = new Map(devices.map((d) => [d.address, d]));
  const order = probeOrder(devices);
  // Aliases and sibling functions are on the same bus: scan only that bus (in probe order).
  const onBus = new Map<string, PciDevice[]>();
  const groupOf = new Map<string, number>();
  const reasons = new Map<number, Set<string>>();
  let next = 0;
  const acsCache = new Map<string, AcsAnswer>();
  const acs = (d: PciDevice) => {
    let a = acsCache.get(d.address);
    if (!a) acsCache.set(d.address, (a = acsEnabled(d, ctx)));
    return a;
  };
  const note = (g: number, why: string) => {
    if (!reasons.has(g)) reasons.set(g, new Set());
    reasons.get(g)!.add(why);
  };
  const parentOf = (d: PciDevice) => (d.parent ? byAddr.get(d.parent) ?? null : null);
  const busKeys = new Map<string, string>();
  const busKey = (d: PciDevice) => {
    let k = busKeys.get(d.address);
    if (k === undefined) busKeys.set(d.address, (k = `${d.hostBridge ?? ''}|${d.address.slice(0, d.address.lastIndexOf(':'))}`));
    return k;
  };
  const devfnOf = (d: PciDevice) => (parseInt(d.address.slice(-4, -2), 16) << 3) | parseInt(d.address.slice(-1), 10);
  const aliasCache = new Map<string, ReturnType<typeof dmaAliases>>();
  const aliasesOf = (d: PciDevice) => {
    if (!aliasCache.has(d.address)) aliasCache.set(d.address, dmaAliases(d));
    return aliasCache.get(d.address)!;
  };
  for (const d of order) {
    const list = onBus.get(busKey(d));
    if (list) list.push(d);
    else onBus.set(busKey(d), [d]);
  }
  /** pci_devs_are_dma_aliases(): same bus, and either one's dma_alias_mask holds the other's devfn. */
  const areAliases = (a: PciDevice, b: PciDevice) =>
    busKey(a) === busKey(b) && (aliasesOf(a)?.devfns.includes(devfnOf(b)) === true || aliasesOf(b)?.devfns.includes(devfnOf(a)) === true);
  const aliasWhyOf = (a: PciDevice, b: PciDevice) => {
    const q = aliasesOf(a)?.devfns.includes(devfnOf(b)) ? [a, aliasesOf(a)!.quirk] : [b, aliasesOf(b)!.quirk];
    return `${shortAddress((q[0] as PciDevice).address)} uses another function's requester ID for DMA (kernel DMA alias quirk ${q[1] as string}), so ${shortAddress(a.address)} and ${shortAddress(b.address)} cannot be told apart`;
  };
  /** pci_acs_path_enabled(start, NULL): first failing bridge from start to the root. */
  const pathFailure = (start: PciDevice): AcsAnswer | null => {
    for (let p: PciDevice | null = start; p; p = parentOf(p)) {
      const a = acs(p);
      if (!a.ok) return a;
    }
    return null;
  };
  interface Found {
    group: number;
    why: string[];
  }
  /** get_pci_alias_group(): the device's own group, else that of a same-bus DMA alias (recursively). */
  const aliasGroup = (p: PciDevice, seen: Set<number>): Found | undefined => {
    if (seen.has(devfnOf(p))) return undefined;
    seen.add(devfnOf(p));
    const own = groupOf.get(p.address);
    if (own !== undefined) return { group: own, why: [] };
    for (const tmp of onBus.get(busKey(p)) ?? []) {
      if (tmp === p || !areAliases(p, tmp)) continue;
      const f = aliasGroup(tmp, seen) ?? functionAliasGroup(tmp, seen);
      if (f) return { group: f.group, why: [aliasWhyOf(p, tmp), ...f.why] };
    }
    return undefined;
  };
  /** get_pci_function_alias_group(): a non-isolated multifunction device joins a non-isolated sibling. */
  const functionAliasGroup = (p: PciDevice, seen: Set<number>): Found | undefined => {
    const own = acs(p);
    if (!p.multifunction || own.ok) return undefined;
    for (const tmp of onBus.get(busKey(p)) ?? []) {
      if (tmp === p || slotOf(tmp.address) !== slotOf(p.address) || acs(tmp).ok) continue;
      const f = aliasGroup(tmp, seen);
      if (f) return { group: f.group, why: [`the functions of ${shortAddress(slotOf(p.address))} are not isolated from each other (${own.why})`, ...f.why] };
    }
    return undefined;
  };

  for (const dev of order) {
    if (opts.covered && !opts.covered.has(dev.address)) continue;
    // Step A: pci_for_each_dma_alias() (drivers/pci/search.c) from the device
    // up to the root bus; get_pci_alias_or_group() keeps the last device seen
    // and stops at one that already has a group. Root and switch ports pass
    // requester IDs through; PCIe-to-PCI bridges, PCI-to-PCIe bridges and
    // conventional bridges take them over; an XLATE_ROOT bridge ends the walk.
    let pdev = dev;
    let joined: number | undefined;
    let aliasWhy: string | null = null;
    for (let b = parentOf(dev); b && joined === undefined; b = parentOf(b)) {
      if (isXlateRoot(b)) break;
      const t = b.caps?.pcieType;
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
    // Step C: same-bus DMA aliases (get_pci_alias_group); step D: non-isolated
    // functions of a multifunction device (get_pci_function_alias_group). One
    // devfn bitmap is shared by both, as in the kernel.
    const seen = new Set<number>();
    const found = aliasGroup(pdev, seen) ?? functionAliasGroup(pdev, seen);
    if (found) {
      groupOf.set(dev.address, found.group);
      for (const w of found.why) note(found.group, w);
      if (aliasWhy) note(found.group, aliasWhy);
      if (climbWhy) note(found.group, climbWhy);
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

/** Why the kernel can differ from the replay: what the command line shows first, then what sysfs cannot show. */
function mismatchReason(cmdline: string | null): string {
  const args = (cmdline ?? '').split(/\s+/);
  const override = args.find((a) => a.startsWith('pcie_acs_override='));
  if (override) {
    return `the kernel command line has ${override}: the out-of-tree ACS override patch declares devices isolated whatever their hardware does, so the kernel's groups cannot be predicted from config space`;
  }
  const acsParam = args.find((a) => /^pci=.*\b(config_acs|disable_acs_redir)=/.test(a));
  if (acsParam) return `the kernel command line has ${acsParam}, which changes ACS controls after boot-time enumeration; the replay reads the controls as they are now`;
  return 'the kernel used something not visible in sysfs: a device quirk vfiokit does not embed (drivers/pci/quirks.c), DMA aliases the IOMMU driver takes from firmware (AMD IVRS alias entries), an Intel PCH ACS quirk whose boot-time enable step failed, or an out-of-tree ACS override patch built into the kernel';
}

function partitionKey(groups: string[][]): string[] {
  return groups.map((g) => [...g].sort(comparePciAddress).join(' ')).sort();
}

function predictGroups(snapshot: HostSnapshot): { prediction: Prediction; sim: SimResult | null } {
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
  const inKernel = new Set(kernelGrouped.map((d) => d.address));
  const sim = simulateGroups(snapshot.pci, { iommuVendor: snapshot.iommu.vendor, covered: inKernel });
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
      reason: matches ? null : mismatchReason(snapshot.kernel.cmdline),
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
        role: d && isBridgeRole(d) ? 'bridge' : 'endpoint',
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
    if (endpoints.length === 0) {
      verdict = 'isolated';
      explanation = `bridges only (${bridges.map((b) => shortAddress(b.address)).join(', ')}); nothing to pass through`;
    } else if (endpoints.length === 1) {
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

/** "X (a)", "X (b)" → "X (a; b)": one reason said once, with every detail. */
function mergeSameReason(reasons: string[]): string[] {
  const out: { head: string; details: string[] }[] = [];
  for (const r of reasons) {
    const m = /^(.*?) \((.*)\)$/s.exec(r);
    const head = m ? m[1] : r;
    const prev = out.find((o) => o.head === head);
    if (prev && m) prev.details.push(m[2]);
    else if (!prev) out.push({ head, details: m ? [m[2]] : [] });
  }
  return out.map((o) => (o.details.length ? `${o.head} (${o.details.join('; ')})` : o.head));
}

function explainGroup(addrs: string[], byAddr: Map<string, PciDevice>, sim: SimResult | null): string[] {
  if (sim) {
    const ids = new Set(addrs.map((a) => sim.groupOf.get(a)).filter((x) => x !== undefined));
    const out = new Set<string>();
    for (const id of ids) for (const r of sim.reasons.get(id!) ?? []) out.add(r);
    // Drop a reason already quoted inside a longer one.
    const all = [...out];
    const kept = all.filter((r) => !all.some((o) => o !== r && o.includes(r)));
    if (kept.length) return mergeSameReason(kept);
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
