// Configuration files under /etc that vfiokit reads or writes, named once.
// Here in the model layer (not in src/host/sysfs-paths.ts, which re-exports
// them) so the pure planners, formats and analyses can name them too.

export const ETC = '/etc';

// Boot loaders and the kernel command line.
export const GRUB_DEFAULT = '/etc/default/grub';
export const GRUB_DEFAULT_D = '/etc/default/grub.d';
export const GRUB_DROP_IN = `${GRUB_DEFAULT_D}/99-vfiokit.cfg`;
export const KERNEL_CMDLINE_FILE = '/etc/kernel/cmdline';
export const PROXMOX_BOOT_UUIDS = '/etc/kernel/proxmox-boot-uuids';
export const KERNELSTUB_CONFIG = '/etc/kernelstub/configuration';
export const LIMINE_DEFAULTS = '/etc/default/limine';
export const LIMINE_ENTRY_TOOL_D = '/etc/limine-entry-tool.d';
export const LIMINE_DROP_IN = `${LIMINE_ENTRY_TOOL_D}/90-vfiokit.conf`;

// Modules and initramfs generators.
const MODPROBE_D = '/etc/modprobe.d';
/**
 * Every directory kmod reads modprobe.d files from, in its order of precedence
 * (libkmod.c default_config_paths; modprobe.d(5) "Configuration directories
 * and precedence"): a file name found in an earlier directory hides the same
 * name in every later one; the files are then read in name order across all.
 */
export const MODPROBE_DIRS = [MODPROBE_D, '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/usr/lib/modprobe.d', '/lib/modprobe.d'] as const;
/** A modprobe.d file linked here is masked: it reads as empty and hides the same name in later directories. */
export const MASKED_LINK = '/dev/null';
export const MODPROBE_VFIOKIT_CONF = `${MODPROBE_D}/vfiokit.conf`;
export const INITRAMFS_TOOLS_DIR = '/etc/initramfs-tools';
export const INITRAMFS_TOOLS_MODULES = `${INITRAMFS_TOOLS_DIR}/modules`;
export const INITRAMFS_TOOLS_CONF = `${INITRAMFS_TOOLS_DIR}/initramfs.conf`;
export const INITRAMFS_TOOLS_VFIOKIT_HOOK = `${INITRAMFS_TOOLS_DIR}/hooks/vfiokit`;
export const DRACUT_CONF = '/etc/dracut.conf';
export const DRACUT_CONF_D = '/etc/dracut.conf.d';
export const DRACUT_VFIOKIT_CONF = `${DRACUT_CONF_D}/vfiokit.conf`;
export const MKINITCPIO_CONF = '/etc/mkinitcpio.conf';
export const MKINITCPIO_CONF_D = '/etc/mkinitcpio.conf.d';
export const MKINITCPIO_DROP_IN = `${MKINITCPIO_CONF_D}/90-vfiokit.conf`;
export const BOOSTER_YAML = '/etc/booster.yaml';

// Host identity (redacted from snapshots) and the OS.
export const ETC_MACHINE_ID = '/etc/machine-id';
export const ETC_OS_RELEASE = '/etc/os-release';

// QEMU firmware descriptors a user or admin adds (docs/interop/firmware.json).
export const ETC_QEMU_FIRMWARE = '/etc/qemu/firmware';
// Proxmox VE resource mappings.
export const PVE_MAPPING_PCI = '/etc/pve/mapping/pci.cfg';

/** Top-level directories that hold configuration files vfiokit reads or edits (a config file's symlink may point there). */
export const CONFIG_LOCATIONS: readonly string[] = ['/etc/', '/boot/', '/efi/'];
