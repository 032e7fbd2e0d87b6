// Host facts other than the PCI tree: kernel, CPU, IOMMU, firmware, libvirt,
// hugepages. Each reader returns data (with `null` for unknowable) and pushes
// a warning naming the missing file, never throws.

import { readGlobalPools } from './hugepages.js';
import { createHash } from 'node:crypto';
import { runningProcesses } from './display.js';
import { LIBVIRT_LIB_DIRS, LIBVIRT_QEMU_DOMAINS, LIBVIRT_QEMU_HOOK, LIBVIRT_QEMU_HOOKS_D } from './sysfs-paths.js';
import * as path from 'node:path';
import type {
  CpuInfo,
  FirmwareInfo,
  HugepagePool,
  IommuGroup,
  IommuInfo,
  KernelInfo,
  LibvirtInfo,
  OsInfo,
  OvmfFirmware,
  SnapshotWarning,
} from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import {
  APPARMOR_LIBVIRT_QEMU,
  ETC_SELINUX_CONFIG,
  ETC_QEMU_FIRMWARE,
  OS_RELEASE_PATHS,
  PROC_CMDLINE,
  PROC_STAT,
  PROC_CPUINFO,
  PROC_INTERRUPTS,
  PROC_MODULES,
  PROC_OSRELEASE,
  SYS_CLASS_IOMMU,
  SYS_FIRMWARE_EFI,
  SYS_IOMMU_GROUPS,
  ROM_INSTALL_DIRS,
  SYS_APPARMOR_ENABLED,
  SYS_SELINUX_ENFORCE,
} from './sysfs-paths.js';

const INTERESTING_MODULES =
  /^(vfio.*|kvm.*|nvidia.*|nouveau|amdgpu|radeon|i915|xe|snd_hda_intel|xhci_pci|i2c_nvidia_gpu|ucsi_ccg|typec_ucsi|vendor_reset|pci_stub|iommufd|kvmfr)$/;

const IOMMU_ARG = /^(intel_iommu|amd_iommu|amd_iommu_intr|iommu|iommu\.\w+|intremap|vfio[-_]pci\.\w+|vfio\.\w+|vfio_iommu_type1\.\w+|pcie_acs_override|pci|video|initcall_blacklist|rd\.driver\.pre|modprobe\.blacklist|nomodeset)(=|$)/;

export function readKernel(root: HostRoot, warnings: SnapshotWarning[]): KernelInfo {
  const release = root.tryReadAttr(PROC_OSRELEASE) ?? null;
  const cmdline = root.tryReadAttr(PROC_CMDLINE) ?? null;
  if (cmdline === null) warnings.push({ code: 'W_NO_CMDLINE', subject: PROC_CMDLINE, message: `${PROC_CMDLINE} is missing: the running kernel's arguments are unknown` });
  if (release === null) warnings.push({ code: 'W_NO_RELEASE', subject: PROC_OSRELEASE, message: `${PROC_OSRELEASE} is missing: the running kernel release is unknown` });
  const mods: KernelInfo['modules'] = {
    vfio: 'unknown',
    vfio_pci: 'unknown',
    vfio_iommu_type1: 'unknown',
    vfio_pci_core: 'unknown',
    vfio_virqfd: 'unknown',
  };
  if (release) {
    let builtin: string | undefined;
    let dep: string | undefined;
    for (const base of [`/lib/modules/${release}`, `/usr/lib/modules/${release}`]) {
      builtin ??= root.tryReadText(`${base}/modules.builtin`);
      dep ??= root.tryReadText(`${base}/modules.dep`);
    }
    const names = (text: string | undefined) => {
      const set = new Set<string>();
      if (!text) return set;
      for (const line of text.split('\n')) {
        const file = line.split(':', 1)[0];
        if (!file.includes('/vfio')) continue;
        set.add(path.posix.basename(file).replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_'));
      }
      return set;
    };
    const b = names(builtin);
    const m = names(dep);
    if (builtin === undefined && dep === undefined) {
      warnings.push({ code: 'W_NO_MODULE_INDEX', subject: `/lib/modules/${release}`, message: `no modules.builtin or modules.dep for kernel ${release}: whether vfio is built in is unknown` });
    } else {
      for (const k of Object.keys(mods) as (keyof typeof mods)[]) mods[k] = b.has(k) ? 'builtin' : m.has(k) ? 'module' : 'missing';
    }
  }
  const loaded = (root.tryReadText(PROC_MODULES) ?? '')
    .split('\n')
    .map((l) => l.split(' ', 1)[0])
    .filter((n) => n && INTERESTING_MODULES.test(n))
    .sort();
  const btime = /^btime (\d+)$/m.exec(root.tryReadText(PROC_STAT) ?? '');
  return { release, cmdline, modules: mods, loadedModules: loaded, bootTime: btime ? new Date(Number(btime[1]) * 1000).toISOString() : null };
}

export function readOs(root: HostRoot): OsInfo {
  const text = root.tryReadText(OS_RELEASE_PATHS[0]) ?? root.tryReadText(OS_RELEASE_PATHS[1]) ?? '';
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) kv.set(m[1], m[2].replace(/^(["'])(.*)\1$/, '$2'));
  }
  return {
    id: kv.get('ID') ?? null,
    idLike: (kv.get('ID_LIKE') ?? '').split(/\s+/).filter(Boolean),
    versionId: kv.get('VERSION_ID') ?? null,
    prettyName: kv.get('PRETTY_NAME') ?? null,
  };
}

export function readCpu(root: HostRoot, warnings: SnapshotWarning[]): CpuInfo {
  const text = root.tryReadText(PROC_CPUINFO);
  if (text === undefined) {
    warnings.push({ code: 'W_NO_CPUINFO', subject: PROC_CPUINFO, message: `${PROC_CPUINFO} is missing: CPU vendor and virtualization flags unknown` });
    return { vendor: null, model: null, virtualization: null, hypervisor: false, threads: null };
  }
  const first = text.split(/\n\s*\n/, 1)[0];
  const field = (name: string) => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(first);
    return m ? m[1].trim() : null;
  };
  const vendorId = field('vendor_id');
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const threads = (text.match(/^processor\s*:/gm) ?? []).length;
  return {
    vendor: vendorId === 'GenuineIntel' ? 'intel' : vendorId === 'AuthenticAMD' || vendorId === 'HygonGenuine' ? 'amd' : vendorId ? 'other' : null,
    model: field('model name'),
    virtualization: flags.has('vmx') ? 'vmx' : flags.has('svm') ? 'svm' : null,
    hypervisor: flags.has('hypervisor'),
    threads: threads || null,
  };
}

export function readIommu(root: HostRoot, cmdline: string | null, warnings: SnapshotWarning[]): IommuInfo {
  const units = (root.tryList(SYS_CLASS_IOMMU) ?? []).sort();
  const vendor = units.some((u) => u.startsWith('dmar')) ? 'intel' : units.some((u) => u.startsWith('ivhd')) ? 'amd' : null;
  const groups: IommuGroup[] = [];
  const ids = root.tryList(SYS_IOMMU_GROUPS);
  if (ids === undefined) {
    warnings.push({
      code: 'W_NO_IOMMU_GROUPS',
      subject: SYS_IOMMU_GROUPS,
      message: `${SYS_IOMMU_GROUPS} is missing: the kernel exposes no IOMMU groups (IOMMU off, or sysfs not captured)`,
    });
  }
  let noiommu = 0;
  for (const id of ids ?? []) {
    if (!/^\d+$/.test(id)) continue;
    const base = `${SYS_IOMMU_GROUPS}/${id}`;
    if (root.has(`${base}/name`) && root.tryReadAttr(`${base}/name`) === 'vfio-noiommu') {
      noiommu++;
      continue;
    }
    const devices = (root.tryList(`${base}/devices`) ?? []).sort();
    // A sysfs show attribute: one page, so one small read on 4 KiB-page
    // kernels; a full buffer may mean a larger page, read whole then.
    const small = root.tryReadSmallText(`${base}/reserved_regions`);
    const regions = small !== undefined && small.length >= 4096 ? root.tryReadText(`${base}/reserved_regions`) : small;
    groups.push({
      id: Number(id),
      devices,
      type: root.tryReadAttr(`${base}/type`) ?? null,
      reservedRegionTypes: regions
        ? [...new Set(regions.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter(Boolean))].sort()
        : [],
    });
  }
  groups.sort((a, b) => a.id - b.id);
  if (noiommu) warnings.push({ code: 'W_NOIOMMU_MODE', subject: SYS_IOMMU_GROUPS, message: `${noiommu} vfio-noiommu group(s): unsafe no-IOMMU mode is on; these cannot be assigned to VMs` });

  // Interrupt remapping: IR- prefixed MSI irq chips in /proc/interrupts are
  // direct evidence; the Intel ecap bit 3 says the hardware could do it.
  let irEnabled: boolean | null = null;
  let evidence = 'no MSI interrupts visible in /proc/interrupts';
  const interrupts = root.tryReadText(PROC_INTERRUPTS);
  if (interrupts === undefined) evidence = `${PROC_INTERRUPTS} is missing`;
  else if (/\bIR-(PCI-MSI|PCI-MSIX|IO-APIC)/.test(interrupts)) {
    irEnabled = true;
    evidence = 'IR- prefixed interrupt chips in /proc/interrupts';
  } else if (/\bPCI-MSI/.test(interrupts)) {
    irEnabled = false;
    evidence = 'MSI interrupts in /proc/interrupts carry no IR- prefix';
  }
  if (vendor === 'intel' && irEnabled !== true) {
    const ecap = root.tryReadAttr(`${SYS_CLASS_IOMMU}/${units.find((u) => u.startsWith('dmar'))}/intel-iommu/ecap`);
    if (ecap && /^[0-9a-f]+$/i.test(ecap)) {
      const supported = (BigInt(`0x${ecap}`) & 8n) !== 0n;
      evidence += supported ? '; hardware supports it (ecap bit 3 set)' : '; hardware lacks it (ecap bit 3 clear)';
    }
  }
  const cmdlineArgs = (cmdline ?? '').split(/\s+/).filter((a) => /^(intel_iommu|amd_iommu|iommu)(=|\.)/.test(a) || a.startsWith('iommu='));
  return {
    active: groups.some((g) => g.devices.length > 0),
    vendor,
    units,
    groups,
    interruptRemapping: { enabled: irEnabled, evidence },
    cmdlineArgs,
  };
}

export { IOMMU_ARG };

const FIRMWARE_DESCRIPTOR_DIRS = ['/usr/share/qemu/firmware', ETC_QEMU_FIRMWARE];
const OVMF_WELL_KNOWN: [string, string][] = [
  ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
  ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
  ['/usr/share/edk2/x64/OVMF_CODE.4m.fd', '/usr/share/edk2/x64/OVMF_VARS.4m.fd'],
  ['/usr/share/edk2/ovmf/OVMF_CODE.fd', '/usr/share/edk2/ovmf/OVMF_VARS.fd'],
  ['/usr/share/edk2-ovmf/x64/OVMF_CODE.fd', '/usr/share/edk2-ovmf/x64/OVMF_VARS.fd'],
];

/** Secure Boot builds (they need SMM) and whether the package's VARS template has Microsoft's keys enrolled. */
const OVMF_SECURE_WELL_KNOWN: [string, string, boolean][] = [
  ['/usr/share/OVMF/OVMF_CODE_4M.ms.fd', '/usr/share/OVMF/OVMF_VARS_4M.ms.fd', true],
  ['/usr/share/OVMF/OVMF_CODE.ms.fd', '/usr/share/OVMF/OVMF_VARS.ms.fd', true],
  ['/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd', '/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd', true],
  ['/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd', '/usr/share/edk2/x64/OVMF_VARS.4m.fd', false],
];

export function readFirmware(root: HostRoot): FirmwareInfo {
  const efi = root.probe(SYS_FIRMWARE_EFI);
  const ovmf: OvmfFirmware[] = [];
  for (const dir of FIRMWARE_DESCRIPTOR_DIRS) {
    for (const name of (root.tryList(dir) ?? []).sort()) {
      if (!name.endsWith('.json')) continue;
      const p = `${dir}/${name}`;
      let d: any;
      try {
        d = JSON.parse(root.tryReadText(p) ?? '');
      } catch {
        continue;
      }
      const x86 = Array.isArray(d?.targets) && d.targets.some((t: any) => t?.architecture === 'x86_64');
      const uefi = Array.isArray(d?.['interface-types']) && d['interface-types'].includes('uefi');
      const code = d?.mapping?.executable?.filename ?? d?.mapping?.filename;
      if (!x86 || !uefi || typeof code !== 'string') continue;
      const features: string[] = Array.isArray(d.features) ? d.features : [];
      ovmf.push({
        descriptor: p,
        description: typeof d.description === 'string' ? d.description : null,
        code,
        varsTemplate: d?.mapping?.['nvram-template']?.filename ?? null,
        secureBoot: features.includes('secure-boot'),
        enrolledKeys: features.includes('enrolled-keys'),
        requiresSmm: features.includes('requires-smm'),
        exists: root.probe(code),
      });
    }
  }
  // Plain (non-Secure-Boot) firmware first: it is what passthrough guests usually want.
  ovmf.sort((a, b) => Number(a.secureBoot) - Number(b.secureBoot));
  if (ovmf.length === 0) {
    for (const [code, vars] of OVMF_WELL_KNOWN) {
      if (root.probe(code)) ovmf.push({ descriptor: null, description: null, code, varsTemplate: root.probe(vars) ? vars : null, secureBoot: false, enrolledKeys: false, requiresSmm: false, exists: true });
    }
    for (const [code, vars, enrolled] of OVMF_SECURE_WELL_KNOWN) {
      if (root.probe(code)) ovmf.push({ descriptor: null, description: null, code, varsTemplate: root.probe(vars) ? vars : null, secureBoot: true, enrolledKeys: enrolled && root.probe(vars), requiresSmm: true, exists: true });
    }
  }
  return { efi, ovmf };
}

export function readLibvirt(root: HostRoot): LibvirtInfo {
  return {
    virsh: root.findExecutable(['/usr/bin/virsh', '/usr/local/bin/virsh']),
    daemon: root.findExecutable(['/usr/sbin/virtqemud', '/usr/sbin/libvirtd', '/usr/local/sbin/libvirtd']),
    qemu: root.findExecutable(['/usr/bin/qemu-system-x86_64', '/usr/libexec/qemu-kvm', '/usr/bin/qemu-kvm']),
    virtXmlValidate: root.findExecutable(['/usr/bin/virt-xml-validate']),
    version: readLibvirtVersion(root),
    runningDaemons: runningProcesses(root, ['libvirtd', 'virtqemud']),
    mainHook: (() => {
      const f = root.tryReadFileState(LIBVIRT_QEMU_HOOK);
      return f ? { content: f.content, mode: f.mode } : null;
    })(),
    hooksDir: (() => {
      const names = root.tryList(LIBVIRT_QEMU_HOOKS_D);
      if (!names) return null;
      return names.sort().map((name) => {
        const p = `${LIBVIRT_QEMU_HOOKS_D}/${name}`;
        return { name, isDir: root.isDir(p), executable: root.findExecutable([p]) !== null };
      });
    })(),
    definedDomains: (root.tryList(LIBVIRT_QEMU_DOMAINS) ?? []).filter((n) => n.endsWith('.xml')).map((n) => n.slice(0, -4)).sort(),
    confinement: readConfinement(root),
  };
}

/** `/dir/** r,` rules (read, possibly with k/m) of an AppArmor abstraction: the directories QEMU may read whole. */
export function apparmorReadDirs(text: string): string[] {
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^(?:owner\s+)?(\/[^\s*{}[\]?]+)\/\*\*\s+([a-z]+)\s*,$/.exec(line);
    if (m && m[2].includes('r') && !dirs.includes(m[1])) dirs.push(m[1]);
  }
  return dirs;
}

function readConfinement(root: HostRoot): LibvirtInfo['confinement'] {
  const abstraction = root.tryReadText(APPARMOR_LIBVIRT_QEMU);
  const aaEnabled = root.tryReadAttr(SYS_APPARMOR_ENABLED);
  const enforce = root.tryReadAttr(SYS_SELINUX_ENFORCE);
  const config = root.tryReadText(ETC_SELINUX_CONFIG);
  const cfg = (k: string) => (config ? (new RegExp(`^\\s*${k}\\s*=\\s*"?([A-Za-z0-9_-]+)`, 'm').exec(config)?.[1] ?? null) : null);
  let selinux: LibvirtInfo['confinement']['selinux'] = null;
  if (enforce !== undefined) selinux = { mode: enforce === '1' ? 'enforcing' : 'permissive', policy: cfg('SELINUXTYPE') };
  else if (config) {
    const mode = cfg('SELINUX');
    if (mode === 'enforcing' || mode === 'permissive' || mode === 'disabled') selinux = { mode, policy: cfg('SELINUXTYPE') };
  }
  const installedRoms: Record<string, string> = {};
  for (const dir of ROM_INSTALL_DIRS) {
    for (const name of root.tryList(dir) ?? []) {
      if (!/^vfiokit-.*\.rom$/.test(name)) continue;
      const bytes = root.tryReadBytes(`${dir}/${name}`);
      if (bytes) installedRoms[`${dir}/${name}`] = createHash('sha256').update(bytes).digest('hex');
    }
  }
  return {
    apparmor: { enabled: aaEnabled === undefined ? null : aaEnabled === 'Y', abstraction: abstraction === undefined ? null : APPARMOR_LIBVIRT_QEMU, readDirs: abstraction ? apparmorReadDirs(abstraction) : [] },
    selinux,
    installDirs: [...ROM_INSTALL_DIRS],
    installedRoms,
  };
}

/** libvirt.so.0.9000.0 → "9.0.0" (libvirt's soname minor is MAJOR*1000+MINOR). */
export function libvirtVersionFromSoname(name: string): string | null {
  const m = /^libvirt\.so\.0\.(\d+)\.(\d+)$/.exec(name);
  if (!m) return null;
  const n = Number(m[1]);
  return `${Math.floor(n / 1000)}.${n % 1000}.${m[2]}`;
}

function readLibvirtVersion(root: HostRoot): string | null {
  for (const dir of LIBVIRT_LIB_DIRS) {
    for (const n of root.tryList(dir) ?? []) {
      if (!n.startsWith('libvirt.so.0.')) continue;
      const v = libvirtVersionFromSoname(n);
      if (v) return v;
    }
  }
  return null;
}

export function readHugepages(root: HostRoot): HugepagePool[] {
  return readGlobalPools(root);
}

