// Every sysfs/procfs path vfiokit uses, in one place (after libvirt's PCI_SYSFS).
// Attribute semantics: Documentation/ABI/testing/sysfs-bus-pci,
// sysfs-kernel-iommu_groups, sysfs-class-iommu.
// The paths pure layers name too live in src/model/*-paths.ts and are
// re-exported here, so host code imports this one module.
import { SYS_PCI_DEVICES } from '../model/kernel-paths.js';
import { ETC_OS_RELEASE } from '../model/config-paths.js';

export const SYS_PCI_DRIVERS = '/sys/bus/pci/drivers';
export const SYS_PCI_DRIVERS_PROBE = '/sys/bus/pci/drivers_probe';
export const SYS_IOMMU_GROUPS = '/sys/kernel/iommu_groups';
export const SYS_CLASS_IOMMU = '/sys/class/iommu';
export const SYS_CPU = '/sys/devices/system/cpu';
export const SYS_FIRMWARE_EFI = '/sys/firmware/efi';
export const PROC_CMDLINE = '/proc/cmdline';
export const PROC_CPUINFO = '/proc/cpuinfo';
export const PROC_INTERRUPTS = '/proc/interrupts';
export const PROC_MODULES = '/proc/modules';
export const PROC_OSRELEASE = '/proc/sys/kernel/osrelease';
// The mount table (host-critical disks, cgroup layout) and the default route's NICs.
export const PROC_MOUNTINFO = '/proc/self/mountinfo';
export const PROC_MOUNTS = '/proc/mounts';
export const PROC_SWAPS = '/proc/swaps';
export const ETC_FSTAB = '/etc/fstab';
/** Mount points the next boot and every kernel update need whatever fstab's options say: /boot and the ESP (where distributions mount it). */
export const BOOT_MOUNT_POINTS = ['/boot', '/boot/efi', '/efi'] as const;
export const PROC_NET_ROUTE = '/proc/net/route';
export const PROC_NET_IPV6_ROUTE = '/proc/net/ipv6_route';
export const SYS_CLASS_BLOCK = '/sys/class/block';
export const SYS_DEV_BLOCK = '/sys/dev/block';
export const SYS_FS_BTRFS = '/sys/fs/btrfs';
export const SYS_CLASS_NET = '/sys/class/net';
export const DEV_KVM = '/dev/kvm';
export const DEV_VFIO = '/dev/vfio';

export const pciDevice = (addr: string) => `${SYS_PCI_DEVICES}/${addr}`;
export const pciAttr = (addr: string, attr: string) => `${SYS_PCI_DEVICES}/${addr}/${attr}`;
export const pciDriverDir = (driver: string) => `${SYS_PCI_DRIVERS}/${driver}`;
export const iommuGroupDevices = (id: number | string) => `${SYS_IOMMU_GROUPS}/${id}/devices`;
const SYS_MODULE = '/sys/module';
export const PROC_BOOT_ID = '/proc/sys/kernel/random/boot_id';
export const PROC = '/proc';
export const SYS_CLASS_GRAPHICS = '/sys/class/graphics';
export const PROC_FB = '/proc/fb';
export const sysModule = (name: string) => `${SYS_MODULE}/${name.replace(/-/g, '_')}`;
// Logs `vfiokit diagnose` reads.
export const VAR_LOG_KERN = '/var/log/kern.log';
export const VAR_LOG_DMESG = '/var/log/dmesg';
export const VAR_LOG_JOURNAL = '/var/log/journal';
export const LIBVIRT_QEMU_LOG_DIR = '/var/log/libvirt/qemu';
export const VFIOKIT_JOURNAL_DIR = '/var/lib/vfiokit/journal';

/** What a directory must hold to be read as a Linux root (checked for --root). */
export const LINUX_ROOT_MARKERS = [SYS_PCI_DEVICES, PROC_CMDLINE] as const;
export const OS_RELEASE_PATHS = [ETC_OS_RELEASE, '/usr/lib/os-release'] as const;
export const ETC_HOSTNAME = '/etc/hostname';
export const PROC_HOSTNAME = '/proc/sys/kernel/hostname';
export const DMI_PRODUCT_UUID = '/sys/class/dmi/id/product_uuid';
// Guest-profile facts (src/host/vm-host.ts).
export const DEV_INPUT_BY_ID = '/dev/input/by-id';
/** udev's links to block devices by filesystem and partition UUID (fstab's UUID=, PARTUUID=). */
export const DEV_DISK_BY_UUID = '/dev/disk/by-uuid';
export const DEV_DISK_BY_PARTUUID = '/dev/disk/by-partuuid';
export const RUN_USER = '/run/user';
export const ETC_PASSWD = '/etc/passwd';
export const SWTPM_PATHS = ['/usr/bin/swtpm', '/usr/local/bin/swtpm'];
export const SWTPM_SETUP_PATHS = ['/usr/bin/swtpm_setup', '/usr/local/bin/swtpm_setup'];
/** Where distributions (Fedora's virtio-win package, Arch's AUR package) and users put the virtio-win ISO. */
export const VIRTIO_WIN_ISOS = ['/usr/share/virtio-win/virtio-win.iso', '/usr/share/virtio/virtio-win.iso', '/var/lib/libvirt/images/virtio-win.iso', '/var/lib/libvirt/boot/virtio-win.iso'];
export const runtimeDir = (uid: number) => `${RUN_USER}/${uid}`;
// Option ROMs and the confinement of libvirt's QEMU processes (where a ROM file may live).
/** The `resource` file: one "start end flags" line per BAR; line 7 (index 6) is the expansion ROM. */
export const PCI_ROM_RESOURCE_INDEX = 6;
export const APPARMOR_LIBVIRT_QEMU = '/etc/apparmor.d/abstractions/libvirt-qemu';
export const SYS_APPARMOR_ENABLED = '/sys/module/apparmor/parameters/enabled';
export const SYS_SELINUX_ENFORCE = '/sys/fs/selinux/enforce';
export const ETC_SELINUX_CONFIG = '/etc/selinux/config';
/** Directories a ROM installed by vfiokit may go to, preferred first (read-only firmware data under /usr/share). */
export const ROM_INSTALL_DIRS = ['/usr/share/vgabios', '/usr/share/qemu', '/usr/share/kvm'] as const;
export const moduleHolders = (name: string) => `${sysModule(name)}/holders`;


// Display handoff and libvirt hook paths live next to the plan model (pure planners name them too).
export * from '../model/display-paths.js';
export * from '../model/kernel-paths.js';
export * from '../model/config-paths.js';

// CPU and memory topology (src/host/cpu-topology.ts).
export { PROC_MEMINFO, SYS_NODE } from '../model/hugepage-paths.js';
export const SYS_CPU_CORE_PMU = '/sys/devices/cpu_core/cpus';
export const SYS_CPU_ATOM_PMU = '/sys/devices/cpu_atom/cpus';
// Boot loader identity and CPU statistics.
export const PROC_STAT = '/proc/stat';
/** systemd-boot's LoaderInfo EFI variable (vendor GUID 4a67b082-…: the Boot Loader Interface). */
export const EFI_LOADER_INFO = '/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f';
