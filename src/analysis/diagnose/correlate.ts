// Joins raw findings with the host snapshot: names the devices, states what
// the host shows (the framebuffer in the BAR, the group member still on a host
// driver, the reset methods on offer) and turns the generic fix into this
// host's fix (the kernel argument for its bootloader, the vfiokit command).

import type { HostSnapshot, PciDevice } from '../../model/snapshot.js';
import { detectBootloader } from '../boot-detect.js';
import { CAUSES, type CauseId } from './catalogue.js';
import type { Confidence, } from './rules.js';
import type { DiagnoseResult, Evidence, LookedAt, RawFinding } from './engine.js';
import type { LogFacts } from './facts.js';
import { PROC_IOMEM } from '../../model/kernel-paths.js';

export { FactCollector, type LogFacts } from './facts.js';

interface FindingDevice {
  address: string;
  name: string | null;
  driver: string | null;
}

export interface Finding {
  cause: CauseId;
  confidence: Confidence;
  /** The catalogue sentence. */
  meaning: string;
  /** What this host shows about it (empty without a host). */
  host: string[];
  devices: FindingDevice[];
  groups: number[];
  fix: string;
  evidence: Evidence[];
  matches: number;
  consequenceOf: CauseId | null;
}

export interface Diagnosis {
  findings: Finding[];
  linesRead: number;
  matched: boolean;
  lookedAt: LookedAt[];
  relevantLines: number;
  /** Whether the host snapshot was used. */
  correlated: boolean;
}

const VIABLE_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport']);

export function deviceName(d: PciDevice): string {
  const v = d.vendorName ?? d.vendor;
  const n = d.deviceName ?? d.device;
  return `${v} ${n}`;
}

/** How to add a kernel argument with this host's bootloader. */
function kernelArgHow(s: HostSnapshot, arg: string): string {
  const kind = detectBootloader(s).kind;
  switch (kind) {
    case 'grub':
      return `add ${arg} to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub, then regenerate grub.cfg (update-grub or grub-mkconfig -o /boot/grub/grub.cfg) and reboot`;
    case 'grubby-bls':
      return `run grubby --update-kernel=ALL --args="${arg}" and reboot`;
    case 'systemd-boot':
      return `add ${arg} to the options line of your entries in /boot/loader/entries/ (or /etc/kernel/cmdline, then reinstall the kernel) and reboot`;
    case 'kernelstub':
      return `run kernelstub -a "${arg}" and reboot`;
    case 'proxmox-boot-tool':
      return `add ${arg} to /etc/kernel/cmdline, run proxmox-boot-tool refresh and reboot`;
    case 'refind':
      return `add ${arg} to the options in /boot/refind_linux.conf and reboot`;
    case 'limine':
      return `add ${arg} to the cmdline of your entries in limine.conf and reboot`;
    default:
      return `add ${arg} to the kernel command line of your bootloader and reboot`;
  }
}

function hostFinding(f: RawFinding, s: HostSnapshot | null, facts: LogFacts): { host: string[]; fix: string } {
  const base = CAUSES.get(f.cause)!.fix;
  if (f.cause === 'memlock') return memlockFix(facts, base);
  if (!s) return { host: [], fix: base };
  const host: string[] = [];
  const dev = (a: string) => s.pci.find((d) => d.address === a);
  switch (f.cause) {
    case 'group_not_viable': {
      const groups = new Set<number>(f.groups);
      for (const a of f.devices) {
        const g = dev(a)?.iommuGroup;
        if (g != null) groups.add(g);
      }
      const blockers: PciDevice[] = [];
      for (const g of groups) {
        const grp = s.iommu.groups.find((x) => x.id === g);
        for (const a of grp?.devices ?? []) {
          const d = dev(a);
          if (d && d.driver && !VIABLE_DRIVERS.has(d.driver) && !d.isBridge) blockers.push(d);
        }
        if (grp) host.push(`group ${g} holds ${grp.devices.join(', ')}`);
      }
      for (const b of blockers) host.push(`${b.address} (${deviceName(b)}) in group ${b.iommuGroup} is still on the host driver ${b.driver}`);
      if (blockers.length) {
        const all = [...new Set([...f.devices, ...blockers.map((b) => b.address)])];
        return { host, fix: `move ${blockers.map((b) => b.address).join(', ')} off ${[...new Set(blockers.map((b) => b.driver))].join('/')} with the rest of the group: vfiokit bind ${all.join(' ')} (now) or vfiokit apply ${all.join(' ')} (from boot)` };
      }
      if (groups.size) host.push('every device of the group is on vfio-pci now: the failure was from an earlier state');
      return { host, fix: base };
    }
    case 'bar_reserved_by_framebuffer': {
      const fbs = s.boot.framebuffers.filter((fb) => f.devices.includes(fb.address) || (f.devices.length === 0 && dev(fb.address)?.bootVga));
      for (const fb of fbs) host.push(`${PROC_IOMEM} shows ${fb.owner} inside the memory of ${fb.address}${dev(fb.address) ? ` (${deviceName(dev(fb.address)!)})` : ''}`);
      const owners = fbs.map((x) => x.owner.toLowerCase());
      const arg = owners.length && owners.every((o) => o.includes('efifb')) && !owners.some((o) => o.includes('bootfb')) ? 'video=efifb:off' : 'initcall_blacklist=sysfb_init';
      if (!fbs.length && f.confidence !== 'low') host.push('no firmware framebuffer sits in the device now (it may have been released since)');
      return { host, fix: `${kernelArgHow(s, arg)}; or boot the host from another GPU` };
    }
    case 'reset_failed': {
      for (const a of f.devices) {
        const d = dev(a);
        if (!d) continue;
        const methods = d.resetMethods === null ? 'unknown (not readable)' : d.resetMethods.length ? d.resetMethods.join(', ') : 'none';
        host.push(`${a} (${deviceName(d)}) offers reset methods: ${methods}${d.caps?.flr ? '; it advertises FLR' : ''}`);
        if (d.vendor === '1002' && d.class.startsWith('03')) host.push(`${a} is an AMD GPU: Polaris, Vega and Navi 1x do not reset cleanly without vendor-reset`);
        if (d.vendor === '10de' && d.class.startsWith('03')) host.push(`${a} is an NVIDIA GPU: they reset with a bus reset; a failure usually means runtime power management put it in D3cold`);
      }
      const a = f.devices[0];
      if (a) {
        const d = dev(a);
        const fix = d?.vendor === '1002'
          ? `install and load vendor-reset (echo device_specific > /sys/bus/pci/devices/${a}/reset_method), or echo bus > /sys/bus/pci/devices/${a}/reset_method`
          : `echo on > /sys/bus/pci/devices/${a}/power/control (no runtime D3cold), and echo bus > /sys/bus/pci/devices/${a}/reset_method if FLR fails`;
        return { host, fix: `${fix}; reboot the host if the device reads all ones` };
      }
      return { host, fix: base };
    }
    case 'iommu_off':
    case 'iommu_option_unknown': {
      const arg = s.cpu.vendor === 'intel' ? 'intel_iommu=on' : null;
      if (!s.iommu.active) host.push('the IOMMU is not active on this host (no /sys/class/iommu entries)');
      const bad = s.iommu.cmdlineArgs.filter((x) => x === 'amd_iommu=on' || x.endsWith('=off'));
      if (bad.length) host.push(`the kernel command line has ${bad.join(' ')}`);
      const parts = [] as string[];
      if (bad.length) parts.push(`remove ${bad.join(' ')} from the kernel command line`);
      if (arg && !s.iommu.active) parts.push(kernelArgHow(s, arg));
      parts.push('enable VT-d / AMD-Vi in the firmware setup');
      return { host, fix: parts.join('; ') };
    }
    case 'no_interrupt_remapping': {
      const ir = s.iommu.interruptRemapping;
      host.push(`interrupt remapping on this host: ${ir.enabled === null ? 'unknown' : ir.enabled ? 'enabled' : 'not enabled'} (${ir.evidence})`);
      return { host, fix: base };
    }
    case 'vfio_not_bound': {
      const off = f.devices.map(dev).filter((d): d is PciDevice => !!d && d.driver !== 'vfio-pci');
      for (const d of off) host.push(`${d.address} (${deviceName(d)}) is on ${d.driver ?? 'no driver'}${d.iommuGroup != null ? `, IOMMU group ${d.iommuGroup}` : ''}`);
      if (!off.length) return { host, fix: base };
      const all = [...new Set(off.flatMap((d) => s.iommu.groups.find((g) => g.id === d.iommuGroup)?.devices.filter((a) => !dev(a)?.isBridge) ?? [d.address]))];
      return { host, fix: `vfiokit bind ${all.join(' ')} (now) or vfiokit apply ${all.join(' ')} (from boot)` };
    }
    case 'vfio_virqfd_missing': {
      const rel = s.kernel.release;
      const k = s.boot.kernels.find((x) => x.running);
      if (k) host.push(`vfio_virqfd for the running kernel ${rel ?? k.release}: ${k.vfioVirqfd}`);
      return { host, fix: `${base}; vfiokit plan shows the module list for this host` };
    }
    default:
      for (const a of f.devices) {
        const d = dev(a);
        if (d) host.push(`${a} is ${deviceName(d)}, on driver ${d.driver ?? 'none'}${d.iommuGroup != null ? `, IOMMU group ${d.iommuGroup}` : ''}`);
      }
      return { host, fix: base };
  }
}

function memlockFix(facts: LogFacts, base: string): { host: string[]; fix: string } {
  const host: string[] = [];
  const mem = facts.guestMemoryMiB;
  const lim = facts.memlockKiB;
  if (mem !== null) host.push(`the guest has ${mem} MiB of memory (from its QEMU command line)`);
  if (lim !== null) host.push(`the memlock limit seen is ${lim === Infinity ? 'unlimited' : `${Math.floor(lim / 1024)} MiB (${lim} KiB)`}`);
  if (mem !== null && lim !== null && lim !== Infinity) {
    host.push(lim / 1024 < mem ? `the limit is ${mem - Math.floor(lim / 1024)} MiB below the guest memory` : 'the limit covers the guest memory: another process may have locked memory too');
  }
  if (mem !== null) {
    const need = (mem + 1024) * 1024;
    return { host, fix: `raise the memlock limit of the VM process to at least ${need} KiB (guest memory + 1 GiB): ulimit -l ${need}, LimitMEMLOCK=${need}K in the service, "USER hard memlock ${need}" in /etc/security/limits.conf, or <memtune><hard_limit unit="KiB">${need}</hard_limit></memtune> in libvirt` };
  }
  return { host, fix: base };
}

export function correlate(r: DiagnoseResult, s: HostSnapshot | null, facts: LogFacts = r.facts): Diagnosis {
  const findings = r.findings.map((f): Finding => {
    const { host, fix } = hostFinding(f, s, facts);
    const devices = f.devices.map((a): FindingDevice => {
      const d = s?.pci.find((x) => x.address === a);
      return { address: a, name: d ? deviceName(d) : null, driver: d?.driver ?? null };
    });
    return { cause: f.cause, confidence: f.confidence, meaning: CAUSES.get(f.cause)!.meaning, host, devices, groups: f.groups, fix, evidence: f.evidence, matches: f.matches, consequenceOf: f.consequenceOf };
  });
  return { findings, linesRead: r.linesRead, matched: findings.length > 0, lookedAt: r.lookedAt, relevantLines: r.relevantLines, correlated: s !== null };
}
