// inspect(root) → HostSnapshot: the single entry point that reads a host.

import { SNAPSHOT_SCHEMA_VERSION, type HostSnapshot, type SnapshotWarning } from '../model/snapshot.js';
import { readDisplay } from './display.js';
import { readBoot } from './boot.js';
import { readCpuTopology, readMemory } from './cpu-topology.js';
import { loadPciNamesFor } from './pci-ids.js';
import { readPciDevices } from './pci.js';
import { HostRoot } from './root.js';
import { readIsolation } from './isolation.js';
import { readRuntimeFacts } from './runtime.js';
import { readVmHost } from './vm-host.js';
import { DEV_KVM, DEV_VFIO, SYS_NODE } from './sysfs-paths.js';
import { readHugepageHost } from './hugepages.js';
import { readCpu, readFirmware, readHugepages, readIommu, readKernel, readLibvirt, readOs } from './system.js';

interface InspectOptions {
  /** Look up vendor/device names in pci.ids (skipped by callers that never print names). */
  names?: boolean;
}

export function inspect(root: HostRoot | string, opts: InspectOptions = {}): HostSnapshot {
  const r = typeof root === 'string' ? new HostRoot(root) : root;
  const warnings: SnapshotWarning[] = [];
  const kernel = readKernel(r, warnings);
  const iommu = readIommu(r, kernel.cmdline, warnings);
  // Device NUMA locality is only meaningful with more than one node.
  const numa = (r.tryList(SYS_NODE) ?? []).filter((n) => /^node\d+$/.test(n)).length > 1;
  const { devices, configReadable } = readPciDevices(r, warnings, { groupLinks: iommu.groups.length === 0, numa });

  // Group membership: the group directories are authoritative; a device's own
  // iommu_group link fills in when /sys/kernel/iommu_groups was not captured.
  const byAddr = new Map(devices.map((d) => [d.address, d]));
  if (iommu.groups.length) {
    for (const g of iommu.groups) for (const a of g.devices) {
      const d = byAddr.get(a);
      if (d) d.iommuGroup = g.id;
    }
  }
  if (devices.length && !configReadable) {
    warnings.push({
      code: 'W_CONFIG_PARTIAL',
      subject: 'config',
      message: 'PCI config space beyond the first 64 bytes is not readable (run as root): ACS, FLR and port types are unknown, so group predictions are limited',
    });
  }
  if (opts.names !== false) {
    // Only the vendors present are looked up (pci.ids is not read whole).
    const names = loadPciNamesFor(r, new Set(devices.map((d) => d.vendor)));
    if (!names.source && devices.length) {
      warnings.push({ code: 'W_NO_PCI_IDS', subject: 'pci.ids', message: 'no pci.ids found under the root (/usr/share/hwdata, /usr/share/misc, /usr/share): devices are shown by ID (install pciutils or hwdata)' });
    }
    for (const d of devices) {
      d.vendorName = names.vendor(d.vendor);
      d.deviceName = names.device(d.vendor, d.device);
    }
  }
  const snap: Omit<HostSnapshot, 'isolation'> = {
    schemaVersion: SNAPSHOT_SCHEMA_VERSION,
    root: r.dir,
    os: readOs(r),
    kernel,
    cpu: readCpu(r, warnings),
    kvm: { devKvm: r.probe(DEV_KVM) },
    devVfio: (r.tryList(DEV_VFIO) ?? []).sort(),
    iommu,
    pci: devices,
    firmware: readFirmware(r),
    libvirt: readLibvirt(r),
    display: readDisplay(r, r.isLive ? process.pid : -1),
    hugepages: readHugepages(r),
    hugepageHost: readHugepageHost(r),
    vmHost: readVmHost(r, kernel.loadedModules),
    cpuTopology: readCpuTopology(r, warnings),
    memory: readMemory(r, warnings),
    boot: readBoot(r, kernel.release),
    configSpaceReadable: configReadable,
    runtime: readRuntimeFacts(r, devices.filter((d) => d.bootVga)),
    warnings,
  };
  return { ...snap, isolation: readIsolation(r, snap.cpuTopology?.online ?? []) };
}
