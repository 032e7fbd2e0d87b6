// Sysfs and procfs paths the pure layers name (scripts vfiokit writes,
// commands it prints, log evidence it explains). Defined here in the model
// layer; src/host/sysfs-paths.ts re-exports them next to the rest.

export const SYS = '/sys';
export const SYS_PCI_DEVICES = '/sys/bus/pci/devices';
export const SYS_HUGEPAGES = '/sys/kernel/mm/hugepages';
export const PROC_IOMEM = '/proc/iomem';
