// Reads everything the boot-time passthrough planner needs into the
// snapshot: boot and initramfs configuration files (content, mode, owner),
// directory listings, which tools exist, installed kernels and their vfio
// modules, the EFI loader identity, and host-critical devices (root
// filesystem storage, default-route NIC, firmware framebuffers).

import * as path from 'node:path';
import type { FileState } from '../model/plan.js';
import type { BootInfo, ModuleState } from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import {
  BOOSTER_YAML,
  DRACUT_CONF,
  DRACUT_CONF_D,
  EFI_LOADER_INFO as LOADER_INFO,
  GRUB_DEFAULT,
  GRUB_DEFAULT_D,
  INITRAMFS_TOOLS_CONF,
  INITRAMFS_TOOLS_MODULES,
  INITRAMFS_TOOLS_VFIOKIT_HOOK,
  KERNEL_CMDLINE_FILE,
  KERNELSTUB_CONFIG,
  LIMINE_DEFAULTS,
  LIMINE_ENTRY_TOOL_D,
  MKINITCPIO_CONF,
  MKINITCPIO_CONF_D,
  MODPROBE_D,
  PROC_IOMEM,
  PROC_MOUNTS,
  PROC_NET_ROUTE,
  PROXMOX_BOOT_UUIDS,
  SYS_CLASS_BLOCK,
  SYS_CLASS_NET,
} from './sysfs-paths.js';

/** Directories whose listed files are read. */
const CONFIG_DIRS: [string, RegExp][] = [
  [GRUB_DEFAULT_D, /\.cfg$/],
  [MODPROBE_D, /\.conf$/],
  [DRACUT_CONF_D, /\.conf$/],
  [MKINITCPIO_CONF_D, /\.conf$/],
  [LIMINE_ENTRY_TOOL_D, /\.conf$/],
  ['/boot/loader/entries', /\.conf$/],
  ['/boot/efi/loader/entries', /\.conf$/],
  ['/efi/loader/entries', /\.conf$/],
];

const CONFIG_FILES = [
  GRUB_DEFAULT,
  INITRAMFS_TOOLS_MODULES,
  INITRAMFS_TOOLS_CONF,
  DRACUT_CONF,
  MKINITCPIO_CONF,
  BOOSTER_YAML,
  KERNEL_CMDLINE_FILE,
  PROXMOX_BOOT_UUIDS,
  KERNELSTUB_CONFIG,
  '/boot/refind_linux.conf',
  LIMINE_DEFAULTS,
  '/boot/limine.conf',
  '/boot/limine/limine.conf',
  '/limine.conf',
  '/boot/EFI/BOOT/limine.conf',
  '/boot/efi/EFI/BOOT/limine.conf',
  '/boot/grub/grub.cfg',
  '/boot/grub2/grub.cfg',
  '/boot/grub2/grubenv',
  // Files only vfiokit writes (read so a configured host plans nothing).
  '/usr/local/lib/vfiokit/vfio-pci-override.sh',
  INITRAMFS_TOOLS_VFIOKIT_HOOK,
];

const TOOLS = [
  'update-grub',
  'grub-mkconfig',
  'grub2-mkconfig',
  'grubby',
  'bootctl',
  'kernel-install',
  'kernelstub',
  'proxmox-boot-tool',
  'update-initramfs',
  'dracut',
  'mkinitcpio',
  'booster',
  'limine-update',
  'limine-entry-tool',
  'refind-install',
  'modprobe',
];
const BIN_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Host drivers that compete with vfio-pci for passthrough devices (softdep candidates). */
export const COMPETING_MODULES = ['nvidia', 'nouveau', 'amdgpu', 'radeon', 'snd_hda_intel', 'xhci_pci', 'i2c_nvidia_gpu', 'ucsi_ccg', 'i915', 'xe', 'nvme', 'ahci', 'igb', 'e1000e', 'r8169'];

export function readBoot(root: HostRoot, currentRelease: string | null): BootInfo {
  const files: Record<string, FileState> = {};
  const dirs: Record<string, string[]> = {};
  for (const f of CONFIG_FILES) {
    // grub.cfg can be large: only its existence matters.
    if (f.endsWith('grub.cfg')) {
      if (root.probe(f)) dirs[path.posix.dirname(f)] = [...(dirs[path.posix.dirname(f)] ?? []), path.posix.basename(f)];
      continue;
    }
    const st = root.tryReadFileState(f);
    if (st) files[f] = st;
  }
  for (const [dir, re] of CONFIG_DIRS) {
    const names = root.tryList(dir);
    if (!names) continue;
    dirs[dir] = names.sort();
    for (const n of names) {
      if (!re.test(n)) continue;
      const st = root.tryReadFileState(`${dir}/${n}`);
      if (st) files[`${dir}/${n}`] = st;
    }
  }
  const tools: Record<string, string | null> = {};
  for (const t of TOOLS) tools[t] = root.findExecutable(BIN_DIRS.map((d) => `${d}/${t}`));
  tools['booster-regenerate'] = root.findExecutable(['/usr/lib/booster/regenerate_images']);

  // Installed kernels and whether vfio-pci is built in or a module for each.
  const kernels: BootInfo['kernels'] = [];
  const competitors = new Set<string>();
  for (const base of ['/lib/modules', '/usr/lib/modules']) {
    for (const rel of (root.tryList(base) ?? []).sort()) {
      if (kernels.some((k) => k.release === rel)) continue;
      const builtin = root.tryReadText(`${base}/${rel}/modules.builtin`);
      const dep = root.tryReadText(`${base}/${rel}/modules.dep`);
      if (builtin === undefined && dep === undefined) continue;
      const state = (name: string): ModuleState => {
        const re = new RegExp(`(^|/)${name.replace(/_/g, '[-_]')}\\.ko`, 'm');
        if (builtin && re.test(builtin)) return 'builtin';
        if (dep && re.test(dep)) return 'module';
        return 'missing';
      };
      kernels.push({ release: rel, vfioPci: state('vfio_pci'), vfioVirqfd: state('vfio_virqfd'), running: rel === currentRelease });
      if (rel === currentRelease) for (const m of COMPETING_MODULES) if (state(m) !== 'missing') competitors.add(m);
    }
  }

  let loaderInfo: string | null = null;
  const li = root.tryReadBytes(LOADER_INFO);
  if (li && li.length > 4) {
    loaderInfo = Buffer.from(li.subarray(4)).toString('utf16le').replace(/\0.*$/s, '') || null;
  }
  return {
    files,
    dirs,
    tools,
    kernels,
    loaderInfo,
    hostDriverModules: [...competitors].sort(),
    rootStorage: readRootStorage(root),
    defaultRouteNics: readDefaultRouteNics(root),
    framebuffers: readFramebuffers(root),
  };
}

/** PCI addresses on the sysfs path of a block or net device's `device` link. */
function pciAncestors(root: HostRoot, link: string): string[] {
  const target = root.tryResolveLink(link);
  if (!target) return [];
  return target.split('/').filter((p) => /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/.test(p));
}

function readRootStorage(root: HostRoot): string[] {
  const mounts = root.tryReadText(PROC_MOUNTS);
  if (!mounts) return [];
  const line = mounts.split('\n').find((l) => l.split(' ')[1] === '/');
  const dev = line?.split(' ')[0] ?? '';
  const m = /^\/dev\/([a-z0-9]+?)(p?\d+)?$/.exec(dev);
  if (!m) return [];
  // nvme0n1p2 → nvme0n1, sda2 → sda
  const disk = dev.startsWith('/dev/nvme') ? /^\/dev\/(nvme\d+n\d+)/.exec(dev)?.[1] : m[1];
  if (!disk) return [];
  const addrs = pciAncestors(root, `${SYS_CLASS_BLOCK}/${disk}`);
  return addrs.length ? [addrs[addrs.length - 1]] : [];
}

function readDefaultRouteNics(root: HostRoot): string[] {
  const route = root.tryReadText(PROC_NET_ROUTE);
  if (!route) return [];
  const out = new Set<string>();
  for (const line of route.split('\n').slice(1)) {
    const [iface, dest] = line.trim().split(/\s+/);
    if (dest !== '00000000' || !iface) continue;
    const addrs = pciAncestors(root, `${SYS_CLASS_NET}/${iface}/device`);
    if (addrs.length) out.add(addrs[addrs.length - 1]);
  }
  return [...out].sort();
}

/** Firmware framebuffers nested under a PCI device's resources in /proc/iomem. */
function readFramebuffers(root: HostRoot): { address: string; owner: string }[] {
  const iomem = root.tryReadText(PROC_IOMEM);
  if (!iomem) return [];
  const out: { address: string; owner: string }[] = [];
  const stack: { indent: number; name: string }[] = [];
  for (const line of iomem.split('\n')) {
    const m = /^(\s*)[0-9a-f]+-[0-9a-f]+ : (.*)$/.exec(line);
    if (!m) continue;
    const indent = m[1].length;
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    const name = m[2].trim();
    if (/^(BOOTFB|efifb|simpledrm|vesafb|simple-framebuffer)/i.test(name)) {
      const dev = [...stack].reverse().find((s) => /^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/.test(s.name));
      if (dev && !out.some((o) => o.address === dev.name && o.owner === name)) out.push({ address: dev.name, owner: name });
    }
    stack.push({ indent, name });
  }
  return out;
}
