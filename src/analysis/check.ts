// Readiness report (pure): each line says what was checked, the result and,
// when failing, the exact fix for this host.

import { shortAddress } from '../model/pci-address.js';
import type { HostSnapshot } from '../model/snapshot.js';
import type { GroupsReport } from './groups.js';

type CheckStatus = 'ok' | 'warn' | 'fail';

interface CheckLine {
  id: string;
  status: CheckStatus;
  title: string;
  detail: string;
  fix: string | null;
}

export interface CheckReport {
  ready: boolean;
  lines: CheckLine[];
}

function packageHint(s: HostSnapshot, pkgs: { debian: string; fedora: string; arch: string; suse?: string }): string {
  const ids = [s.os.id ?? '', ...s.os.idLike];
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return `apt install ${pkgs.debian}`;
  if (ids.some((i) => ['fedora', 'rhel', 'centos'].includes(i))) return `dnf install ${pkgs.fedora}`;
  if (ids.some((i) => ['arch', 'manjaro', 'cachyos', 'endeavouros'].includes(i))) return `pacman -S ${pkgs.arch}`;
  if (ids.some((i) => i.includes('suse'))) return `zypper install ${pkgs.suse ?? pkgs.fedora}`;
  return `install ${pkgs.debian} (Debian/Ubuntu), ${pkgs.fedora} (Fedora), ${pkgs.arch} (Arch)`;
}

/** The fix for an inactive IOMMU on this host: the right kernel argument for the CPU vendor. */
export function iommuFix(s: HostSnapshot): string {
  const args = (s.kernel.cmdline ?? '').split(/\s+/);
  const offArgs = args.filter((a) => ['iommu=off', 'intel_iommu=off', 'amd_iommu=off'].includes(a));
  const parts: string[] = [];
  if (offArgs.length) parts.push(`remove ${offArgs.join(' ')} from the kernel command line`);
  if (s.cpu.vendor === 'intel') {
    parts.push('enable VT-d in the firmware setup');
    if (!args.includes('intel_iommu=on')) parts.push('add intel_iommu=on iommu=pt to the kernel command line (`vfiokit plan` writes it for your bootloader)');
  } else if (s.cpu.vendor === 'amd') {
    parts.push('enable IOMMU / AMD-Vi (and SVM) in the firmware setup; the AMD IOMMU is on by default once the firmware provides it');
    if (args.includes('amd_iommu=on')) parts.push('drop amd_iommu=on: it is not a kernel option (the kernel logs "AMD-Vi: Unknown option")');
  } else {
    parts.push('enable the IOMMU in the firmware setup and on the kernel command line for this platform');
  }
  parts.push('then reboot');
  return parts.join('; ');
}

export function assembleCheck(s: HostSnapshot, groups: GroupsReport): CheckReport {
  const lines: CheckLine[] = [];
  const add = (id: string, status: CheckStatus, title: string, detail: string, fix: string | null = null) => lines.push({ id, status, title, detail, fix });

  // CPU virtualization
  if (s.cpu.virtualization) add('cpu-virtualization', 'ok', 'CPU virtualization', `${s.cpu.virtualization === 'vmx' ? 'Intel VT-x' : 'AMD-V'} (${s.cpu.virtualization}) available`);
  else
    add(
      'cpu-virtualization',
      'fail',
      'CPU virtualization',
      s.cpu.hypervisor ? 'no vmx/svm flag: this host is itself a virtual machine without nested virtualization' : 'no vmx/svm flag in /proc/cpuinfo',
      s.cpu.hypervisor
        ? 'enable nested virtualization on the outer hypervisor (e.g. kvm_intel nested=1 / kvm_amd nested=1) and expose vmx/svm to this guest'
        : `enable ${s.cpu.vendor === 'amd' ? 'SVM Mode (AMD-V)' : s.cpu.vendor === 'intel' ? 'Intel Virtualization Technology (VT-x)' : 'CPU virtualization'} in the firmware setup`,
    );

  // KVM
  if (s.kvm.devKvm) add('kvm', 'ok', 'KVM', '/dev/kvm present');
  else add('kvm', 'fail', 'KVM', '/dev/kvm is missing', s.cpu.virtualization ? `modprobe ${s.cpu.vendor === 'amd' ? 'kvm_amd' : 'kvm_intel'}` : 'enable CPU virtualization first (see above)');

  // IOMMU
  if (s.iommu.active) {
    add('iommu', 'ok', 'IOMMU', `${s.iommu.vendor === 'intel' ? 'Intel VT-d' : s.iommu.vendor === 'amd' ? 'AMD-Vi' : 'IOMMU'} active: ${s.iommu.groups.length} groups${s.iommu.units.length ? ` (${s.iommu.units.join(', ')})` : ''}`);
    if (s.cpu.vendor === 'amd' && (s.kernel.cmdline ?? '').split(/\s+/).includes('amd_iommu=on'))
      add('iommu-args', 'warn', 'Kernel arguments', 'amd_iommu=on is on the command line but is not a kernel option (ignored)', 'remove amd_iommu=on from the kernel command line');
  } else {
    const off = (s.kernel.cmdline ?? '').split(/\s+/).filter((a) => ['iommu=off', 'intel_iommu=off', 'amd_iommu=off'].includes(a));
    add('iommu', 'fail', 'IOMMU', off.length ? `disabled by ${off.join(' ')} on the kernel command line` : 'not active: no IOMMU groups in /sys/kernel/iommu_groups', iommuFix(s));
  }

  // Interrupt remapping
  const ir = s.iommu.interruptRemapping;
  if (!s.iommu.active) add('interrupt-remapping', 'warn', 'Interrupt remapping', 'unknown until the IOMMU is active');
  else if (ir.enabled) add('interrupt-remapping', 'ok', 'Interrupt remapping', ir.evidence);
  else if (ir.enabled === false)
    add('interrupt-remapping', 'fail', 'Interrupt remapping', ir.evidence, 'enable interrupt remapping (firmware x2APIC/IR option; remove intremap=off); last resort: `options vfio_iommu_type1 allow_unsafe_interrupts=1` in modprobe.d, which weakens isolation');
  else add('interrupt-remapping', 'warn', 'Interrupt remapping', ir.evidence);

  // GPUs and their groups
  const gpus = s.pci.filter((d) => d.class.startsWith('03'));
  if (!gpus.length) add('gpu', 'warn', 'GPUs', 'no display-class (03xx) PCI device found');
  for (const gpu of gpus) {
    const name = `${shortAddress(gpu.address)} ${gpu.deviceName ?? `${gpu.vendor}:${gpu.device}`}`;
    const id = `gpu:${gpu.address}`;
    if (!s.iommu.active || gpu.iommuGroup === null) {
      add(id, 'warn', `GPU ${name}`, 'no IOMMU group (IOMMU not active)', 'enable the IOMMU first (see above)');
      continue;
    }
    const g = groups.groups.find((x) => x.id === gpu.iommuGroup);
    if (!g) continue;
    if (g.verdict === 'shares') {
      add(id, 'fail', `GPU ${name}`, `group ${g.id} ${g.explanation}`,
        'move the card to a CPU-attached slot (a root port with ACS), look for an ACS option in the firmware setup, or pass the whole group (`vfiokit plan ' + shortAddress(gpu.address) + ' --with ADDR`)');
    } else if (gpu.bootVga) {
      add(id, 'warn', `GPU ${name}`, `group ${g.id}: ${g.explanation}; it is the boot display (boot_vga=1)`, 'passing the boot GPU needs a second GPU for the host or a single-GPU handoff; plan with --allow-boot-vga');
    } else {
      add(id, 'ok', `GPU ${name}`, `group ${g.id}: ${g.explanation}; driver ${gpu.driver ?? 'none'}`);
    }
  }

  // vfio modules
  const vp = s.kernel.modules.vfio_pci;
  if (vp === 'builtin' || vp === 'module') add('vfio', 'ok', 'vfio-pci', `${vp === 'builtin' ? 'built into' : 'available as a module for'} kernel ${s.kernel.release}`);
  else if (vp === 'missing') add('vfio', 'fail', 'vfio-pci', `kernel ${s.kernel.release} has no vfio-pci (not built in, no module)`, 'install a kernel built with CONFIG_VFIO_PCI (all major distribution kernels have it)');
  else add('vfio', 'warn', 'vfio-pci', 'unknown: no module index for the running kernel');

  // OVMF
  const fw = s.firmware.ovmf.find((f) => f.exists);
  if (fw) add('ovmf', 'ok', 'UEFI firmware (OVMF)', `${fw.code}${fw.descriptor ? ` (${fw.descriptor})` : ''}`);
  else add('ovmf', 'fail', 'UEFI firmware (OVMF)', 'no OVMF firmware found (descriptors in /usr/share/qemu/firmware or well-known paths)', packageHint(s, { debian: 'ovmf', fedora: 'edk2-ovmf', arch: 'edk2-ovmf', suse: 'qemu-ovmf-x86_64' }));

  // libvirt / QEMU
  if (s.libvirt.virsh && s.libvirt.daemon) add('libvirt', 'ok', 'libvirt', `${s.libvirt.virsh}, ${s.libvirt.daemon}`);
  else
    add('libvirt', 'warn', 'libvirt', `${s.libvirt.virsh ? 'virsh found but no libvirt daemon' : 'not installed'}; \`vfiokit vm qemu\` works without it`,
      packageHint(s, { debian: 'libvirt-daemon-system libvirt-clients', fedora: 'libvirt-daemon-kvm libvirt-client', arch: 'libvirt', suse: 'libvirt' }));
  if (!s.libvirt.qemu) add('qemu', 'warn', 'QEMU', 'qemu-system-x86_64 not found', packageHint(s, { debian: 'qemu-system-x86', fedora: 'qemu-kvm', arch: 'qemu-full', suse: 'qemu-x86' }));

  return { ready: !lines.some((l) => l.status === 'fail'), lines };
}
