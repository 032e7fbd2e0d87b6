// Reads every PCI function from sysfs into PciDevice records, reading only
// what the snapshot needs, with as few path lookups as possible (lookups
// dominate the cost on hosts with thousands of functions): config space
// first (IDs, class, capabilities and link in one read, parsed in place),
// drivers from one listing per driver directory, optional attributes checked
// with lstat only where config space cannot rule them out, VF→PF links from
// the PFs' virtfnN links. Odd entries and unparsable attributes become
// warnings, never exceptions.

import * as path from 'node:path';
import { parseConfigSpace } from '../model/config-space.js';
import { parsePciAddress, slotOf } from '../model/pci-address.js';
import type { PciDevice, SnapshotWarning } from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import { PCI_ROM_RESOURCE_INDEX, SYS_PCI_DEVICES, SYS_PCI_DRIVERS } from './sysfs-paths.js';

/** IORESOURCE_ROM_SHADOW (include/linux/ioport.h, a bus-specific bit the `resource` file shows). */
const IORESOURCE_ROM_SHADOW = 0x2;

const withPower = (bar: PciDevice['romBar'], powerState: string | null): PciDevice['romBar'] => (bar ? { ...bar, powerState } : null);

/** The ROM BAR line of a `resource` file ("0x… 0x… 0x…" per BAR): size and whether it is the shadow copy. */
export function parseRomResource(text: string | undefined): PciDevice['romBar'] {
  const line = text?.split('\n')[PCI_ROM_RESOURCE_INDEX];
  const m = line ? /^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)/i.exec(line) : null;
  if (!m) return null;
  const start = BigInt(`0x${m[1]}`);
  const end = BigInt(`0x${m[2]}`);
  const flags = BigInt(`0x${m[3]}`);
  const size = end > start || (end === start && start !== 0n) ? Number(end - start + 1n) : 0;
  return { size, shadowed: (flags & BigInt(IORESOURCE_ROM_SHADOW)) !== 0n || start === 0xc0000n, powerState: null };
}

const BDF_COMPONENT = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
const HOST_BRIDGE_COMPONENT = /^pci[0-9a-f]{4,8}:[0-9a-f]{2}$/;

function hexAttr(
  value: string | undefined,
  digits: number,
  addr: string,
  attr: string,
  warnings: SnapshotWarning[],
): string | null {
  if (value === undefined) return null;
  const m = /^0x([0-9a-fA-F]+)$/.exec(value);
  if (!m || m[1].length > digits) {
    warnings.push({
      code: 'W_BAD_ATTRIBUTE',
      subject: addr,
      message: `${SYS_PCI_DEVICES}/${addr}/${attr} holds ${JSON.stringify(value.slice(0, 40))}, expected 0x followed by up to ${digits} hex digits; ignored`,
    });
    return null;
  }
  return m[1].toLowerCase().padStart(digits, '0');
}

function intAttr(value: string | undefined): number | null {
  if (value === undefined || !/^-?\d+$/.test(value)) return null;
  return parseInt(value, 10);
}

const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');

/**
 * Which driver each function is bound to, from the drivers' own directories
 * (the kernel links drivers/<d>/<BDF> on every bind): one listing per driver
 * instead of one readlink per function. Null when the listings cannot be
 * trusted — no drivers directory, or a driver directory without the
 * `uevent` file every driver has (a partial capture) — and the caller reads
 * each function's `driver` link instead.
 */
function readDriverBindings(root: HostRoot): Map<string, string> | null {
  const drivers = root.tryList(SYS_PCI_DRIVERS);
  if (!drivers) return null;
  const bound = new Map<string, string>();
  for (const d of drivers) {
    const entries = root.tryList(`${SYS_PCI_DRIVERS}/${d}`);
    if (!entries || !entries.includes('uevent')) return null;
    for (const e of entries) if (BDF_COMPONENT.test(e)) bound.set(e, d);
  }
  return bound;
}

export function readPciDevices(root: HostRoot, warnings: SnapshotWarning[], opts: { groupLinks?: boolean; numa?: boolean } = {}): { devices: PciDevice[]; configReadable: boolean } {
  const names = root.tryList(SYS_PCI_DEVICES);
  if (names === undefined) {
    warnings.push({
      code: 'W_NO_PCI_SYSFS',
      subject: SYS_PCI_DEVICES,
      message: `${SYS_PCI_DEVICES} is missing under ${root.dir}: no PCI devices can be listed (is sysfs mounted, or is this the right --root?)`,
    });
    return { devices: [], configReadable: false };
  }
  const devices: PciDevice[] = [];
  // Driver name → module name, read once per driver from drivers/<name>/module.
  const moduleOf = new Map<string, string | null>();
  const driverModule = (drv: string): string | null => {
    if (!moduleOf.has(drv)) {
      const l = root.tryReadLink(`${SYS_PCI_DRIVERS}/${drv}/module`);
      moduleOf.set(drv, l ? path.posix.basename(l) : null);
    }
    return moduleOf.get(drv)!;
  };
  const bindings = readDriverBindings(root);
  const fn0Multi = new Map<string, boolean>();
  let configReadable = false;
  for (const name of names.sort()) {
    const addr = parsePciAddress(name);
    if (!addr || addr !== name) {
      warnings.push({ code: 'W_UNUSUAL_ENTRY', subject: name, message: `unusual entry ${SYS_PCI_DEVICES}/${name} skipped (not a PCI address)` });
      continue;
    }
    const busLink = `${SYS_PCI_DEVICES}/${name}`;
    const dir = root.tryResolveLink(busLink) ?? busLink;
    // Config space first: its 64-byte header (readable by anyone) holds the
    // IDs, class and revision, and as root the capabilities and link state —
    // one read instead of a dozen attribute files. Attribute files are the
    // fallback when config is missing or short.
    const config = root.withSmall(`${dir}/config`, parseConfigSpace);
    const parsed = config?.value ?? null;
    // Optional attributes (rom, reset_method, sriov_totalvfs, boot_vga…)
    // are checked one by one with an access check, which costs no exception
    // and no Stats object when absent and is much cheaper than listing the
    // directory. Without a
    // readable config the directory is listed instead, which also tells a
    // dangling device link apart.
    let entries: string[] | undefined;
    let has: { has(a: string): boolean };
    if (parsed) {
      // Each optional attribute is asked about at most once per function below
      // (rom twice: remembered), so no cache is needed. They are files, checked
      // with an access check; iommu_group is a link (lstat).
      let rom: boolean | undefined;
      has = {
        has: (a: string) => (a === 'config' ? true : a === 'rom' ? (rom ??= root.hasFile(`${dir}/rom`)) : a === 'iommu_group' ? root.has(`${dir}/${a}`) : root.hasFile(`${dir}/${a}`)),
      };
    } else {
      entries = root.tryList(dir);
      if (!entries) {
        warnings.push({
          code: 'W_DANGLING_DEVICE',
          subject: addr,
          message: `${busLink} points to ${dir}, which does not exist; device skipped`,
        });
        continue;
      }
      has = new Set(entries);
    }
    const attr = (a: string) => root.tryReadAttr(`${dir}/${a}`);
    if (has.has('config') && !parsed) {
      warnings.push({ code: 'W_CONFIG_UNREADABLE', subject: addr, message: `${busLink}/config could not be read (${config ? `${config.size} bytes` : 'permission denied'}); capabilities unknown` });
    }
    if (parsed?.caps) configReadable = true;
    const h = parsed?.header;
    const headerOk = h !== undefined && h.vendor !== 0xffff;
    const vendor = headerOk ? hex(h.vendor, 4) : hexAttr(attr('vendor'), 4, addr, 'vendor', warnings);
    const device = headerOk ? hex(h.device, 4) : hexAttr(attr('device'), 4, addr, 'device', warnings);
    const cls = headerOk ? hex(h.classCode, 6) : hexAttr(attr('class'), 6, addr, 'class', warnings);
    if (!vendor || !device || !cls) {
      warnings.push({ code: 'W_DEVICE_UNREADABLE', subject: addr, message: `vendor, device or class of ${addr} could not be read (no usable config, bad attribute files); device skipped` });
      continue;
    }
    const subsystemVendor = headerOk ? (h.subsystemVendor != null ? hex(h.subsystemVendor, 4) : null) : hexAttr(attr('subsystem_vendor'), 4, addr, 'subsystem_vendor', warnings);
    const subsystemDevice = headerOk ? (h.subsystemDevice != null ? hex(h.subsystemDevice, 4) : null) : hexAttr(attr('subsystem_device'), 4, addr, 'subsystem_device', warnings);
    const revision = headerOk ? hex(h.revision, 2) : hexAttr(attr('revision'), 2, addr, 'revision', warnings);

    // Topology: the realpath chain is authoritative. Bridges are the BDF
    // components after the last pciDDDD:BB host-bridge component (a VMD
    // domain starts a new root bus below an endpoint).
    const parts = dir.split('/').filter(Boolean);
    let hostIdx = -1;
    for (let i = 0; i < parts.length; i++) if (parts[i].startsWith('pci') && HOST_BRIDGE_COMPONENT.test(parts[i])) hostIdx = i;
    const upstream: string[] = [];
    if (hostIdx >= 0) for (let i = hostIdx + 1; i < parts.length - 1; i++) if (BDF_COMPONENT.test(parts[i])) upstream.push(parts[i]);
    const driverName = bindings ? (bindings.get(addr) ?? null) : (() => {
      const l = root.tryReadLink(`${dir}/driver`);
      return l ? path.posix.basename(l) : null;
    })();
    const isBridge = cls.startsWith('0604') || cls.startsWith('0609') || h?.headerType === 1;
    // Bridges are never rebound, so their override is not needed.
    const override = isBridge ? undefined : attr('driver_override');
    // Only a PCIe function with the SR-IOV extended capability (0x10) can be
    // a PF: with full config space in hand, others need no lookup.
    const caps = parsed?.caps;
    // (Config space reading all ones, e.g. a device in D3cold, is no evidence.)
    const allOnes = h !== undefined && h.vendor === 0xffff && h.classCode === 0xffffff;
    const notPf = caps && !allOnes ? !caps.pcie || (parsed!.size >= 0x1000 && caps.extCapIds.length > 0 && !caps.extCapIds.includes(0x10)) : false;
    const totalVfs = !isBridge && !notPf && has.has('sriov_totalvfs') ? intAttr(attr('sriov_totalvfs')) : null;
    const virtfns = totalVfs !== null ? (entries ?? root.tryList(dir) ?? []).filter((e) => /^virtfn\d+$/.test(e)).sort((a, b) => parseInt(a.slice(6)) - parseInt(b.slice(6))) : [];
    // Checked before it is read: on Node 20 a failed open costs two and a half
    // times a failed lstat or access (the exception's message is built even
    // without a stack), so for an attribute that is often absent the check is cheaper.
    const reset = has.has('reset_method') ? attr('reset_method') : undefined;
    // NUMA locality matters for endpoints on hosts with more than one node
    // (opts.numa); local_cpulist only when the device belongs to a known node.
    const numaNode = isBridge || !opts.numa ? null : intAttr(attr('numa_node'));
    let link: PciDevice['link'] = parsed?.caps ? parsed.caps.link : null;
    if (!parsed?.caps && has.has('current_link_speed')) {
      link = { speed: attr('current_link_speed') ?? null, width: intAttr(attr('current_link_width')), maxSpeed: attr('max_link_speed') ?? null, maxWidth: intAttr(attr('max_link_width')) };
    }
    const secondaryBus = isBridge ? (h?.secondaryBus ?? intAttr(attr('secondary_bus_number'))) : null;
    // Group links are only needed when /sys/kernel/iommu_groups is absent.
    const iommuLink = opts.groupLinks && has.has('iommu_group') ? root.tryReadLink(`${dir}/iommu_group`) : undefined;
    const dev: PciDevice = {
      address: addr,
      vendor,
      device,
      subsystemVendor,
      subsystemDevice,
      class: cls,
      revision,
      vendorName: null,
      deviceName: null,
      driver: driverName,
      driverModule: driverName ? driverModule(driverName) : null,
      driverOverride: override === undefined || override === '(null)' || override === '' ? null : override,
      iommuGroup: iommuLink !== undefined ? intAttr(path.posix.basename(iommuLink)) : null,
      bootVga: cls.startsWith('0300') && (!entries || has.has('boot_vga')) && attr('boot_vga') === '1',
      numaNode,
      localCpus: numaNode !== null && numaNode >= 0 ? (attr('local_cpulist') ?? null) : null,
      resetMethods: reset === undefined ? null : reset.split(/\s+/).filter(Boolean),
      hasRom: has.has('rom'),
      romBar: has.has('rom') ? withPower(parseRomResource(root.tryReadText(`${dir}/resource`)), has.has('power_state') ? (attr('power_state') ?? null) : null) : null,
      link,
      sriov:
        totalVfs !== null
          ? {
              totalVfs,
              numVfs: intAttr(attr('sriov_numvfs')) ?? 0,
              vfs: virtfns.map((v) => path.posix.basename(root.tryReadLink(`${dir}/${v}`) ?? '')).filter(Boolean),
            }
          : null,
      // Set below from the PFs' virtfnN links (no lookup per function), or
      // from the listing when config space was unreadable.
      physfn: entries && !isBridge && has.has('physfn') ? path.posix.basename(root.tryReadLink(`${dir}/physfn`) ?? '') || null : null,
      parent: upstream.length ? upstream[upstream.length - 1] : null,
      upstream,
      hostBridge: hostIdx >= 0 ? parts[hostIdx] : null,
      isBridge,
      secondaryBus,
      multifunction: false,
      caps: parsed?.caps
        ? { pcie: parsed.caps.pcie, pcieType: parsed.caps.pcieType, flr: parsed.caps.flr, acs: parsed.caps.acs }
        : null,
    };
    if (parsed && addr.endsWith('.0')) fn0Multi.set(slotOf(addr), parsed.header.multifunctionBit);
    devices.push(dev);
  }
  // A VF's physfn link is the inverse of its PF's virtfnN link.
  const byAddr = new Map(devices.map((d) => [d.address, d]));
  for (const pf of devices) for (const vf of pf.sriov?.vfs ?? []) {
    const d = byAddr.get(vf);
    if (d && !d.physfn) d.physfn = pf.address;
  }
  // The kernel marks function 0 multifunction from header bit 7, and every
  // function > 0 as multifunction (pci_scan_slot). Without config space, a
  // sibling function in the slot is the same evidence.
  const slots = devices.map((d) => slotOf(d.address));
  const slotCount = new Map<string, number>();
  for (const slot of slots) slotCount.set(slot, (slotCount.get(slot) ?? 0) + 1);
  // SR-IOV VFs are not found by slot scanning: only their own header bit counts.
  devices.forEach((d, i) => {
    if (d.physfn) d.multifunction = false;
    else d.multifunction = !d.address.endsWith('.0') || fn0Multi.get(slots[i]) === true || (slotCount.get(slots[i]) ?? 0) > 1;
  });
  return { devices, configReadable };
}
