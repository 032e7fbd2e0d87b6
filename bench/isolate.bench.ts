// `npm run bench:isolate` (also part of `npm run bench`): the CPU plan that
// `vm xml --pin auto` and `vfiokit isolate DOMAIN` share, on the fixture hosts
// with real topologies (Ryzen 9 5950X: two CCDs; Core i9-12900K: P- and
// E-cores; dual-socket Xeon with the GPU on node 1). Printed per host: the VM
// CPUs and what `isolate` leaves to the host, whether the VM CPUs share one L3
// and one NUMA node with the GPU, keep SMT siblings together and avoid
// E-cores; and the planning time (isolate plan included) next to a yardstick
// (a JSON round trip of the snapshot's topology). Goals: one L3 and the
// GPU's node where the host allows it, no split core, no E-core; planning
// a few milliseconds at most (it runs in the libvirt hook, before the VM starts).

import * as fs from 'node:fs';
import { formatCpuList } from '../src/formats/cpu-list.js';
import { inspect } from '../src/host/inspect.js';
import type { HostSnapshot } from '../src/model/snapshot.js';
import { planIsolate, splitCores } from '../src/plan/isolate-plan.js';
import { devicePreference, planPinning } from '../src/vm/pinning.js';
import { buildFakeHost } from '../test/helpers/fake-host.js';
import { VM_HOSTS } from '../test/vm/hosts.js';

const GPUS: Record<string, string> = { 'ryzen-5950x': '0000:01:00.0', 'i9-12900k': '0000:03:00.0', 'dual-xeon': '0000:81:00.0' };

function perCall(f: () => unknown, minMs = 200): number {
  let n = 0;
  const t0 = process.hrtime.bigint();
  let el = 0;
  while (el < minMs) {
    f();
    n++;
    el = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return (el * 1000) / n; // µs
}

/** A cgroup v2 + systemd host for the isolate plan (the fixture trees carry none). */
function withIsolationFacts(s: HostSnapshot): HostSnapshot {
  const online = s.cpuTopology!.online;
  return {
    ...s,
    isolation: {
      cgroup: 'v2',
      controllers: ['cpu', 'cpuset', 'io', 'memory', 'pids'],
      systemd: true,
      units: ['system.slice', 'user.slice', 'init.scope', 'machine.slice'].map((unit) => ({ unit, exists: true, cpus: '', effective: formatCpuList(online), dropIn: null })),
      presentCpus: online,
      irqs: Array.from({ length: 64 }, (_, irq) => ({ irq, affinity: formatCpuList(online) })),
      defaultIrqAffinity: 'f'.repeat(Math.ceil(online.length / 4)),
      workqueueMask: 'f'.repeat(Math.ceil(online.length / 4)),
      governors: [],
      irqbalance: false,
    },
  };
}

console.log('CPU plan (vm xml --pin auto = isolate DOMAIN) on the fixture hosts\n');
for (const [name, host] of Object.entries(VM_HOSTS)) {
  const root = buildFakeHost(host);
  try {
    const snap = withIsolationFacts(inspect(root, { names: false }));
    const topo = snap.cpuTopology!;
    const gpu = snap.pci.find((d) => d.address === GPUS[name]);
    const pref = devicePreference(gpu, topo);
    for (const vcpus of [null, 8]) {
      const r = planPinning({ topology: topo, vcpus, ...pref });
      if (!r.plan) {
        console.log(`${name}: ${r.problems.map((p) => p.message).join('; ')}`);
        continue;
      }
      const p = r.plan;
      const vm = new Set(p.vcpuPins);
      const cpus = topo.cpus.filter((c) => vm.has(c.id));
      const l3s = new Set(cpus.map((c) => (c.l3 ? formatCpuList(c.l3) : '?')));
      const nodes = new Set(cpus.map((c) => c.node));
      const gpuNode = gpu && gpu.numaNode !== null && gpu.numaNode >= 0 ? gpu.numaNode : null;
      const eCores = cpus.filter((c) => c.kind === 'efficiency').length;
      const split = splitCores(topo, vm);
      const iso = planIsolate(snap, { vmCpus: p.vcpuPins, source: name, domain: null, irqs: true, workqueues: true, governor: null, allowSmtSplit: false });
      const hostCpus = topo.online.filter((c) => !vm.has(c));
      console.log(`${name} (${topo.online.length} threads, GPU ${GPUS[name]}${gpuNode !== null ? ` on node ${gpuNode}` : ''}), ${vcpus === null ? 'vCPUs chosen' : `--vcpus ${vcpus}`}:`);
      console.log(`  VM CPUs ${formatCpuList(p.vcpuPins)} (${p.vcpus}), host keeps ${formatCpuList(hostCpus)}; guest ${p.topology.sockets}s×${p.topology.dies}d×${p.topology.cores}c×${p.topology.threads}t`);
      console.log(`  one L3: ${l3s.size === 1 ? 'yes' : `no (${l3s.size})`}; NUMA node(s) ${[...nodes].join(',')}${gpuNode !== null ? ` — with the GPU: ${nodes.size === 1 && nodes.has(gpuNode) ? 'yes' : 'no'}` : ''}; SMT siblings together: ${split.length ? `no (${split.length} split)` : 'yes'}; E-cores: ${topo.hybrid ? eCores : 'n/a (not hybrid)'}`);
      console.log(`  isolate plan: ${iso.problems.length ? `refused: ${iso.problems.map((x) => x.code).join(',')}` : `${iso.steps.length} steps`}`);
      const tPin = perCall(() => planPinning({ topology: topo, vcpus, ...pref }));
      const tIso = perCall(() => planIsolate(snap, { vmCpus: p.vcpuPins, source: name, domain: null, irqs: true, workqueues: true, governor: null, allowSmtSplit: false }));
      const tYard = perCall(() => JSON.parse(JSON.stringify(topo)));
      console.log(`  planning: pinning ${tPin.toFixed(1)} µs, isolate plan (64 IRQs) ${tIso.toFixed(1)} µs; yardstick (JSON round trip of the topology) ${tYard.toFixed(1)} µs`);
      for (const w of p.warnings) console.log(`  warning: ${w}`);
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
