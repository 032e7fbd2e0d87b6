// `vfiokit vm`: from the snapshot and the user's intent to a VmSpec — the
// guest's devices, memory, vCPUs and pinning, firmware — plus problems
// (refusals with a fix), warnings and notes. Pure: the command module reads
// the snapshot and the ROM file, renders the spec (xml.ts, qemu.ts) and
// runs virsh.

import { UsageError, type Problem } from '../errors.js';
import { pciAddressParts, shortAddress, slotOf, type PciAddress } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { resolveSelection } from '../plan/select.js';
import { romPathProblem } from '../plan/rom-plan.js';
import { planHugepages, type HugepagePlan } from './hugepages.js';
import { describeMemory, formatMemorySize, parseMemorySize } from './memory.js';
import { devicePreference, planPinning, type GuestTopology, type PinPlan } from './pinning.js';
import { describeRom, parseOptionRom, romVerdict, type RomReport } from '../formats/option-rom.js';
import { planProfile, type GuestProfile, type ProfileIntent } from './profile.js';

type PinMode = 'auto' | 'none';

export interface VmIntent extends ProfileIntent {
  name: string;
  /** Device selectors (`01:00.0`, `10de:2204`). */
  devices: string[];
  with?: string[];
  allowBootVga?: boolean;
  allowChipset?: boolean;
  /** As typed (`8G`); default: 8 GiB, at most half the host's memory. */
  memory?: string;
  /** As typed; default: chosen by the pinning policy (4 without a topology). */
  vcpus?: string;
  /** Absolute paths. */
  disk?: string;
  cdrom?: string;
  /** The ROM file: absolute path and content (read by the command module). */
  rom?: { path: string; bytes: Uint8Array };
  hugepages?: boolean;
  pin?: string;
}

export interface GuestHostdev {
  /** Host address (sysfs form). */
  host: PciAddress;
  vendor: string;
  device: string;
  class: string;
  name: string | null;
  /** Guest PCIe root port (controller index = guest bus number). */
  guestBus: number;
  guestFunction: number;
  /** Function 0 of a multi-function guest slot. */
  multifunction: boolean;
  rom: string | null;
}

type FirmwareChoice =
  /** <os firmware='efi'>: libvirt picks OVMF from the host's descriptors. */
  | { kind: 'auto'; code: string | null; varsTemplate: string | null }
  /** Explicit pflash: no descriptors, but OVMF files at well-known paths. */
  | { kind: 'pflash'; code: string; varsTemplate: string | null; nvram: string; secure?: boolean };

export interface VmSpec {
  name: string;
  memoryKib: number;
  vcpus: number;
  cpuVendor: 'intel' | 'amd' | 'other' | null;
  topology: GuestTopology;
  pinning: PinPlan | null;
  /** NUMA node for guest memory when every vCPU sits on one node of a multi-node host. */
  memoryNode: number | null;
  hugepageKb: number | null;
  /** The host's default huge page size (QEMU needs a hugetlbfs mount for another size). */
  hugepageDefaultKb: number | null;
  firmware: FirmwareChoice;
  hostdevs: GuestHostdev[];
  /** Number of PCIe root ports to create (guest buses 1..n). */
  rootPorts: number;
  disk: { path: string; format: 'qcow2' | 'raw'; block: boolean } | null;
  cdrom: string | null;
  /** NVIDIA display function passed: Hyper-V vendor_id and hidden KVM signature (drivers before R465 refused VMs). */
  nvidia: boolean;
  /** RLIMIT_MEMLOCK a non-root QEMU needs: guest memory + 1 GiB. */
  memlockKib: number;
  /** Guest profile (--os) and desktop devices: TPM, Secure Boot, Hyper-V, virtio-win, input, audio, Looking Glass. */
  profile: GuestProfile;
}

export interface VmPlan {
  spec: VmSpec;
  problems: Problem[];
  warnings: string[];
  notes: string[];
  rom: RomReport | null;
  hugepages: HugepagePlan;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DEFAULT_MEMORY_KIB = 8 * 1024 * 1024;
export const HYPERV_VENDOR_ID = 'vfiokit';

function parseVmName(name: string | undefined): string {
  if (!name) throw new UsageError('no VM name given', 'name the domain, e.g. `vfiokit vm xml win11 --device 01:00.0`', 'E_NO_NAME');
  if (!NAME.test(name)) throw new UsageError(`'${name}' is not a usable VM name`, 'use letters, digits, dot, dash and underscore (up to 64 characters, starting with a letter or digit): the name becomes file names (NVRAM) and QEMU arguments', 'E_BAD_NAME');
  return name;
}

function parseVcpus(text: string): number {
  if (!/^\d{1,4}$/.test(text.trim()) || Number(text) < 1) throw new UsageError(`--vcpus '${text}' is not a vCPU count`, 'give a whole number of vCPUs, e.g. --vcpus 8 (an even number keeps SMT pairs whole)', 'E_BAD_VCPUS');
  return Number(text);
}

function parsePinMode(text: string | undefined): PinMode {
  if (text === undefined || text === 'auto') return 'auto';
  if (text === 'none') return 'none';
  throw new UsageError(`--pin '${text}' is not a pinning mode`, 'use --pin auto (pin vCPUs to whole host cores, the default) or --pin none', 'E_BAD_PIN');
}

const isDisplay = (d: PciDevice) => d.class.startsWith('03');

/** The functions of each selected slot when the IOMMU is off (no groups to expand from). */
function slotFunctions(s: HostSnapshot, selected: PciDevice[]): PciDevice[] {
  const slots = new Set(selected.map((d) => slotOf(d.address)));
  return s.pci.filter((d) => slots.has(slotOf(d.address)) && !d.isBridge).sort((a, b) => (a.address < b.address ? -1 : 1));
}

interface DevicePlan {
  hostdevs: GuestHostdev[];
  /** Selected devices (what the user named), for NUMA preference and notes. */
  selected: PciDevice[];
  /** Host slots in guest order (one root port each). */
  slots: PciDevice[][];
  rom: RomReport | null;
  problems: Problem[];
  warnings: string[];
  notes: string[];
}

/**
 * Devices for a guest: every function of each selected device and every
 * endpoint of its IOMMU group (resolveSelection), laid out as in the host —
 * one PCIe root port per host slot, functions keeping their numbers — plus
 * the checked ROM file. Shared by `vm xml/qemu/define` and `vm attach`.
 */
export function planDevices(s: HostSnapshot, intent: Pick<VmIntent, 'devices' | 'with' | 'allowBootVga' | 'allowChipset' | 'rom'>): DevicePlan {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  // Devices: every function of each device, every endpoint of its group (resolveSelection).
  const sel = resolveSelection(s, intent.devices, { with: intent.with, allowBootVga: intent.allowBootVga, allowChipset: intent.allowChipset, requireIommu: false });
  problems.push(...sel.problems);
  warnings.push(...sel.warnings);
  let devices = sel.devices;
  if (!s.iommu.active) {
    devices = slotFunctions(s, sel.selected);
    warnings.push('the IOMMU is not active on this host: the domain can be defined, but it will not start until the IOMMU is on (see `vfiokit check`)');
  }

  // Guest PCI layout: one PCIe root port per host slot; functions keep their host numbers.
  const slots: PciDevice[][] = [];
  for (const d of devices) {
    const last = slots[slots.length - 1];
    if (last && slotOf(last[0].address) === slotOf(d.address)) last.push(d);
    else slots.push([d]);
  }
  const romTarget = intent.rom ? (sel.selected.find(isDisplay) ?? sel.selected[0] ?? devices[0]) : undefined;
  const hostdevs: GuestHostdev[] = slots.flatMap((fns, i) => {
    const hasFn0 = fns.some((f) => pciAddressParts(f.address as PciAddress).fn === 0);
    return fns.map((f, j) => {
      const fn = hasFn0 ? pciAddressParts(f.address as PciAddress).fn : j;
      return {
        host: f.address as PciAddress,
        vendor: f.vendor,
        device: f.device,
        class: f.class,
        name: f.deviceName,
        guestBus: i + 1,
        guestFunction: fn,
        multifunction: fns.length > 1 && fn === 0,
        rom: romTarget && f.address === romTarget.address ? intent.rom!.path : null,
      };
    });
  });
  for (const fns of slots) if (!fns.some((f) => f.address.endsWith('.0'))) warnings.push(`${shortAddress(slotOf(fns[0].address))} has no function 0 among the passed functions: they are renumbered from function 0 in the guest`);

  // ROM file.
  let rom: RomReport | null = null;
  if (intent.rom) {
    rom = parseOptionRom(intent.rom.bytes);
    if (!rom.valid) {
      problems.push({
        code: 'E_ROM_INVALID',
        subject: intent.rom.path,
        message: `${intent.rom.path} is not a PCI option ROM: ${rom.problems.join('; ')}`,
        hint:
          rom.romStart !== null
            ? `strip the vendor header: vfiokit rom strip '${intent.rom.path}' -o gpu.rom, then pass --rom gpu.rom`
            : `dump this card's own ROM with \`vfiokit rom dump ${romTarget ? shortAddress(romTarget.address) : 'ADDR'}\` (while it is a secondary, idle card) or use the vendor image for this exact card; \`vfiokit rom check FILE\` tells whether a file is usable`,
      });
    } else {
      notes.push(`ROM ${intent.rom.path}: ${rom.images.length} image(s)`, ...describeRom(rom).map((l) => `  ${l}`));
      if (!rom.complete) warnings.push(`ROM ${intent.rom.path}: ${rom.problems.join('; ')}`);
      if (!rom.hasX64Efi) warnings.push(`ROM ${intent.rom.path} has no x64 UEFI (GOP) image: OVMF shows no picture on this GPU until the guest's driver loads`);
      if (romTarget) {
        const v = romVerdict(rom, { vendor: romTarget.vendor, device: romTarget.device, label: shortAddress(romTarget.address) });
        if (v.kind === 'wrong-device') {
          problems.push({
            code: 'E_ROM_WRONG_DEVICE',
            subject: intent.rom.path,
            message: `ROM ${intent.rom.path}: ${v.summary}`,
            hint: `dump this card's own ROM (vfiokit rom dump ${shortAddress(romTarget.address)}) or use the vendor image for exactly ${romTarget.vendor}:${romTarget.device}; \`vfiokit rom check FILE --device ${shortAddress(romTarget.address)}\` tells`,
          });
        }
      }
      const where = romPathProblem(s.libvirt.confinement, intent.rom.path);
      if (where) warnings.push(`ROM ${where}`);
      if (romTarget && sel.selected.filter(isDisplay).length > 1) warnings.push(`--rom applies to ${shortAddress(romTarget.address)} only (the first selected display device)`);
      if (romTarget) notes.push(`ROM presented to ${shortAddress(romTarget.address)}`);
    }
  }

  // The boot display's ROM reads back as the firmware's shadow copy: the guest needs the card's own image.
  if (!intent.rom) {
    for (const d of sel.selected.filter((x) => x.bootVga)) {
      warnings.push(`${shortAddress(d.address)} is the host's boot display and no --rom was given: its ROM BAR returns the shadow copy the firmware left behind, which the guest's firmware cannot use (black screen until the guest driver loads, or no boot). Give the card's own image: dump it from a secondary slot, or use the vendor file — \`vfiokit rom check FILE --device ${shortAddress(d.address)}\`, then --rom FILE`);
    }
  }

  if (hostdevs.length) notes.push(`devices: ${slots.map((fns) => fns.map((f) => shortAddress(f.address)).join(' + ')).join(', ')}`);
  return { hostdevs, selected: sel.selected, slots, rom, problems, warnings, notes };
}

export function planVm(s: HostSnapshot, intent: VmIntent): VmPlan {
  const name = parseVmName(intent.name);
  const pin = parsePinMode(intent.pin);
  const dev = planDevices(s, intent);
  const { hostdevs, selected, slots, rom } = dev;
  const problems: Problem[] = [...dev.problems];
  const warnings: string[] = [...dev.warnings];
  const notes: string[] = [...dev.notes];

  // Memory.
  const totalKb = s.memory.totalKb;
  let memoryKib: number;
  if (intent.memory !== undefined) memoryKib = parseMemorySize(intent.memory);
  else {
    memoryKib = totalKb !== null ? Math.max(1024 * 1024, Math.min(DEFAULT_MEMORY_KIB, Math.floor(totalKb / 2 / (1024 * 1024)) * 1024 * 1024)) : DEFAULT_MEMORY_KIB;
    notes.push(`memory: ${describeMemory(memoryKib)} (default; set with --memory)`);
  }
  if (totalKb !== null && memoryKib > totalKb) {
    problems.push({
      code: 'E_MEMORY_TOO_LARGE',
      subject: 'memory',
      message: `--memory ${formatMemorySize(memoryKib)} is more than the host's ${describeMemory(totalKb)} (MemTotal): VFIO pins all guest memory, so it cannot be overcommitted`,
      hint: `use at most --memory ${Math.max(1, Math.floor((totalKb * 0.75) / (1024 * 1024)))}G, leaving the host room to run`,
    });
  } else if (totalKb !== null && memoryKib > totalKb * 0.9) {
    warnings.push(`--memory ${formatMemorySize(memoryKib)} leaves the host ${describeMemory(totalKb - memoryKib)}: VFIO pins all guest memory, so the host may run out`);
  } else if (totalKb === null) warnings.push('host memory size unknown (/proc/meminfo): --memory was not checked against it');

  // vCPUs and pinning.
  const topo = s.cpuTopology;
  const hostThreads = topo ? topo.online.length : s.cpu.threads;
  const requested = intent.vcpus !== undefined ? parseVcpus(intent.vcpus) : null;
  if (requested !== null && hostThreads !== null && requested > hostThreads) {
    problems.push({
      code: 'E_TOO_MANY_VCPUS',
      subject: 'vcpus',
      message: `--vcpus ${requested} is more than the host's ${hostThreads} CPU threads`,
      hint: `use at most --vcpus ${Math.max(1, hostThreads - (topo ? topo.cpus[0].siblings.length : 1))} (leaving core 0 to the host)`,
    });
  }
  const gpu = selected.find(isDisplay) ?? selected[0];
  const { preferNode, preferCpus } = topo ? devicePreference(gpu, topo) : { preferNode: null, preferCpus: null };
  let pinning: PinPlan | null = null;
  let vcpus = requested ?? 4;
  let topology: GuestTopology = { sockets: 1, dies: 1, cores: vcpus, threads: 1 };
  if (pin === 'auto' && topo && !problems.some((p) => p.code === 'E_TOO_MANY_VCPUS')) {
    const r = planPinning({ topology: topo, vcpus: requested, preferNode, preferCpus });
    problems.push(...r.problems);
    if (r.plan) {
      pinning = r.plan;
      vcpus = r.plan.vcpus;
      topology = r.plan.topology;
      notes.push(...r.plan.notes);
      warnings.push(...r.plan.warnings);
    }
  } else {
    if (pin === 'auto' && !topo) warnings.push('the host CPU topology is unknown: vCPUs are not pinned (and --vcpus defaults to 4)');
    if (requested === null && hostThreads !== null) vcpus = Math.max(1, Math.min(4, hostThreads - 1));
    topology = { sockets: 1, dies: 1, cores: vcpus, threads: 1 };
    notes.push(`${vcpus} vCPUs, not pinned: the host scheduler places them`);
  }
  const memoryNode = pinning && topo && topo.numaNodes.length > 1 && pinning.nodes.length === 1 ? pinning.nodes[0] : null;
  if (memoryNode !== null) notes.push(`guest memory preferred on NUMA node ${memoryNode} (next to the vCPUs${preferNode === memoryNode ? ' and the GPU' : ''})`);

  // Huge pages.
  const hugepages = planHugepages(memoryKib, s.hugepages, s.memory.hugepageDefaultKb, Boolean(intent.hugepages), { node: memoryNode, domain: intent.name });
  notes.push(...hugepages.notes);
  warnings.push(...hugepages.warnings);
  if (memoryNode !== null && hugepages.sizeKb !== null) notes.push(`huge pages must be free on node ${memoryNode}: /sys/devices/system/node/node${memoryNode}/hugepages/hugepages-${hugepages.sizeKb}kB/free_hugepages`);

  // Guest profile.
  const prof = planProfile(s, name, intent);
  problems.push(...prof.problems);
  warnings.push(...prof.warnings);
  const profile = prof.profile;

  // Firmware.
  const ovmf = s.firmware.ovmf.filter((f) => f.exists !== false);
  const plain = ovmf.find((f) => !f.secureBoot) ?? ovmf[0];
  let firmware: FirmwareChoice;
  if (profile.secureBoot && !profile.secureBoot.viaDescriptor) {
    firmware = { kind: 'pflash', code: profile.secureBoot.code, varsTemplate: profile.secureBoot.varsTemplate, nvram: `/var/lib/libvirt/qemu/nvram/${name}_VARS.fd`, secure: true };
  } else if (profile.secureBoot) {
    firmware = { kind: 'auto', code: profile.secureBoot.code, varsTemplate: profile.secureBoot.varsTemplate };
  } else if (ovmf.some((f) => f.descriptor !== null) || !plain) {
    firmware = { kind: 'auto', code: plain?.code ?? null, varsTemplate: plain?.varsTemplate ?? null };
    if (!plain) warnings.push('no OVMF (UEFI firmware for VMs) found on this host: install ovmf (Debian/Ubuntu), edk2-ovmf (Fedora/Arch) or qemu-ovmf-x86_64 (openSUSE) before starting the VM');
    else notes.push(`firmware: UEFI (OVMF) from ${plain.descriptor}; libvirt picks it itself with <os firmware='efi'>`);
  } else {
    firmware = { kind: 'pflash', code: plain.code, varsTemplate: plain.varsTemplate, nvram: `/var/lib/libvirt/qemu/nvram/${name}_VARS.fd` };
    notes.push(`firmware: ${plain.code} (no firmware descriptors on this host, so the OVMF files are named explicitly)`);
  }

  // Disks.
  for (const [flag, p] of [['--disk', intent.disk], ['--cdrom', intent.cdrom]] as const) {
    if (p !== undefined && !p.startsWith('/')) throw new UsageError(`${flag} '${p}' is not an absolute path`, `give the full path, e.g. ${flag} /var/lib/libvirt/images/${name}.qcow2`, 'E_BAD_PATH');
  }
  const disk = intent.disk ? { path: intent.disk, format: /\.qcow2$/i.test(intent.disk) ? ('qcow2' as const) : ('raw' as const), block: intent.disk.startsWith('/dev/') } : null;

  const nvidia = hostdevs.some((d) => d.vendor === '10de' && d.class.startsWith('03'));
  if (nvidia) notes.push(`NVIDIA GPU: Hyper-V vendor_id '${HYPERV_VENDOR_ID}' and a hidden KVM signature (drivers before R465 stop with Code 43 in a VM)`);

  const spec: VmSpec = {
    name,
    memoryKib,
    vcpus,
    cpuVendor: s.cpu.vendor,
    topology,
    pinning,
    memoryNode,
    hugepageKb: hugepages.sizeKb,
    hugepageDefaultKb: s.memory.hugepageDefaultKb,
    firmware,
    hostdevs,
    rootPorts: slots.length,
    disk,
    cdrom: intent.cdrom ?? null,
    nvidia,
    memlockKib: memoryKib + 1024 * 1024,
    profile,
  };
  notes.push(...prof.notes);
  return { spec, problems, warnings, notes, rom, hugepages };
}
