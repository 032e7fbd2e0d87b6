// Host paths of the display handoff and libvirt hooks: named here (not in
// src/host/sysfs-paths.ts, which re-exports them) so the pure planners can use
// them too.

import { UsageError } from '../errors.js';

// Display handoff (drivers/tty/vt, drivers/video/fbdev, drivers/gpu/drm, drivers/firmware/sysfb.c).
export const SYS_CLASS_VTCONSOLE = '/sys/class/vtconsole';
export const SYS_CLASS_DRM = '/sys/class/drm';
export const SYS_PLATFORM_DEVICES = '/sys/bus/platform/devices';
const SYS_PLATFORM_DRIVERS = '/sys/bus/platform/drivers';
export const DEV_DRI = '/dev/dri';
export const DEV = '/dev';
export const vtconsoleAttr = (id: string, attr: 'bind' | 'name') => `${SYS_CLASS_VTCONSOLE}/${id}/${attr}`;
export const platformUnbind = (driver: string) => `${SYS_PLATFORM_DRIVERS}/${driver}/unbind`;
/** Firmware framebuffer platform devices sysfb.c may register. */
export const FIRMWARE_FB_DEVICES = ['simple-framebuffer.0', 'efi-framebuffer.0', 'vesa-framebuffer.0', 'vga-framebuffer.0', 'ega-framebuffer.0', 'platform-framebuffer.0'];

// systemd and libvirt files.
export const DISPLAY_MANAGER_UNIT = '/etc/systemd/system/display-manager.service';
export const CGROUP_SYSTEM_SLICE = '/sys/fs/cgroup/system.slice';
export const LIBVIRT_HOOKS_DIR = '/etc/libvirt/hooks';
export const LIBVIRT_QEMU_HOOK = '/etc/libvirt/hooks/qemu';
export const LIBVIRT_QEMU_HOOKS_D = '/etc/libvirt/hooks/qemu.d';
export const LIBVIRT_QEMU_DOMAINS = '/etc/libvirt/qemu';
export const LIBVIRT_LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/lib/aarch64-linux-gnu'];
/**
 * A defined domain's XML file. libvirt refuses a name with '/' (it names the
 * file), so such a name given to vfiokit is refused before any path is made
 * of it: `../x` would read a file outside libvirt's directory.
 */
export function definedDomainXml(name: string): string {
  if (!name || name.includes('/')) {
    throw new UsageError(`'${name}' cannot be a libvirt domain's name: libvirt refuses names that are empty or hold '/'`, 'give the name as `virsh list --all` shows it', 'E_BAD_NAME');
  }
  return `${LIBVIRT_QEMU_DOMAINS}/${name}.xml`;
}
