// Pure comparisons between what vfiokit printed and what the guest kernel
// listed with plain shell (lab_listing). Each returns a list of differences;
// empty means they agree exactly.

import type { GuestListing } from './guest-script.js';

interface InspectLike {
  iommu?: { active?: boolean; vendor?: string | null; groups?: { id: number; devices: string[] }[] };
  pci?: { address: string; vendor: string; device: string; class: string; driver: string | null; iommuGroup: number | null; driverOverride?: string | null }[];
}

interface GroupsLike {
  iommuActive?: boolean;
  groups?: { id: number; devices: string[]; members?: { address: string; driver: string | null }[] }[];
  prediction?: { available?: boolean; matchesKernel?: boolean | null; differences?: string[] };
}

function fmtGroups(m: Map<number, string[]>): string {
  return [...m.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([g, d]) => `${g}:[${d.join(',')}]`)
    .join(' ');
}

export function compareGroupSets(label: string, got: { id: number; devices: string[] }[], kernel: GuestListing['groups']): string[] {
  const diffs: string[] = [];
  const mine = new Map<number, string[]>();
  for (const g of got) {
    if (mine.has(g.id)) diffs.push(`${label}: group ${g.id} listed twice`);
    mine.set(g.id, [...g.devices].sort());
  }
  for (const [id, devs] of kernel) {
    const m = mine.get(id);
    if (!m) diffs.push(`${label}: kernel group ${id} [${devs.join(',')}] missing`);
    else if (m.join(',') !== devs.join(',')) diffs.push(`${label}: group ${id} is [${m.join(',')}], kernel says [${devs.join(',')}]`);
  }
  for (const [id, devs] of mine) if (!kernel.has(id)) diffs.push(`${label}: group ${id} [${devs.join(',')}] does not exist in the kernel`);
  if (diffs.length > 6) return [...diffs.slice(0, 6), `… ${diffs.length - 6} more; vfiokit: ${fmtGroups(mine)}; kernel: ${fmtGroups(kernel)}`];
  return diffs;
}

/** `vfiokit inspect --json` against the kernel listing: every function, its ids, driver, group; and the group table. */
export function compareInspect(inspect: InspectLike, k: GuestListing): string[] {
  const diffs: string[] = [];
  const pci = inspect.pci ?? [];
  const seen = new Set<string>();
  for (const d of pci) {
    seen.add(d.address);
    const kd = k.devices.get(d.address);
    if (!kd) {
      diffs.push(`inspect lists ${d.address}, which is not in /sys/bus/pci/devices`);
      continue;
    }
    const fields: [string, unknown, unknown][] = [
      ['vendor', d.vendor, kd.vendor],
      ['device', d.device, kd.device],
      ['class', d.class, kd.class],
      ['driver', d.driver, kd.driver],
      ['iommuGroup', d.iommuGroup, kd.group],
      ['driverOverride', d.driverOverride ?? null, kd.driverOverride],
    ];
    for (const [f, mine, theirs] of fields) if (mine !== theirs) diffs.push(`inspect ${d.address} ${f}=${JSON.stringify(mine)}, kernel says ${JSON.stringify(theirs)}`);
  }
  for (const a of k.devices.keys()) if (!seen.has(a)) diffs.push(`inspect is missing ${a}`);
  diffs.push(...compareGroupSets('inspect iommu.groups', inspect.iommu?.groups ?? [], k.groups));
  const active = k.groups.size > 0;
  if (inspect.iommu?.active !== active) diffs.push(`inspect iommu.active=${inspect.iommu?.active}, kernel has ${k.groups.size} groups`);
  return diffs;
}

/** `vfiokit groups --json` against the kernel listing: the groups, their members and members' drivers. */
export function compareGroups(groups: GroupsLike, k: GuestListing): string[] {
  const diffs: string[] = [];
  const gs = groups.groups ?? [];
  diffs.push(...compareGroupSets('groups', gs, k.groups));
  for (const g of gs) {
    for (const m of g.members ?? []) {
      const kd = k.devices.get(m.address);
      if (!kd) diffs.push(`groups: member ${m.address} of group ${g.id} does not exist`);
      else if (kd.driver !== m.driver) diffs.push(`groups: ${m.address} driver=${JSON.stringify(m.driver)}, kernel says ${JSON.stringify(kd.driver)}`);
      else if (kd.group !== g.id) diffs.push(`groups: ${m.address} shown in group ${g.id}, kernel says ${kd.group}`);
    }
    const memberAddrs = (g.members ?? []).map((m) => m.address).sort().join(',');
    if (g.members && memberAddrs !== [...g.devices].sort().join(',')) diffs.push(`groups: group ${g.id} members [${memberAddrs}] differ from its devices [${g.devices.join(',')}]`);
  }
  if (groups.iommuActive !== k.groups.size > 0) diffs.push(`groups iommuActive=${groups.iommuActive}, kernel has ${k.groups.size} groups`);
  return diffs;
}

/** Facts the rich topology must show, so that agreement means something. */
export function richTopologyFacts(k: GuestListing): string[] {
  const missing: string[] = [];
  const devs = [...k.devices.entries()];
  const has = (pred: (d: (typeof devs)[number]) => boolean, what: string) => {
    if (!devs.some(pred)) missing.push(what);
  };
  has(([, d]) => d.vendor === '104c' && d.device === '8232', 'a PCIe switch upstream port (104c:8232)');
  has(([, d]) => d.vendor === '104c' && d.device === '8233', 'a PCIe switch downstream port (104c:8233)');
  has(([, d]) => d.vendor === '1b36' && d.device === '000e', 'a PCIe-to-PCI bridge (1b36:000e)');
  has(([, d]) => d.vendor === '1b36' && d.device === '000c', 'a PCIe root port (1b36:000c)');
  has(([a]) => /\.[1-7]$/.test(a), 'a multifunction device (function > 0)');
  if (![...k.groups.values()].some((g) => g.length >= 3)) missing.push('a group of three or more functions');
  return missing;
}
