// Host paths of CPU isolation (cgroup v2 cpusets through systemd, IRQ and
// workqueue affinity, cpufreq governors): named here so the pure planner and
// the readers in src/host share them.
// Sources: Documentation/admin-guide/cgroup-v2.rst (cpuset), systemd
// systemctl(1) set-property --runtime, Documentation/core-api/irq/irq-affinity.rst,
// kernel/workqueue.c (wq_unbound_cpumask), Documentation/admin-guide/pm/cpufreq.rst.

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** Hybrid layout: cgroup v2 mounted here while the controllers stay on v1. */
export const CGROUP_UNIFIED = '/sys/fs/cgroup/unified';
/** Present while systemd runs as PID 1 (sd_booted(3)). */
export const RUN_SYSTEMD_SYSTEM = '/run/systemd/system';
/** Where `systemctl set-property --runtime` writes its drop-ins (gone at reboot). */
const RUN_SYSTEMD_CONTROL = '/run/systemd/system.control';
/** The units that hold the host's own work; machine.slice (the VMs) is left alone. */
export const HOST_UNITS = ['system.slice', 'user.slice', 'init.scope'] as const;
export const cgroupDir = (unit: string) => `${CGROUP_ROOT}/${unit}`;
export const cgroupFile = (unit: string, file: string) => `${CGROUP_ROOT}/${unit}/${file}`;
/** Where systemd keeps drop-ins of transient units; init.scope is one (perpetual and transient, src/core/scope.c). */
const RUN_SYSTEMD_TRANSIENT = '/run/systemd/transient';
/**
 * The runtime drop-in `set-property --runtime` writes for one property
 * (50-<Property>.conf; unit_write_setting: the transient directory for
 * transient units such as scopes, else system.control).
 */
export const runtimeDropIn = (unit: string, property: string) => `${unit.endsWith('.scope') ? RUN_SYSTEMD_TRANSIENT : RUN_SYSTEMD_CONTROL}/${unit}.d/50-${property}.conf`;

export const PROC_IRQ = '/proc/irq';
export const PROC_IRQ_DEFAULT_AFFINITY = '/proc/irq/default_smp_affinity';
export const irqAffinityList = (irq: number) => `${PROC_IRQ}/${irq}/smp_affinity_list`;
export const WORKQUEUE_CPUMASK = '/sys/devices/virtual/workqueue/cpumask';
export const cpufreqAttr = (cpu: number, attr: 'scaling_governor' | 'scaling_available_governors') => `/sys/devices/system/cpu/cpu${cpu}/cpufreq/${attr}`;
export const SYS_CPU_PRESENT = '/sys/devices/system/cpu/present';
export const CGROUP_CONTROLLERS = '/sys/fs/cgroup/cgroup.controllers';
