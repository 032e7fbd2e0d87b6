// Runtime facts read fresh from sysfs/procfs (not from a snapshot: they change
// under our feet while binding) and the runtime binding record.
//
// The record (/var/lib/vfiokit/runtime.json) holds, per device vfiokit moved
// to vfio-pci, the driver and driver_override it had before — written before
// the first sysfs write for that device, so `unbind` (and a rollback) puts
// back exactly what was there (libvirt's origstates).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../apply/atomic-write.js';
import { RUNTIME_JOURNAL } from '../apply/state-dir.js';
import type { HostRoot } from '../host/root.js';
import { DEV_VFIO, iommuGroupDevices, pciAttr, pciDevice } from '../host/sysfs-paths.js';

export interface LiveDevice {
  address: string;
  driver: string | null;
  override: string | null;
  group: number | null;
  isBridge: boolean;
}

/** driver_override as the kernel shows it: "(null)" (or empty) means unset. */
export function parseOverride(text: string | undefined): string | null {
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
    isBridge: /^0x060[049]/i.test(cls), // host bridges count as bridges (plan/groups.ts isBridgeRole)
  };
}

export function deviceExists(root: HostRoot, address: string): boolean {
  return root.exists(pciDevice(address));
}

export function groupMembers(root: HostRoot, group: number): string[] {
  return (root.tryList(iommuGroupDevices(group)) ?? []).sort();
}

export const devVfio = (group: number) => `${DEV_VFIO}/${group}`;

/** Drivers that keep a group viable (§2.2: driver_managed_dma). */
const VIABLE_ENDPOINT_DRIVERS = new Set(['vfio-pci', 'pci-stub']);
const VIABLE_BRIDGE_DRIVERS = new Set(['pcieport', 'vfio-pci', 'pci-stub']);

export interface GroupViability {
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

export interface GroupUser {
  pid: number;
  comm: string | null;
}

/**
 * Processes holding /dev/vfio/<group> open (a running VM): any
 * /proc/<pid>/fd/* link whose target is that node. Unreadable fd dirs
 * (other users' processes when not root) are counted in `unreadable`.
 */
export function groupUsers(root: HostRoot, group: number): { users: GroupUser[]; unreadable: number } {
  const node = devVfio(group);
  const users: GroupUser[] = [];
  let unreadable = 0;
  for (const p of root.tryList('/proc') ?? []) {
    if (!/^\d+$/.test(p)) continue;
    const fds = root.tryList(`/proc/${p}/fd`);
    if (fds === undefined) {
      if (root.exists(`/proc/${p}/fd`)) unreadable++;
      continue;
    }
    if (fds.some((fd) => root.tryReadLink(`/proc/${p}/fd/${fd}`) === node)) users.push({ pid: parseInt(p, 10), comm: root.tryReadAttr(`/proc/${p}/comm`) ?? null });
  }
  return { users, unreadable };
}

const FIRMWARE_FB = /^\d+\s+(EFI VGA|VESA VGA|simple|simpledrm(drmfb)?|efidrm(drmfb)?|BOCHS|VGA16 VGA)\b/m;

/**
 * Does this boot VGA device drive the host console right now? Yes when a host
 * graphics driver is bound to it, when a /sys/class/graphics/fb* device is
 * it, or when a firmware framebuffer (efifb, vesafb, simpledrm) is active —
 * that one lives in the boot GPU's aperture.
 */
export function drivesConsole(root: HostRoot, address: string, driver: string | null): { yes: boolean; why: string } {
  if (driver && !VIABLE_ENDPOINT_DRIVERS.has(driver)) return { yes: true, why: `its driver ${driver} runs the console` };
  for (const fb of root.tryList('/sys/class/graphics') ?? []) {
    const dev = root.tryResolveLink(`/sys/class/graphics/${fb}/device`);
    if (dev && path.posix.basename(dev) === address) return { yes: true, why: `framebuffer ${fb} is on it` };
  }
  const procFb = root.tryReadText('/proc/fb');
  const m = procFb ? FIRMWARE_FB.exec(procFb) : null;
  if (m) return { yes: true, why: `the firmware framebuffer "${m[1]}" (/proc/fb) is in its memory` };
  return { yes: false, why: '' };
}

export interface RuntimeRecordEntry {
  /** Driver bound before vfiokit moved the device (null = unbound). */
  originalDriver: string | null;
  /** driver_override before (null = unset). */
  originalOverride: string | null;
  group: number | null;
  boundAt: string;
  /** True between the record and the verified bind (a crash leaves it true). */
  pending: boolean;
}

export interface RuntimeRecord {
  version: 1;
  devices: Record<string, RuntimeRecordEntry>;
}

export function readRuntimeRecord(root: HostRoot): RuntimeRecord {
  try {
    const r = JSON.parse(fs.readFileSync(root.path(RUNTIME_JOURNAL), 'utf8')) as RuntimeRecord;
    if (r && r.version === 1 && r.devices) return r;
  } catch {
    /* absent or unreadable: nothing recorded */
  }
  return { version: 1, devices: {} };
}

export function writeRuntimeRecord(root: HostRoot, rec: RuntimeRecord): void {
  const p = root.path(RUNTIME_JOURNAL);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
  writeFileAtomic(p, Buffer.from(JSON.stringify(rec, null, 2) + '\n', 'utf8'), { mode: 0o644 });
}
