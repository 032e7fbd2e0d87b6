// Which PCI functions the host cannot lose: the ones holding the root file
// system's disks and the ones carrying the default route. Both are chains in
// sysfs, followed the way the kernel lays them out:
//
//   root:  /proc/self/mountinfo (the root mount's major:minor and source) →
//          /sys/dev/block/MAJ:MIN → the block device's directory; a partition
//          goes up to its disk; device-mapper (LVM, dm-crypt), md RAID and
//          NVMe multipath heads go down through `slaves/` and `multipath/`;
//          btrfs through /sys/fs/btrfs/<fsid>/devices; the first PCI function
//          on a real disk's path (nvme, ata, virtio, usb-storage) is the one.
//   route: /proc/net/route and /proc/net/ipv6_route (default routes) →
//          /sys/class/net/IFACE → the PCI function on its path; bridges, bonds,
//          VLANs and macvlans go down through `lower_*`, `brif/` and
//          `bonding/slaves` (Proxmox's vmbr0 over eno1).
//
// Whatever cannot be followed to a PCI function is said as a warning, never
// passed over silently.

import * as path from 'node:path';
import { hasMountOption, mountEntries, parseFstab, parseProcSwaps, unescapeMountField } from '../formats/fstab.js';
import type { StorageMount } from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import { BOOT_MOUNT_POINTS, ETC_FSTAB, PROC_CMDLINE, PROC_MOUNTINFO, PROC_MOUNTS, PROC_NET_IPV6_ROUTE, PROC_NET_ROUTE, PROC_SWAPS, SYS_CLASS_BLOCK, SYS_CLASS_NET, SYS_DEV_BLOCK, SYS_FS_BTRFS } from './sysfs-paths.js';

const PCI_COMPONENT = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
/** Deeper stacks than this are a loop in a broken tree. */
const MAX_DEPTH = 16;

interface CriticalDevices {
  /** PCI functions found at the ends of the chains, sorted. */
  addresses: string[];
  /** What could not be followed, one sentence each (empty when every chain reached a PCI function). */
  warnings: string[];
}

/** The nearest PCI function on a sysfs device path (the last PCI component), or null. */
function nearestPci(sysPath: string): string | null {
  const parts = sysPath.split('/').filter((p) => PCI_COMPONENT.test(p));
  return parts.length ? parts[parts.length - 1]! : null;
}

/** A block or net device's real directory under /sys/devices, from its /sys/class link. */
function classDir(root: HostRoot, classPath: string): string | null {
  return root.tryResolveLink(classPath) ?? (root.isDir(classPath) ? classPath : null);
}

interface RootMount {
  source: string;
  fstype: string;
  majMin: string | null;
}

/** The root mount: the last `/` line of mountinfo (the one on top), else /proc/mounts. */
function rootMount(root: HostRoot): RootMount | null {
  const info = root.tryReadText(PROC_MOUNTINFO);
  if (info) {
    let found: RootMount | null = null;
    for (const line of info.split('\n')) {
      const [pre, post] = line.split(' - ');
      const f = (pre ?? '').split(' ');
      const g = (post ?? '').split(' ');
      if (f[4] !== '/' || g.length < 2) continue;
      found = { majMin: /^\d+:\d+$/.test(f[2] ?? '') ? f[2]! : null, fstype: g[0]!, source: unescapeMountField(g[1]!) };
    }
    if (found) return found;
  }
  const mounts = root.tryReadText(PROC_MOUNTS);
  if (!mounts) return null;
  let found: RootMount | null = null;
  for (const e of mountEntries(mounts)) if (e.file === '/') found = { source: e.spec, fstype: e.vfstype, majMin: null };
  return found;
}

/** Block device name for a device path given to the kernel or found in the mount table (/dev/…, UUID=…), or null. */
function blockNameFor(root: HostRoot, source: string): string | null {
  let dev = source;
  const tag = /^(UUID|PARTUUID|LABEL|PARTLABEL)=(.+)$/.exec(source);
  if (tag) dev = `/dev/disk/by-${tag[1]!.toLowerCase()}/${tag[2]}`;
  if (!dev.startsWith('/dev/')) return null;
  // udev makes /dev/mapper/NAME, /dev/VG/LV and /dev/disk/by-*/… links to the kernel's name.
  const target = root.tryResolveLink(dev);
  const name = path.posix.basename(target ?? dev);
  if (root.isDir(`${SYS_CLASS_BLOCK}/${name}`) || root.tryReadLink(`${SYS_CLASS_BLOCK}/${name}`) !== undefined) return name;
  // /dev/mapper/NAME without udev's link: find the dm device by its name.
  const m = /^\/dev\/mapper\/(.+)$/.exec(dev);
  if (m) {
    for (const b of root.tryList(SYS_CLASS_BLOCK) ?? []) {
      if (b.startsWith('dm-') && root.tryReadAttr(`${SYS_CLASS_BLOCK}/${b}/dm/name`) === m[1]) return b;
    }
  }
  return null;
}

/** A block device's name in a chain: the kernel name, with the device-mapper name when it has one. */
function blockLabel(root: HostRoot, dir: string): string {
  const name = path.posix.basename(dir);
  const dm = root.tryReadAttr(`${dir}/dm/name`);
  return dm ? `${name} (${dm})` : name;
}

/**
 * Follows a block device (its real sysfs directory) down to PCI functions.
 * `trail` is the chain so far; each PCI function reached adds its whole chain
 * ("dm-1 (vg-home) → dm-0 → nvme0n1p3 → nvme0n1 → 0000:02:00.0") to `chains`.
 */
function followBlock(root: HostRoot, dir: string, seen: Set<string>, out: Set<string>, broken: string[], depth = 0, trail: string[] = [], chains: string[] = []): void {
  const name = path.posix.basename(dir);
  if (seen.has(dir) || depth > MAX_DEPTH) return;
  seen.add(dir);
  // A partition's directory sits inside its disk's.
  const disk = root.has(`${dir}/partition`) ? path.posix.dirname(dir) : dir;
  const here = disk === dir ? [...trail, blockLabel(root, dir)] : [...trail, name, blockLabel(root, disk)];
  const pci = nearestPci(disk);
  if (pci) {
    out.add(pci);
    chains.push([...here, pci].join(' → '));
    return;
  }
  const lower = [...(root.tryList(`${disk}/slaves`) ?? []).map((n) => `${disk}/slaves/${n}`), ...(root.tryList(`${disk}/multipath`) ?? []).map((n) => `${disk}/multipath/${n}`)];
  if (!lower.length) {
    broken.push(describeBlock(root, disk, name));
    return;
  }
  for (const l of lower) {
    const target = root.tryResolveLink(l);
    if (target) followBlock(root, target, seen, out, broken, depth + 1, here, chains);
    else broken.push(`${l} is not a link`);
  }
}

function describeBlock(root: HostRoot, dir: string, name: string): string {
  const disk = path.posix.basename(dir);
  const dm = root.tryReadAttr(`${dir}/dm/name`);
  const backing = root.tryReadAttr(`${dir}/loop/backing_file`);
  if (backing) return `${disk} is a loop device over the file ${backing}`;
  if (dm !== undefined) return `${disk} (device-mapper ${dm}) lists no slaves`;
  if (/^md\d/.test(disk)) return `${disk} (md RAID) lists no slaves`;
  return `${name === disk ? disk : `${name} on ${disk}`} sits on no PCI device (${dir})`;
}

export function readRootStorage(root: HostRoot): CriticalDevices {
  const out = new Set<string>();
  const broken: string[] = [];
  const result = (why: string | null): CriticalDevices => ({
    addresses: [...out].sort(),
    warnings: why ? [`the root file system could not be followed to its disk's PCI device (${why}); vfiokit cannot tell whether a storage controller you pass holds it — check with \`lsblk -s\` before passing one`] : [],
  });
  const mount = rootMount(root);
  if (!mount) return result(`no ${PROC_MOUNTINFO} or ${PROC_MOUNTS} to read`);
  if (mount.fstype === 'zfs')
    return {
      addresses: [],
      warnings: [`the root file system is the ZFS dataset ${mount.source}; vfiokit does not follow ZFS pools to their disks — check \`zpool status ${mount.source.split('/')[0]}\` and do not pass the controllers of those disks`],
    };
  const starts: string[] = [];
  if (mount.majMin && !mount.majMin.startsWith('0:')) {
    const dir = root.tryResolveLink(`${SYS_DEV_BLOCK}/${mount.majMin}`);
    if (dir) starts.push(dir);
  }
  if (!starts.length && mount.fstype === 'btrfs') {
    // A btrfs file system (anonymous device number) lists every member device.
    const want = blockNameFor(root, mount.source);
    for (const fsid of root.tryList(SYS_FS_BTRFS) ?? []) {
      const members = root.tryList(`${SYS_FS_BTRFS}/${fsid}/devices`) ?? [];
      if (!want || !members.includes(want)) continue;
      for (const m of members) {
        const dir = root.tryResolveLink(`${SYS_FS_BTRFS}/${fsid}/devices/${m}`);
        if (dir) starts.push(dir);
      }
    }
  }
  if (!starts.length) {
    let source = mount.source;
    // /dev/root: the kernel's name for the device it mounted from root=.
    if (source === '/dev/root') source = /(?:^|\s)root=(\S+)/.exec(root.tryReadText(PROC_CMDLINE) ?? '')?.[1] ?? source;
    const name = blockNameFor(root, source);
    const dir = name ? classDir(root, `${SYS_CLASS_BLOCK}/${name}`) : null;
    if (!dir) return result(`it is ${mount.source} (${mount.fstype}), which is no block device in ${SYS_CLASS_BLOCK}`);
    starts.push(dir);
  }
  const seen = new Set<string>();
  for (const s of starts) followBlock(root, s, seen, out, broken);
  return result(broken.length ? broken.join('; ') : null);
}

/** Sources that name a block device (the rest — tmpfs, proc, server:/export, a ZFS dataset — sit on no local disk). */
const BLOCK_SOURCE = /^(\/dev\/|UUID=|PARTUUID=|LABEL=|PARTLABEL=)/;
/** Options after which the boot does not wait for a mount: fstab(5) noauto and nofail; an automount is set up without its device (systemd.mount(5)). */
const NOT_NEEDED_AT_BOOT = ['noauto', 'nofail', 'x-systemd.automount'];
/** File systems that are not on a disk of this host, whatever their source looks like. */
const NOT_LOCAL = new Set(['nfs', 'nfs4', 'cifs', 'smb3', 'sshfs', 'fuse.sshfs', 'glusterfs', 'ceph', '9p', 'virtiofs', 'zfs']);

/** Block devices that are memory or a file, never a disk of their own (a loop file's file system is a mount of its own). */
const MEMORY_OR_FILE_BLOCK = /^(loop|zram|ram|nbd)\d+(p\d+)?$/;

interface StorageMounts {
  mounts: StorageMount[];
  /** Mounts whose device could not be followed to a PCI function, one sentence each. */
  warnings: string[];
}

/**
 * The mounts and swap areas besides `/` that sit on a PCI storage controller:
 * what the next boot needs (/boot, the ESP, every /etc/fstab entry without
 * nofail/noauto, swap included) and what is mounted or swapped on now
 * (/proc/mounts, /proc/swaps). Sources are followed like the root's: UUID=,
 * LABEL=, PARTUUID= and PARTLABEL= through udev's /dev/disk/by-* links, then
 * sysfs down to the disks.
 */
export function readStorageMounts(root: HostRoot): StorageMounts {
  interface Found { target: string; source: string; fstype: string; swap: boolean; mounted: boolean; atBoot: boolean; inFstab: boolean }
  const byKey = new Map<string, Found>();
  const add = (f: Omit<Found, 'mounted' | 'atBoot' | 'inFstab'> & Partial<Found>) => {
    if (f.target === '/' || !BLOCK_SOURCE.test(f.source) || NOT_LOCAL.has(f.fstype)) return;
    const key = f.swap ? `swap:${blockNameFor(root, f.source) ?? f.source}` : f.target;
    const was = byKey.get(key);
    const boot = !f.swap && (BOOT_MOUNT_POINTS as readonly string[]).includes(f.target);
    byKey.set(key, {
      ...(was ?? f),
      mounted: !!(was?.mounted || f.mounted),
      atBoot: !!(was?.atBoot || f.atBoot || (boot && (f.inFstab || f.mounted))),
      inFstab: !!(was?.inFstab || f.inFstab),
      // The mounted source names the device that is really there; fstab's is what the next boot looks for.
      ...(f.inFstab ? { source: f.source } : {}),
    });
  };
  const warnings: string[] = [];
  const fstab = root.tryReadText(ETC_FSTAB);
  if (fstab !== undefined) {
    for (const l of parseFstab(fstab).lines) {
      if (l.error) warnings.push(`${ETC_FSTAB} ${l.error}`);
      const e = l.entry;
      if (!e) continue;
      const swap = e.vfstype === 'swap';
      add({ target: swap ? e.spec : e.file, source: e.spec, fstype: e.vfstype, swap, inFstab: true, atBoot: !NOT_NEEDED_AT_BOOT.some((o) => hasMountOption(e, o)) });
    }
  }
  const mounts = root.tryReadText(PROC_MOUNTS);
  for (const e of mounts === undefined ? [] : mountEntries(mounts)) add({ target: e.file, source: e.spec, fstype: e.vfstype, swap: false, mounted: true });
  const swaps = root.tryReadText(PROC_SWAPS);
  for (const sw of swaps === undefined ? [] : parseProcSwaps(swaps)) {
    // A swap file lives on the file system that holds it; a partition is its own device.
    if (sw.type === 'partition') add({ target: sw.filename, source: sw.filename, fstype: 'swap', swap: true, mounted: true });
  }
  const out: StorageMount[] = [];
  for (const f of byKey.values()) {
    if (!f.mounted && !f.atBoot) continue;
    const name = blockNameFor(root, f.source);
    const dir = name ? classDir(root, `${SYS_CLASS_BLOCK}/${name}`) : null;
    if (!dir) {
      warnings.push(`${f.swap ? `the swap area ${f.source}` : `${f.target} (${f.source})`} could not be followed to a block device in ${SYS_CLASS_BLOCK}${f.source.includes('=') ? ' (no udev link for it under /dev/disk)' : ''}`);
      continue;
    }
    // Memory and file-backed devices sit on no controller: zram swap (Fedora's default), snap's loop mounts.
    if (MEMORY_OR_FILE_BLOCK.test(path.posix.basename(dir))) continue;
    const addresses = new Set<string>();
    const broken: string[] = [];
    const chains: string[] = [];
    followBlock(root, dir, new Set(), addresses, broken, 0, f.source.startsWith('/dev/') && path.posix.basename(f.source) === name ? [] : [f.source], chains);
    if (broken.length) warnings.push(`${f.swap ? `the swap area ${f.source}` : f.target} could not be followed to its disk's PCI device (${broken.join('; ')})`);
    if (addresses.size)
      out.push({ target: f.target, source: f.source, fstype: f.fstype, swap: f.swap, boot: !f.swap && (BOOT_MOUNT_POINTS as readonly string[]).includes(f.target), mounted: f.mounted, atBoot: f.atBoot, addresses: [...addresses].sort(), chains });
  }
  out.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  return { mounts: out, warnings };
}

/** Interfaces holding a default route (IPv4 and IPv6), sorted. */
function defaultRouteInterfaces(root: HostRoot): string[] | null {
  const v4 = root.tryReadText(PROC_NET_ROUTE);
  const v6 = root.tryReadText(PROC_NET_IPV6_ROUTE);
  if (v4 === undefined && v6 === undefined) return null;
  const out = new Set<string>();
  for (const line of (v4 ?? '').split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (iface && dest === '00000000' && (mask === undefined || mask === '00000000')) out.add(iface);
  }
  // ipv6_route: dest, dest prefix length, src, src prefix, next hop, metric, refcnt, use, flags, iface.
  for (const line of (v6 ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    // RTF_REJECT (0x0200): the kernel's unreachable placeholder, not a route.
    if (f.length >= 10 && /^0{32}$/.test(f[0]!) && f[1] === '00' && f[9] !== 'lo' && !(parseInt(f[8]!, 16) & 0x200)) out.add(f[9]!);
  }
  return [...out].sort();
}

function followNet(root: HostRoot, iface: string, seen: Set<string>, out: Set<string>, broken: string[], depth = 0): void {
  if (seen.has(iface) || depth > MAX_DEPTH) return;
  seen.add(iface);
  const cls = `${SYS_CLASS_NET}/${iface}`;
  const dir = classDir(root, cls);
  if (!dir) {
    broken.push(`${iface} is not in ${SYS_CLASS_NET}`);
    return;
  }
  const pci = nearestPci(dir);
  if (pci) {
    out.add(pci);
    return;
  }
  const entries = root.tryList(dir) ?? [];
  const lower = new Set(entries.filter((e) => e.startsWith('lower_')).map((e) => e.slice('lower_'.length)));
  for (const p of root.tryList(`${dir}/brif`) ?? []) lower.add(p);
  for (const s of (root.tryReadAttr(`${dir}/bonding/slaves`) ?? '').split(/\s+/)) if (s) lower.add(s);
  if (!lower.size) {
    const kind = entries.includes('bridge') ? 'a bridge with no ports' : entries.includes('bonding') ? 'a bond with no slaves' : 'a virtual interface (VPN, tunnel or similar) over no network card';
    broken.push(`${iface} is ${kind}`);
    return;
  }
  for (const l of [...lower].sort()) followNet(root, l, seen, out, broken, depth + 1);
}

export function readDefaultRouteNics(root: HostRoot): CriticalDevices {
  const ifaces = defaultRouteInterfaces(root);
  const out = new Set<string>();
  const broken: string[] = [];
  if (ifaces === null) broken.push(`no ${PROC_NET_ROUTE} to read`);
  const seen = new Set<string>();
  for (const i of ifaces ?? []) followNet(root, i, seen, out, broken);
  return {
    addresses: [...out].sort(),
    warnings: broken.length
      ? [`the default route could not be followed to a network card's PCI device (${broken.join('; ')}); vfiokit cannot tell whether a network card you pass carries it — check with \`ip route\` and \`ip -d link\` before passing one`]
      : [],
  };
}
