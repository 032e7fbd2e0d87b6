// Fixture hosts with real CPU topologies (as the kernel numbers them) for the
// vm tests. Kernel IOMMU groups are data, as in test/helpers/hosts.ts.

import type { FakeCpu, FakeHost } from '../helpers/fake-host.js';

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/**
 * AMD Ryzen 9 5950X: 16 cores / 32 threads on two CCDs, each CCD its own
 * 32 MiB L3. Linux numbers the first thread of every core 0-15 and the SMT
 * siblings 16-31, so core n = CPUs n and n+16.
 */
export function ryzen5950xCpus(): FakeCpu[] {
  return range(0, 31).map((id) => {
    const core = id % 16;
    const ccd = core < 8 ? 0 : 1;
    return { id, core, siblings: [core, core + 16], l3: ccd === 0 ? [...range(0, 7), ...range(16, 23)] : [...range(8, 15), ...range(24, 31)], node: 0 };
  });
}

/**
 * Intel Core i9-12900K: 8 P-cores with Hyper-Threading (CPUs 0-15, siblings
 * adjacent: 0-1, 2-3, …; core_id 0, 4, … 28) and 8 E-cores without SMT
 * (CPUs 16-23, core_id 32-39), one shared 30 MiB L3, hybrid PMUs cpu_core/cpu_atom.
 */
export function i912900kCpus(): FakeCpu[] {
  const l3 = range(0, 23);
  return range(0, 23).map((id) =>
    id < 16 ? { id, core: Math.floor(id / 2) * 4, siblings: [id - (id % 2), id - (id % 2) + 1], l3 } : { id, core: 32 + (id - 16), siblings: [id], l3 },
  );
}

/**
 * Two Xeon E5-2630 v4 (10 cores / 20 threads each, Broadwell core_id gaps
 * 0-4, 8-12): CPUs 0-9 socket 0, 10-19 socket 1, 20-29 and 30-39 their SMT
 * siblings. One NUMA node and one L3 per socket.
 */
export function dualXeonCpus(): FakeCpu[] {
  const coreIds = [0, 1, 2, 3, 4, 8, 9, 10, 11, 12];
  return range(0, 39).map((id) => {
    const first = id % 20;
    const pkg = first < 10 ? 0 : 1;
    const idx = first % 10;
    const l3 = pkg === 0 ? [...range(0, 9), ...range(20, 29)] : [...range(10, 19), ...range(30, 39)];
    return { id, core: coreIds[idx], package: pkg, siblings: [first, first + 20], l3, node: pkg };
  });
}

/** Ryzen 9 5950X desktop: RTX 3090 (VGA + audio) behind its own root port, a second GPU boots the console. */
export const ryzenDesktop: FakeHost = {
  cpu: { vendor: 'amd', model: 'AMD Ryzen 9 5950X 16-Core Processor' },
  cpus: { cpus: ryzen5950xCpus() },
  memory: { totalKb: 65765324 },
  iommu: 'amd',
  cmdline: 'BOOT_IMAGE=/vmlinuz-linux root=UUID=0b7c5e0e-1111-2222-3333-444455556666 rw amd_iommu=on iommu=pt',
  release: '6.6.10-arch1-1',
  hugepages: [{ sizeKb: 2048, total: 0, free: 0 }, { sizeKb: 1048576, total: 0, free: 0 }],
  pci: [
    { addr: '00:00.0', id: '1022:1480', class: 0x060000, pcie: null, group: 0 },
    { addr: '00:01.0', id: '1022:1482', class: 0x060000, pcie: null, group: 1 },
    { addr: '00:01.1', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 2 },
    { addr: '01:00.0', id: '10de:2204', class: 0x030000, subsys: '3842:3987', parent: '00:01.1', driver: 'nvidia', group: 15, rom: true, resetMethod: 'bus', numaNode: -1 },
    { addr: '01:00.1', id: '10de:1aef', class: 0x040300, subsys: '3842:3987', parent: '00:01.1', driver: 'snd_hda_intel', group: 15 },
    { addr: '00:03.0', id: '1022:1482', class: 0x060000, pcie: null, group: 3 },
    { addr: '00:03.1', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 4 },
    { addr: '0b:00.0', id: '1002:73bf', class: 0x030000, subsys: '1002:0e3a', parent: '00:03.1', driver: 'amdgpu', bootVga: true, group: 16, rom: true },
    { addr: '0b:00.1', id: '1002:ab28', class: 0x040300, parent: '00:03.1', driver: 'snd_hda_intel', group: 16 },
    { addr: '00:03.2', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 5 },
    { addr: '0c:00.0', id: '144d:a808', class: 0x010802, parent: '00:03.2', driver: 'nvme', group: 17, flr: true },
  ],
};

/** i9-12900K desktop: the iGPU boots the console, an RX 6800 XT in the PEG slot; 16 GiB of 2 MiB huge pages reserved. */
export const alderLakeDesktop: FakeHost = {
  cpu: { vendor: 'intel', model: '12th Gen Intel(R) Core(TM) i9-12900K' },
  cpus: { cpus: i912900kCpus(), hybrid: { core: range(0, 15), atom: range(16, 23) } },
  memory: { totalKb: 32658484 },
  iommu: 'intel',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.5.0-14-generic root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet intel_iommu=on iommu=pt',
  release: '6.5.0-14-generic',
  hugepages: [{ sizeKb: 2048, total: 8192, free: 8192 }, { sizeKb: 1048576, total: 0, free: 0 }],
  pci: [
    { addr: '00:00.0', id: '8086:4660', class: 0x060000, pcie: null, group: 0 },
    { addr: '00:01.0', id: '8086:460d', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 1 },
    { addr: '03:00.0', id: '1002:73bf', class: 0x030000, subsys: '1458:2326', parent: '00:01.0', driver: 'amdgpu', group: 14, rom: true, resetMethod: 'flr,bus', flr: true },
    { addr: '03:00.1', id: '1002:ab28', class: 0x040300, parent: '00:01.0', driver: 'snd_hda_intel', group: 14 },
    { addr: '00:02.0', id: '8086:4680', class: 0x030000, pcie: 'rc-integrated-endpoint', driver: 'i915', bootVga: true, group: 2 },
    { addr: '00:14.0', id: '8086:7ae0', class: 0x0c0330, pcie: null, driver: 'xhci_hcd', group: 3 },
  ],
};

/** Dual-socket Xeon server: an RTX 2060 (4 functions) on socket 1's root port (NUMA node 1), BMC VGA boots the console. */
export const dualXeonServer: FakeHost = {
  cpu: { vendor: 'intel', model: 'Intel(R) Xeon(R) CPU E5-2630 v4 @ 2.20GHz' },
  cpus: { cpus: dualXeonCpus() },
  memory: { totalKb: 131890820 },
  iommu: 'intel',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro intel_iommu=on',
  hugepages: [{ sizeKb: 2048, total: 0, free: 0 }, { sizeKb: 1048576, total: 16, free: 16 }],
  ovmf: false,
  files: {
    '/usr/share/edk2/ovmf/OVMF_CODE.fd': 'code',
    '/usr/share/edk2/ovmf/OVMF_VARS.fd': 'vars',
  },
  pci: [
    { addr: '00:00.0', id: '8086:6f00', class: 0x060000, pcie: null, group: 0 },
    { addr: '00:1c.0', id: '8086:8d10', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 1 },
    { addr: '08:00.0', id: '1a03:1150', class: 0x060400, pcie: 'pcie-to-pci-bridge', parent: '00:1c.0', group: 1 },
    { addr: '09:00.0', id: '1a03:2000', class: 0x030000, pcie: null, parent: '08:00.0', driver: 'ast', bootVga: true, group: 1 },
    { addr: '80:00.0', id: '8086:6f00', class: 0x060000, pcie: null, group: 40 },
    { addr: '80:02.0', id: '8086:6f04', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 41, numaNode: 1 },
    { addr: '81:00.0', id: '10de:1f08', class: 0x030000, subsys: '1458:3fc2', parent: '80:02.0', driver: 'nouveau', group: 42, rom: true, resetMethod: 'bus', numaNode: 1, localCpus: '10-19,30-39' },
    { addr: '81:00.1', id: '10de:10f9', class: 0x040300, subsys: '1458:3fc2', parent: '80:02.0', driver: 'snd_hda_intel', group: 42, numaNode: 1, localCpus: '10-19,30-39' },
    { addr: '81:00.2', id: '10de:1ad8', class: 0x0c0330, subsys: '1458:3fc2', parent: '80:02.0', driver: 'xhci_hcd', group: 42, numaNode: 1, localCpus: '10-19,30-39' },
    { addr: '81:00.3', id: '10de:1ad9', class: 0x0c8000, subsys: '1458:3fc2', parent: '80:02.0', driver: 'nvidia-gpu', group: 42, numaNode: 1, localCpus: '10-19,30-39' },
  ],
};

export const VM_HOSTS: Record<string, FakeHost> = { 'ryzen-5950x': ryzenDesktop, 'i9-12900k': alderLakeDesktop, 'dual-xeon': dualXeonServer };

// What guest profiles read (src/host/vm-host.ts), laid out as each
// distribution installs it. Firmware descriptors follow the edk2 packages'
// JSON (interface-types, mapping, targets, features).
const descriptor = (description: string, code: string, vars: string, features: string[]) =>
  JSON.stringify({ description, 'interface-types': ['uefi'], mapping: { device: 'flash', executable: { filename: code, format: 'raw' }, 'nvram-template': { filename: vars, format: 'raw' } }, targets: [{ architecture: 'x86_64', machines: ['pc-q35-*'] }], features });
const SB_FEATURES = ['acpi-s3', 'enrolled-keys', 'requires-smm', 'secure-boot', 'verbose-dynamic'];
const passwd = 'root:x:0:0:root:/root:/bin/bash\nalex:x:1000:1000:Alex:/home/alex:/bin/bash\n';

/** Arch-like: edk2 descriptors (plain, and Secure Boot with a VARS template the user enrolled Microsoft keys into — Arch ships none enrolled), swtpm, virtio-win from the AUR, kvmfr loaded, PipeWire session. */
export const ryzenGaming: FakeHost = {
  ...ryzenDesktop,
  ovmf: false,
  execs: ['/usr/bin/swtpm', '/usr/bin/swtpm_setup'],
  files: {
    '/etc/os-release': 'NAME="Arch Linux"\nID=arch\n',
    '/etc/passwd': passwd,
    '/usr/share/edk2/x64/OVMF_CODE.4m.fd': 'code',
    '/usr/share/edk2/x64/OVMF_VARS.4m.fd': 'vars',
    '/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd': 'code',
    '/usr/share/edk2/x64/OVMF_VARS.ms.4m.fd': 'vars',
    '/usr/share/qemu/firmware/50-edk2-ovmf-x86_64-secure.json': descriptor('UEFI firmware for x86_64, with Secure Boot and SMM, MS keys enrolled', '/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd', '/usr/share/edk2/x64/OVMF_VARS.ms.4m.fd', SB_FEATURES),
    '/usr/share/qemu/firmware/60-edk2-ovmf-x86_64.json': descriptor('UEFI firmware for x86_64', '/usr/share/edk2/x64/OVMF_CODE.4m.fd', '/usr/share/edk2/x64/OVMF_VARS.4m.fd', ['acpi-s3', 'verbose-dynamic']),
    '/usr/share/virtio/virtio-win.iso': 'iso',
    '/proc/modules': 'kvmfr 28672 0 - Live 0x0000000000000000\nkvm_amd 155648 0 - Live 0x0000000000000000\nkvm 1142784 1 kvm_amd, Live 0x0000000000000000\n',
    '/dev/kvmfr0': '',
    '/dev/input/event3': '',
    '/dev/input/event5': '',
    '/run/user/1000/pipewire-0': '',
    '/run/user/1000/pulse/native': '',
  },
  links: {
    '/dev/input/by-id/usb-Logitech_G915_Keyboard-event-kbd': '../event3',
    '/dev/input/by-id/usb-Logitech_G502_HERO-event-mouse': '../event5',
    '/dev/input/by-id/usb-Logitech_G502_HERO-mouse': '../mouse0',
  },
};

/** Ubuntu: the ovmf package's descriptors including 40-…-secure-enrolled, swtpm, no virtio-win, PulseAudio session, no kvmfr. */
export const alderLakeGaming: FakeHost = {
  ...alderLakeDesktop,
  execs: ['/usr/bin/swtpm', '/usr/bin/swtpm_setup'],
  files: {
    '/etc/os-release': 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n',
    '/etc/passwd': passwd,
    '/usr/share/OVMF/OVMF_CODE_4M.ms.fd': 'code',
    '/usr/share/OVMF/OVMF_VARS_4M.ms.fd': 'vars',
    '/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json': descriptor('UEFI firmware for x86_64, with Secure Boot and SMM, SB enabled, MS certs enrolled', '/usr/share/OVMF/OVMF_CODE_4M.ms.fd', '/usr/share/OVMF/OVMF_VARS_4M.ms.fd', SB_FEATURES),
    '/dev/input/event2': '',
    '/run/user/1000/pulse/native': '',
  },
  links: { '/dev/input/by-id/usb-Keychron_K8-event-kbd': '../event2', '/dev/input/by-id/usb-Razer_DeathAdder-event-mouse': '../event7' },
};

/** Fedora server: no descriptors, the edk2-ovmf Secure Boot files at their paths, swtpm, the virtio-win package, no desktop session. */
export const dualXeonGaming: FakeHost = {
  ...dualXeonServer,
  execs: ['/usr/bin/swtpm', '/usr/bin/swtpm_setup'],
  files: {
    ...dualXeonServer.files,
    '/etc/os-release': 'NAME="Fedora Linux"\nID=fedora\n',
    '/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd': 'code',
    '/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd': 'vars',
    '/usr/share/virtio-win/virtio-win.iso': 'iso',
  },
};

export const GAMING_HOSTS: Record<string, FakeHost> = { 'ryzen-5950x': ryzenGaming, 'i9-12900k': alderLakeGaming, 'dual-xeon': dualXeonGaming };
