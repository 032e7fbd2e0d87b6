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
}

const R = (id: string, cause: CauseId, confidence: Confidence, needle: string, re: RegExp, says: string): Rule => ({ id, cause, confidence, needle, re, says });

export const RULES: readonly Rule[] = [
  // IOMMU off / misconfigured
  R('dmar-disabled', 'iommu_off', 'high', 'iommu disabled', /DMAR: IOMMU disabled/, 'intel-iommu is disabled'),
  R('qemu-no-group', 'iommu_off', 'high', 'no iommu_group found', /no iommu_group found/, 'QEMU found no IOMMU group for the device'),
  R('qemu-no-models', 'iommu_off', 'high', 'no available iommu models', /No available IOMMU models/, 'no VFIO IOMMU backend could attach'),
  R('libvirt-no-passthrough', 'iommu_off', 'high', "doesn't support passthrough", /host doesn't support passthrough of host PCI devices/, 'libvirt found no IOMMU'),
  R('libvirt-no-iommu', 'iommu_off', 'high', 'passthrough not found', /IOMMU support for VFIO PCI passthrough not found/, 'libvirt found no IOMMU'),
  R('vfio-probe-einval', 'iommu_off', 'medium', 'failed with error -22', /vfio-pci[^:]{0,40}: probe of \S{1,40} failed with error -22/, 'vfio-pci could not claim the device (no IOMMU group)'),
  R('amd-unknown-option', 'iommu_option_unknown', 'medium', 'unknown option', /AMD-Vi: Unknown option - '[^']{0,80}'/, 'the AMD IOMMU driver ignored an unknown option'),
  R('iommu-fw-bug', 'iommu_firmware_bug', 'medium', 'firmware bug', /\[Firmware Bug\]:.{0,80}(?:DMAR|IVRS|AMD-Vi|IOMMU|IOAPIC)/i, 'the IOMMU driver reports a firmware bug'),
  R('iommu-warn-splat', 'iommu_firmware_bug', 'medium', 'drivers/iommu/', /WARNING: .{0,120}drivers\/iommu\//, 'the IOMMU driver hit a warning while enabling the IOMMU'),
  // interrupt remapping
  R('type1-no-ir', 'no_interrupt_remapping', 'high', 'allow_unsafe_interrupts', /No interrupt remapping support/, 'vfio_iommu_type1 refused the group: no interrupt remapping'),
  R('ir-xapic', 'ir_xapic_mode', 'low', 'remapping', /IRQ remapping doesn't support X2APIC mode|Enabled IRQ remapping in xapic mode/, 'interrupt remapping is in xAPIC mode'),
  // RMRR
  R('rmrr-ineligible', 'rmrr', 'high', 'rmrr requirement', /ineligible for IOMMU domain attach due to platform RMRR requirement/, 'intel-iommu refused the device because of an RMRR'),
  R('rmrr-relaxed', 'rmrr_relaxed', 'low', 'relaxable', /assuming all RMRRs are relaxable/, 'the kernel relaxes RMRRs (patched kernel)'),
  // modules and kernel features
  R('virqfd-missing', 'vfio_virqfd_missing', 'high', 'vfio_virqfd', /(?:Module|module not found:?|Failed to find module)\W{0,3}vfio_virqfd/, 'vfio_virqfd is asked for but does not exist'),
  R('x-vga', 'x_vga_unsupported', 'high', 'x-vga', /does not support requested feature x-vga|x-vga.{0,60}(?:VGA region|not supported)/, 'QEMU cannot give the VGA region (x-vga)'),
  // groups
  R('group-not-viable', 'group_not_viable', 'high', 'not viable', /group (?:(\d{1,6}) )?is not viable/i, 'the IOMMU group is not viable'),
  // BARs and framebuffers
  R('bar-cant-reserve', 'bar_reserved_by_framebuffer', 'high', "can't reserve", /BAR (\d): can't reserve \[mem [0-9a-fx]{3,20}-[0-9a-fx]{3,20}/, 'vfio-pci could not reserve a BAR'),
  R('qemu-bar-mmap', 'bar_reserved_by_framebuffer', 'medium', 'failed to mmap', /Failed to mmap \S{1,40} BAR (\d)/, 'QEMU could not map a BAR'),
  R('bar-efifb', 'bar_reserved_by_framebuffer', 'low', 'assigned to efifb', /BAR (\d): assigned to efifb/, 'the EFI framebuffer sits in this BAR (boot-time line; fatal only if the device is passed through)'),
  // permissions, hooks
  R('vfio-eacces', 'vfio_permission', 'high', 'permission denied', /\/dev\/vfio\/(?:(\d{1,6})|vfio)\S{0,2}:? Permission denied/, 'the VM process may not open /dev/vfio'),
  R('vfio-eacces-2', 'vfio_permission', 'high', 'permission denied', /(?:failed to open|error opening) \/dev\/vfio\/(\d{1,6}|vfio)/, 'the VM process may not open /dev/vfio'),
  R('hook-failed', 'hook_failed', 'high', 'hook script execution failed', /hook script execution failed/, 'a libvirt hook script failed'),
  R('hook-exit', 'hook_failed', 'high', `${LIBVIRT_HOOKS_DIR}/`, /\/etc\/libvirt\/hooks\/\S{1,200}.{0,200}unexpected exit status/, 'a libvirt hook script failed'),
  // reset and power
  R('not-ready-giving-up', 'reset_failed', 'high', 'not ready', /not ready \d{1,6}ms after (?:resume|FLR|bus reset|Secondary Bus Reset|D3hot|D3cold)\S{0,2}; giving up/, 'the device never came back after a reset or resume'),
  R('not-ready-waiting', 'reset_failed', 'medium', 'not ready', /not ready \d{1,6}ms after (?:resume|FLR|bus reset|Secondary Bus Reset|D3hot|D3cold)\S{0,2}; waiting/, 'the device is slow to come back after a reset or resume'),
  R('d3cold-d0', 'reset_failed', 'high', 'unable to change power state', /Unable to change power state from D3\w{0,4} to D0, device inaccessible/, 'the device did not power up from D3cold'),
  R('refused-power', 'reset_failed', 'medium', 'refused to change power state', /Refused to change power state/, 'the device refused a power state change'),
  R('header-127', 'reset_failed', 'high', 'header type', /Unknown PCI header type '127'/, 'config space reads all ones (the device fell off the bus after a reset)'),
  R('pending-tx', 'reset_failed', 'medium', 'pending transaction', /timed out waiting for pending transaction/, 'the device had DMA in flight when it was reset'),
  R('flr-failed', 'reset_failed', 'high', 'return from flr', /Failed to return from FLR/, 'the device did not come back from a function level reset'),
  R('qemu-no-reset', 'reset_failed', 'high', 'no available reset mechanism', /Cannot reset device \S{1,40}, no available reset mechanism/, 'QEMU could not reset the device'),
  R('qemu-stuck-d3', 'reset_failed', 'high', 'stuck in d3', /Unable to power on device, stuck in D3/, 'QEMU could not power the device up'),
  R('libvirt-reset', 'reset_failed', 'high', 'unable to reset pci device', /Unable to reset PCI device/, 'libvirt could not reset the device'),
  R('vendor-reset', 'reset_failed', 'medium', ': amd_', /AMD_(?:POLARIS\d{1,2}|VEGA\d{1,2}|NAVI\d{1,2}): (?:bus reset disabled|SMU|reset result|performing)/, 'vendor-reset is resetting an AMD GPU'),
  R('rmInitAdapter', 'reset_failed', 'medium', 'rminitadapter failed', /RmInitAdapter failed/, 'the NVIDIA driver could not reinitialise the GPU (often after a failed reset)'),
  // busy
  R('busy', 'device_busy', 'medium', 'resource busy', /(?:\/dev\/vfio\/\d{1,6}|vfio\S{0,40}|group \d{1,6}).{0,120}Device or resource busy/, 'the device or group is already open'),
  R('libvirt-in-use', 'device_busy', 'high', 'in use by', /PCI device \S{1,40} is in use by driver/, 'libvirt sees the device held by another domain'),
  // memory
  R('map-enomem', 'memlock', 'high', 'cannot allocate memory', /vfio_(?:dma_map|container_dma_map|listener_region_add)[^\n]{0,160}(?:-12|Cannot allocate memory)|VFIO_MAP_DMA(?: failed)?: (?:-12|Cannot allocate memory)/, 'QEMU could not pin guest memory for DMA'),
  R('map-enomem-short', 'memlock', 'high', 'vfio_map_dma', /VFIO_MAP_DMA(?: failed)?: -12\b/, 'QEMU could not pin guest memory for DMA'),
  R('libvirt-memlock', 'memlock', 'high', 'locked memory', /cannot limit locked memory|locked memory limit/i, 'the locked-memory limit could not be set or was exceeded'),
  R('map-enospc', 'dma_entry_limit', 'high', 'no space left on device', /(?:VFIO_MAP_DMA|vfio_dma_map|vfio_container_dma_map).{0,160}(?:-28|No space left on device)/, 'the VFIO DMA entry limit is exhausted'),
  R('map-einval', 'dma_map_invalid', 'medium', 'invalid argument', /(?:VFIO_MAP_DMA failed|vfio_dma_map\(|vfio_container_dma_map\().{0,160}(?:-22|Invalid argument)/, 'the IOMMU refused a guest memory mapping'),
  // ROM
  R('rom-signature', 'rom_unreadable', 'high', 'rom header signature', /Invalid PCI ROM header signature: expecting 0xaa55, got 0x[0-9a-f]{1,4}/i, 'the option ROM has no valid signature'),
  R('rom-contents', 'rom_unreadable', 'high', 'rom contents', /Invalid ROM contents|option ROM contents are probably invalid/i, 'the option ROM is invalid'),
  R('rom-read', 'rom_unreadable', 'high', 'cannot read device rom', /Cannot read device rom/i, 'the option ROM cannot be read'),
  R('romfile', 'rom_unreadable', 'high', 'romfile', /failed to find romfile/i, 'the ROM file given to QEMU does not exist'),
  R('rom-open', 'rom_unreadable', 'high', 'open option rom', /Could not open option rom/i, 'the ROM file given to QEMU cannot be opened'),
  // interrupts
  R('intx-broken', 'msi_intx', 'medium', 'intx', /Masking broken INTx support|Failed to setup INTx|INTx.{0,40}failed/, 'INTx interrupts cannot be set up'),
  R('msi-vectors', 'msi_intx', 'medium', 'enable vectors', /failed to enable vectors/, 'MSI/MSI-X vectors cannot be enabled'),
  R('msi-failed', 'msi_intx', 'medium', 'failed to setup msi', /Failed to setup MSI/, 'MSI/MSI-X vectors cannot be enabled'),
  // DMA faults
  R('dmar-fault', 'dma_fault', 'medium', 'request device', /DMAR: \[DMA (?:Read|Write)[^\]]{0,20}\] Request device \[([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\]/i, 'intel-iommu blocked a DMA'),
  R('amdvi-fault', 'dma_fault', 'medium', 'io_page_fault', /IO_PAGE_FAULT(?: device=([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]))?/, 'the AMD IOMMU blocked a DMA'),
  R('dmar-fault-status', 'dma_fault', 'low', 'fault status reg', /DRHD: handling fault status reg/, 'intel-iommu handled a fault'),
  R('dmar-suppressed', 'dma_fault', 'low', 'callbacks suppressed', /dmar_fault: \d{1,9} callbacks suppressed/, 'many DMA faults were rate-limited'),
  // detach
  R('relaying', 'detach_hang', 'high', 'device request', /Relaying device request to user|No device request channel registered, blocked until released by user/, 'the kernel waits for the VM to release the device'),
  // guest
  R('code43', 'code43', 'medium', 'code 43', /\(?Code 43\)?/i, 'the guest driver reports Code 43'),
  // noiommu
  R('noiommu', 'noiommu', 'medium', 'noiommu', /vfio-noiommu|noiommu-\d{1,6}|enable_unsafe_noiommu_mode/, 'VFIO runs without an IOMMU'),
];

/** Lower-case words that make a line worth showing when nothing matched. */
export const INTERESTING = ['vfio', 'iommu', 'dmar', 'amd-vi', 'pci', 'kvm', 'qemu', 'libvirt'] as const;
