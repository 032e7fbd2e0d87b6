// Rules: one message text each, from the kernel (drivers/vfio, drivers/iommu,
// drivers/pci), QEMU (hw/vfio) and libvirt, as they print it. A rule matches
// only when its cheap `needle` (lower case) occurs in the line, then its
// expression runs. Expressions are linear: no nested or adjacent overlapping
// unbounded quantifiers (test/analysis/diagnose checks the sources).
//
// Confidence: 'high' for a message printed only on that failure; 'medium'
// when the message is specific but has other explanations; 'low' for lines
// that also appear on healthy hosts or only hint at the cause.

import type { CauseId } from './catalogue.js';
import { LIBVIRT_HOOKS_DIR } from '../../model/display-paths.js';

export type Confidence = 'high' | 'medium' | 'low';

export interface Rule {
  id: string;
  cause: CauseId;
  confidence: Confidence;
  needle: string;
  re: RegExp;
  /** What this line says, for the evidence list (the match is shown too). */
  says: string;
  /** Where the message is printed: project and source file (docs/diagnose.md lists it). */
  source: string;
}

const R = (id: string, cause: CauseId, confidence: Confidence, needle: string, re: RegExp, says: string, source: string): Rule => ({ id, cause, confidence, needle, re, says, source });

const K = (f: string) => `Linux ${f}`;
const Q = (f: string) => `QEMU ${f}`;
const L = (f: string) => `libvirt ${f}`;
const QVFIO = Q('hw/vfio/container.c, hw/vfio/common.c (vfio_get_group, vfio_dma_map; hw/vfio/listener.c since 10.0)');


export const RULES: readonly Rule[] = [
  // IOMMU off / misconfigured
  R('dmar-disabled', 'iommu_off', 'high', 'iommu disabled', /DMAR: IOMMU disabled/, 'intel-iommu is disabled', K('drivers/iommu/intel/iommu.c (intel_iommu=off)')),
  R('qemu-no-group', 'iommu_off', 'high', 'no iommu_group found', /no iommu_group found/, 'QEMU found no IOMMU group for the device', Q('hw/vfio/helpers.c, hw/vfio/common.c (vfio_device_get_name/vfio_get_group_id)')),
  R('qemu-no-models', 'iommu_off', 'high', 'no available iommu models', /No available IOMMU models/, 'no VFIO IOMMU backend could attach', Q('hw/vfio/container.c (vfio_get_iommu_type)')),
  R('libvirt-no-passthrough', 'iommu_off', 'high', "doesn't support passthrough", /host doesn't support passthrough of host PCI devices/, 'libvirt found no IOMMU', L('src/qemu/qemu_hostdev.c')),
  R('libvirt-no-vfio', 'iommu_off', 'high', 'currently not supported on this system', /VFIO device assignment is currently not supported on this system/, 'libvirt found no IOMMU groups', L('src/qemu/qemu_hostdev.c, src/hypervisor/virhostdev.c')),
  R('vfio-probe-einval', 'iommu_off', 'medium', 'failed with error -22', /vfio-pci[^:]{0,40}: probe of \S{1,40} failed with error -22|vfio-pci \S{1,40}: probe with driver vfio-pci failed with error -22/, 'vfio-pci could not claim the device (no IOMMU group, or a bridge)', K('drivers/base/dd.c (call_driver_probe; "probe with driver %s failed" since 6.10)')),
  R('amd-unknown-option', 'iommu_option_unknown', 'medium', 'unknown option', /AMD-Vi: Unknown option - '[^']{0,80}'/, 'the AMD IOMMU driver ignored an unknown option', K('drivers/iommu/amd/init.c (parse_amd_iommu_options)')),
  R('iommu-fw-bug', 'iommu_firmware_bug', 'medium', 'firmware bug', /\[Firmware Bug\]:.{0,80}(?:DMAR|IVRS|AMD-Vi|IOMMU|IOAPIC)/i, 'the IOMMU driver reports a firmware bug', K('drivers/iommu/intel/dmar.c, drivers/iommu/amd/init.c (FW_BUG)')),
  R('iommu-warn-splat', 'iommu_firmware_bug', 'medium', 'drivers/iommu/', /WARNING: .{0,120}drivers\/iommu\//, 'the IOMMU driver hit a warning while enabling the IOMMU', K('kernel/panic.c (__warn) in drivers/iommu/')),
  // interrupt remapping
  R('type1-no-ir', 'no_interrupt_remapping', 'high', 'allow_unsafe_interrupts', /No interrupt remapping support/, 'vfio_iommu_type1 refused the group: no interrupt remapping', K('drivers/vfio/vfio_iommu_type1.c (vfio_iommu_type1_attach_group), drivers/iommu/iommufd/device.c')),
  R('ir-xapic', 'ir_xapic_mode', 'low', 'remapping', /IRQ remapping doesn't support X2APIC mode|Enabled IRQ remapping in xapic mode/, 'interrupt remapping is in xAPIC mode', K('drivers/iommu/intel/irq_remapping.c, arch/x86/kernel/apic/apic.c')),
  // RMRR
  R('rmrr-ineligible', 'rmrr', 'high', 'rmrr requirement', /ineligible for IOMMU domain attach due to platform RMRR requirement/, 'intel-iommu refused the device because of an RMRR', K('drivers/iommu/intel/iommu.c (before 6.3)')),
  R('rmrr-direct', 'rmrr', 'high', '1:1 iommu mapping', /Firmware has requested this device have a 1:1 IOMMU mapping/, 'the IOMMU core refused the device: the firmware requires a 1:1 mapping (RMRR / IVMD)', K('drivers/iommu/iommu.c (since 6.3)')),
  R('rmrr-relaxed', 'rmrr_relaxed', 'low', 'relaxable', /assuming all RMRRs are relaxable/, 'the kernel relaxes RMRRs (patched kernel)', 'the out-of-tree relax-intel-rmrr kernel patch'),
  // modules and kernel features
  R('virqfd-missing', 'vfio_virqfd_missing', 'high', 'vfio_virqfd', /(?:Module|module not found:?|Failed to find module)\W{0,3}vfio_virqfd/, 'vfio_virqfd is asked for but does not exist', 'kmod modprobe ("Module %s not found"), dracut-install ("Failed to find module"), mkinitcpio ("module not found")'),
  R('x-vga', 'x_vga_unsupported', 'high', 'x-vga', /does not support requested feature x-vga|x-vga.{0,60}(?:VGA region|not supported)/i, 'QEMU cannot give the VGA region (x-vga)', Q('hw/vfio/pci.c (vfio_populate_vga)')),
  R('vga-region', 'x_vga_unsupported', 'medium', 'vga region index', /failed getting region info for VGA region index 8/, 'QEMU found no VGA region on the device (disable_vga=1 or no CONFIG_VFIO_PCI_VGA)', Q('hw/vfio/pci.c, hw/vfio/igd.c')),
  // groups and binding
  R('group-not-viable', 'group_not_viable', 'high', 'not viable', /group (?:(\d{1,6}) )?is not viable/i, 'the IOMMU group is not viable', Q('hw/vfio/container.c, hw/vfio/common.c (vfio_get_group / vfio_group_get: "group %d is not viable")')),
  R('group-verify', 'vfio_not_bound', 'medium', 'are bound to vfio-pci or pci-stub', /Verify all devices in group \d{1,6} are bound to vfio-pci or pci-stub/, 'QEMU could not get the device from its group', Q('hw/vfio/common.c, hw/vfio/device.c (vfio_get_device)')),
  R('vfio-enoent', 'vfio_not_bound', 'high', 'no such file or directory', /\/dev\/vfio\/(?:(\d{1,6})|vfio)\S{0,2}:? No such file or directory/, 'the group has no /dev/vfio node: no device of it is on vfio-pci (or vfio is not loaded)', Q('hw/vfio/container.c (vfio_get_group, vfio_connect_container: "failed to open %s")')),
  R('vfio-denylist', 'vfio_not_bound', 'high', 'device denylist', /exists in vfio-pci device denylist, driver probing disallowed/, 'vfio-pci refuses the device (its denylist)', K('drivers/vfio/pci/vfio_pci.c (vfio_pci_is_denylisted)')),
  R('libvirt-unmanaged', 'vfio_not_bound', 'high', 'must be manually detached', /Unmanaged PCI device \S{1,40} must be manually detached from the host/, 'a managed="no" device is not on vfio-pci', L('src/hypervisor/virhostdev.c')),
  R('libvirt-probe', 'vfio_not_bound', 'medium', 'failed to trigger a probe', /Failed to trigger a probe for PCI device/, 'libvirt could not bind the device to vfio-pci', L('src/util/virpci.c')),
  R('libvirt-modprobe', 'vfio_not_bound', 'high', 'failed to load pci driver module', /Failed to load PCI driver module vfio-pci/, 'libvirt could not load vfio-pci', L('src/util/virpci.c')),
  R('libvirt-bridge', 'bridge_assigned', 'high', 'non-endpoint pci devices', /Non-endpoint PCI devices cannot be assigned to guests/, 'a bridge or root port was given to the VM', L('src/util/virpci.c (virPCIDeviceIsAssignable)')),
  // BARs and framebuffers
  R('bar-cant-reserve', 'bar_reserved_by_framebuffer', 'high', "can't reserve", /BAR (\d): can't reserve \[(?:mem|io)\b|BAR (\d) \[(?:mem|io)[^\]]{1,80}\]: can't reserve/, 'vfio-pci could not reserve a BAR', K('drivers/pci/pci.c (__pci_request_region: "BAR %d: can\'t reserve %pR"; "BAR n [mem …]: …" form since 6.8)')),
  R('qemu-bar-mmap', 'bar_reserved_by_framebuffer', 'medium', 'failed to mmap', /Failed to mmap \S{1,40} BAR (\d)/, 'QEMU could not map a BAR', Q('hw/vfio/pci.c (vfio_bar_register / vfio_region_mmap)')),
  R('bar-efifb', 'bar_reserved_by_framebuffer', 'low', 'assigned to efifb', /BAR (\d): assigned to efifb/, 'the EFI framebuffer sits in this BAR (boot-time line; fatal only if the device is passed through)', K('drivers/pci/probe.c, drivers/video/fbdev/efifb.c')),
  // permissions, hooks
  R('vfio-eacces', 'vfio_permission', 'high', 'permission denied', /\/dev\/vfio\/(?:(\d{1,6})|vfio)\S{0,2}:? Permission denied/, 'the VM process may not open /dev/vfio', Q('hw/vfio/container.c ("failed to open %s"), util/osdep.c ("Could not open \'%s\'")')),
  R('vfio-eperm', 'vfio_permission', 'high', 'operation not permitted', /\/dev\/vfio\/(?:(\d{1,6})|vfio)\S{0,2}:? Operation not permitted/, 'the device cgroup or a security module denies /dev/vfio', Q('hw/vfio/container.c, util/osdep.c')),
  R('hook-failed', 'hook_failed', 'high', 'hook script execution failed', /Hook script execution failed/i, 'a libvirt hook script failed', L('src/util/virerror.c (VIR_ERR_HOOK_SCRIPT_FAILED), src/util/virhook.c')),
  R('hook-argv', 'hook_failed', 'medium', `${LIBVIRT_HOOKS_DIR}/qemu `, /\/etc\/libvirt\/hooks\/qemu \S{1,100} (?:prepare|start|started|stopped|release|migrate|restore|reconnect|attach) (?:begin|end)\b/, 'a libvirt hook\'s command line, as libvirt quotes it when the hook fails (any language)', L('src/util/virhook.c (virHookCall), src/util/vircommand.c')),
  R('hook-exit', 'hook_failed', 'high', `${LIBVIRT_HOOKS_DIR}/`, /\/etc\/libvirt\/hooks\/\S{1,200}.{0,200}unexpected exit status/, 'a libvirt hook script failed', L('src/util/vircommand.c ("Child process (%s) unexpected exit status %d")')),
  // reset and power
  R('not-ready-giving-up', 'reset_failed', 'high', 'not ready', /not ready \d{1,6}ms after (?:AF_FLR|FLR|PM D3(?:hot|HOT)?->D0|bus[ _]reset|resume|DPC|D3cold->D0|Secondary Bus Reset)\S{0,2}; giving up/, 'the device never came back after a reset or resume', K('drivers/pci/pci.c (pci_dev_wait)')),
  R('not-ready-waiting', 'reset_failed', 'medium', 'not ready', /not ready \d{1,6}ms after (?:AF_FLR|FLR|PM D3(?:hot|HOT)?->D0|bus[ _]reset|resume|DPC|D3cold->D0|Secondary Bus Reset)\S{0,2}; waiting/, 'the device is slow to come back after a reset or resume', K('drivers/pci/pci.c (pci_dev_wait)')),
  R('d3cold-d0', 'reset_failed', 'high', 'power state from d3', /Unable to change power state from D3\w{0,4} to D0, device inaccessible|can't change power state from D3\w{0,4} to D0 \(config space inaccessible\)/, 'the device did not power up from D3cold', K('drivers/pci/pci.c (pci_power_up; "can\'t change power state" before 5.19)')),
  R('refused-power', 'reset_failed', 'low', 'refused to change power state', /Refused to change power state/, 'the device refused a power state change (often harmless: no idle D3hot)', K('drivers/pci/pci.c (pci_set_low_power_state)')),
  R('header-127', 'reset_failed', 'high', 'header type', /Unknown PCI header type '127'/, 'config space reads all ones (the device fell off the bus after a reset)', L('src/util/virpci.c (virPCIDeviceRead/virPCIGetHeaderType)')),
  R('pending-tx', 'reset_failed', 'medium', 'pending transaction', /timed out waiting for pending transaction/, 'the device had DMA in flight when it was reset', K('drivers/pci/pci.c (pci_wait_for_pending_transaction)')),
  R('flr-failed', 'reset_failed', 'high', 'return from flr', /Failed to return from FLR/i, 'the device did not come back from a function level reset', K('drivers/pci/pci.c (pci_flr_wait, before 4.17)')),
  R('qemu-no-reset', 'reset_failed', 'low', 'no available reset mechanism', /Cannot reset device \S{1,40}, no available reset mechanism/, 'QEMU has no reset for the device (usually informational)', Q('hw/vfio/pci.c (vfio_pci_hot_reset)')),
  R('qemu-reset-group', 'reset_failed', 'low', 'which is not owned', /Cannot reset device \S{1,40}, depends on group \d{1,6} which is not owned/, 'a bus reset would reset a device of another group (usually informational)', Q('hw/vfio/pci.c (vfio_pci_hot_reset)')),
  R('qemu-stuck-d3', 'reset_failed', 'high', 'stuck in d3', /Unable to power on device, stuck in D3/, 'QEMU could not power the device up', Q('hw/vfio/pci.c (vfio_pci_pre_reset)')),
  R('qemu-region-rw', 'reset_failed', 'medium', 'vfio_region_', /vfio_region_(?:write|read)\(\S{1,80}\) failed/, 'QEMU could not reach a BAR of the device (gone, in D3cold or mid-reset)', Q('hw/vfio/region.c, hw/vfio/common.c (vfio_region_write/vfio_region_read)')),
  R('bar-restore', 'reset_failed', 'low', 'reset recovery', /vfio_bar_restore: \S{1,40} reset recovery - restoring BARs?/, 'the device lost its BARs in a reset (once is harmless; repeated means it keeps resetting)', K('drivers/vfio/pci/vfio_pci_config.c (vfio_bar_restore)')),
  R('libvirt-reset', 'reset_failed', 'high', 'unable to reset pci device', /Unable to reset PCI device/, 'libvirt could not reset the device', L('src/util/virpci.c (virPCIDeviceReset)')),
  R('libvirt-no-bus-reset', 'reset_failed', 'low', 'not doing bus reset', /Active \S{1,40} devices on bus with \S{1,40}, not doing bus reset/, 'libvirt skipped a bus reset (other devices on the bus)', L('src/util/virpci.c (virPCIDeviceTrySecondaryBusReset)')),
  R('vendor-reset', 'reset_failed', 'medium', ': amd_', /AMD_(?:POLARIS\d{1,2}|VEGA\d{1,2}|NAVI\d{1,2}): (?:bus reset disabled|SMU|reset result|performing)/, 'vendor-reset is resetting an AMD GPU', 'gnif/vendor-reset src/amd/*.c'),
  R('rmInitAdapter', 'reset_failed', 'medium', 'rminitadapter failed', /RmInitAdapter failed/, 'the NVIDIA driver could not reinitialise the GPU (often after a failed reset)', 'NVIDIA kernel module (NVRM)'),
  R('nvidia-xid79', 'reset_failed', 'high', 'fallen off the bus', /GPU has fallen off the bus/, 'the GPU stopped answering on the bus (Xid 79)', 'NVIDIA kernel module (NVRM Xid 79)'),
  // busy
  R('busy', 'device_busy', 'medium', 'resource busy', /(?:\/dev\/vfio\/\d{1,6}|vfio\S{0,40}|group \d{1,6}).{0,120}Device or resource busy/, 'the device or group is already open', Q('hw/vfio/container.c (EBUSY from the kernel: drivers/vfio/group.c)')),
  R('libvirt-in-use', 'device_busy', 'high', 'in use by', /PCI device \S{1,40} is in use by driver/, 'libvirt sees the device held by another domain', L('src/hypervisor/virhostdev.c')),
  // memory
  R('map-enomem', 'memlock', 'high', 'cannot allocate memory', /vfio_(?:dma_map|container_dma_map|listener_region_add)[^\n]{0,160}(?:-12|Cannot allocate memory)|VFIO_MAP_DMA(?: failed)?: (?:-12|Cannot allocate memory)/, 'QEMU could not pin guest memory for DMA', QVFIO),
  R('map-enomem-short', 'memlock', 'high', 'vfio_map_dma', /VFIO_MAP_DMA(?: failed)?: -12\b/, 'QEMU could not pin guest memory for DMA', QVFIO),
  R('kernel-memlock', 'memlock', 'high', 'rlimit_memlock', /RLIMIT_MEMLOCK \(\d{1,20}\) exceeded/, 'the kernel refused to pin guest memory beyond the memlock limit', K('drivers/vfio/vfio_iommu_type1.c (vfio_pin_pages_remote)')),
  R('qemu-mlock', 'memlock', 'medium', 'locking memory failed', /mlockall: Cannot allocate memory|locking memory failed/, 'QEMU could not lock its memory (-overcommit mem-lock=on, <memoryBacking><locked/>)', Q('system/os-posix.c (os_mlock), system/vl.c')),
  R('libvirt-memlock', 'memlock', 'high', 'locked memory', /cannot limit locked memory|locked memory limit/i, 'the locked-memory limit could not be set or was exceeded', L('src/util/virprocess.c (virProcessSetMaxMemLock)')),
  R('map-enospc', 'dma_entry_limit', 'high', 'no space left on device', /(?:VFIO_MAP_DMA|vfio_dma_map|vfio_container_dma_map).{0,160}(?:-28|No space left on device)/, 'the VFIO DMA entry limit is exhausted', `${QVFIO}; ENOSPC from ${K('drivers/vfio/vfio_iommu_type1.c (dma_entry_limit)')}`),
  R('qemu-dma-mappings', 'dma_entry_limit', 'medium', 'running out of dma mappings', /possibly running out of DMA mappings/, 'QEMU warns that the guest memory layout needs more DMA mappings than vfio_iommu_type1 allows', Q('hw/vfio/listener.c, hw/vfio/common.c (vfio_ram_discard_register_listener)')),
  R('map-einval', 'dma_map_invalid', 'medium', 'invalid argument', /(?:VFIO_MAP_DMA failed|vfio_dma_map\(|vfio_container_dma_map\().{0,160}(?:-22|Invalid argument)/, 'the IOMMU refused a guest memory mapping', QVFIO),
  // ROM
  R('rom-signature', 'rom_unreadable', 'high', 'rom header signature', /Invalid PCI ROM header signature: expecting 0xaa55, got 0x[0-9a-f]{1,4}/i, 'the option ROM has no valid signature', K('drivers/pci/rom.c (pci_get_rom_size)')),
  R('rom-data-signature', 'rom_unreadable', 'high', 'rom data signature', /Invalid PCI ROM data signature: expecting 0x52494350/i, 'the option ROM has no valid PCIR structure', K('drivers/pci/rom.c (pci_get_rom_size)')),
  R('rom-contents', 'rom_unreadable', 'high', 'rom contents', /Invalid ROM contents|option ROM contents are probably invalid/i, 'the option ROM is invalid', Q('hw/vfio/pci.c (vfio_pci_load_rom)')),
  R('rom-read', 'rom_unreadable', 'high', 'cannot read device rom', /Cannot read device rom/i, 'the option ROM cannot be read', Q('hw/vfio/pci.c (vfio_pci_load_rom)')),
  R('romfile', 'rom_unreadable', 'high', 'romfile', /failed to find romfile/i, 'the ROM file given to QEMU does not exist', Q('hw/pci/pci.c (pci_add_option_rom)')),
  R('rom-open', 'rom_unreadable', 'low', 'open option rom', /Could not open option rom/i, 'QEMU could not open a firmware option ROM file (often a missing NIC/sgabios ROM, not the GPU)', Q('hw/core/loader.c (rom_add_file)')),
  // interrupts
  R('intx-broken', 'msi_intx', 'low', 'intx', /Masking broken INTx support/, 'the device cannot mask INTx: vfio needs an unshared interrupt line for it', K('drivers/vfio/pci/vfio_pci_core.c (vfio_pci_core_enable)')),
  R('intx-busy', 'msi_intx', 'high', 'intx', /(?:Failed to setup INTx fd|Failed to set up TRIGGER eventfd signaling for interrupt INTX-0)\S{0,40}.{0,60}Device or resource busy/, 'the device\'s INTx line is shared with a host driver', Q('hw/vfio/pci.c (vfio_intx_enable), hw/vfio/helpers.c (vfio_set_irq_signaling)')),
  R('intx-setup', 'msi_intx', 'medium', 'intx', /Failed to setup INTx|Failed to set up TRIGGER eventfd signaling for interrupt INTX/, 'INTx interrupts cannot be set up', Q('hw/vfio/pci.c (vfio_intx_enable), hw/vfio/helpers.c (vfio_set_irq_signaling)')),
  R('intx-flags-mismatch', 'msi_intx', 'high', 'flags mismatch', /genirq: Flags mismatch irq \d{1,5}\. [0-9a-f]{1,8} \(vfio-intx/, 'the device\'s INTx line is shared with a host driver', K('kernel/irq/manage.c (__setup_irq)')),
  R('msi-vectors', 'msi_intx', 'medium', 'enable vectors', /failed to enable vectors/, 'MSI/MSI-X vectors cannot be enabled', Q('hw/vfio/pci.c (vfio_msix_vector_do_use, vfio_msi_enable)')),
  R('msi-failed', 'msi_intx', 'medium', 'failed to setup msi', /Failed to setup MSI/, 'MSI/MSI-X vectors cannot be enabled', Q('hw/vfio/pci.c (vfio_msi_enable)')),
  // DMA faults
  R('dmar-fault', 'dma_fault', 'medium', 'request device', /DMAR: \[DMA (?:Read|Write)[^\]]{0,20}\] Request device \[([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\]/i, 'intel-iommu blocked a DMA', K('drivers/iommu/intel/dmar.c (dmar_fault_do_one)')),
  R('amdvi-fault', 'dma_fault', 'medium', 'io_page_fault', /IO_PAGE_FAULT(?: device=([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]))?/, 'the AMD IOMMU blocked a DMA', K('drivers/iommu/amd/iommu.c (iommu_print_event, amd_iommu_report_page_fault)')),
  R('dmar-fault-status', 'dma_fault', 'low', 'fault status reg', /DRHD: handling fault status reg/, 'intel-iommu handled a fault', K('drivers/iommu/intel/dmar.c (dmar_fault)')),
  R('dmar-suppressed', 'dma_fault', 'low', 'callbacks suppressed', /dmar_fault: \d{1,9} callbacks suppressed/, 'many DMA faults were rate-limited', K('lib/ratelimit.c on drivers/iommu/intel/dmar.c (dmar_fault)')),
  // detach
  R('relaying', 'detach_hang', 'high', 'device request', /Relaying device request to user|No device request channel registered, blocked until released by user/, 'the kernel waits for the VM to release the device', K('drivers/vfio/pci/vfio_pci_core.c (vfio_pci_core_request), drivers/vfio/vfio_main.c (vfio_unregister_group_dev)')),
  // guest
  R('code43', 'code43', 'medium', 'code 43', /\(?Code 43\)?/i, 'the guest driver reports Code 43', 'the Windows guest (Device Manager), as users quote it'),
  // noiommu
  R('noiommu', 'noiommu', 'medium', 'noiommu', /vfio-noiommu|noiommu-\d{1,6}|enable_unsafe_noiommu_mode/, 'VFIO runs without an IOMMU', K('drivers/vfio/group.c, drivers/vfio/vfio_main.c (no-IOMMU mode)')),
];

/** Lower-case words that make a line worth showing when nothing matched. */
export const INTERESTING = ['vfio', 'iommu', 'dmar', 'amd-vi', 'pci', 'kvm', 'qemu', 'libvirt'] as const;
