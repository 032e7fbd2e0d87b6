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
import type { HostRoot } from './root.js';
import { PROC_CMDLINE, PROC_MOUNTINFO, PROC_MOUNTS, PROC_NET_IPV6_ROUTE, PROC_NET_ROUTE, SYS_CLASS_BLOCK, SYS_CLASS_NET, SYS_DEV_BLOCK, SYS_FS_BTRFS } from './sysfs-paths.js';

const PCI_COMPONENT = /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/;
/** Deeper stacks than this are a loop in a broken tree. */
const MAX_DEPTH = 16;

export interface CriticalDevices {
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
      found = { majMin: /^\d+:\d+$/.test(f[2] ?? '') ? f[2]! : null, fstype: g[0]!, source: unescapeMount(g[1]!) };
    }
    if (found) return found;
  }
  const mounts = root.tryReadText(PROC_MOUNTS);
  if (!mounts) return null;
  let found: RootMount | null = null;
  for (const line of mounts.split('\n')) {
    const f = line.split(' ');
    if (f[1] === '/') found = { source: unescapeMount(f[0] ?? ''), fstype: f[2] ?? '', majMin: null };
  }
  return found;
}

/** The kernel writes space, tab, newline and backslash in mount fields as octal escapes. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
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

/** Follows a block device (its real sysfs directory) down to PCI functions. */
function followBlock(root: HostRoot, dir: string, seen: Set<string>, out: Set<string>, broken: string[], depth = 0): void {
  const name = path.posix.basename(dir);
  if (seen.has(dir) || depth > MAX_DEPTH) return;
  seen.add(dir);
  // A partition's directory sits inside its disk's.
  const disk = root.has(`${dir}/partition`) ? path.posix.dirname(dir) : dir;
  const pci = nearestPci(disk);
  if (pci) {
    out.add(pci);
    return;
  }
  const lower = [...(root.tryList(`${disk}/slaves`) ?? []).map((n) => `${disk}/slaves/${n}`), ...(root.tryList(`${disk}/multipath`) ?? []).map((n) => `${disk}/multipath/${n}`)];
  if (!lower.length) {
    broken.push(describeBlock(root, disk, name));
    return;
  }
  for (const l of lower) {
    const target = root.tryResolveLink(l);
    if (target) followBlock(root, target, seen, out, broken, depth + 1);
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
