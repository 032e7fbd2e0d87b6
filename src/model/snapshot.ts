// The host snapshot: everything vfiokit observed about a host, as plain JSON.
// `vfiokit inspect --json` prints exactly this object; planning reads only this.
// The schema is documented in docs/snapshot-schema.md — change both together.
// Absent facts are `null` ("not knowable here"), never guessed.

import type { PcieType } from './config-space.js';

export const SNAPSHOT_SCHEMA_VERSION = 1;

type CpuVendor = 'intel' | 'amd' | 'other';
export type ModuleState = 'builtin' | 'module' | 'missing' | 'unknown';

export interface HostSnapshot {
  schemaVersion: number;
  /** The directory every read resolved under ("/" for the live host). */
  root: string;
  os: OsInfo;
  kernel: KernelInfo;
  cpu: CpuInfo;
  kvm: { devKvm: boolean };
  /** Entries of /dev/vfio (group numbers, `vfio`, `devices`); empty when absent. */
  devVfio: string[];
  iommu: IommuInfo;
  pci: PciDevice[];
  firmware: FirmwareInfo;
  libvirt: LibvirtInfo;
  /** What holds the host display: display manager, consoles, framebuffers, DRM cards, GPU modules, device holders. */
  display: DisplayInfo;
  hugepages: HugepagePool[];
  /** What `vfiokit hugepages reserve` plans from: 1 GiB page support, available memory, compaction, per-node pools. */
  hugepageHost: HugepageHostFacts;
  /** What guest profiles (`vm --os`) need: swtpm, virtio-win ISOs, input devices, kvmfr, desktop sessions. */
  vmHost: VmHostInfo;
  /** Logical CPUs, cores, L3 domains, NUMA nodes (null when /sys/devices/system/cpu has no topology). */
  cpuTopology: CpuTopology | null;
  /** From /proc/meminfo. */
  memory: MemoryInfo;
  /** Boot and initramfs configuration, tools, kernels, host-critical devices. */
  boot: BootInfo;
  /** Whether full config space (capabilities, ACS) could be read. */
  configSpaceReadable: boolean;
  /** Live kernel state runtime plans depend on (bind, unbind, handoff). */
  runtime: RuntimeFacts;
  /** What CPU isolation (`vfiokit isolate`) changes and restores: cgroup layout, host units' cpusets, IRQ and workqueue affinity, governors. */
  isolation: IsolationFacts;
  /** Facts that could not be read, with what is missing. */
  warnings: SnapshotWarning[];
}

export interface SnapshotWarning {
  code: string;
  subject: string;
  message: string;
}

/** From /etc/os-release (or /usr/lib/os-release). */
export interface OsInfo {
  id: string | null;
  idLike: string[];
  versionId: string | null;
  prettyName: string | null;
}

export interface KernelInfo {
  release: string | null;
  cmdline: string | null;
  modules: {
    vfio: ModuleState;
    vfio_pci: ModuleState;
    vfio_iommu_type1: ModuleState;
    vfio_pci_core: ModuleState;
    vfio_virqfd: ModuleState;
  };
  /** Modules currently loaded (from /proc/modules), filtered to those vfiokit cares about. */
  loadedModules: string[];
  /** When the running kernel booted (btime in /proc/stat), ISO 8601. */
  bootTime: string | null;
}

export interface CpuInfo {
  vendor: CpuVendor | null;
  model: string | null;
  /** `vmx` (Intel VT-x) or `svm` (AMD-V) flag present. */
  virtualization: 'vmx' | 'svm' | null;
  /** We are a guest ourselves (nested virtualization). */
  hypervisor: boolean;
  threads: number | null;
}

export interface IommuInfo {
  active: boolean;
  vendor: 'intel' | 'amd' | null;
  /** /sys/class/iommu entries (dmarN, ivhdN). */
  units: string[];
  groups: IommuGroup[];
  interruptRemapping: {
    enabled: boolean | null;
    evidence: string;
  };
  /** IOMMU-related arguments found on /proc/cmdline. */
  cmdlineArgs: string[];
}

export interface IommuGroup {
  id: number;
  devices: string[];
  /** Default-domain type from /sys/kernel/iommu_groups/N/type (identity, DMA, …). */
  type: string | null;
  /** reserved_regions types seen (direct, direct-relaxable, reserved, msi). */
  reservedRegionTypes: string[];
}

interface PciLink {
  speed: string | null;
  width: number | null;
  maxSpeed: string | null;
  maxWidth: number | null;
}

export interface PciDevice {
  address: string;
  vendor: string;
  device: string;
  subsystemVendor: string | null;
  subsystemDevice: string | null;
  class: string;
  revision: string | null;
  vendorName: string | null;
  deviceName: string | null;
  driver: string | null;
  /** Kernel module providing the bound driver (`drivers/<name>/module` link), e.g. bochs for bochs-drm; null when built in or unbound. */
  driverModule: string | null;
  driverOverride: string | null;
  iommuGroup: number | null;
  bootVga: boolean;
  numaNode: number | null;
  localCpus: string | null;
  resetMethods: string[] | null;
  hasRom: boolean;
  /** The expansion ROM BAR from `resource` (null without a `rom` attribute or an unreadable resource file). */
  romBar: RomBar | null;
  link: PciLink | null;
  sriov: { totalVfs: number; numVfs: number; vfs: string[] } | null;
  physfn: string | null;
  /** Upstream bridge (null when the function sits on a root bus). */
  parent: string | null;
  /** Bridges from the root bus down to the parent, root first. */
  upstream: string[];
  /** The `pciDDDD:BB` host bridge directory this function hangs from. */
  hostBridge: string | null;
  isBridge: boolean;
  secondaryBus: number | null;
  /** Multifunction: header bit 7 on function 0, or any function > 0 (the kernel's rule). */
  multifunction: boolean;
  /** From full config space; null when it could not be read (not root). */
  caps: {
    pcie: boolean;
    pcieType: PcieType | null;
    flr: boolean;
    acs: { cap: number; ctrl: number } | null;
  } | null;
}

interface RomBar {
  /** BAR size in bytes (0 when unassigned). */
  size: number;
  /** Kernel resource flag IORESOURCE_ROM_SHADOW, or the legacy VGA window 0xC0000: reads return the shadow copy. */
  shadowed: boolean;
  /** `power_state` (D0, D3hot, D3cold…) when the kernel offers it: a suspended device reads its ROM as all-ones. */
  powerState: string | null;
}

export interface OvmfFirmware {
  /** Descriptor JSON path, or null for a file found at a well-known path. */
  descriptor: string | null;
  description: string | null;
  code: string;
  varsTemplate: string | null;
  secureBoot: boolean;
  /** Descriptor feature `enrolled-keys` (Microsoft keys in the VARS template); for a well-known file, what its package ships. */
  enrolledKeys: boolean;
  /** Descriptor feature `requires-smm`. */
  requiresSmm: boolean;
  exists: boolean;
}

export interface FirmwareInfo {
  /** The host booted through UEFI (/sys/firmware/efi exists). */
  efi: boolean;
  ovmf: OvmfFirmware[];
}

export interface LibvirtInfo {
  virsh: string | null;
  daemon: string | null;
  qemu: string | null;
  virtXmlValidate: string | null;
  /** Library version from the libvirt.so.0.MAJOR*1000+MINOR.MICRO file name ("9.0.0"); null when not found. */
  version: string | null;
  /** Daemons running now (process names): libvirtd (monolithic) and/or virtqemud (modular). */
  runningDaemons: string[];
  /** /etc/libvirt/hooks/qemu: the main hook script (content kept so a plan can show it stays untouched); null when absent. */
  mainHook: { content: string; mode: number } | null;
  /** Entries of /etc/libvirt/hooks/qemu.d (files and directories), with whether each is an executable file. */
  hooksDir: { name: string; executable: boolean; isDir: boolean }[] | null;
  /** Domains defined for the system instance (/etc/libvirt/qemu/NAME.xml), names only. */
  definedDomains: string[];
  /** What confines libvirt's QEMU processes, for files QEMU must read (ROMs). */
  confinement: LibvirtConfinement;
}

export interface LibvirtConfinement {
  /** AppArmor: `enabled` from the module parameter (null: unknown); the libvirt-qemu abstraction and the directories it lets QEMU read (`/dir/** r`). */
  apparmor: { enabled: boolean | null; abstraction: string | null; readDirs: string[] };
  /** SELinux mode (the live enforce flag, else /etc/selinux/config) and policy; null without SELinux. */
  selinux: { mode: 'enforcing' | 'permissive' | 'disabled'; policy: string | null } | null;
  /** Directories vfiokit installs ROMs to, preferred first (src/host/sysfs-paths.ts ROM_INSTALL_DIRS). */
  installDirs: string[];
  /** ROMs vfiokit installed earlier (vfiokit-*.rom in the install directories): host path → sha256. */
  installedRoms: Record<string, string>;
}

export interface VtConsole {
  /** vtconN */
  id: string;
  /** The `name` attribute, e.g. "(M) frame buffer device", "(S) VGA+". */
  name: string;
  bound: boolean;
  /** Only framebuffer consoles (fbcon) can be unbound; system consoles "(S)" cannot. */
  unbindable: boolean;
}

export interface FbDevice {
  /** fbN */
  id: string;
  /** Driver name (/sys/class/graphics/fbN/name or /proc/fb): "efi-fb", "amdgpudrmfb", "simpledrmdrmfb"… */
  name: string | null;
  /** PCI function behind it (fbN/device link), null for firmware framebuffers. */
  device: string | null;
}

export interface PlatformFramebuffer {
  /** efi-framebuffer.0, simple-framebuffer.0, vesa-framebuffer.0… */
  device: string;
  /** Driver bound now (efi-framebuffer, simple-framebuffer, simpledrm…), null when unbound. */
  driver: string | null;
}

export interface DrmCard {
  /** cardN */
  id: string;
  /** PCI function (cardN/device link), null for non-PCI cards. */
  device: string | null;
  /** The render node of the same device (renderD128), null when none. */
  render: string | null;
  connectors: { name: string; status: string | null }[];
}

export interface LoadedModule {
  name: string;
  refcnt: number;
  /** Modules using this one (/proc/modules dependents column, /sys/module/NAME/holders). */
  holders: string[];
}

export interface DeviceHolder {
  pid: number;
  comm: string;
  /** /dev/dri/card0, /dev/nvidia0… */
  path: string;
}

export interface DisplayInfo {
  /** systemd's display-manager.service alias target (gdm.service, sddm.service…), null when none is enabled. */
  displayManager: { unit: string; active: boolean | null } | null;
  vtconsoles: VtConsole[];
  framebuffers: FbDevice[];
  platformFramebuffers: PlatformFramebuffer[];
  drm: DrmCard[];
  /** GPU and sound driver modules loaded now, with refcounts and holders. */
  modules: LoadedModule[];
  /** Processes holding /dev/dri/* or /dev/nvidia* open (null when /proc could not be read). */
  holders: DeviceHolder[] | null;
  /** /dev/nvidia* device nodes (nvidia0, nvidiactl, nvidia-modeset, nvidia-uvm…), full paths. */
  nvidiaNodes: string[];
}

/** A mount or swap area besides `/` and the PCI functions its device sits on (src/host/host-critical.ts). */
export interface StorageMount {
  /** The mount point; for a swap area, its device as written. */
  target: string;
  /** The device as fstab or the mount table names it (UUID=…, /dev/…). */
  source: string;
  fstype: string;
  swap: boolean;
  /** /boot or an ESP (/boot/efi, /efi): the next boot and every kernel update need it, whatever its options. */
  boot: boolean;
  /** Mounted (or swapped on) now. */
  mounted: boolean;
  /** The next boot waits for it: /boot, an ESP, or an /etc/fstab entry without nofail, noauto or x-systemd.automount. */
  atBoot: boolean;
  addresses: string[];
  /** How the source reaches each PCI function: "UUID=… → nvme1n1p1 → nvme1n1 → 0000:04:00.0". */
  chains: string[];
}

export interface BootInfo {
  /** Config files that exist, by host path: content, mode, owner. */
  files: Record<string, import('./plan.js').FileState>;
  /** Listings of config directories (and grub.cfg presence), by host path. */
  dirs: Record<string, string[]>;
  /** Boot/initramfs tools found, by name → host path (null when absent). */
  tools: Record<string, string | null>;
  /** Installed kernels (from /lib/modules) and their vfio-pci state. */
  kernels: { release: string; vfioPci: ModuleState; vfioVirqfd: ModuleState; running: boolean }[];
  /** systemd Boot Loader Interface LoaderInfo (e.g. "systemd-boot 255.4"), null when absent. */
  loaderInfo: string | null;
  /** Competing host driver modules that exist for the running kernel (modules.dep or built in). */
  hostDriverModules: string[];
  /** PCI function(s) holding the root filesystem's disk. */
  rootStorage: string[];
  /** PCI function(s) of the NIC(s) carrying the default route. */
  defaultRouteNics: string[];
  /** What the root-storage and default-route chains could not follow to a PCI function (empty when both were followed). */
  guardWarnings: { rootStorage: string[]; defaultRouteNics: string[]; storageMounts?: string[] };
  /** Mounts and swap areas besides `/` on PCI storage: needed at the next boot or in use now. Absent when none. */
  storageMounts?: StorageMount[];
  /** Firmware framebuffers (efifb, simpledrm, BOOTFB…) sitting in a PCI device's BARs. */
  framebuffers: { address: string; owner: string }[];
  /** Config files (read or written by vfiokit) that are symlinks: host path → the host path they resolve to. Absent when none. */
  links?: Record<string, string>;
  /** Config paths that exist but are not regular files (a directory, a dangling link, a device): host path → what is there. Absent when none. */
  irregular?: Record<string, { type: 'dir' | 'dangling' | 'other'; link: string | null }>;
}

export interface HugepagePool {
  sizeKb: number;
  /** nr_hugepages: the persistent pool. */
  total: number;
  free: number;
  /** surplus_hugepages: pages given beyond nr_hugepages by overcommit (absent where not read). */
  surplus?: number;
}

export interface HugepageHostFacts {
  /** The CPU maps 1 GiB pages (`pdpe1gb` in the /proc/cpuinfo flags); null when cpuinfo is missing. */
  pdpe1gb: boolean | null;
  /** MemAvailable from /proc/meminfo, KiB. */
  availableKb: number | null;
  /** /proc/sys/vm/compact_memory exists (the kernel has CONFIG_COMPACTION). */
  compaction: boolean;
  /** Per NUMA node: its pools (nodeN/hugepages) and MemFree (nodeN/meminfo), ascending by id; empty without node directories. */
  nodes: { id: number; memFreeKb: number | null; pools: HugepagePool[] }[];
}

/** One online logical CPU, from /sys/devices/system/cpu/cpuN/topology and cache/. */
export interface LogicalCpu {
  id: number;
  /** physical_package_id (socket). */
  package: number | null;
  /** die_id (null on kernels without it). */
  die: number | null;
  /** core_id: unique within a package, not across packages. */
  core: number | null;
  /** core_cpus_list (or the older thread_siblings_list): this CPU and its SMT siblings, ascending. */
  siblings: number[];
  /** shared_cpu_list of the level-3 cache; null when the CPU reports no L3. */
  l3: number[] | null;
  /** NUMA node holding this CPU (from /sys/devices/system/node/nodeN/cpulist). */
  node: number | null;
  /** Hybrid CPUs: 'performance' (cpu_core PMU) or 'efficiency' (cpu_atom PMU); null otherwise. */
  kind: 'performance' | 'efficiency' | null;
}

export interface CpuTopology {
  /** /sys/devices/system/cpu/online, ascending. */
  online: number[];
  /** Online CPUs only, ascending by id. */
  cpus: LogicalCpu[];
  numaNodes: { id: number; cpus: number[] }[];
  /** /sys/devices/cpu_core/cpus and /sys/devices/cpu_atom/cpus; null on non-hybrid CPUs. */
  hybrid: { performance: number[]; efficiency: number[] } | null;
}

export interface MemoryInfo {
  /** MemTotal in KiB. */
  totalKb: number | null;
  /** Hugepagesize in KiB: the size `<hugepages/>` and hugetlbfs use by default. */
  hugepageDefaultKb: number | null;
}

/** A process holding /dev/vfio/<group> open: a running VM owns the group. */
export interface VfioHolder {
  group: number;
  pid: number;
  comm: string | null;
}

/** A boot VGA device that runs the host console now, and why vfiokit thinks so. */
export interface ConsoleUse {
  address: string;
  why: string;
}

export interface RuntimeFacts {
  /** /proc/sys/kernel/random/boot_id: tells a transaction of this boot from one of an earlier boot. */
  bootId: string | null;
  /** Registered PCI drivers (/sys/bus/pci/drivers). */
  pciDrivers: string[];
  vfioHolders: VfioHolder[];
  /** Processes whose open files could not be read (not root): holders may be missing. */
  holdersUnreadable: number;
  consoles: ConsoleUse[];
}

/** A desktop user's runtime directory (/run/user/UID) and the audio sockets in it. */
export interface DesktopSession {
  uid: number;
  /** User name from /etc/passwd, null when not listed. */
  user: string | null;
  runtimeDir: string;
  /** `pipewire-0` socket present. */
  pipewire: boolean;
  /** `pulse/native` socket present (PulseAudio, or PipeWire's pipewire-pulse). */
  pulse: boolean;
}

export interface VmHostInfo {
  /** swtpm (libvirt's TPM emulator backend) and swtpm_setup, host paths or null. */
  swtpm: string | null;
  swtpmSetup: string | null;
  /** virtio-win driver ISOs found where distributions install them. */
  virtioWin: string[];
  /** Entries of /dev/input/by-id (names only), sorted. */
  inputById: string[];
  /** kvmfr (Looking Glass) module loaded, and its /dev/kvmfrN devices. */
  kvmfr: { loaded: boolean; devices: string[] };
  /** Desktop sessions (UID ≥ 1000), ascending by UID. */
  sessions: DesktopSession[];
}

/** A host unit's cgroup v2 cpuset as the kernel shows it, and the runtime drop-in systemd keeps for it. */
export interface UnitCpuset {
  unit: string;
  /** /sys/fs/cgroup/<unit> exists. */
  exists: boolean;
  /** cpuset.cpus: the requested set; "" = not set (the unit inherits); null = no such file (cpuset not enabled for it). */
  cpus: string | null;
  /** cpuset.cpus.effective: what the unit is granted. */
  effective: string | null;
  /** /run/systemd/system.control/<unit>.d/50-AllowedCPUs.conf, byte for byte; null = absent. */
  dropIn: string | null;
}

export interface IsolationFacts {
  /** How /sys/fs/cgroup is mounted (/proc/mounts): unified v2, hybrid (v2 at /sys/fs/cgroup/unified, controllers on v1), v1; null = unknown. */
  cgroup: 'v2' | 'hybrid' | 'v1' | null;
  /** cgroup.controllers of the v2 root. */
  controllers: string[];
  /** systemd runs as PID 1 (/run/systemd/system exists). */
  systemd: boolean;
  /** system.slice, user.slice, init.scope, machine.slice. */
  units: UnitCpuset[];
  /** /sys/devices/system/cpu/present (null when unreadable). */
  presentCpus: number[] | null;
  /** Every /proc/irq/N/smp_affinity_list, ascending by IRQ (the value as the kernel prints it). */
  irqs: { irq: number; affinity: string }[];
  /** /proc/irq/default_smp_affinity (hex mask). */
  defaultIrqAffinity: string | null;
  /** /sys/devices/virtual/workqueue/cpumask (hex mask of unbound workqueues). */
  workqueueMask: string | null;
  /** cpufreq per online CPU that has it. */
  governors: { cpu: number; governor: string; available: string[] }[];
  /** irqbalance is running: it moves IRQs back while the VM runs. */
  irqbalance: boolean;
}
