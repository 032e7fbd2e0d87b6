// Reads everything the boot-time passthrough planner needs into the
// snapshot: boot and initramfs configuration files (content, mode, owner),
// directory listings, which tools exist, installed kernels and their vfio
// modules, the EFI loader identity, and host-critical devices (root
// filesystem storage, default-route NIC, firmware framebuffers).

import * as path from 'node:path';
import { OWNED_PATH as DRACUT_OWNED } from '../formats/dracut-conf.js';
import { DROP_IN_PATH as GRUB_DROP_IN } from '../formats/grub-default.js';
import { DROP_IN_PATH as LIMINE_DROP_IN } from '../formats/limine.js';
import { DROP_IN_PATH as MKINITCPIO_DROP_IN } from '../formats/mkinitcpio-conf.js';
import { OWNED_PATH as MODPROBE_OWNED } from '../formats/modprobe-d.js';
import { linkTargetIsSameKind } from '../analysis/boot-detect.js';
import type { FileState } from '../model/plan.js';
import type { BootInfo, ModuleState } from '../model/snapshot.js';
import { readDefaultRouteNics, readRootStorage, readStorageMounts } from './host-critical.js';
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
  MODPROBE_DIRS,
  PROC_IOMEM,
  PROXMOX_BOOT_UUIDS,
} from './sysfs-paths.js';

/** Directories whose listed files are read. */
const CONFIG_DIRS: [string, RegExp][] = [
  [GRUB_DEFAULT_D, /\.cfg$/],
  ...MODPROBE_DIRS.map((d): [string, RegExp] => [d, /\.conf$/]),
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

/** Files vfiokit writes whole: checked for their type even where their directory is not listed. */
const OWNED_FILES = [MODPROBE_OWNED, GRUB_DROP_IN, DRACUT_OWNED, MKINITCPIO_DROP_IN, LIMINE_DROP_IN];

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
const COMPETING_MODULES = ['nvidia', 'nouveau', 'amdgpu', 'radeon', 'snd_hda_intel', 'xhci_pci', 'i2c_nvidia_gpu', 'ucsi_ccg', 'i915', 'xe', 'nvme', 'ahci', 'igb', 'e1000e', 'r8169'];

export function readBoot(root: HostRoot, currentRelease: string | null): BootInfo {
  const files: Record<string, FileState> = {};
  const dirs: Record<string, string[]> = {};
  const links: Record<string, string> = {};
  const irregular: NonNullable<BootInfo['irregular']> = {};
  /** Read a config file, noting a symlink's target and anything that is not a regular file. */
  const readConfig = (f: string) => {
    const e = root.entry(f);
    if (e.type === 'absent') return;
    if (e.link) links[f] = e.link;
    if (e.type !== 'file') {
      irregular[f] = { type: e.type, link: e.link };
      return;
    }
    // A link to another kind of file is refused by the planner: its content is neither read nor archived.
    if (e.link && !linkTargetIsSameKind(f, e.link)) return;
    const st = root.tryReadFileState(f);
    if (st) files[f] = st;
    if (e.link) root.keep(e.link, 'file');
  };
  for (const f of CONFIG_FILES) {
    // grub.cfg can be large: only its existence matters.
    if (f.endsWith('grub.cfg')) {
      if (root.probe(f)) dirs[path.posix.dirname(f)] = [...(dirs[path.posix.dirname(f)] ?? []), path.posix.basename(f)];
      continue;
    }
    readConfig(f);
  }
  for (const [dir, re] of CONFIG_DIRS) {
    const names = root.tryList(dir);
    if (!names) continue;
    dirs[dir] = names.sort();
    for (const n of names) if (re.test(n)) readConfig(`${dir}/${n}`);
  }
  for (const f of OWNED_FILES) if (!(f in files) && !(f in irregular)) readConfig(f);
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
  const rootStorage = readRootStorage(root);
  const routeNics = readDefaultRouteNics(root);
  const storageMounts = readStorageMounts(root);
  return {
    files,
    dirs,
    tools,
    kernels,
    loaderInfo,
    hostDriverModules: [...competitors].sort(),
    rootStorage: rootStorage.addresses,
    defaultRouteNics: routeNics.addresses,
    guardWarnings: { rootStorage: rootStorage.warnings, defaultRouteNics: routeNics.warnings, ...(storageMounts.warnings.length ? { storageMounts: storageMounts.warnings } : {}) },
    ...(storageMounts.mounts.length ? { storageMounts: storageMounts.mounts } : {}),
    framebuffers: readFramebuffers(root),
    ...(Object.keys(links).length ? { links } : {}),
    ...(Object.keys(irregular).length ? { irregular } : {}),
  };
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
