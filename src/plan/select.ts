// Selector resolution (pure): `0000:01:00.0`, `01:00.0` or `vendor:device`
// → the endpoints to move, expanded to every endpoint of each selected
// device's IOMMU group. Bridges are never selected. Endpoints in the group
// that are not functions of a selected device ("foreign" endpoints) must be
// taken knowingly with `--with ADDR`.
// Used by plan/apply (boot-time), bind/unbind (runtime) and vm (devices).

import { UsageError, type Problem } from '../errors.js';
import { parsePciAddress, shortAddress, slotOf } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { iommuFix } from '../analysis/check.js';
import { analyzeGroups, chipsetFunctionKind, isBridgeRole, type GroupReport } from '../analysis/groups.js';

interface SelectOptions {
  /** What else the command takes instead of a device, for the hint when none is named (plan/apply: kernel arguments alone). */
  orElse?: string;
  /** Addresses the user agreed to take along (`--with`). */
  with?: string[];
  /** Allow the boot VGA device (`--allow-boot-vga`). */
  allowBootVga?: boolean;
  /** Do not require an active IOMMU (vm xml generation for another host). */
  requireIommu?: boolean;
  /** Allow chipset functions (ISA/LPC bridge, SMBus…) in the moved set (`--allow-chipset`). */
  allowChipset?: boolean;
}

interface Selection {
  /** Devices the user named (after selector expansion), sorted. */
  selected: PciDevice[];
  /** Every endpoint to move: selected + companion functions + --with, sorted. */
  devices: PciDevice[];
  /** Groups involved, by id. */
  groups: GroupReport[];
  problems: Problem[];
  warnings: string[];
}

const VENDOR_DEVICE = /^([0-9a-f]{4}):([0-9a-f]{4})$/i;

/** Parse one selector; throws UsageError for malformed text. */
export function parseSelector(text: string): { address: string } | { vendor: string; device: string } {
  const addr = parsePciAddress(text);
  if (addr) return { address: addr };
  const m = VENDOR_DEVICE.exec(text.trim());
  if (m) return { vendor: m[1].toLowerCase(), device: m[2].toLowerCase() };
  throw new UsageError(
    `'${text}' is not a device selector`,
    'use a PCI address (0000:01:00.0 or 01:00.0) or vendor:device IDs (10de:2204), as shown by `vfiokit groups`',
    'E_BAD_SELECTOR',
  );
}

const byAddress = (a: PciDevice, b: PciDevice) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0);

export function resolveSelection(snapshot: HostSnapshot, selectors: string[], opts: SelectOptions = {}): Selection {
  if (!selectors.length) throw new UsageError('no device selected', `name at least one device: a PCI address (01:00.0) or vendor:device (10de:2204)${opts.orElse ? `; ${opts.orElse}` : ''}`, 'E_NO_SELECTOR');
  const parsed = selectors.map((s) => ({ text: s, sel: parseSelector(s) }));
  const withAddrs = (opts.with ?? []).map((w) => {
    const a = parsePciAddress(w);
    if (!a) throw new UsageError(`--with '${w}' is not a PCI address`, 'give the full or short address of the device to take along, e.g. --with 00:1c.0', 'E_BAD_SELECTOR');
    return a as string;
  });
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const byAddr = new Map(snapshot.pci.map((d) => [d.address, d]));
  const selected = new Map<string, PciDevice>();
  /** The vendor:device selector that picked each device, when it matched more than one. */
  const pickedBy = new Map<string, PciDevice[]>();
  for (const { text, sel } of parsed) {
    const matches = 'address' in sel ? [byAddr.get(sel.address)].filter((d): d is PciDevice => Boolean(d)) : snapshot.pci.filter((d) => d.vendor === sel.vendor && d.device === sel.device);
    if (!matches.length) {
      problems.push({
        code: 'E_UNKNOWN_DEVICE',
        subject: text,
        message: `no PCI device matches '${text}' on this host`,
        hint: 'list devices with `vfiokit groups` (or `vfiokit inspect`) and use an address or vendor:device shown there',
      });
      continue;
    }
    if ('vendor' in sel && matches.length > 1) {
      warnings.push(`'${text}' matches ${matches.length} devices (${matches.map((m) => shortAddress(m.address)).join(', ')}); all are selected — use an address to pick one`);
      for (const m of matches) pickedBy.set(m.address, matches);
    }
    for (const m of matches) {
      if (isBridgeRole(m)) {
        problems.push({ code: 'E_BRIDGE', subject: m.address, message: `${shortAddress(m.address)} is a PCI bridge; bridges stay with the host and cannot be passed through`, hint: 'select the device behind the bridge instead' });
        continue;
      }
      selected.set(m.address, m);
    }
  }
  if (opts.requireIommu !== false && !snapshot.iommu.active) {
    problems.push({ code: 'E_IOMMU_DISABLED', subject: 'iommu', message: 'the IOMMU is not active on this host, so no device can be passed through', hint: iommuFix(snapshot) });
    return { selected: [...selected.values()].sort(byAddress), devices: [...selected.values()].sort(byAddress), groups: [], problems, warnings };
  }
  const report = analyzeGroups(snapshot);
  const groups = new Map<number, GroupReport>();
  const devices = new Map<string, PciDevice>(selected);
  const selectedSlots = new Set([...selected.values()].map((d) => slotOf(d.address)));
  for (const d of selected.values()) {
    if (d.bootVga && !opts.allowBootVga) {
      // Picked by vendor:device together with identical cards: the fix is the other cards' addresses.
      const twins = (pickedBy.get(d.address) ?? []).filter((m) => !m.bootVga);
      problems.push({
        code: 'E_BOOT_VGA',
        subject: d.address,
        message: `${shortAddress(d.address)} is the boot display (boot_vga=1): the host's console and firmware framebuffer run on it`,
        hint: twins.length
          ? `select the identical card${twins.length > 1 ? 's' : ''} the host does not boot from by address instead of by vendor:device: ${twins.map((t) => shortAddress(t.address)).join(' ')}`
          : 'pass a GPU the host does not boot from, or take it knowingly with --allow-boot-vga (the host then needs another display or a single-GPU handoff)',
      });
    }
    if (d.iommuGroup === null) continue;
    const g = report.groups.find((x) => x.id === d.iommuGroup);
    if (!g) continue;
    groups.set(g.id, g);
    for (const m of g.members) {
      if (m.role === 'bridge') continue;
      const dev = byAddr.get(m.address);
      if (!dev) continue;
      if (selectedSlots.has(slotOf(m.address)) || withAddrs.includes(m.address) || selected.has(m.address)) {
        devices.set(m.address, dev);
      }
    }
    const foreign = g.members.filter((m) => m.role === 'endpoint' && !selectedSlots.has(slotOf(m.address)) && !withAddrs.includes(m.address) && !selected.has(m.address));
    if (foreign.length) {
      problems.push({
        code: 'E_GROUP_NOT_ISOLATED',
        subject: d.address,
        message: `IOMMU group ${g.id} of ${shortAddress(d.address)} also holds ${foreign.map((f) => `${shortAddress(f.address)} (${f.name ?? `${f.vendor}:${f.device}`}, driver ${f.driver ?? 'none'})`).join(', ')}: ${g.reasons.length ? g.reasons.join('; ') : 'the kernel grouped them together'}`,
        hint: `every endpoint of a group goes to the VM together: add ${foreign.map((f) => `--with ${shortAddress(f.address)}`).join(' ')} to take them knowingly, or move the card to a slot whose root port has ACS`,
      });
    }
  }
  for (const w of withAddrs) {
    const dev = byAddr.get(w);
    if (!dev) {
      problems.push({ code: 'E_UNKNOWN_DEVICE', subject: w, message: `--with ${shortAddress(w)}: no such PCI device on this host`, hint: 'check the address with `vfiokit groups`' });
      continue;
    }
    if (devices.has(w) || selected.has(w)) continue;
    const inGroups = [...groups.keys()];
    problems.push({
      code: 'E_WITH_OUTSIDE_GROUP',
      subject: w,
      message: isBridgeRole(dev)
        ? `--with ${shortAddress(w)}: it is a bridge, and bridges stay with the host`
        : `--with ${shortAddress(w)}: it is in IOMMU group ${dev.iommuGroup ?? 'none'}, not in the group${inGroups.length === 1 ? '' : 's'} of the selected devices (${inGroups.length ? inGroups.join(', ') : 'none'}); --with only takes along endpoints that share a group with a selected device`,
      hint: isBridgeRole(dev) ? `drop --with ${shortAddress(w)}` : `select it as a device of its own (add ${shortAddress(w)} to the selectors), or drop --with ${shortAddress(w)}`,
    });
  }
  // Chipset functions are host infrastructure: refused unless taken knowingly.
  for (const d of devices.values()) {
    const kind = chipsetFunctionKind(d.class);
    if (!kind) continue;
    const via = [...selected.values()].find((x) => x.iommuGroup === d.iommuGroup && x.address !== d.address);
    const why = `${shortAddress(d.address)} is ${kind}, part of the host's chipset${via ? ` (it comes along because it shares IOMMU group ${d.iommuGroup} and slot with ${shortAddress(via.address)})` : ''}`;
    if (opts.allowChipset) warnings.push(`${why}: taken because of --allow-chipset; the host loses what it serves while the VM holds it (firmware, sensors, TPM, keyboard controller)`);
    else
      problems.push({
        code: 'E_CHIPSET_FUNCTION',
        subject: d.address,
        message: `${why}; the host needs it (firmware flash, sensors, TPM, keyboard controller, power management), so it is not passed through`,
        hint: `pass a device that has an IOMMU group of its own (an add-in card in a slot whose root port has ACS); only if you know the host works without it, add --allow-chipset`,
      });
  }
  return { selected: [...selected.values()].sort(byAddress), devices: [...devices.values()].sort(byAddress), groups: [...groups.values()], problems, warnings };
}
