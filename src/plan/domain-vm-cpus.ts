// The VM CPUs a libvirt domain asks for (pure), for `vfiokit isolate --domain`.
// Apart from isolate-plan.ts because it parses domain XML: the boot plan uses
// isolate-plan.ts, and `plan` should not load an XML parser it never calls.

import type { Problem } from '../errors.js';
import { parseCpuList } from '../formats/cpu-list.js';
import { children, hostdevSource, parseDomainXml } from '../formats/libvirt-domain.js';
import type { HostSnapshot } from '../model/snapshot.js';
import { devicePreference, planPinning } from '../vm/pinning.js';
import { HOOK_ISOLATION, planIsolate, type IsolateIntent } from './isolate-plan.js';

/** The VM CPUs a libvirt domain asks for: its <vcpupin> cpusets, else the pinning plan for its <vcpu> count. */
export function domainVmCpus(xml: string, source: string, snap: Pick<HostSnapshot, 'cpuTopology' | 'pci'>): { cpus: number[] | null; how: string; problems: Problem[] } {
  const topology = snap.cpuTopology;
  const d = parseDomainXml(xml, source).documentElement!;
  const pins = children(d, 'cputune').flatMap((t) => children(t, 'vcpupin')).map((p) => p.getAttribute('cpuset') ?? '');
  if (pins.length) {
    const lists = pins.map((p) => parseCpuList(p));
    if (lists.some((l) => l === null)) return { cpus: null, how: '', problems: [{ code: 'E_BAD_CPU_LIST', subject: source, message: `${source}: a <vcpupin cpuset> is not a CPU list (${pins.join(' ')})`, hint: 'fix the domain XML (virsh edit), or give the CPUs with --cpus' }] };
    return { cpus: [...new Set(lists.flatMap((l) => l!))].sort((a, b) => a - b), how: `the <vcpupin>s of ${source}`, problems: [] };
  }
  const n = Number(children(d, 'vcpu')[0]?.textContent?.trim() ?? '');
  if (!topology || !(n > 0)) return { cpus: null, how: '', problems: [{ code: 'E_NO_VM_CPUS', subject: source, message: `${source} pins no vCPUs and ${topology ? 'has no <vcpu> count' : 'the host CPU topology is unknown'}`, hint: 'give the VM CPUs with --cpus LIST, or pin the domain (vfiokit vm xml --pin auto)' }] };
  // The device the VM is given decides where its vCPUs go, as for `vm xml --pin auto`.
  const hostdevs = children(d, 'devices').flatMap((x) => children(x, 'hostdev')).map(hostdevSource).filter((a): a is string => Boolean(a));
  const dev = snap.pci.find((p) => hostdevs.includes(p.address) && p.class.startsWith('03')) ?? snap.pci.find((p) => hostdevs.includes(p.address));
  const p = planPinning({ topology, vcpus: n, ...devicePreference(dev, topology) });
  if (!p.plan) return { cpus: null, how: '', problems: p.problems };
  return { cpus: [...p.plan.vcpuPins].sort((a, b) => a - b), how: `the pinning plan for its ${n} vCPUs (as vm xml --pin auto)`, problems: [] };
}

/** The hook's isolation intent for a domain, or the problems that refuse it (no systemd, cgroup v1, no pinning, a bad <vcpupin>). */
export function hookIsolateIntent(xml: string, source: string, domain: string, snap: HostSnapshot): { intent: IsolateIntent | null; problems: Problem[] } {
  const d = domainVmCpus(xml, source, snap);
  if (!d.cpus) {
    // The host's own refusals (no systemd, cgroup v1…) first: they hold whatever the CPUs.
    const layout = planIsolate(snap, { vmCpus: [], source, domain, ...HOOK_ISOLATION }).problems.filter((p) => p.code !== 'E_NO_VM_CPUS');
    return { intent: null, problems: [...layout, ...d.problems] };
  }
  return { intent: { vmCpus: d.cpus, source: `domain ${domain}: ${d.how}`, domain, ...HOOK_ISOLATION }, problems: [] };
}
