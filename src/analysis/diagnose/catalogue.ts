// The catalogue of passthrough failure causes `vfiokit diagnose` can name.
// docs/diagnose.md documents every entry (a test keeps the two in step).
// `rank` orders causes that appear together: a lower rank is nearer the root
// (a reset failure explains a later "device busy"; a group that is not viable
// explains the container setup error QEMU prints after it).

export type CauseId =
  | 'iommu_off'
  | 'iommu_option_unknown'
  | 'iommu_firmware_bug'
  | 'no_interrupt_remapping'
  | 'ir_xapic_mode'
  | 'rmrr'
  | 'rmrr_relaxed'
  | 'vfio_virqfd_missing'
  | 'x_vga_unsupported'
  | 'group_not_viable'
  | 'vfio_not_bound'
  | 'bridge_assigned'
  | 'bar_reserved_by_framebuffer'
  | 'vfio_permission'
  | 'hook_failed'
  | 'reset_failed'
  | 'device_busy'
  | 'memlock'
  | 'dma_entry_limit'
  | 'dma_map_invalid'
  | 'rom_unreadable'
  | 'msi_intx'
  | 'dma_fault'
  | 'detach_hang'
  | 'code43'
  | 'noiommu';

interface CauseInfo {
  id: CauseId;
  rank: number;
  /** One sentence: what went wrong. */
  meaning: string;
  /** The generic fix; the correlator replaces it with this host's fix when it knows more. */
  fix: string;
}

const C = (id: CauseId, rank: number, meaning: string, fix: string): CauseInfo => ({ id, rank, meaning, fix });

export const CATALOGUE: readonly CauseInfo[] = [
  C('iommu_off', 10, 'The IOMMU is not active, so VFIO has no IOMMU group for the device.', 'enable VT-d / AMD-Vi in the firmware setup and intel_iommu=on on Intel (the AMD IOMMU is on by default), then reboot; `vfiokit check` names the argument for this host'),
  C('iommu_option_unknown', 15, 'The kernel command line carries an IOMMU option the kernel does not know (e.g. amd_iommu=on), so it was ignored.', 'remove the unknown option from the kernel command line (amd_iommu takes off, fullflush, force_isolation, pgtbl_v1/v2, irtcachedis — not "on")'),
  C('iommu_firmware_bug', 16, 'The IOMMU driver reported a firmware (ACPI DMAR/IVRS) bug; features such as interrupt remapping may be off.', 'update the firmware (BIOS/coreboot); report the DMAR/IVRS table to the vendor'),
  C('no_interrupt_remapping', 20, 'The platform has no interrupt remapping, so vfio_iommu_type1 refuses to attach the group.', 'enable interrupt remapping in the firmware (VT-d/AMD-Vi with x2APIC); as a last resort set vfio_iommu_type1 allow_unsafe_interrupts=1 (options vfio_iommu_type1 allow_unsafe_interrupts=1 in /etc/modprobe.d/), which trusts the guest'),
  C('ir_xapic_mode', 90, 'Interrupt remapping runs in xAPIC mode only (the firmware opted out of x2APIC); passthrough works but this often signals a firmware limitation.', 'nothing is required for passthrough; update the firmware or enable x2APIC in its setup if interrupts misbehave'),
  C('rmrr', 20, 'The firmware reserves memory for the device (an RMRR), so intel-iommu refuses to give it to a VM.', 'put the device in another slot, update the firmware (HPE: disable "HP Shared Memory features" with the conrep tool), or run a kernel with the relax-RMRR patch'),
  C('rmrr_relaxed', 95, 'The kernel runs with RMRRs treated as relaxable (a patched kernel): passthrough of RMRR devices is forced, at a risk.', 'nothing to fix for passthrough; watch for DMA faults from the device'),
  C('vfio_virqfd_missing', 25, 'A configuration asks for the module vfio_virqfd, which is built into vfio since Linux 6.2 and no longer exists.', 'drop vfio_virqfd from the initramfs module list (vfiokit apply writes the right list for the running kernel)'),
  C('x_vga_unsupported', 25, 'x-vga=on was asked for but the kernel was built without VGA region support (CONFIG_VFIO_PCI_VGA) or the device is no VGA device.', 'remove x-vga=on (UEFI guests with OVMF do not need it) or use a kernel with CONFIG_VFIO_PCI_VGA=y'),
  C('group_not_viable', 30, 'A device of the IOMMU group is still bound to a host driver; VFIO only opens a group whose every device is on vfio-pci (or unbound).', 'bind every non-bridge device of the group to vfio-pci (vfiokit apply/bind takes the whole group), or move the card to a slot with its own group'),
  C('vfio_not_bound', 28, 'The device is not on vfio-pci (or the vfio modules are not loaded), so its group has no /dev/vfio node the VM can open.', 'bind the device with the rest of its IOMMU group to vfio-pci: vfiokit bind ADDR (now) or vfiokit apply ADDR (from boot); modprobe vfio-pci if the module is missing'),
  C('bridge_assigned', 30, 'A PCI bridge or root port was given to the VM; only endpoints can be assigned.', 'remove the bridge from the VM definition and pass the endpoints behind it; the bridge stays on pcieport'),
  C('bar_reserved_by_framebuffer', 30, 'A firmware framebuffer (efifb, simplefb/BOOTFB, vesafb) still holds the GPU\'s BAR, so vfio-pci cannot reserve it.', 'add initcall_blacklist=sysfb_init to the kernel command line (video=efifb:off for efifb on older kernels), or boot the host from another GPU'),
  C('vfio_permission', 35, 'The VM process may not open /dev/vfio/N (owner, ACL or SELinux/AppArmor).', 'run the VM through libvirt (it sets the ownership), or give the user access: a udev rule SUBSYSTEM=="vfio", OWNER="USER" and a memlock limit'),
  C('hook_failed', 35, 'A libvirt hook script (/etc/libvirt/hooks/qemu or hooks.d) failed, so libvirt aborted the start.', 'run the hook by hand with the same arguments and fix its error; make it exit 0 and log to a file'),
  C('reset_failed', 40, 'The device did not come back from a reset or power transition (config space reads all ones: the GPU reset bug, or a D3cold problem).', 'pick a reset method that works (echo bus > /sys/bus/pci/devices/ADDR/reset_method), load vendor-reset for AMD Polaris/Vega/Navi 1x, disable runtime PM (echo on > /sys/bus/pci/devices/ADDR/power/control), or reboot the host'),
  C('device_busy', 50, 'The device or group is already in use: another VM, a host driver, or a reset that left it claimed.', 'stop the other user (virsh list; vfiokit status shows /dev/vfio holders) and start again'),
  C('memlock', 45, 'The VM process may not lock enough memory: VFIO pins all guest RAM, so RLIMIT_MEMLOCK must cover the guest memory plus a margin.', 'raise the memlock limit for the VM process to the guest memory plus 1 GiB (LimitMEMLOCK= in the service, memlock in /etc/security/limits.conf, or <memtune><hard_limit> in libvirt)'),
  C('dma_entry_limit', 45, 'vfio_iommu_type1 ran out of DMA mapping entries (dma_entry_limit, 65535 by default) — many small mappings (e.g. virtio-mem, small pages).', 'raise it: options vfio_iommu_type1 dma_entry_limit=1048576 in /etc/modprobe.d/, or vfio_iommu_type1.dma_entry_limit=1048576 on the kernel command line; use hugepages'),
  C('dma_map_invalid', 45, 'QEMU mapped guest memory at an address the IOMMU cannot translate (IOVA above the IOMMU address width), usually a large guest or a 64-bit MMIO window placed too high.', 'limit the guest physical address width (-cpu host,host-phys-bits=on,host-phys-bits-limit=39 or libvirt <maxphysaddr mode="passthrough" limit="39"/>), or give the guest less memory / a smaller pci-hole64'),
  C('rom_unreadable', 60, 'The device option ROM cannot be read or is invalid (no 0xaa55 signature), so the guest firmware cannot initialise the GPU.', 'give the VM a ROM file dumped from this card (romfile= / <rom file=…/>), or rombar=off when the guest does not need it'),
  C('msi_intx', 60, 'Interrupt setup for the device failed (INTx masking is broken or MSI/MSI-X vectors could not be enabled).', 'when the INTx line is shared with a host driver (genirq "Flags mismatch"): unbind the other device on that interrupt or move the card to another slot; make the guest driver use MSI (MSISupported=1 for Windows); set nointxmask=1 on vfio-pci for a device with broken INTx masking'),
  C('dma_fault', 70, 'The IOMMU blocked a DMA from the device to an address outside its mappings (a DMAR fault / AMD-Vi IO_PAGE_FAULT).', 'check the device\'s reset and driver state; for devices that need firmware-reserved memory (iGPU GVT-d) use the matching option ROM and aperture; update the firmware'),
  C('detach_hang', 55, 'The kernel asked the VM to release the device and the VM does not respond, so unbinding hangs.', 'shut the guest down (or virsh destroy) before unbinding; do not unbind a device a running VM holds'),
  C('code43', 80, 'The guest driver stopped the device (Windows Code 43): usually a missing or unreadable ROM, a reset problem, or hypervisor detection on old NVIDIA drivers.', 'give the VM a good ROM file, make sure the GPU resets, and for NVIDIA drivers older than 465 hide KVM (<kvm><hidden state="on"/></kvm>, vendor_id in <hyperv>)'),
  C('noiommu', 85, 'VFIO runs in no-IOMMU mode: the device is usable from user space without isolation and the kernel is tainted; it cannot be given to a VM safely.', 'turn the IOMMU on (firmware and kernel command line) and unset enable_unsafe_noiommu_mode'),
];

export const CAUSES: ReadonlyMap<CauseId, CauseInfo> = new Map(CATALOGUE.map((c) => [c.id, c]));
