// Builds fake host trees laid out exactly like the kernel's sysfs: real
// directories under sys/devices/pciDDDD:BB/…, relative symlinks for
// bus/pci/devices, driver, iommu_group and the group's devices/ entries,
// binary `config` files with capability lists, and the /proc files vfiokit
// reads. Declared from compact rows (after libvirt's MAKE_PCI_DEVICE).
//
// Kernel IOMMU groups are data in the description (`group`), never computed
// by vfiokit's own predictor: fixture groups must stay independent of the
// code under test.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PCIE_TYPE_CODES, type PcieType } from '../../src/model/config-space.js';
import { parsePciAddress, pciAddressParts, slotOf } from '../../src/model/pci-address.js';

export interface FakePci {
  addr: string;
  /** vendor:device, hex. */
  id: string;
  /** 24-bit class code, e.g. 0x030000. */
  class: number;
  subsys?: string;
  rev?: number;
  /** Upstream bridge address; omitted = on the root bus. */
  parent?: string;
  /** PCIe port type; null = conventional PCI (no PCIe capability). Default: root-port / downstream-port for bridges by position, endpoint otherwise. */
  pcie?: PcieType | null;
  /** ACS capability: 'full' = implemented and enabled (cap 0x5f ctrl 0x1d); 'off' = implemented, disabled. */
  acs?: { cap: number; ctrl: number } | 'full' | 'off' | null;
  flr?: boolean;
  /** Header-type bit 7 on function 0; default: set when the slot has other functions. */
  multifunction?: boolean;
  driver?: string | null;
  driverOverride?: string | null;
  /** The kernel's group for this function (omit when the IOMMU is off). */
  group?: number;
  bootVga?: boolean;
  numaNode?: number;
  localCpus?: string;
  resetMethod?: string;
  /** A ROM BAR (`rom` attribute and the ROM line of `resource`): true = 512 KiB; shadowed = the boot display's shadow copy at 0xC0000. */
  rom?: boolean | { size?: number; shadowed?: boolean };
  link?: { speed: string; width: number; maxSpeed?: string; maxWidth?: number };
  sriovTotal?: number;
  physfn?: string;
  /** Device serial number capability (for redaction tests). */
  dsn?: bigint;
  /** 'full' (4096/256 bytes, as root), 'short' (64 bytes, non-root) or 'none'. */
  config?: 'full' | 'short' | 'none';
}

export interface FakeHost {
  pci: FakePci[];
  cpu?: { vendor: 'intel' | 'amd'; flags?: string[]; threads?: number; model?: string };
  iommu?: 'intel' | 'amd' | null;
  /** Intel ecap value (hex) for dmar0. */
  ecap?: string;
  cmdline?: string;
  release?: string;
  /** Module files under /lib/modules/<release>. Default: vfio modular (6.x layout). */
  vfioModules?: 'module' | 'builtin' | 'none';
  interrupts?: 'ir' | 'no-ir' | 'none';
  kvm?: boolean;
  efi?: boolean;
  ovmf?: boolean;
  libvirt?: boolean;
  hugepages?: { sizeKb: number; total: number; free: number; surplus?: number }[];
  /** Per-node pools (nodeN/hugepages); default: the global pools on the first node, none on the others. */
  hugepageNodes?: Record<number, { sizeKb: number; total: number; free: number; surplus?: number }[]>;
  /** Content of /usr/share/misc/pci.ids; false = none. Default: a small table. */
  pciIds?: string | false;
  /** Extra files: host path → content. */
  files?: Record<string, string>;
  /** Executables to create (empty files, mode 0755), e.g. /usr/sbin/update-grub. */
  execs?: string[];
  /** Host driver modules present for the running kernel (module names, e.g. nvidia). */
  hostModules?: string[];
  /** Other installed kernels (releases) with modular vfio. */
  extraKernels?: string[];
  /** systemd-boot's LoaderInfo EFI variable text. */
  loaderInfo?: string;
  /** /proc/stat btime (seconds since the epoch). */
  bootTime?: number;
  /** Extra symlinks: host path → target. */
  links?: Record<string, string>;
  /** CPU topology files. Default: `cpu.threads` CPUs, one thread per core, one package, node and L3. */
  cpus?: FakeCpus;
  /** /proc/meminfo. Default: 16 GiB, 2 MiB default huge page size. */
  memory?: { totalKb: number; hugepageSizeKb?: number; availableKb?: number; nodeFreeKb?: Record<number, number> };
  /** Block devices, laid out under /sys/devices as the kernel does (with /sys/class/block, /sys/block, /sys/dev/block links). */
  blocks?: FakeBlock[];
  /** The root mount (/proc/self/mountinfo and /proc/mounts). `dev` is mountinfo's major:minor (default: the source's block device; null = no mountinfo, only /proc/mounts). */
  rootMount?: { source: string; fstype?: string; dev?: string | null };
  /** More mounts after the root's, in /proc/mounts and /proc/self/mountinfo (fields escaped as the kernel does). `dev` defaults to the source's block device. */
  mounts?: { source: string; target: string; fstype?: string; dev?: string }[];
  /** /etc/fstab, verbatim. */
  fstab?: string;
  /** Active swap areas (/proc/swaps). */
  swaps?: { filename: string; type: 'partition' | 'file' }[];
  /** Network interfaces: physical ones under their PCI function, bridges, bonds and VLANs under /sys/devices/virtual/net. */
  nets?: FakeNet[];
  /** Interfaces holding a default route: /proc/net/route (and /proc/net/ipv6_route with `v6`). Omitted = no route files. */
  defaultRoutes?: { iface: string; v6?: boolean }[];
}

/** One block device as the kernel lays it out. */
export interface FakeBlock {
  /** Kernel name: sda, nvme0n1, vda, dm-0, md0. */
  name: string;
  /** major:minor. */
  dev: string;
  /** The PCI function of a disk's controller (omitted: a virtual device under /sys/devices/virtual/block). */
  pci?: string;
  /** How the disk hangs below its controller. Default: from the name (nvme…, vd…, else ata). */
  transport?: 'nvme' | 'ata' | 'virtio' | 'usb';
  /** Partitions: kernel name → major:minor. */
  parts?: Record<string, string>;
  /** Stacked devices (dm-*, md*): the block devices (disks or partitions) below, by kernel name. */
  slaves?: string[];
  /** device-mapper name (dm/name), e.g. vg-root; udev's /dev/mapper/NAME link is made too. */
  dmName?: string;
  /** Native NVMe multipath head: the controllers' path devices (nvme0c0n1…) are listed in multipath/. */
  multipath?: { name: string; pci: string }[];
}

/** One network interface as the kernel lays it out. */
export interface FakeNet {
  name: string;
  /** PCI function of a physical NIC (for a USB NIC: its xHCI controller, with `usb`). */
  pci?: string;
  /** The `address` attribute. Default 52:54:00:12:34:56. */
  mac?: string;
  usb?: boolean;
  /** Bridge ports (brif/, lower_*). */
  bridge?: string[];
  /** Bond slaves (bonding/slaves, lower_*). */
  bond?: string[];
  /** VLAN/macvlan lower device (lower_*). */
  lower?: string;
  /** Leave out the lower_* links (kernels before 3.x had only brif/ and bonding/slaves). */
  noLowerLinks?: boolean;
}

/** One logical CPU as the kernel describes it under /sys/devices/system/cpu/cpuN. */
export interface FakeCpu {
  id: number;
  /** core_id (unique within a package only). */
  core: number;
  package?: number;
  die?: number;
  /** core_cpus_list / thread_siblings_list: this CPU and its SMT siblings. */
  siblings: number[];
  /** shared_cpu_list of cache/index3 (L3); omitted = no L3. */
  l3?: number[];
  /** NUMA node; default 0. */
  node?: number;
  /** false = offline (no topology/ or cache/ directory, `online` reads 0). */
  online?: boolean;
}

export interface FakeCpus {
  cpus: FakeCpu[];
  /** Hybrid PMUs: /sys/devices/cpu_core/cpus and /sys/devices/cpu_atom/cpus. */
  hybrid?: { core: number[]; atom: number[] };
}

/** The kernel's cpulist format ("0-7,16-23"), written independently of the code under test. */
export function fakeCpuList(ids: number[]): string {
  const s = [...ids].sort((a, b) => a - b);
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The kernel's cpumask format (%*pb): 32-bit hex words, most significant first, the first trimmed to nr_cpu_ids. */
function fakeCpuMask(ids: number[], nrCpus: number): string {
  const words = Math.ceil(nrCpus / 32);
  const parts: string[] = [];
  for (let w = words - 1; w >= 0; w--) {
    let v = 0;
    for (const id of ids) if (id >= w * 32 && id < w * 32 + 32) v += 2 ** (id - w * 32);
    const bits = w === words - 1 ? nrCpus - w * 32 : 32;
    parts.push(v.toString(16).padStart(Math.ceil(bits / 4), '0'));
  }
  return parts.join(',');
}

function writeCpuTopology(dir: string, spec: FakeCpus): void {
  const nr = Math.max(...spec.cpus.map((c) => c.id)) + 1;
  const all = spec.cpus.map((c) => c.id);
  const online = spec.cpus.filter((c) => c.online !== false).map((c) => c.id);
  const base = '/sys/devices/system/cpu';
  write(dir, `${base}/online`, `${fakeCpuList(online)}\n`);
  write(dir, `${base}/possible`, `${fakeCpuList(all)}\n`);
  write(dir, `${base}/present`, `${fakeCpuList(all)}\n`);
  write(dir, `${base}/offline`, `${fakeCpuList(all.filter((c) => !online.includes(c)))}\n`);
  const nodes = new Map<number, number[]>();
  for (const c of spec.cpus) if (c.online !== false) nodes.set(c.node ?? 0, [...(nodes.get(c.node ?? 0) ?? []), c.id]);
  for (const c of spec.cpus) {
    const d = `${base}/cpu${c.id}`;
    if (c.id !== 0) write(dir, `${d}/online`, c.online === false ? '0\n' : '1\n');
    else fs.mkdirSync(path.join(dir, d), { recursive: true });
    if (c.online === false) continue;
    const pkg = c.package ?? 0;
    const pkgCpus = spec.cpus.filter((x) => (x.package ?? 0) === pkg && x.online !== false).map((x) => x.id);
    const dieCpus = spec.cpus.filter((x) => (x.package ?? 0) === pkg && (x.die ?? 0) === (c.die ?? 0) && x.online !== false).map((x) => x.id);
    const t = `${d}/topology`;
    const attrs: Record<string, string> = {
      physical_package_id: String(pkg),
      die_id: String(c.die ?? 0),
      core_id: String(c.core),
      cluster_id: String(c.core),
      core_cpus_list: fakeCpuList(c.siblings),
      core_cpus: fakeCpuMask(c.siblings, nr),
      thread_siblings_list: fakeCpuList(c.siblings),
      thread_siblings: fakeCpuMask(c.siblings, nr),
      cluster_cpus_list: fakeCpuList(c.siblings),
      cluster_cpus: fakeCpuMask(c.siblings, nr),
      die_cpus_list: fakeCpuList(dieCpus),
      die_cpus: fakeCpuMask(dieCpus, nr),
      package_cpus_list: fakeCpuList(pkgCpus),
      package_cpus: fakeCpuMask(pkgCpus, nr),
      core_siblings_list: fakeCpuList(pkgCpus),
      core_siblings: fakeCpuMask(pkgCpus, nr),
    };
    for (const [k, v] of Object.entries(attrs)) write(dir, `${t}/${k}`, `${v}\n`);
    const caches: { level: number; type: string; size: string; shared: number[] }[] = [
      { level: 1, type: 'Data', size: '32K', shared: c.siblings },
      { level: 1, type: 'Instruction', size: '32K', shared: c.siblings },
      { level: 2, type: 'Unified', size: '512K', shared: c.siblings },
    ];
    if (c.l3) caches.push({ level: 3, type: 'Unified', size: '32768K', shared: c.l3 });
    caches.forEach((k, i) => {
      const cd = `${d}/cache/index${i}`;
      write(dir, `${cd}/level`, `${k.level}\n`);
      write(dir, `${cd}/type`, `${k.type}\n`);
      write(dir, `${cd}/size`, `${k.size}\n`);
      write(dir, `${cd}/shared_cpu_list`, `${fakeCpuList(k.shared)}\n`);
      write(dir, `${cd}/shared_cpu_map`, `${fakeCpuMask(k.shared, nr)}\n`);
      write(dir, `${cd}/coherency_line_size`, '64\n');
      write(dir, `${cd}/id`, `${k.level === 3 ? Math.min(...k.shared) : c.core}\n`);
    });
    link(dir, `${d}/node${c.node ?? 0}`, `/sys/devices/system/node/node${c.node ?? 0}`);
  }
  const nodeIds = [...nodes.keys()].sort((a, b) => a - b);
  write(dir, '/sys/devices/system/node/online', `${fakeCpuList(nodeIds)}\n`);
  write(dir, '/sys/devices/system/node/possible', `${fakeCpuList(nodeIds)}\n`);
  for (const [n, cpus] of nodes) {
    write(dir, `/sys/devices/system/node/node${n}/cpulist`, `${fakeCpuList(cpus)}\n`);
    write(dir, `/sys/devices/system/node/node${n}/cpumap`, `${fakeCpuMask(cpus, nr)}\n`);
  }
  if (spec.hybrid) {
    write(dir, '/sys/devices/cpu_core/cpus', `${fakeCpuList(spec.hybrid.core)}\n`);
    write(dir, '/sys/devices/cpu_atom/cpus', `${fakeCpuList(spec.hybrid.atom)}\n`);
  }
}

const DEFAULT_PCI_IDS = `# minimal pci.ids for tests
8086  Intel Corporation
\t1901  6th-10th Gen Core Processor PCIe Controller (x16)
\t3e30  8th Gen Core 8-core Desktop Processor Host Bridge/DRAM Registers [Coffee Lake S]
\t3e92  CoffeeLake-S GT2 [UHD Graphics 630]
\ta36d  Cannon Lake PCH USB 3.1 xHCI Host Controller
\t15bc  Ethernet Connection (7) I219-V
10de  NVIDIA Corporation
\t2204  GA102 [GeForce RTX 3090]
\t1aef  GA102 High Definition Audio Controller
\t1ad8  TU106 USB 3.1 Host Controller
\t1ad9  TU106 USB Type-C UCSI Controller
\t1f08  TU106 [GeForce RTX 2060 Rev. A]
\t10f9  TU106 High Definition Audio Controller
\t1f95  TU117M [GeForce GTX 1650 Ti Mobile]
1002  Advanced Micro Devices, Inc. [AMD/ATI]
\t73bf  Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]
\tab28  Navi 21/23 HDMI/DP Audio Controller
1022  Advanced Micro Devices, Inc. [AMD]
\t1483  Starship/Matisse GPP Bridge
\t1482  Starship/Matisse PCIe Dummy Host Bridge
\t43ee  500 Series Chipset USB 3.1 XHCI Controller
\t43e9  500 Series Chipset Switch Upstream Port
\t43eb  500 Series Chipset SATA Controller
144d  Samsung Electronics Co Ltd
\ta808  NVMe SSD Controller SM981/PM981/PM983
C 03  Display controller
\t00  VGA compatible controller
\t02  3D controller
C 04  Multimedia controller
\t03  Audio device
C 06  Bridge
\t00  Host bridge
\t04  PCI bridge
C 0c  Serial bus controller
\t03  USB controller
`;

/** Driver name → module name where they differ; null = built into the kernel. */
const DRIVER_MODULES: Record<string, string | null> = {
  xhci_hcd: 'xhci_pci',
  'nvidia-gpu': 'i2c_nvidia_gpu',
  'bochs-drm': 'bochs',
  pcieport: null,
  skl_uncore: null,
  ahci: 'ahci',
};

const hexs = (n: number, w: number) => n.toString(16).padStart(w, '0');

/** A PCI driver's sysfs directory with the write-only files every driver has. */
export function driverDir(root: string, name: string): void {
  const d = path.join(root, `/sys/bus/pci/drivers/${name}`);
  fs.mkdirSync(d, { recursive: true });
  for (const f of ['bind', 'unbind', 'new_id', 'remove_id', 'uevent']) if (!fs.existsSync(path.join(d, f))) fs.writeFileSync(path.join(d, f), '', { mode: 0o200 });
}

function buildConfig(d: FakePci, pcie: PcieType | null, isBridge: boolean, mf: boolean, secondary: number | null, subordinate: number | null, primary: number): Buffer {
  const size = pcie ? 4096 : 256;
  const b = Buffer.alloc(size);
  const [v, dev] = d.id.split(':').map((x) => parseInt(x, 16));
  b.writeUInt16LE(v, 0);
  b.writeUInt16LE(dev, 2);
  b.writeUInt16LE(0x0007, 4);
  b.writeUInt16LE(0x0010, 6); // capability list present
  b[8] = d.rev ?? 0;
  b[9] = d.class & 0xff;
  b[10] = (d.class >> 8) & 0xff;
  b[11] = (d.class >> 16) & 0xff;
  b[0x0e] = (isBridge ? 1 : 0) | (mf ? 0x80 : 0);
  if (isBridge) {
    b[0x18] = primary;
    b[0x19] = secondary ?? 0;
    b[0x1a] = subordinate ?? 0;
  } else if (d.subsys) {
    const [sv, sd] = d.subsys.split(':').map((x) => parseInt(x, 16));
    b.writeUInt16LE(sv, 0x2c);
    b.writeUInt16LE(sd, 0x2e);
  }
  b[0x34] = 0x40;
  // 0x40: power management → 0x50
  b[0x40] = 0x01;
  b[0x41] = pcie ? 0x50 : 0x00;
  b.writeUInt16LE(0x0003, 0x42);
  if (pcie) {
    b[0x50] = 0x10;
    b[0x51] = 0x00;
    b.writeUInt16LE((PCIE_TYPE_CODES[pcie] << 4) | 0x2, 0x52);
    b.writeUInt32LE(d.flr ? 0x10008000 : 0x00008000, 0x54);
    const speedCode = (t: string) => ({ '2.5': 1, '5.0': 2, '8.0': 3, '16.0': 4, '32.0': 5, '64.0': 6 })[t.split(' ')[0]] ?? 3;
    const link = d.link ?? { speed: '8.0 GT/s PCIe', width: 16 };
    b.writeUInt32LE(speedCode(link.maxSpeed ?? link.speed) | ((link.maxWidth ?? link.width) << 4), 0x5c);
    b.writeUInt16LE(speedCode(link.speed) | (link.width << 4), 0x62);
    // Extended capabilities from 0x100: AER, then ACS, DSN and SR-IOV.
    const ext: { id: number; body: (o: number) => void }[] = [{ id: 0x0001, body: () => {} }];
    const acs = d.acs === 'full' ? { cap: 0x5f, ctrl: 0x1d } : d.acs === 'off' ? { cap: 0x5f, ctrl: 0 } : d.acs ?? null;
    if (acs) ext.push({ id: 0x000d, body: (o) => { b.writeUInt16LE(acs.cap, o + 4); b.writeUInt16LE(acs.ctrl, o + 6); } });
    if (d.dsn !== undefined) ext.push({ id: 0x0003, body: (o) => b.writeBigUInt64LE(d.dsn!, o + 4) });
    // A PF carries the SR-IOV capability (TotalVFs at +0x0e).
    if (d.sriovTotal !== undefined) ext.push({ id: 0x0010, body: (o) => b.writeUInt16LE(d.sriovTotal!, o + 0x0e) });
    let off = 0x100;
    ext.forEach((e, i) => {
      const next = i + 1 < ext.length ? off + 0x40 : 0;
      b.writeUInt32LE(((e.id | (1 << 16)) | (next << 20)) >>> 0, off);
      e.body(off);
      off = next;
    });
  }
  return b;
}

function write(root: string, hostPath: string, content: string | Buffer, mode?: number): void {
  const p = path.join(root, hostPath);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content, mode !== undefined ? { mode } : undefined);
}

function link(root: string, hostPath: string, targetHostPath: string): void {
  const p = path.join(root, hostPath);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.symlinkSync(path.posix.relative(path.posix.dirname(hostPath), targetHostPath), p);
}

/** A `resource` file as the kernel prints it (resource_show): 13 "start end flags" lines, the ROM BAR on line 7. */
function resourceFile(rom: { size?: number; shadowed?: boolean }): string {
  const h = (n: bigint) => `0x${n.toString(16).padStart(16, '0')}`;
  const lines = Array.from({ length: 13 }, () => `${h(0n)} ${h(0n)} ${h(0n)}`);
  lines[0] = `${h(0xf6000000n)} ${h(0xf6ffffffn)} ${h(0x40200n)}`;
  if (rom.shadowed) lines[6] = `${h(0xc0000n)} ${h(0xdffffn)} ${h(0x0212n)}`;
  else {
    const size = BigInt(rom.size ?? 0x80000);
    lines[6] = size ? `${h(0xf7000000n)} ${h(0xf7000000n + size - 1n)} ${h(0x46200n)}` : `${h(0n)} ${h(0n)} ${h(0x46200n)}`;
  }
  return lines.join('\n') + '\n';
}

export function makeTempDir(prefix = 'vfiokit-host-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Block devices, partitions, stacked devices and the root mount, as the kernel lays them out. */
function writeBlocks(dir: string, host: FakeHost, pciPath: (addr: string) => string): void {
  const where = new Map<string, string>();
  for (const b of host.blocks ?? []) {
    const transport = b.transport ?? (b.name.startsWith('nvme') ? 'nvme' : b.name.startsWith('vd') ? 'virtio' : 'ata');
    let d: string;
    if (b.multipath) d = `/sys/devices/virtual/nvme-subsystem/nvme-subsys0/${b.name}`;
    else if (!b.pci) d = `/sys/devices/virtual/block/${b.name}`;
    else {
      const p = pciPath(parsePciAddress(b.pci)!);
      const ctrl = /^(nvme\d+)/.exec(b.name)?.[1] ?? 'nvme0';
      d =
        transport === 'nvme' ? `${p}/nvme/${ctrl}/${b.name}`
        : transport === 'virtio' ? `${p}/virtio2/block/${b.name}`
        : transport === 'usb' ? `${p}/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/${b.name}`
        : `${p}/ata1/host0/target0:0:0/0:0:0:0/block/${b.name}`;
    }
    where.set(b.name, d);
    write(dir, `${d}/dev`, `${b.dev}\n`);
    write(dir, `${d}/size`, '1953525168\n');
    link(dir, `/sys/class/block/${b.name}`, d);
    link(dir, `/sys/block/${b.name}`, d);
    link(dir, `/sys/dev/block/${b.dev}`, d);
    for (const [part, dev] of Object.entries(b.parts ?? {})) {
      where.set(part, `${d}/${part}`);
      write(dir, `${d}/${part}/partition`, `${part.replace(/^.*?(\d+)$/, '$1')}\n`);
      write(dir, `${d}/${part}/dev`, `${dev}\n`);
      link(dir, `/sys/class/block/${part}`, `${d}/${part}`);
      link(dir, `/sys/dev/block/${dev}`, `${d}/${part}`);
    }
    if (b.dmName) {
      write(dir, `${d}/dm/name`, `${b.dmName}\n`);
      write(dir, `${d}/dm/uuid`, `LVM-${b.dmName}\n`);
      fs.mkdirSync(path.join(dir, '/dev/mapper'), { recursive: true });
      fs.symlinkSync(`../${b.name}`, path.join(dir, `/dev/mapper/${b.dmName}`));
    }
    if (b.name.startsWith('md')) write(dir, `${d}/md/level`, 'raid1\n');
    if (b.slaves) fs.mkdirSync(path.join(dir, `${d}/slaves`), { recursive: true });
    fs.mkdirSync(path.join(dir, `${d}/holders`), { recursive: true });
    for (const [i, m] of (b.multipath ?? []).entries()) {
      const pathDev = `${m.name}`;
      const pd = `${pciPath(parsePciAddress(m.pci)!)}/nvme/nvme${i}/${pathDev}`;
      write(dir, `${pd}/dev`, `259:${100 + i}\n`);
      link(dir, `${d}/multipath/${pathDev}`, pd);
    }
  }
  // Stacked devices' slaves/ and their holders/, once every device's place is known.
  for (const b of host.blocks ?? []) {
    for (const sl of b.slaves ?? []) {
      const target = where.get(sl);
      if (!target) throw new Error(`fake host: ${b.name} has an unknown slave ${sl}`);
      link(dir, `${where.get(b.name)}/slaves/${sl}`, target);
      link(dir, `${target}/holders/${b.name}`, where.get(b.name)!);
    }
  }
  const devOf = (source: string): string | undefined => {
    const name = source.startsWith('/dev/mapper/') ? host.blocks?.find((b) => b.dmName === source.slice('/dev/mapper/'.length))?.name : path.posix.basename(source);
    return (host.blocks ?? []).flatMap((b) => [[b.name, b.dev], ...Object.entries(b.parts ?? {})]).find(([n]) => n === name)?.[1];
  };
  // The kernel's mangle(): space, tab, newline and backslash as octal escapes.
  const mangle = (s: string) => s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  let mounts = '';
  let info = '';
  if (host.rootMount) {
    const m = host.rootMount;
    const fstype = m.fstype ?? 'ext4';
    const dev = m.dev !== undefined ? m.dev : (devOf(m.source) ?? '0:30');
    mounts = `sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n${m.source} / ${fstype} rw,relatime 0 0\n`;
    if (dev !== null)
      info = `22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n23 28 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n28 1 ${dev} / / rw,relatime shared:1 - ${fstype} ${m.source} rw,errors=remount-ro\n`;
  }
  for (const [i, m] of (host.mounts ?? []).entries()) {
    const fstype = m.fstype ?? 'ext4';
    mounts += `${mangle(m.source)} ${mangle(m.target)} ${fstype} rw,relatime 0 0\n`;
    if (info) info += `${40 + i} 28 ${m.dev ?? devOf(m.source) ?? `0:${60 + i}`} / ${mangle(m.target)} rw,relatime shared:${20 + i} - ${fstype} ${mangle(m.source)} rw\n`;
  }
  if (mounts) write(dir, '/proc/mounts', mounts);
  if (info) write(dir, '/proc/self/mountinfo', info);
  if (host.fstab !== undefined) write(dir, '/etc/fstab', host.fstab);
  if (host.swaps) write(dir, '/proc/swaps', `Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n${host.swaps.map((w) => `${mangle(w.filename).padEnd(40)}${w.type}\t8388604\t\t0\t\t-2`).join('\n')}\n`);
}

/** Network interfaces (physical under their PCI function, virtual ones with their lower devices) and the route tables. */
function writeNets(dir: string, host: FakeHost, pciPath: (addr: string) => string): void {
  const where = new Map<string, string>();
  for (const n of host.nets ?? []) {
    const p = n.pci ? pciPath(parsePciAddress(n.pci)!) : null;
    const d = p ? (n.usb ? `${p}/usb2/2-3/2-3:1.0/net/${n.name}` : `${p}/net/${n.name}`) : `/sys/devices/virtual/net/${n.name}`;
    where.set(n.name, d);
    write(dir, `${d}/address`, `${n.mac ?? '52:54:00:12:34:56'}\n`);
    write(dir, `${d}/operstate`, 'up\n');
    link(dir, `/sys/class/net/${n.name}`, d);
    if (p) link(dir, `${d}/device`, n.usb ? `${p}/usb2/2-3/2-3:1.0` : p);
  }
  for (const n of host.nets ?? []) {
    const d = where.get(n.name)!;
    const lowers = [...(n.bridge ?? []), ...(n.bond ?? []), ...(n.lower ? [n.lower] : [])];
    if (n.bridge) write(dir, `${d}/bridge/stp_state`, '0\n');
    if (n.bond) write(dir, `${d}/bonding/slaves`, `${n.bond.join(' ')}\n`);
    if (n.bridge) fs.mkdirSync(path.join(dir, `${d}/brif`), { recursive: true });
    for (const l of lowers) {
      const ld = where.get(l);
      if (!ld) throw new Error(`fake host: ${n.name} has an unknown lower device ${l}`);
      if (!n.noLowerLinks) {
        link(dir, `${d}/lower_${l}`, ld);
        link(dir, `${ld}/upper_${n.name}`, d);
      }
      if (n.bridge?.includes(l)) {
        write(dir, `${ld}/brport/state`, '3\n');
        link(dir, `${d}/brif/${l}`, `${ld}/brport`);
        link(dir, `${ld}/master`, d);
      }
      if (n.bond?.includes(l)) link(dir, `${ld}/master`, d);
    }
  }
  if (host.defaultRoutes) {
    let v4 = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
    let v6 = '';
    for (const r of host.defaultRoutes) {
      v4 += `${r.iface}\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n${r.iface}\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n`;
      if (r.v6) v6 += `00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 ${r.iface.padStart(8)}\n`;
    }
    v6 += '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n';
    write(dir, '/proc/net/route', v4);
    write(dir, '/proc/net/ipv6_route', v6);
  }
}

/** Write the host into `dir` (a new temp dir by default) and return the dir. */
export function buildFakeHost(host: FakeHost, dir = makeTempDir()): string {
  const rows = host.pci.map((d) => ({ ...d, addr: parsePciAddress(d.addr) ?? d.addr }));
  const byAddr = new Map(rows.map((d) => [d.addr, d]));
  const children = new Map<string, string[]>();
  for (const d of rows) if (d.parent) {
    const p = parsePciAddress(d.parent)!;
    d.parent = p;
    children.set(p, [...(children.get(p) ?? []), d.addr]);
  }
  const slots = new Map<string, number>();
  for (const d of rows) slots.set(slotOf(d.addr), (slots.get(slotOf(d.addr)) ?? 0) + 1);
  const devPath = new Map<string, string>();
  const pathOf = (addr: string): string => {
    const cached = devPath.get(addr);
    if (cached) return cached;
    const d = byAddr.get(addr);
    if (!d) throw new Error(`fake host: unknown parent ${addr}`);
    const { domain, bus } = pciAddressParts(addr as never);
    const p = d.parent ? `${pathOf(d.parent)}/${addr}` : `/sys/devices/pci${hexs(domain, 4)}:${hexs(bus, 2)}/${addr}`;
    devPath.set(addr, p);
    return p;
  };
  const busesBelow = (addr: string): number[] => {
    const out: number[] = [];
    for (const c of children.get(addr) ?? []) {
      out.push(pciAddressParts(c as never).bus, ...busesBelow(c));
    }
    return out;
  };
  const groups = new Map<number, string[]>();
  for (const d of rows) {
    const p = pathOf(d.addr);
    const isBridge = (d.class >> 8) === 0x0604;
    const depth = d.parent ? 1 + (byAddr.get(d.parent)?.parent ? 1 : 0) : 0;
    const pcie = d.pcie !== undefined ? d.pcie : isBridge ? (d.parent ? (depth >= 1 && byAddr.get(d.parent)?.pcie === 'upstream-port' ? 'downstream-port' : 'downstream-port') : 'root-port') : 'endpoint';
    const mf = d.multifunction ?? (d.addr.endsWith('.0') && (slots.get(slotOf(d.addr)) ?? 0) > 1);
    const below = busesBelow(d.addr);
    const secondary = isBridge && below.length ? Math.min(...below) : null;
    const subordinate = isBridge && below.length ? Math.max(...below) : null;
    const [v, dev] = d.id.split(':');
    const attrs: Record<string, string> = {
      vendor: `0x${v}`,
      device: `0x${dev}`,
      class: `0x${hexs(d.class, 6)}`,
      revision: `0x${hexs(d.rev ?? 0, 2)}`,
      subsystem_vendor: `0x${(d.subsys ?? '0000:0000').split(':')[0]}`,
      subsystem_device: `0x${(d.subsys ?? '0000:0000').split(':')[1]}`,
      driver_override: d.driverOverride ?? '(null)',
      numa_node: String(d.numaNode ?? -1),
      local_cpulist: d.localCpus ?? '0-7',
      irq: '0',
      enable: d.driver ? '1' : '0',
    };
    if (d.resetMethod) attrs.reset_method = d.resetMethod;
    if ((d.class >> 8) === 0x0300) attrs.boot_vga = d.bootVga ? '1' : '0';
    if (pcie) {
      attrs.current_link_speed = d.link?.speed ?? '8.0 GT/s PCIe';
      attrs.current_link_width = String(d.link?.width ?? 16);
      attrs.max_link_speed = d.link?.maxSpeed ?? d.link?.speed ?? '8.0 GT/s PCIe';
      attrs.max_link_width = String(d.link?.maxWidth ?? d.link?.width ?? 16);
    }
    if (isBridge) {
      attrs.secondary_bus_number = String(secondary ?? 0);
      attrs.subordinate_bus_number = String(subordinate ?? 0);
    }
    if (d.sriovTotal !== undefined) {
      attrs.sriov_totalvfs = String(d.sriovTotal);
      attrs.sriov_numvfs = String(rows.filter((r) => r.physfn && parsePciAddress(r.physfn) === d.addr).length);
    }
    for (const [k, val] of Object.entries(attrs)) write(dir, `${p}/${k}`, `${val}\n`);
    const mode = d.config ?? 'full';
    if (mode !== 'none') {
      const primary = d.parent ? pciAddressParts(d.parent as never).bus : pciAddressParts(d.addr as never).bus;
      const cfg = buildConfig(d, pcie, isBridge, mf, secondary, subordinate, primary);
      write(dir, `${p}/config`, mode === 'short' ? cfg.subarray(0, 64) : cfg);
    }
    if (d.rom) {
      write(dir, `${p}/rom`, '', 0o600);
      write(dir, `${p}/resource`, resourceFile(d.rom === true ? {} : d.rom));
    }
    link(dir, `/sys/bus/pci/devices/${d.addr}`, p);
    if (d.driver) {
      driverDir(dir, d.driver);
      const mod = DRIVER_MODULES[d.driver] === undefined ? d.driver.replace(/-/g, '_') : DRIVER_MODULES[d.driver];
      if (mod && !fs.existsSync(path.join(dir, `/sys/bus/pci/drivers/${d.driver}/module`))) {
        fs.mkdirSync(path.join(dir, `/sys/module/${mod}`), { recursive: true });
        link(dir, `/sys/bus/pci/drivers/${d.driver}/module`, `/sys/module/${mod}`);
      }
      link(dir, `${p}/driver`, `/sys/bus/pci/drivers/${d.driver}`);
      link(dir, `/sys/bus/pci/drivers/${d.driver}/${d.addr}`, p);
    }
    if (d.group !== undefined) {
      groups.set(d.group, [...(groups.get(d.group) ?? []), d.addr]);
      link(dir, `${p}/iommu_group`, `/sys/kernel/iommu_groups/${d.group}`);
      link(dir, `/sys/kernel/iommu_groups/${d.group}/devices/${d.addr}`, p);
    }
    if (d.physfn) {
      const pf = parsePciAddress(d.physfn)!;
      link(dir, `${p}/physfn`, pathOf(pf));
      const n = rows.filter((r) => r.physfn && parsePciAddress(r.physfn) === pf).findIndex((r) => r.addr === d.addr);
      link(dir, `${pathOf(pf)}/virtfn${n}`, p);
    }
  }
  writeBlocks(dir, host, pathOf);
  writeNets(dir, host, pathOf);
  for (const id of groups.keys()) {
    write(dir, `/sys/kernel/iommu_groups/${id}/type`, 'DMA\n');
    write(dir, `/sys/kernel/iommu_groups/${id}/reserved_regions`, '0x00000000fee00000 0x00000000feefffff msi\n');
  }
  fs.mkdirSync(path.join(dir, '/sys/bus/pci/drivers'), { recursive: true });
  fs.mkdirSync(path.join(dir, '/sys/devices/system/cpu'), { recursive: true });
  if (host.iommu) {
    const unit = host.iommu === 'intel' ? 'dmar0' : 'ivhd0';
    const unitDir = `/sys/devices/virtual/iommu/${unit}`;
    if (host.iommu === 'intel') write(dir, `${unitDir}/intel-iommu/ecap`, `${host.ecap ?? 'f050da'}\n`);
    else write(dir, `${unitDir}/amd-iommu/features`, '0x25bf732fa2295afe\n');
    link(dir, `/sys/class/iommu/${unit}`, unitDir);
    fs.mkdirSync(path.join(dir, '/sys/kernel/iommu_groups'), { recursive: true });
  } else {
    fs.mkdirSync(path.join(dir, '/sys/class/iommu'), { recursive: true });
  }
  const cpu = host.cpu ?? { vendor: 'intel' };
  const threads = cpu.threads ?? host.cpus?.cpus.filter((c) => c.online !== false).length ?? 8;
  const flags = cpu.flags ?? ['fpu', 'vme', 'pae', cpu.vendor === 'intel' ? 'vmx' : 'svm', 'sse4_2'];
  let cpuinfo = '';
  for (let i = 0; i < threads; i++) {
    cpuinfo += `processor\t: ${i}\nvendor_id\t: ${cpu.vendor === 'intel' ? 'GenuineIntel' : 'AuthenticAMD'}\nmodel name\t: ${cpu.model ?? (cpu.vendor === 'intel' ? 'Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz' : 'AMD Ryzen 9 5950X 16-Core Processor')}\nflags\t\t: ${flags.join(' ')}\n\n`;
  }
  write(dir, '/proc/cpuinfo', cpuinfo);
  const all = Array.from({ length: threads }, (_, i) => i);
  writeCpuTopology(dir, host.cpus ?? { cpus: all.map((i) => ({ id: i, core: i, siblings: [i], l3: all })) });
  const mem = host.memory ?? { totalKb: 16303932 };
  write(dir, '/proc/meminfo', `MemTotal:       ${mem.totalKb} kB\nMemFree:        ${Math.floor(mem.totalKb / 2)} kB\nMemAvailable:   ${mem.availableKb ?? Math.floor(mem.totalKb * 0.7)} kB\nHugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       ${mem.hugepageSizeKb ?? 2048} kB\n`);
  const release = host.release ?? '6.1.0-18-amd64';
  write(dir, '/proc/sys/kernel/osrelease', `${release}\n`);
  write(dir, '/proc/cmdline', `${host.cmdline ?? `BOOT_IMAGE=/boot/vmlinuz-${release} root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet`}\n`);
  const irq = host.interrupts ?? (host.iommu ? 'ir' : 'no-ir');
  if (irq !== 'none') {
    const chip = irq === 'ir' ? 'IR-PCI-MSI' : 'PCI-MSI';
    write(dir, '/proc/interrupts', `           CPU0       CPU1\n  0:         10          0   IO-APIC   2-edge      timer\n124:      12345          0  ${chip} 327680-edge      xhci_hcd\n`);
  }
  write(dir, '/proc/modules', 'kvm_intel 380928 0 - Live 0x0000000000000000\nkvm 1142784 1 kvm_intel, Live 0x0000000000000000\n');
  const vfio = host.vfioModules ?? 'module';
  const kmods = ['kernel/drivers/vfio/vfio.ko', 'kernel/drivers/vfio/vfio_iommu_type1.ko', 'kernel/drivers/vfio/pci/vfio-pci-core.ko', 'kernel/drivers/vfio/pci/vfio-pci.ko'];
  write(dir, `/lib/modules/${release}/modules.builtin`, vfio === 'builtin' ? kmods.join('\n') + '\n' : 'kernel/drivers/base/firmware_loader/firmware_class.ko\n');
  const hostMods = (host.hostModules ?? []).map((m) => `kernel/drivers/misc/${m.replace(/_/g, '-')}.ko:`).join('\n');
  write(dir, `/lib/modules/${release}/modules.dep`, (vfio === 'module' ? kmods.map((k) => `${k}:`).join('\n') + '\n' : '') + 'kernel/sound/pci/hda/snd-hda-intel.ko:\n' + (hostMods ? hostMods + '\n' : ''));
  for (const k of host.extraKernels ?? []) {
    write(dir, `/lib/modules/${k}/modules.builtin`, 'kernel/drivers/base/firmware_loader/firmware_class.ko\n');
    write(dir, `/lib/modules/${k}/modules.dep`, kmods.map((m) => `${m}:`).join('\n') + '\n');
  }
  write(dir, '/proc/stat', `cpu  1 2 3 4\nbtime ${host.bootTime ?? 1700000000}\n`);
  for (const e of host.execs ?? []) write(dir, e, '', 0o755);
  if (host.loaderInfo) {
    const v = Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from(host.loaderInfo + '\0', 'utf16le')]);
    write(dir, '/sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f', v);
  }
  if (host.kvm ?? true) write(dir, '/dev/kvm', '');
  if (host.efi ?? true) fs.mkdirSync(path.join(dir, '/sys/firmware/efi/efivars'), { recursive: true });
  if (host.ovmf ?? true) {
    write(dir, '/usr/share/OVMF/OVMF_CODE_4M.fd', 'code');
    write(dir, '/usr/share/OVMF/OVMF_VARS_4M.fd', 'vars');
    write(
      dir,
      '/usr/share/qemu/firmware/60-edk2-x86_64.json',
      JSON.stringify({
        description: 'UEFI firmware for x86_64',
        'interface-types': ['uefi'],
        mapping: { device: 'flash', executable: { filename: '/usr/share/OVMF/OVMF_CODE_4M.fd', format: 'raw' }, 'nvram-template': { filename: '/usr/share/OVMF/OVMF_VARS_4M.fd', format: 'raw' } },
        targets: [{ architecture: 'x86_64', machines: ['pc-q35-*'] }],
        features: ['acpi-s3', 'verbose-dynamic'],
      }),
    );
  }
  if (host.libvirt ?? true) {
    write(dir, '/usr/bin/virsh', '', 0o755);
    write(dir, '/usr/sbin/libvirtd', '', 0o755);
    write(dir, '/usr/bin/qemu-system-x86_64', '', 0o755);
  }
  // Huge page pools as hugetlbpage.rst lays them out: global, and per NUMA node (all of the
  // global pages on node 0 unless `hugepageNodes` says otherwise); each node's meminfo.
  const pools = host.hugepages ?? [{ sizeKb: 2048, total: 0, free: 0 }, { sizeKb: 1048576, total: 0, free: 0 }];
  for (const hp of pools) {
    const g = `/sys/kernel/mm/hugepages/hugepages-${hp.sizeKb}kB`;
    write(dir, `${g}/nr_hugepages`, `${hp.total}\n`);
    write(dir, `${g}/free_hugepages`, `${hp.free}\n`);
    write(dir, `${g}/surplus_hugepages`, `${hp.surplus ?? 0}\n`);
    write(dir, `${g}/resv_hugepages`, '0\n');
    write(dir, `${g}/nr_overcommit_hugepages`, '0\n');
  }
  const nodeIds = (fs.readdirSync(path.join(dir, '/sys/devices/system/node')).map((e) => /^node(\d+)$/.exec(e)?.[1]).filter((x): x is string => x !== undefined)).map(Number).sort((a, b) => a - b);
  for (const n of nodeIds) {
    const per = host.hugepageNodes?.[n];
    for (const hp of pools) {
      const mine = per?.find((x) => x.sizeKb === hp.sizeKb) ?? (n === nodeIds[0] && !host.hugepageNodes ? hp : { sizeKb: hp.sizeKb, total: 0, free: 0 });
      const d = `/sys/devices/system/node/node${n}/hugepages/hugepages-${hp.sizeKb}kB`;
      write(dir, `${d}/nr_hugepages`, `${mine.total}\n`);
      write(dir, `${d}/free_hugepages`, `${mine.free}\n`);
      write(dir, `${d}/surplus_hugepages`, `${mine.surplus ?? 0}\n`);
    }
    const share = Math.floor(mem.totalKb / nodeIds.length);
    const free = host.memory?.nodeFreeKb?.[n] ?? Math.floor(share / 2);
    write(dir, `/sys/devices/system/node/node${n}/meminfo`, `Node ${n} MemTotal:       ${share} kB\nNode ${n} MemFree:        ${free} kB\nNode ${n} MemUsed:        ${share - free} kB\n`);
  }
  // Write-only, as the kernel's (mode 0200).
  write(dir, '/proc/sys/vm/compact_memory', '', 0o200);
  if (host.pciIds !== false) write(dir, '/usr/share/misc/pci.ids', host.pciIds ?? DEFAULT_PCI_IDS);
  for (const [p, c] of Object.entries(host.files ?? {})) write(dir, p, c);
  for (const [p, t] of Object.entries(host.links ?? {})) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.symlinkSync(t, path.join(dir, p));
  }
  return dir;
}
