// Human-readable renderers (pure). Golden tests pin their output.

import { shortAddress } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { detectBootloader, detectInitramfs } from '../analysis/boot-detect.js';
import type { CheckReport } from '../analysis/check.js';
import type { GroupsReport } from '../analysis/groups.js';

export function deviceLabel(d: Pick<PciDevice, 'vendor' | 'device' | 'class' | 'vendorName' | 'deviceName'>): string {
  const ids = `[${d.vendor}:${d.device}]`;
  if (d.deviceName) return `${d.vendorName ? shortVendor(d.vendorName) + ' ' : ''}${d.deviceName} ${ids}`;
  if (d.vendorName) return `${shortVendor(d.vendorName)} device ${ids}`;
  return ids;
}

function shortVendor(v: string): string {
  return v.replace(/ Corporation$/, '').replace(/, Inc\.( \[.*\])?$/, '').replace(/ Co Ltd$/, '');
}

export function renderInspect(s: HostSnapshot): string {
  const out: string[] = [];
  out.push(`Host root:   ${s.root}`);
  out.push(`OS:          ${s.os.prettyName ?? 'unknown'}`);
  out.push(`Kernel:      ${s.kernel.release ?? 'unknown'}`);
  out.push(`Command line: ${s.kernel.cmdline ?? 'unknown'}`);
  out.push(`CPU:         ${s.cpu.model ?? 'unknown'} (${s.cpu.vendor ?? '?'}, ${s.cpu.virtualization ?? 'no vmx/svm'}${s.cpu.hypervisor ? ', running as a guest' : ''}, ${s.cpu.threads ?? '?'} threads)`);
  out.push(`KVM:         ${s.kvm.devKvm ? '/dev/kvm present' : '/dev/kvm missing'}`);
  out.push(`IOMMU:       ${s.iommu.active ? `active (${s.iommu.vendor ?? 'unknown vendor'}, ${s.iommu.groups.length} groups)` : 'not active'}; interrupt remapping: ${s.iommu.interruptRemapping.enabled === null ? 'unknown' : s.iommu.interruptRemapping.enabled ? 'on' : 'off'}`);
  const m = s.kernel.modules;
  out.push(`vfio:        vfio ${m.vfio}, vfio_pci ${m.vfio_pci}, vfio_iommu_type1 ${m.vfio_iommu_type1}`);
  out.push(`Firmware:    ${s.firmware.efi ? 'UEFI boot' : 'BIOS boot'}; OVMF: ${s.firmware.ovmf.filter((f) => f.exists).map((f) => f.code).join(', ') || 'none'}`);
  out.push(`libvirt:     ${s.libvirt.virsh ?? 'no virsh'}${s.libvirt.daemon ? `, ${s.libvirt.daemon}` : ''}`);
  const bl = detectBootloader(s);
  const ir = detectInitramfs(s);
  out.push(`Boot:        bootloader ${bl.kind} (${bl.evidence.join('; ')}); initramfs ${ir.kind}`);
  if (s.cpuTopology) {
    const t = s.cpuTopology;
    const cores = new Set(t.cpus.map((c) => `${c.package}:${c.core}`)).size;
    out.push(`Topology:    ${t.cpus.length} CPUs, ${cores} cores, ${t.numaNodes.length || 1} NUMA node(s)${t.hybrid ? `, hybrid (${t.hybrid.performance.length} P + ${t.hybrid.efficiency.length} E)` : ''}; memory ${s.memory.totalKb ? Math.round(s.memory.totalKb / 1048576) + ' GiB' : 'unknown'}`);
  }
  out.push(`Hugepages:   ${s.hugepages.map((h) => `${h.sizeKb >= 1048576 ? h.sizeKb / 1048576 + 'G' : h.sizeKb / 1024 + 'M'} ${h.free}/${h.total} free`).join(', ') || 'none'}`);
  out.push('');
  out.push(`PCI functions (${s.pci.length}):`);
  for (const d of s.pci) {
    const flags = [
      d.iommuGroup !== null ? `group ${d.iommuGroup}` : 'no group',
      `driver ${d.driver ?? '-'}`,
      d.bootVga ? 'boot VGA' : null,
      d.driverOverride ? `override ${d.driverOverride}` : null,
    ].filter(Boolean);
    out.push(`  ${shortAddress(d.address)} [${d.class.slice(0, 4)}] ${deviceLabel(d)}  (${flags.join(', ')})`);
  }
  if (s.warnings.length) {
    out.push('');
    out.push('Warnings:');
    for (const w of s.warnings) out.push(`  ! ${w.message}`);
  }
  return out.join('\n');
}

export function renderGroups(r: GroupsReport, s: HostSnapshot, gpuOnly: boolean): string {
  const out: string[] = [];
  if (!r.iommuActive) {
    out.push('No IOMMU groups: the IOMMU is not active. Run `vfiokit check` for the fix.');
    return out.join('\n');
  }
  const byAddr = new Map(s.pci.map((d) => [d.address, d]));
  for (const g of r.groups) {
    if (gpuOnly && !g.hasGpu) continue;
    out.push(`Group ${g.id}: ${g.explanation}`);
    for (const m of g.members) {
      const d = byAddr.get(m.address);
      out.push(`  ${shortAddress(m.address)} [${m.class.slice(0, 4)}] ${d ? deviceLabel(d) : `[${m.vendor}:${m.device}]`}  driver ${m.driver ?? '-'}${m.role === 'bridge' ? '  (bridge)' : ''}`);
    }
  }
  out.push('');
  const p = r.prediction;
  if (!p.available) out.push(`Prediction: not available — ${p.reason}`);
  else if (p.matchesKernel) out.push(`Prediction: ${p.groups.length} groups predicted from topology and ACS; they match the kernel's groups.`);
  else {
    out.push(`Prediction: differs from the kernel's groups — ${p.reason}`);
    for (const d of p.differences) out.push(`  - ${d}`);
  }
  return out.join('\n');
}

const MARK = { ok: '[ ok ]', warn: '[warn]', fail: '[FAIL]' } as const;

export function renderCheck(r: CheckReport): string {
  const out: string[] = [];
  for (const l of r.lines) {
    out.push(`${MARK[l.status]} ${l.title}: ${l.detail}`);
    if (l.fix && l.status !== 'ok') out.push(`       fix: ${l.fix}`);
  }
  out.push('');
  out.push(r.ready ? 'Ready for passthrough.' : 'Not ready: fix the [FAIL] lines above, then run `vfiokit check` again.');
  return out.join('\n');
}
