// Display facts for the single-GPU handoff: the display manager, virtual
// consoles, framebuffers (fbdev and the firmware platform devices), DRM cards
// with their connectors, loaded GPU/sound modules with their holders, and the
// processes holding /dev/dri/* or /dev/nvidia* open. Read only.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DeviceHolder, DisplayInfo, DrmCard, FbDevice, LoadedModule, PlatformFramebuffer, VtConsole } from '../model/snapshot.js';
import { parsePciAddress } from '../model/pci-address.js';
import type { HostRoot } from './root.js';
import {
  CGROUP_SYSTEM_SLICE, DEV, DEV_DRI, DISPLAY_MANAGER_UNIT, FIRMWARE_FB_DEVICES, PROC, PROC_FB, SYS_CLASS_DRM, SYS_CLASS_GRAPHICS,
  SYS_CLASS_VTCONSOLE, SYS_PLATFORM_DEVICES, moduleHolders, vtconsoleAttr,
} from './sysfs-paths.js';
import { PROC_MODULES } from './sysfs-paths.js';

/** Modules the handoff may unload or reload: GPU drivers, their helpers, HDMI audio. */
const DISPLAY_MODULES = /^(nvidia|nvidia_drm|nvidia_modeset|nvidia_uvm|i2c_nvidia_gpu|nouveau|amdgpu|radeon|i915|xe|bochs|bochs_drm|cirrus|qxl|virtio_gpu|drm|drm_kms_helper|ttm|drm_ttm_helper|snd_hda_intel|snd_hda_codec_hdmi|efifb|simplefb|simpledrm|efidrm)$/;

function pciOf(root: HostRoot, link: string): string | null {
  const target = root.tryResolveLink(link);
  if (!target) return null;
  return parsePciAddress(target.split('/').pop() ?? '') ?? null;
}

/** readlink of the last component itself (HostRoot.path follows links inside the root, the last one included). */
function readOwnLink(root: HostRoot, hostPath: string): string | undefined {
  try {
    const t = fs.readlinkSync(path.join(root.path(path.posix.dirname(hostPath)), path.posix.basename(hostPath)));
    root.keep(hostPath, 'link');
    return t;
  } catch {
    return undefined;
  }
}

function readDisplayManager(root: HostRoot): DisplayInfo['displayManager'] {
  const target = readOwnLink(root, DISPLAY_MANAGER_UNIT);
  if (!target) return null;
  const unit = target.split('/').pop()!;
  // cgroup v2: a running service has its own cgroup under system.slice.
  let active: boolean | null = null;
  if (root.isDir(CGROUP_SYSTEM_SLICE)) {
    const procs = root.tryReadText(`${CGROUP_SYSTEM_SLICE}/${unit}/cgroup.procs`);
    active = procs !== undefined && procs.trim() !== '';
  }
  return { unit, active };
}

function readVtConsoles(root: HostRoot): VtConsole[] {
  const out: VtConsole[] = [];
  for (const id of (root.tryList(SYS_CLASS_VTCONSOLE) ?? []).filter((n) => /^vtcon\d+$/.test(n))) {
    const name = root.tryReadAttr(vtconsoleAttr(id, 'name')) ?? '';
    const bound = root.tryReadAttr(vtconsoleAttr(id, 'bind')) === '1';
    out.push({ id, name, bound, unbindable: /frame buffer/i.test(name) && !name.startsWith('(S)') });
  }
  return out.sort((a, b) => Number(a.id.slice(5)) - Number(b.id.slice(5)));
}

export function readFramebuffers(root: HostRoot): FbDevice[] {
  const procFb = new Map<string, string>();
  for (const line of (root.tryReadText(PROC_FB) ?? '').split('\n')) {
    const m = /^(\d+)\s+(.+)$/.exec(line.trim());
    if (m) procFb.set(`fb${m[1]}`, m[2]);
  }
  const ids = new Set([...(root.tryList(SYS_CLASS_GRAPHICS) ?? []).filter((n) => /^fb\d+$/.test(n)), ...procFb.keys()]);
  return [...ids]
    .sort((a, b) => Number(a.slice(2)) - Number(b.slice(2)))
    .map((id) => ({ id, name: root.tryReadAttr(`${SYS_CLASS_GRAPHICS}/${id}/name`) ?? procFb.get(id) ?? null, device: pciOf(root, `${SYS_CLASS_GRAPHICS}/${id}/device`) }));
}

function readPlatformFramebuffers(root: HostRoot): PlatformFramebuffer[] {
  const out: PlatformFramebuffer[] = [];
  for (const device of FIRMWARE_FB_DEVICES) {
    if (!root.has(`${SYS_PLATFORM_DEVICES}/${device}`)) continue;
    const drv = root.tryReadLink(`${SYS_PLATFORM_DEVICES}/${device}/driver`);
    out.push({ device, driver: drv ? drv.split('/').pop()! : null });
  }
  return out;
}

function readDrm(root: HostRoot): DrmCard[] {
  const entries = root.tryList(SYS_CLASS_DRM) ?? [];
  return entries
    .filter((n) => /^card\d+$/.test(n))
    .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
    .map((id) => ({
      id,
      device: pciOf(root, `${SYS_CLASS_DRM}/${id}/device`),
      render: entries.filter((n) => /^renderD\d+$/.test(n)).find((n) => pciOf(root, `${SYS_CLASS_DRM}/${n}/device`) === pciOf(root, `${SYS_CLASS_DRM}/${id}/device`)) ?? null,
      connectors: entries.filter((n) => n.startsWith(`${id}-`)).sort().map((n) => ({ name: n.slice(id.length + 1), status: root.tryReadAttr(`${SYS_CLASS_DRM}/${n}/status`) ?? null })),
    }));
}

/** /proc/modules: "name size refcnt deps, state address"; only display modules are kept. */
function readDisplayModules(root: HostRoot): LoadedModule[] {
  const out: LoadedModule[] = [];
  for (const line of (root.tryReadText(PROC_MODULES) ?? '').split('\n')) {
    const f = line.split(/\s+/);
    if (f.length < 4 || !DISPLAY_MODULES.test(f[0])) continue;
    const deps = f[3] === '-' ? [] : f[3].split(',').filter(Boolean);
    const sysHolders = root.tryList(moduleHolders(f[0])) ?? [];
    out.push({ name: f[0], refcnt: Number(f[2]) || 0, holders: [...new Set([...deps, ...sysHolders])].sort() });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Device nodes of a display: /dev/dri/* and /dev/nvidia*. */
function isDisplayNode(p: string): boolean {
  return p.startsWith(`${DEV_DRI}/`) || /^\/dev\/nvidia/.test(p);
}

/** Processes with /dev/dri/* or /dev/nvidia* open (scans /proc/PID/fd); null when /proc is not there. */
function readDeviceHolders(root: HostRoot, self = -1): DeviceHolder[] | null {
  const found = root.quietly(() => scanHolders(root, self));
  for (const h of found ?? []) {
    root.keep(`${PROC}/${h.pid}/comm`, 'file');
    root.keep(`${PROC}/${h.pid}/fd/${h.fd}`, 'link');
  }
  return found?.map(({ pid, comm, path: p }) => ({ pid, comm, path: p })) ?? null;
}

function scanHolders(root: HostRoot, self: number): (DeviceHolder & { fd: string })[] | null {
  const pids = root.tryList(PROC);
  if (!pids) return null;
  const out: (DeviceHolder & { fd: string })[] = [];
  for (const p of pids) {
    if (!/^\d+$/.test(p) || Number(p) === self) continue;
    const fds = root.tryList(`${PROC}/${p}/fd`);
    if (!fds) continue;
    const seen = new Set<string>();
    for (const fd of fds) {
      const t = root.tryReadLink(`${PROC}/${p}/fd/${fd}`);
      if (t && isDisplayNode(t) && !seen.has(t)) {
        seen.add(t);
        out.push({ pid: Number(p), comm: (root.tryReadAttr(`${PROC}/${p}/comm`) ?? '?').trim(), path: t, fd });
      }
    }
  }
  return out.sort((a, b) => a.pid - b.pid || a.path.localeCompare(b.path));
}

/** Names of running processes (from /proc/PID/comm) among `names`. */
export function runningProcesses(root: HostRoot, names: string[]): string[] {
  return root.quietly(() => {
    const found = new Set<string>();
    for (const p of root.tryList(PROC) ?? []) {
      if (!/^\d+$/.test(p)) continue;
      const comm = root.tryReadAttr(`${PROC}/${p}/comm`)?.trim();
      if (comm && names.includes(comm)) found.add(comm);
    }
    return [...found].sort();
  });
}

export function readDisplay(root: HostRoot, self = -1): DisplayInfo {
  return {
    displayManager: readDisplayManager(root),
    vtconsoles: readVtConsoles(root),
    framebuffers: readFramebuffers(root),
    platformFramebuffers: readPlatformFramebuffers(root),
    drm: readDrm(root),
    modules: readDisplayModules(root),
    holders: readDeviceHolders(root, self),
    nvidiaNodes: (root.tryList(DEV) ?? []).filter((n) => n.startsWith('nvidia')).sort().map((n) => `${DEV}/${n}`),
  };
}
