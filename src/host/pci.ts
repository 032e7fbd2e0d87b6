// Reads every PCI function from sysfs into PciDevice records.
// Reads only what the snapshot needs: one readdir per device tells which
// optional attributes exist, so absent ones cost nothing. Odd entries and
// unparsable attributes become warnings, never exceptions.

import * as path from 'node:path';
import { parseConfigSpace } from '../model/config-space.js';
import { parsePciAddress, slotOf } from '../model/pci-address.js';
import type { PciDevice, SnapshotWarning } from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import { SYS_PCI_DEVICES } from './sysfs-paths.js';

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

export function readPciDevices(root: HostRoot, warnings: SnapshotWarning[]): { devices: PciDevice[]; configReadable: boolean } {
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
  const fn0Multi = new Map<string, boolean>();
  let configReadable = false;
  for (const name of names.sort()) {
    const addr = parsePciAddress(name);
    if (!addr || addr !== name) {
      warnings.push({ code: 'W_UNUSUAL_ENTRY', subject: name, message: `unusual entry ${SYS_PCI_DEVICES}/${name} skipped (not a PCI address)` });
      continue;
    }
    const link = `${SYS_PCI_DEVICES}/${name}`;
    const dir = root.tryResolveLink(link) ?? link;
    const entries = root.tryList(dir);
    if (!entries) {
      warnings.push({
        code: 'W_DANGLING_DEVICE',
        subject: addr,
        message: `${link} points to ${dir}, which does not exist; device skipped`,
      });
      continue;
    }
    const has = new Set(entries);
    const attr = (a: string) => (has.has(a) ? root.tryReadAttr(`${dir}/${a}`) : undefined);
    const config = has.has('config') ? root.tryReadBytes(`${dir}/config`) : undefined;
    const parsed = config ? parseConfigSpace(config) : null;
    if (has.has('config') && !parsed) {
      warnings.push({ code: 'W_CONFIG_UNREADABLE', subject: addr, message: `${link}/config could not be read (${config ? `${config.length} bytes` : 'permission denied'}); capabilities unknown` });
    }
    if (parsed?.caps) configReadable = true;

    const vendor = hexAttr(attr('vendor'), 4, addr, 'vendor', warnings) ?? (parsed ? hex(parsed.header.vendor, 4) : null);
    const device = hexAttr(attr('device'), 4, addr, 'device', warnings) ?? (parsed ? hex(parsed.header.device, 4) : null);
    const cls = hexAttr(attr('class'), 6, addr, 'class', warnings) ?? (parsed ? hex(parsed.header.classCode, 6) : null);
    if (!vendor || !device || !cls) {
      warnings.push({ code: 'W_DEVICE_UNREADABLE', subject: addr, message: `vendor, device or class of ${addr} could not be read; device skipped` });
      continue;
    }
    const subsystemVendor =
      hexAttr(attr('subsystem_vendor'), 4, addr, 'subsystem_vendor', warnings) ??
      (parsed?.header.subsystemVendor != null ? hex(parsed.header.subsystemVendor, 4) : null);
    const subsystemDevice =
      hexAttr(attr('subsystem_device'), 4, addr, 'subsystem_device', warnings) ??
      (parsed?.header.subsystemDevice != null ? hex(parsed.header.subsystemDevice, 4) : null);
    const revision = hexAttr(attr('revision'), 2, addr, 'revision', warnings) ?? (parsed ? hex(parsed.header.revision, 2) : null);

    // Topology: the realpath chain is authoritative. Bridges are the BDF
    // components after the last pciDDDD:BB host-bridge component (a VMD
    // domain starts a new root bus below an endpoint).
    const parts = dir.split('/').filter(Boolean);
    let hostIdx = -1;
    for (let i = 0; i < parts.length; i++) if (HOST_BRIDGE_COMPONENT.test(parts[i])) hostIdx = i;
    const upstream = hostIdx >= 0 ? parts.slice(hostIdx + 1, -1).filter((p) => BDF_COMPONENT.test(p)) : [];
    const driverLink = has.has('driver') ? root.tryReadLink(`${dir}/driver`) : undefined;
    const override = attr('driver_override');
    const isBridge = cls.startsWith('0604') || cls.startsWith('0609') || parsed?.header.headerType === 1;
    const virtfns = entries.filter((e) => /^virtfn\d+$/.test(e)).sort((a, b) => parseInt(a.slice(6)) - parseInt(b.slice(6)));
    const totalVfs = intAttr(attr('sriov_totalvfs'));
    const speed = attr('current_link_speed');
    const maxSpeed = attr('max_link_speed');
    const reset = attr('reset_method');
    const secBus = attr('secondary_bus_number');
    const iommuLink = has.has('iommu_group') ? root.tryReadLink(`${dir}/iommu_group`) : undefined;
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
      driver: driverLink ? path.posix.basename(driverLink) : null,
      driverOverride: override === undefined || override === '(null)' || override === '' ? null : override,
      iommuGroup: iommuLink !== undefined ? intAttr(path.posix.basename(iommuLink)) : null,
      bootVga: attr('boot_vga') === '1',
      numaNode: intAttr(attr('numa_node')),
      localCpus: attr('local_cpulist') ?? null,
      resetMethods: reset === undefined ? null : reset.split(/\s+/).filter(Boolean),
      hasRom: has.has('rom'),
      link:
        speed !== undefined || maxSpeed !== undefined
          ? {
              speed: speed ?? null,
              width: intAttr(attr('current_link_width')),
              maxSpeed: maxSpeed ?? null,
              maxWidth: intAttr(attr('max_link_width')),
            }
          : null,
      sriov:
        totalVfs !== null
          ? {
              totalVfs,
              numVfs: intAttr(attr('sriov_numvfs')) ?? 0,
              vfs: virtfns.map((v) => path.posix.basename(root.tryReadLink(`${dir}/${v}`) ?? '')).filter(Boolean),
            }
          : null,
      physfn: has.has('physfn') ? path.posix.basename(root.tryReadLink(`${dir}/physfn`) ?? '') || null : null,
      parent: upstream.length ? upstream[upstream.length - 1] : null,
      upstream,
      hostBridge: hostIdx >= 0 ? parts[hostIdx] : null,
      isBridge,
      secondaryBus: secBus !== undefined ? intAttr(secBus) : (parsed?.header.secondaryBus ?? null),
      multifunction: false,
      caps: parsed?.caps
        ? { pcie: parsed.caps.pcie, pcieType: parsed.caps.pcieType, flr: parsed.caps.flr, acs: parsed.caps.acs }
        : null,
    };
    if (parsed && addr.endsWith('.0')) fn0Multi.set(slotOf(addr), parsed.header.multifunctionBit);
    devices.push(dev);
  }
  // The kernel marks function 0 multifunction from header bit 7, and every
  // function > 0 as multifunction (pci_scan_slot). Without config space, a
  // sibling function in the slot is the same evidence.
  const slotCount = new Map<string, number>();
  for (const d of devices) slotCount.set(slotOf(d.address), (slotCount.get(slotOf(d.address)) ?? 0) + 1);
  // SR-IOV VFs are not found by slot scanning: only their own header bit counts.
  for (const d of devices) {
    if (d.physfn) d.multifunction = false;
    else d.multifunction = !d.address.endsWith('.0') || fn0Multi.get(slotOf(d.address)) === true || (slotCount.get(slotOf(d.address)) ?? 0) > 1;
  }
  return { devices, configReadable };
}
