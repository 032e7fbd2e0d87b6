// Live kernel facts that runtime plans (bind, unbind, handoff) depend on, read
// into the snapshot (`HostSnapshot.runtime`) so those plans are pure and can
// be made from a captured host — and the few reads the executor repeats while
// it changes drivers (a device's driver, a group's viability).
//
// /proc/<pid>/fd is scanned without recording (a snapshot must not carry every
// process's open files); only the links that point at /dev/vfio/N are kept.

import * as path from 'node:path';
import type { ConsoleUse, RuntimeFacts, VfioHolder } from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import { DEV_VFIO, iommuGroupDevices, PROC, PROC_BOOT_ID, PROC_FB, pciAttr, SYS_CLASS_GRAPHICS, SYS_PCI_DRIVERS } from './sysfs-paths.js';

export interface LiveDevice {
  address: string;
  driver: string | null;
  override: string | null;
  group: number | null;
  isBridge: boolean;
}

/** driver_override as the kernel shows it: "(null)" (or empty) means unset. */
function parseOverride(text: string | undefined): string | null {
  if (text === undefined) return null;
  const t = text.trim();
  return t === '' || t === '(null)' ? null : t;
}

export function readLive(root: HostRoot, address: string): LiveDevice {
  const drv = root.tryReadLink(pciAttr(address, 'driver'));
  const grp = root.tryReadLink(pciAttr(address, 'iommu_group'));
  const cls = root.tryReadAttr(pciAttr(address, 'class')) ?? '';
  return {
    address,
    driver: drv ? path.posix.basename(drv) : null,
    override: parseOverride(root.tryReadAttr(pciAttr(address, 'driver_override'))),
    group: grp ? parseInt(path.posix.basename(grp), 10) : null,
    isBridge: /^0x060[049]/i.test(cls), // host bridges count as bridges (analysis/groups.ts isBridgeRole)
  };
}

function groupMembers(root: HostRoot, group: number): string[] {
  return (root.tryList(iommuGroupDevices(group)) ?? []).sort();
}

export const devVfio = (group: number) => `${DEV_VFIO}/${group}`;

/** Drivers that keep a group viable (§2.2: driver_managed_dma). */
const VIABLE_ENDPOINT_DRIVERS = new Set(['vfio-pci', 'pci-stub']);
const VIABLE_BRIDGE_DRIVERS = new Set(['pcieport', 'vfio-pci', 'pci-stub']);

interface GroupViability {
  id: number;
  viable: boolean;
  /** /dev/vfio/<id> exists. */
  devVfio: boolean;
  /** Endpoints still on a host driver, as "0000:01:00.1 (snd_hda_intel)". */
  blockers: string[];
}

export function groupViability(root: HostRoot, group: number): GroupViability {
  const blockers: string[] = [];
  for (const a of groupMembers(root, group)) {
    const d = readLive(root, a);
    if (d.driver === null) continue;
    if (!(d.isBridge ? VIABLE_BRIDGE_DRIVERS : VIABLE_ENDPOINT_DRIVERS).has(d.driver)) blockers.push(`${a} (${d.driver})`);
  }
  const dev = root.exists(devVfio(group));
  return { id: group, viable: blockers.length === 0 && dev, devVfio: dev, blockers };
}

/**
 * Processes holding any of `nodes` open: /proc/<pid>/fd/* links whose target
 * is one of them. Unreadable fd directories (other users' processes when not
 * root) are counted. Only matching links are recorded for snapshots.
 */
export function openFileHolders(root: HostRoot, nodes: (target: string) => boolean): { holders: { pid: number; comm: string | null; path: string }[]; unreadable: number } {
  const holders: { pid: number; comm: string | null; path: string }[] = [];
  let unreadable = 0;
  const keep: string[] = [];
  root.quietly(() => {
    for (const p of root.tryList(PROC) ?? []) {
      if (!/^\d+$/.test(p)) continue;
      const fds = root.tryList(`${PROC}/${p}/fd`);
      if (fds === undefined) {
        if (root.exists(`${PROC}/${p}/fd`)) unreadable++;
        continue;
      }
      const seen = new Set<string>();
      for (const fd of fds) {
        const t = root.tryReadLink(`${PROC}/${p}/fd/${fd}`);
        if (t === undefined || !nodes(t) || seen.has(t)) continue;
        seen.add(t);
        holders.push({ pid: parseInt(p, 10), comm: root.tryReadAttr(`${PROC}/${p}/comm`) ?? null, path: t });
        keep.push(`${PROC}/${p}/fd/${fd}`, `${PROC}/${p}/comm`);
      }
    }
  });
  for (const k of keep) root.keep(k, k.endsWith('/comm') ? 'file' : 'link');
  return { holders, unreadable };
}

const FIRMWARE_FB = /^\d+\s+(EFI VGA|VESA VGA|simple|simpledrm(drmfb)?|efidrm(drmfb)?|BOCHS|VGA16 VGA)\b/m;

/**
 * Does this boot VGA device drive the host console right now? Yes when a host
 * graphics driver is bound to it, when a /sys/class/graphics/fb* device is
 * it, or when a firmware framebuffer (efifb, vesafb, simpledrm) is active —
 * that one lives in the boot GPU's aperture.
 */
function drivesConsole(root: HostRoot, address: string, driver: string | null): { yes: boolean; why: string } {
  if (driver && !VIABLE_ENDPOINT_DRIVERS.has(driver)) return { yes: true, why: `its driver ${driver} runs the console` };
  for (const fb of root.tryList(SYS_CLASS_GRAPHICS) ?? []) {
    const dev = root.tryResolveLink(`${SYS_CLASS_GRAPHICS}/${fb}/device`);
    if (dev && path.posix.basename(dev) === address) return { yes: true, why: `framebuffer ${fb} is on it` };
  }
  const procFb = root.tryReadText(PROC_FB);
  const m = procFb ? FIRMWARE_FB.exec(procFb) : null;
  if (m) return { yes: true, why: `the firmware framebuffer "${m[1]}" (/proc/fb) is in its memory` };
  return { yes: false, why: '' };
}

/** The runtime section of the snapshot: boot id, registered PCI drivers, VFIO group holders, consoles on boot VGA devices. */
export function readRuntimeFacts(root: HostRoot, bootVga: { address: string; driver: string | null }[]): RuntimeFacts {
  const bootId = root.tryReadAttr(PROC_BOOT_ID)?.trim() || null;
  const pciDrivers = (root.tryList(SYS_PCI_DRIVERS) ?? []).sort();
  const { holders, unreadable } = openFileHolders(root, (t) => t.startsWith(`${DEV_VFIO}/`) && /^\d+$/.test(t.slice(DEV_VFIO.length + 1)));
  const vfioHolders: VfioHolder[] = holders.map((h) => ({ group: parseInt(h.path.slice(DEV_VFIO.length + 1), 10), pid: h.pid, comm: h.comm })).sort((a, b) => a.group - b.group || a.pid - b.pid);
  const consoles: ConsoleUse[] = [];
  for (const d of bootVga) {
    const c = drivesConsole(root, d.address, d.driver);
    if (c.yes) consoles.push({ address: d.address, why: c.why });
  }
  return { bootId, pciDrivers, vfioHolders, holdersUnreadable: unreadable, consoles };
}
