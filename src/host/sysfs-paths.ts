// Every sysfs/procfs path vfiokit uses, in one place (after libvirt's PCI_SYSFS).
// Attribute semantics: Documentation/ABI/testing/sysfs-bus-pci,
// sysfs-kernel-iommu_groups, sysfs-class-iommu.

export const SYS_PCI_DEVICES = '/sys/bus/pci/devices';
export const SYS_PCI_DRIVERS = '/sys/bus/pci/drivers';
export const SYS_PCI_DRIVERS_PROBE = '/sys/bus/pci/drivers_probe';
export const SYS_IOMMU_GROUPS = '/sys/kernel/iommu_groups';
export const SYS_CLASS_IOMMU = '/sys/class/iommu';
export const SYS_HUGEPAGES = '/sys/kernel/mm/hugepages';
export const SYS_CPU = '/sys/devices/system/cpu';
export const SYS_FIRMWARE_EFI = '/sys/firmware/efi';
export const PROC_CMDLINE = '/proc/cmdline';
export const PROC_CPUINFO = '/proc/cpuinfo';
export const PROC_INTERRUPTS = '/proc/interrupts';
export const PROC_MODULES = '/proc/modules';
export const PROC_OSRELEASE = '/proc/sys/kernel/osrelease';
export const DEV_KVM = '/dev/kvm';
export const DEV_VFIO = '/dev/vfio';

export const pciDevice = (addr: string) => `${SYS_PCI_DEVICES}/${addr}`;
export const pciAttr = (addr: string, attr: string) => `${SYS_PCI_DEVICES}/${addr}/${attr}`;
export const pciDriverDir = (driver: string) => `${SYS_PCI_DRIVERS}/${driver}`;
export const iommuGroupDevices = (id: number | string) => `${SYS_IOMMU_GROUPS}/${id}/devices`;
export const SYS_MODULE = '/sys/module';
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
export const moduleHolders = (name: string) => `${sysModule(name)}/holders`;


// Display handoff and libvirt hook paths live next to the plan model (pure planners name them too).
export * from '../model/display-paths.js';
