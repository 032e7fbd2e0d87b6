// CPU isolation facts: how cgroups are mounted, the host units' cpusets and
// their runtime drop-ins (including "not set"), IRQ and unbound-workqueue
// affinity, cpufreq governors. Read only; `vfiokit isolate` plans from these
// and its undo restores exactly what is recorded here.

import type { IsolationFacts, UnitCpuset } from '../model/snapshot.js';
import { CGROUP_CONTROLLERS, CGROUP_ROOT, CGROUP_UNIFIED, cgroupDir, cgroupFile, cpufreqAttr, HOST_UNITS, PROC_IRQ, PROC_IRQ_DEFAULT_AFFINITY, RUN_SYSTEMD_SYSTEM, runtimeDropIn, SYS_CPU_PRESENT, WORKQUEUE_CPUMASK, irqAffinityList } from '../model/isolation-paths.js';
import { parseCpuList } from '../formats/cpu-list.js';
import { mountEntries } from '../formats/fstab.js';
import { PROC_MOUNTS } from './sysfs-paths.js';
import { runningProcesses } from './display.js';
import type { HostRoot } from './root.js';

export const ALLOWED_CPUS = 'AllowedCPUs';
const UNITS = [...HOST_UNITS, 'machine.slice'];

/** The fstype mounted at `dir` in /proc/mounts (the last mount wins, as in the kernel), or null. */
function fstypeAt(mounts: string, dir: string): string | null {
  let t: string | null = null;
  for (const e of mountEntries(mounts)) if (e.file === dir) t = e.vfstype;
  return t;
}

function cgroupLayout(root: HostRoot): IsolationFacts['cgroup'] {
  const mounts = root.tryReadText(PROC_MOUNTS);
  if (mounts === undefined) return null;
  const top = fstypeAt(mounts, CGROUP_ROOT);
  if (top === 'cgroup2') return 'v2';
  if (top === null) return null;
  return fstypeAt(mounts, CGROUP_UNIFIED) === 'cgroup2' ? 'hybrid' : 'v1';
}

/** Attribute text without the kernel's trailing newline; null when absent. */
const attr = (root: HostRoot, p: string): string | null => {
  const t = root.tryReadText(p);
  return t === undefined ? null : t.replace(/\n$/, '');
};

function readUnitCpuset(root: HostRoot, unit: string): UnitCpuset {
  return {
    unit,
    exists: root.exists(cgroupDir(unit)),
    cpus: attr(root, cgroupFile(unit, 'cpuset.cpus')),
    effective: attr(root, cgroupFile(unit, 'cpuset.cpus.effective')),
    dropIn: root.tryReadText(runtimeDropIn(unit, ALLOWED_CPUS)) ?? null,
  };
}

export function readIsolation(root: HostRoot, online: number[]): IsolationFacts {
  const cgroup = cgroupLayout(root);
  const controllers = cgroup === 'v2' ? (attr(root, CGROUP_CONTROLLERS) ?? '').split(/\s+/).filter(Boolean) : [];
  const irqs: IsolationFacts['irqs'] = [];
  for (const e of root.tryList(PROC_IRQ) ?? []) {
    if (!/^\d+$/.test(e)) continue;
    const a = attr(root, irqAffinityList(Number(e)));
    if (a !== null) irqs.push({ irq: Number(e), affinity: a });
  }
  irqs.sort((a, b) => a.irq - b.irq);
  const governors: IsolationFacts['governors'] = [];
  for (const cpu of online) {
    const g = attr(root, cpufreqAttr(cpu, 'scaling_governor'));
    if (g === null) continue;
    governors.push({ cpu, governor: g.trim(), available: (attr(root, cpufreqAttr(cpu, 'scaling_available_governors')) ?? '').split(/\s+/).filter(Boolean) });
  }
  const present = attr(root, SYS_CPU_PRESENT);
  return {
    cgroup,
    controllers,
    systemd: root.exists(RUN_SYSTEMD_SYSTEM),
    units: cgroup === 'v2' ? UNITS.map((u) => readUnitCpuset(root, u)) : [],
    presentCpus: present === null ? null : parseCpuList(present),
    irqs,
    defaultIrqAffinity: attr(root, PROC_IRQ_DEFAULT_AFFINITY),
    workqueueMask: attr(root, WORKQUEUE_CPUMASK),
    governors,
    irqbalance: runningProcesses(root, ['irqbalance']).length > 0,
  };
}
