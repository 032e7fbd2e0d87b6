// Realistic fixture hosts. Kernel groups are written down as the kernel
// forms them for this topology (data, not computed by vfiokit).

import type { FakeHost, FakePci } from './fake-host.js';

const intelPch = (group: number): FakePci[] => [
  { addr: '00:14.0', id: '8086:a36d', class: 0x0c0330, pcie: null, driver: 'xhci_hcd', group },
  { addr: '00:14.2', id: '8086:a36f', class: 0x050000, pcie: null, group },
];

/** Intel desktop: iGPU boots the console, NVIDIA Turing (VGA + HDMI audio + USB-C xHCI + UCSI) in the PEG slot. */
export const desktopNvidia: FakeHost = {
  cpu: { vendor: 'intel', threads: 8 },
  iommu: 'intel',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet intel_iommu=on iommu=pt',
  files: { '/etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' },
  pci: [
    { addr: '00:00.0', id: '8086:3e30', class: 0x060000, pcie: null, driver: 'skl_uncore', group: 0 },
    { addr: '00:01.0', id: '8086:1901', class: 0x060400, pcie: 'root-port', acs: null, driver: 'pcieport', group: 1 },
    { addr: '01:00.0', id: '10de:1f08', class: 0x030000, subsys: '1458:3fc2', parent: '00:01.0', driver: 'nvidia', group: 1, rom: true, flr: false, resetMethod: 'bus', numaNode: -1, localCpus: '0-7', link: { speed: '8.0 GT/s PCIe', width: 16 } },
    { addr: '01:00.1', id: '10de:10f9', class: 0x040300, subsys: '1458:3fc2', parent: '00:01.0', driver: 'snd_hda_intel', group: 1 },
    { addr: '01:00.2', id: '10de:1ad8', class: 0x0c0330, subsys: '1458:3fc2', parent: '00:01.0', driver: 'xhci_hcd', group: 1 },
    { addr: '01:00.3', id: '10de:1ad9', class: 0x0c8000, subsys: '1458:3fc2', parent: '00:01.0', driver: 'nvidia-gpu', group: 1 },
    { addr: '00:02.0', id: '8086:3e92', class: 0x030000, pcie: 'rc-integrated-endpoint', driver: 'i915', bootVga: true, group: 2 },
    ...intelPch(3),
    { addr: '00:17.0', id: '8086:a352', class: 0x010601, pcie: null, driver: 'ahci', group: 4 },
    { addr: '00:1b.0', id: '8086:a340', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 5 },
    { addr: '02:00.0', id: '144d:a808', class: 0x010802, parent: '00:1b.0', driver: 'nvme', group: 7, flr: true },
    { addr: '00:1f.0', id: '8086:a305', class: 0x060100, pcie: null, group: 6 },
    { addr: '00:1f.3', id: '8086:a348', class: 0x040300, pcie: null, driver: 'snd_hda_intel', group: 6 },
    { addr: '00:1f.4', id: '8086:a323', class: 0x0c0500, pcie: null, driver: 'i801_smbus', group: 6 },
    { addr: '00:1f.6', id: '8086:15bc', class: 0x020000, pcie: null, driver: 'e1000e', group: 6 },
  ],
  // Root on the NVMe drive's second partition, the default route on the onboard NIC.
  blocks: [{ name: 'nvme0n1', dev: '259:0', pci: '02:00.0', parts: { nvme0n1p1: '259:1', nvme0n1p2: '259:2' } }],
  rootMount: { source: '/dev/nvme0n1p2' },
  nets: [{ name: 'eno1', pci: '00:1f.6' }],
  defaultRoutes: [{ iface: 'eno1' }],
};

/** AMD desktop whose GPP root ports have ACS turned off in firmware: everything behind them shares one group. */
export const amdNoAcs: FakeHost = {
  cpu: { vendor: 'amd', threads: 32, model: 'AMD Ryzen 9 5950X 16-Core Processor' },
  iommu: 'amd',
  cmdline: 'BOOT_IMAGE=/vmlinuz-linux root=UUID=0b7c5e0e-1111-2222-3333-444455556666 rw amd_iommu=on iommu=pt',
  release: '6.6.10-arch1-1',
  files: { '/etc/os-release': 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\n' },
  pci: [
    { addr: '00:00.0', id: '1022:1480', class: 0x060000, pcie: null, group: 0 },
    // The AMD IOMMU itself is a PCI function without a group.
    { addr: '00:00.2', id: '1022:1481', class: 0x080600, pcie: 'rc-integrated-endpoint' },
    { addr: '00:01.0', id: '1022:1482', class: 0x060000, pcie: null, group: 1 },
    { addr: '00:01.1', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'off', driver: 'pcieport', group: 1 },
    { addr: '00:01.2', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: null, driver: 'pcieport', group: 1 },
    { addr: '01:00.0', id: '144d:a808', class: 0x010802, parent: '00:01.1', driver: 'nvme', group: 1 },
    { addr: '02:00.0', id: '1002:73bf', class: 0x030000, subsys: '1002:0e3a', parent: '00:01.2', driver: 'amdgpu', bootVga: true, group: 1, rom: true, resetMethod: 'bus' },
    { addr: '02:00.1', id: '1002:ab28', class: 0x040300, parent: '00:01.2', driver: 'snd_hda_intel', group: 1 },
    { addr: '00:08.0', id: '1022:1482', class: 0x060000, pcie: null, group: 2 },
    { addr: '00:08.1', id: '1022:1484', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 3 },
    { addr: '03:00.3', id: '1022:149c', class: 0x0c0330, parent: '00:08.1', driver: 'xhci_hcd', group: 4 },
  ],
};

/** Server: PCIe switch with ACS, Tesla-class 3D controller, SR-IOV NIC with VFs, BMC VGA behind a PCIe-to-PCI bridge. */
export const serverSwitchSriov: FakeHost = {
  cpu: { vendor: 'intel', threads: 16, model: 'Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz' },
  // Two sockets, 8 CPUs each (no SMT): node 0 = CPUs 0-7, node 1 = CPUs 8-15.
  cpus: {
    cpus: Array.from({ length: 16 }, (_, id) => ({
      id,
      core: id % 8,
      package: id < 8 ? 0 : 1,
      siblings: [id],
      l3: Array.from({ length: 8 }, (_, k) => (id < 8 ? k : 8 + k)),
      node: id < 8 ? 0 : 1,
    })),
  },
  iommu: 'intel',
  cmdline: 'BOOT_IMAGE=/vmlinuz-5.14.0-362.el9.x86_64 root=/dev/mapper/rhel-root ro intel_iommu=on',
  release: '5.14.0-362.el9.x86_64',
  files: { '/etc/os-release': 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"\n' },
  pci: [
    { addr: '00:00.0', id: '8086:2020', class: 0x060000, pcie: 'root-port', acs: 'full', group: 0 },
    { addr: '00:03.0', id: '8086:2032', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 1 },
    { addr: '01:00.0', id: '10b5:8747', class: 0x060400, pcie: 'upstream-port', parent: '00:03.0', driver: 'pcieport', group: 2 },
    { addr: '02:08.0', id: '10b5:8747', class: 0x060400, pcie: 'downstream-port', acs: 'full', parent: '01:00.0', driver: 'pcieport', group: 3 },
    { addr: '02:10.0', id: '10b5:8747', class: 0x060400, pcie: 'downstream-port', acs: 'full', parent: '01:00.0', driver: 'pcieport', group: 4 },
    { addr: '03:00.0', id: '10de:1db4', class: 0x030200, parent: '02:08.0', driver: 'nvidia', group: 5, numaNode: 1, localCpus: '8-15', flr: true, resetMethod: 'flr bus' },
    { addr: '04:00.0', id: '8086:1572', class: 0x020000, parent: '02:10.0', driver: 'i40e', group: 6, acs: 'full', sriovTotal: 64, flr: true, numaNode: 1, localCpus: '8-15' },
    { addr: '04:00.1', id: '8086:1572', class: 0x020000, parent: '02:10.0', driver: 'i40e', group: 7, acs: 'full', flr: true },
    { addr: '04:02.0', id: '8086:154c', class: 0x020000, parent: '02:10.0', driver: 'iavf', group: 8, physfn: '04:00.0', flr: true },
    { addr: '04:02.1', id: '8086:154c', class: 0x020000, parent: '02:10.0', driver: 'vfio-pci', group: 9, physfn: '04:00.0', flr: true },
    { addr: '00:1c.0', id: '8086:a190', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 10 },
    { addr: '05:00.0', id: '1a03:1150', class: 0x060400, pcie: 'pcie-to-pci-bridge', parent: '00:1c.0', group: 11 },
    { addr: '06:00.0', id: '1a03:2000', class: 0x030000, pcie: null, parent: '05:00.0', driver: 'ast', bootVga: true, group: 11 },
  ],
};

/** Laptop: Intel iGPU drives the panel, NVIDIA dGPU is a 3D controller behind a PEG port without ACS. */
export const laptop3dController: FakeHost = {
  cpu: { vendor: 'intel', threads: 12, model: 'Intel(R) Core(TM) i7-10750H CPU @ 2.60GHz' },
  iommu: 'intel',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.5.0-14-generic root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet splash intel_iommu=on',
  release: '6.5.0-14-generic',
  vfioModules: 'builtin',
  files: { '/etc/os-release': 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="23.10"\nPRETTY_NAME="Ubuntu 23.10"\n' },
  pci: [
    { addr: '00:00.0', id: '8086:9b54', class: 0x060000, pcie: null, group: 0 },
    { addr: '00:01.0', id: '8086:1901', class: 0x060400, pcie: 'root-port', acs: null, driver: 'pcieport', group: 1 },
    { addr: '01:00.0', id: '10de:1f95', class: 0x030200, parent: '00:01.0', driver: 'nvidia', group: 1, resetMethod: 'bus' },
    { addr: '01:00.1', id: '10de:10fa', class: 0x040300, parent: '00:01.0', driver: 'snd_hda_intel', group: 1 },
    { addr: '00:02.0', id: '8086:9bc4', class: 0x030000, pcie: 'rc-integrated-endpoint', driver: 'i915', bootVga: true, group: 2 },
    { addr: '00:1d.0', id: '8086:9d18', class: 0x060400, pcie: 'root-port', acs: { cap: 0x1f, ctrl: 0 }, driver: 'pcieport', group: 3 },
    { addr: '02:00.0', id: '144d:a808', class: 0x010802, parent: '00:1d.0', driver: 'nvme', group: 4 },
  ],
};

/** Desktop with the IOMMU off (no intel_iommu=on on an older kernel). */
export const iommuOff: FakeHost = {
  cpu: { vendor: 'intel', threads: 8 },
  iommu: null,
  interrupts: 'no-ir',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-5.15.0-91-generic root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet splash',
  release: '5.15.0-91-generic',
  files: { '/etc/os-release': 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.3 LTS"\n' },
  pci: [
    { addr: '00:00.0', id: '8086:3e30', class: 0x060000, pcie: null },
    { addr: '00:01.0', id: '8086:1901', class: 0x060400, pcie: 'root-port', driver: 'pcieport' },
    { addr: '01:00.0', id: '10de:2204', class: 0x030000, parent: '00:01.0', driver: 'nvidia', bootVga: true },
    { addr: '01:00.1', id: '10de:1aef', class: 0x040300, parent: '00:01.0', driver: 'snd_hda_intel' },
  ],
};

/** Two identical RTX 3090s behind root ports with ACS: one drives the host, one goes to the VM. */
export const twinGpus: FakeHost = {
  cpu: { vendor: 'amd', threads: 24, model: 'AMD Ryzen Threadripper 3960X 24-Core Processor' },
  iommu: 'amd',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet iommu=pt',
  files: { '/etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' },
  pci: [
    { addr: '00:00.0', id: '1022:1480', class: 0x060000, pcie: null, group: 0 },
    { addr: '00:03.1', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 1 },
    { addr: '00:03.2', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 2 },
    { addr: '0a:00.0', id: '10de:2204', class: 0x030000, subsys: '3842:3987', parent: '00:03.1', driver: 'nvidia', bootVga: true, group: 3, rom: true },
    { addr: '0a:00.1', id: '10de:1aef', class: 0x040300, subsys: '3842:3987', parent: '00:03.1', driver: 'snd_hda_intel', group: 3 },
    { addr: '0b:00.0', id: '10de:2204', class: 0x030000, subsys: '3842:3987', parent: '00:03.2', driver: 'nvidia', group: 4, rom: true },
    { addr: '0b:00.1', id: '10de:1aef', class: 0x040300, subsys: '3842:3987', parent: '00:03.2', driver: 'snd_hda_intel', group: 4 },
  ],
};

export const FIXTURE_HOSTS: Record<string, FakeHost> = {
  'desktop-nvidia': desktopNvidia,
  'amd-no-acs': amdNoAcs,
  'server-switch-sriov': serverSwitchSriov,
  'laptop-3d-controller': laptop3dController,
  'iommu-off': iommuOff,
  'twin-gpus': twinGpus,
};
