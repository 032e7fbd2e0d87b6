// CPU isolation while a VM runs (pure): restrict the host's own units to the
// host CPUs with systemd (cgroup v2 cpusets, runtime only), and optionally
// move movable IRQs, the default IRQ affinity and unbound workqueues onto the
// host CPUs and set the VM CPUs' cpufreq governor. Every step records the value
// before (AllowedCPUs "not set" included) so undo restores it exactly.
// The VM CPUs come from --cpus, the domain's <vcpupin>s, or the same pinning
// plan `vm xml --pin auto` makes (src/vm/pinning.ts).

import type { Problem } from '../errors.js';
import { cpuMaskBits, formatCpuList, formatCpuMask, parseCpuList, parseCpuMask } from '../formats/cpu-list.js';
import { CGROUP_CONTROLLERS, CGROUP_ROOT, cgroupFile, cpufreqAttr, HOST_UNITS, irqAffinityList, PROC_IRQ_DEFAULT_AFFINITY, runtimeDropIn, WORKQUEUE_CPUMASK } from '../model/isolation-paths.js';
import { emptyPlan, type Plan, type Step } from '../model/plan.js';
import type { CpuTopology, HostSnapshot } from '../model/snapshot.js';
import { coresOf } from '../vm/pinning.js';

export const ISOLATE_KIND = 'isolate';
const ALLOWED_CPUS = 'AllowedCPUs';

export interface IsolateIntent {
  /** The CPUs the VM keeps (the host gets every other online CPU). */
  vmCpus: number[];
  /** Where they came from ("--cpus 2-3", "domain win11 <vcpupin>", …). */
  source: string;
  domain: string | null;
  irqs: boolean;
  workqueues: boolean;
  governor: string | null;
  /** Allow host and VM to share a core's SMT siblings. */
  allowSmtSplit: boolean;
}

/**
 * What the libvirt hook's --isolate does while the VM runs: the host's units,
 * the movable IRQs and the unbound workqueues onto the host CPUs; the
 * governor is left alone and SMT siblings are never split.
 */
export const HOOK_ISOLATION = { irqs: true, workqueues: true, governor: null, allowSmtSplit: false } as const;

/** Cores whose SMT siblings would be split between host and VM. */
export function splitCores(topology: CpuTopology | null, vm: Set<number>): number[][] {
  if (!topology) return [];
  return coresOf(topology)
    .map((c) => c.cpus)
    .filter((cpus) => cpus.some((x) => vm.has(x)) && cpus.some((x) => !vm.has(x)));
}

/**
 * The VM CPUs checked against the host: present, online, leaving the host a
 * CPU, whole cores (SMT siblings together unless allowed). Shared by the
 * runtime isolation and the boot-time kernel arguments.
 */
export function checkVmCpus(snap: Pick<HostSnapshot, 'cpuTopology' | 'isolation'>, vmCpus: number[], source: string, allowSmtSplit: boolean): { problems: Problem[]; warnings: string[]; host: number[]; vm: Set<number>; spec: string } {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const refuse = (code: string, subject: string, message: string, hint: string) => problems.push({ code, subject, message, hint });
  const online = snap.cpuTopology?.online ?? [];
  const present = new Set(snap.isolation.presentCpus ?? online);
  const vm = new Set(vmCpus);
  const absent = vmCpus.filter((c) => !present.has(c));
  const offline = vmCpus.filter((c) => present.has(c) && !online.includes(c));
  const spec = formatCpuList(vmCpus);
  if (!vmCpus.length) refuse('E_NO_VM_CPUS', source, `${source} names no CPU for the VM`, 'give the VM CPUs, e.g. --cpus 2-7');
  if (absent.length) refuse('E_CPU_NOT_PRESENT', spec, `CPU ${formatCpuList(absent)} (from ${source}) does not exist on this host (present: ${formatCpuList(present)})`, `choose VM CPUs among ${formatCpuList(online)}, leaving at least one to the host`);
  if (offline.length) refuse('E_CPU_OFFLINE', spec, `CPU ${formatCpuList(offline)} (from ${source}) is offline`, `bring it online (echo 1 > /sys/devices/system/cpu/cpu${offline[0]}/online) or leave it out`);
  const host = online.filter((c) => !vm.has(c));
  if (vmCpus.length && !absent.length && !host.length) refuse('E_NO_HOST_CPU', spec, `${source} takes every online CPU (${formatCpuList(online)}): the host would have none left`, 'leave at least one core (with its SMT sibling) to the host, e.g. CPU 0');
  const split = splitCores(snap.cpuTopology, vm);
  if (split.length) {
    const text = `the VM CPUs split ${split.length} core(s) between host and VM: ${split.map((c) => `CPU ${formatCpuList(c)}`).join(', ')} are SMT siblings (they share the core's caches and execution units)`;
    if (allowSmtSplit) warnings.push(text);
    else refuse('E_SMT_SPLIT', spec, text, `give the VM whole cores (add or drop the sibling), or allow it with --allow-smt-split`);
  }
  return { problems, warnings, host, vm, spec };
}

/**
 * Boot-time isolation (kernel-parameters.txt): isolcpus= with managed_irq and
 * domain (the VM CPUs leave the scheduler domains and keep managed IRQs off
 * where possible), nohz_full= and rcu_nocbs= for the VM CPUs, irqaffinity= the
 * host CPUs. Not undoable at runtime: they go through the boot plan and its undo.
 */
export function bootIsolationArgs(vmCpus: number[], host: number[]): string[] {
  const vm = formatCpuList(vmCpus);
  return [`isolcpus=managed_irq,domain,${vm}`, `nohz_full=${vm}`, `rcu_nocbs=${vm}`, `irqaffinity=${formatCpuList(host)}`];
}

export function planIsolate(snap: HostSnapshot, intent: IsolateIntent): Plan {
  const plan = emptyPlan(ISOLATE_KIND, { ...intent });
  const iso = snap.isolation;
  const refuse = (code: string, subject: string, message: string, hint: string) => plan.problems.push({ code, subject, message, hint });

  if (!iso.systemd) refuse('E_NO_SYSTEMD', 'systemd', 'systemd is not running as PID 1 (/run/systemd/system is missing): isolate restricts the host through systemd units', 'use the boot-time isolation instead: vfiokit plan --isolate LIST');
  if (iso.cgroup === 'v1' || iso.cgroup === 'hybrid' || iso.cgroup === null) {
    const what = iso.cgroup === null ? 'the cgroup layout is unknown (/proc/mounts does not show /sys/fs/cgroup)' : iso.cgroup === 'hybrid' ? 'the host uses the hybrid cgroup layout (v2 only at /sys/fs/cgroup/unified; the cpuset controller stays on v1)' : 'the host uses cgroup v1 only';
    refuse(iso.cgroup === 'hybrid' ? 'E_CGROUP_HYBRID' : 'E_CGROUP_V1', CGROUP_ROOT, `${what}: isolate needs the unified cgroup v2 hierarchy`, 'boot with systemd.unified_cgroup_hierarchy=1 (the default since systemd 247), or use the boot-time isolation: vfiokit plan --isolate LIST');
  } else if (!iso.controllers.includes('cpuset')) {
    refuse('E_NO_CPUSET_CONTROLLER', CGROUP_CONTROLLERS, `the cpuset controller is not available on cgroup v2 (cgroup.controllers: ${iso.controllers.join(' ') || 'empty'})`, 'it may be bound to a v1 hierarchy (cgroup_no_v1=all on the kernel command line frees it), or the kernel lacks CONFIG_CPUSETS');
  }

  const checked = checkVmCpus(snap, intent.vmCpus, intent.source, intent.allowSmtSplit);
  plan.problems.push(...checked.problems);
  plan.warnings.push(...checked.warnings);
  const { host, vm, spec } = checked;
  if (plan.problems.length) return plan;

  const hostList = formatCpuList(host);
  plan.summary.push(`VM CPUs ${spec} (${intent.source}); the host keeps CPU ${hostList}`);
  for (const unit of HOST_UNITS) {
    // A unit without a cgroup yet (user.slice before the first login) gets the property when it starts.
    const u = iso.units.find((x) => x.unit === unit) ?? { cpus: null, dropIn: null };
    plan.steps.push({
      kind: 'unit-property',
      unit,
      property: ALLOWED_CPUS,
      value: hostList,
      attr: cgroupFile(unit, 'cpuset.cpus'),
      dropIn: runtimeDropIn(unit, ALLOWED_CPUS),
      before: { value: u.cpus, dropIn: u.dropIn },
      reason: `keep ${unit} on the host CPUs while the VM runs (runtime only; ${u.cpus ? `was ${u.cpus}` : 'AllowedCPUs was not set'})`,
    });
  }
  const machine = iso.units.find((x) => x.unit === 'machine.slice');
  const mEff = machine?.effective ? parseCpuList(machine.effective) : null;
  if (mEff && intent.vmCpus.some((c) => !mEff.includes(c))) plan.warnings.push(`machine.slice (where libvirt runs the VMs) is granted only CPU ${machine!.effective}: vCPUs pinned to ${formatCpuList(intent.vmCpus.filter((c) => !mEff.includes(c)))} will fail to start`);

  if (intent.irqs) {
    let movable = 0;
    if (iso.defaultIrqAffinity !== null) {
      const mask = formatCpuMask(host, cpuMaskBits(iso.defaultIrqAffinity));
      if (!sameMask(iso.defaultIrqAffinity, mask)) plan.steps.push(attrStep(PROC_IRQ_DEFAULT_AFFINITY, mask, iso.defaultIrqAffinity, 'new IRQs start on the host CPUs'));
    }
    for (const { irq, affinity } of iso.irqs) {
      const cur = parseCpuList(affinity);
      if (!cur || cur.every((c) => !vm.has(c))) continue;
      const keep = cur.filter((c) => !vm.has(c));
      plan.steps.push({ ...attrStep(irqAffinityList(irq), formatCpuList(keep.length ? keep : host), affinity, `IRQ ${irq} off the VM CPUs`), optional: true });
      movable++;
    }
    plan.summary.push(`IRQs: ${movable} of ${iso.irqs.length} reach VM CPUs and move to the host CPUs (managed IRQs the kernel keeps are counted, not failed)`);
    if (iso.irqbalance) plan.warnings.push('irqbalance is running and will move IRQs back onto the VM CPUs: stop it while the VM runs, or ban the VM CPUs (IRQBALANCE_BANNED_CPULIST in /etc/default/irqbalance)');
  }
  if (intent.workqueues) {
    if (iso.workqueueMask === null) plan.warnings.push(`${WORKQUEUE_CPUMASK} is missing: unbound workqueues are not moved`);
    else {
      const mask = formatCpuMask(host, cpuMaskBits(iso.workqueueMask));
      if (!sameMask(iso.workqueueMask, mask)) plan.steps.push(attrStep(WORKQUEUE_CPUMASK, mask, iso.workqueueMask, 'unbound workqueues on the host CPUs'));
    }
  }
  if (intent.governor) {
    const gov = intent.governor;
    for (const cpu of intent.vmCpus) {
      const g = iso.governors.find((x) => x.cpu === cpu);
      if (!g) {
        refuse('E_NO_CPUFREQ', `cpu${cpu}`, `CPU ${cpu} has no cpufreq governor (${cpufreqAttr(cpu, 'scaling_governor')} is missing)`, 'drop --governor (the CPU frequency is not under the kernel\'s control here, e.g. in a VM)');
        continue;
      }
      if (!g.available.includes(gov)) {
        refuse('E_GOVERNOR_UNAVAILABLE', gov, `CPU ${cpu} does not offer the governor '${gov}' (available: ${g.available.join(' ') || 'none'})`, `use one of: ${g.available.join(', ')}`);
        continue;
      }
      if (g.governor !== gov) plan.steps.push({ ...attrStep(cpufreqAttr(cpu, 'scaling_governor'), gov, g.governor, `CPU ${cpu} (VM) at the ${gov} governor`), expect: gov });
    }
  }
  if (plan.problems.length) plan.steps = [];
  return plan;
}

function attrStep(path: string, value: string, before: string, reason: string): Step & { kind: 'write-attr' } {
  return { kind: 'write-attr', path, value, before, restore: { value: before }, reason };
}

function sameMask(a: string, b: string): boolean {
  const x = parseCpuMaskSafe(a);
  const y = parseCpuMaskSafe(b);
  return x !== null && x === y;
}

const parseCpuMaskSafe = (t: string) => parseCpuMask(t)?.join(',') ?? null;
