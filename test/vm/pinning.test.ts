import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspect } from '../../src/host/inspect.js';
import type { CpuTopology } from '../../src/model/snapshot.js';
import { formatCpuList } from '../../src/formats/cpu-list.js';
import { guestTopology, planPinning } from '../../src/vm/pinning.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { alderLakeDesktop, dualXeonServer, ryzenDesktop } from './hosts.js';

const topo: Record<string, CpuTopology> = {};
const roots: string[] = [];
beforeAll(() => {
  for (const [n, h] of Object.entries({ ryzen: ryzenDesktop, adl: alderLakeDesktop, xeon: dualXeonServer })) {
    const r = buildFakeHost(h);
    roots.push(r);
    topo[n] = inspect(r, { names: false }).cpuTopology!;
  }
}, 60_000);
afterAll(async () => {
  await Promise.all([...roots].map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});

const pin = (t: CpuTopology, vcpus: number | null, preferNode: number | null = null, preferCpus: number[] | null = null) => planPinning({ topology: t, vcpus, preferNode, preferCpus });

describe('pinning policy', () => {
  it('Ryzen 5950X: defaults to the whole CCD without core 0, SMT pairs as guest threads', () => {
    const { plan, problems } = pin(topo.ryzen, null);
    expect(problems).toEqual([]);
    expect(plan!.vcpus).toBe(16);
    expect(formatCpuList(plan!.vcpuPins)).toBe('8-15,24-31');
    expect(plan!.vcpuPins.slice(0, 4)).toEqual([8, 24, 9, 25]);
    expect(plan!.hostCpus).toEqual([0, 16]);
    expect(plan!.topology).toEqual({ sockets: 1, dies: 1, cores: 8, threads: 2 });
    expect(plan!.l3Domains).toBe(1);
  });

  it('Ryzen 5950X: 8 vCPUs stay on the CCD that does not hold core 0', () => {
    const { plan } = pin(topo.ryzen, 8);
    expect(formatCpuList(plan!.vcpuPins)).toBe('8-11,24-27');
    expect(plan!.warnings).toEqual([]);
  });

  it('Ryzen 5950X: 24 vCPUs spill into the second CCD with a warning and a flat die layout', () => {
    const { plan } = pin(topo.ryzen, 24);
    expect(plan!.vcpuPins).not.toContain(0);
    expect(plan!.vcpuPins).not.toContain(16);
    expect(plan!.l3Domains).toBe(2);
    expect(plan!.warnings.join('\n')).toMatch(/span 2 L3 cache domains/);
    const t = plan!.topology;
    expect(t.sockets * t.dies * t.cores * t.threads).toBe(24);
    expect(t.threads).toBe(2);
  });

  it('Ryzen 5950X: 30 vCPUs (all but core 0) use both CCDs as two guest dies', () => {
    const { plan } = pin(topo.ryzen, 30);
    expect(plan!.vcpuPins).toHaveLength(30);
    // 8 cores on CCD1 + 7 on CCD0: uneven, so no dies.
    expect(plan!.topology.dies).toBe(1);
  });

  it('odd vCPU counts leave a sibling to the host and say so; the guest gets no fake SMT', () => {
    const { plan } = pin(topo.ryzen, 5);
    expect(plan!.vcpuPins).toEqual([8, 24, 9, 25, 10]);
    expect(plan!.topology).toEqual({ sockets: 1, dies: 1, cores: 5, threads: 1 });
    expect(plan!.warnings.join('\n')).toMatch(/CPU 26 .* stays with the host/);
  });

  it('refuses more vCPUs than remain after core 0', () => {
    const { plan, problems } = pin(topo.ryzen, 31);
    expect(plan).toBeNull();
    expect(problems[0]).toMatchObject({ code: 'E_PIN_TOO_MANY' });
    expect(problems[0].hint).toMatch(/--vcpus 30 or fewer.*--pin none/);
  });

  it('i9-12900K: performance cores only, E-cores left to the host until P-cores run out', () => {
    const d = pin(topo.adl, null).plan!;
    expect(d.vcpus).toBe(12);
    expect(formatCpuList(d.vcpuPins)).toBe('2-13');
    expect(d.hostCpus).toEqual([0, 1]);
    expect(d.topology).toEqual({ sockets: 1, dies: 1, cores: 6, threads: 2 });
    const all = pin(topo.adl, 14).plan!;
    expect(formatCpuList(all.vcpuPins)).toBe('2-15');
    expect(all.warnings).toEqual([]);
    const more = pin(topo.adl, 18).plan!;
    expect(formatCpuList(more.vcpuPins)).toBe('2-19');
    expect(more.warnings.join('\n')).toMatch(/efficiency core/);
    expect(more.topology.threads).toBe(1);
  });

  it('dual Xeon: prefers the GPU node, memory follows', () => {
    const d = pin(topo.xeon, 8, 1).plan!;
    expect(formatCpuList(d.vcpuPins)).toBe('10-13,30-33');
    expect(d.nodes).toEqual([1]);
    const n0 = pin(topo.xeon, 8, 0).plan!;
    expect(formatCpuList(n0.vcpuPins)).toBe('1-4,21-24');
    // local_cpulist without a NUMA node works the same way.
    const lc = pin(topo.xeon, 8, null, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39]).plan!;
    expect(lc.vcpuPins).toEqual(d.vcpuPins);
  });

  it('dual Xeon: a guest spanning both sockets warns and keeps a consistent flat topology', () => {
    const d = pin(topo.xeon, 36, 1).plan!;
    // 10 cores of node 1 + 8 of node 0 (core 0 kept): uneven, flat sockets.
    expect(d.topology.sockets * d.topology.dies * d.topology.cores * d.topology.threads).toBe(36);
    expect(d.warnings.join('\n')).toMatch(/outside NUMA node 1/);
  });

  it('guest sockets and dies mirror even host packages and L3 domains', () => {
    const core = (pkg: number, l3: string, a: number) => ({ core: { cpus: [a, a + 100], package: pkg, node: pkg, l3, kind: null }, take: 2 });
    const chosen = [core(0, 'a', 0), core(0, 'a', 1), core(0, 'b', 2), core(0, 'b', 3), core(1, 'c', 4), core(1, 'c', 5), core(1, 'd', 6), core(1, 'd', 7)];
    expect(guestTopology(chosen)).toEqual({ sockets: 2, dies: 2, cores: 2, threads: 2 });
    expect(guestTopology(chosen.slice(0, 7))).toEqual({ sockets: 1, dies: 1, cores: 7, threads: 2 });
    expect(guestTopology([...chosen.slice(0, 3), { ...chosen[3], take: 1 }])).toEqual({ sockets: 1, dies: 1, cores: 7, threads: 1 });
  });

  it('invariants for every vCPU count on every host', () => {
    for (const [name, t] of Object.entries(topo)) {
      const siblingsOf = new Map(t.cpus.map((c) => [c.id, c.siblings]));
      const host = t.cpus[0].siblings;
      const eff = new Set(t.hybrid?.efficiency ?? []);
      const perfThreads = t.online.filter((c) => !eff.has(c) && !host.includes(c)).length;
      for (let n = 1; n <= t.online.length - host.length; n++) {
        const { plan, problems } = pin(t, n, name === 'xeon' ? 1 : null);
        expect(problems, `${name} ${n}`).toEqual([]);
        const p = plan!;
        expect(new Set(p.vcpuPins).size).toBe(n);
        expect(p.vcpuPins.some((c) => host.includes(c))).toBe(false);
        expect(p.hostCpus).toEqual(host);
        const { sockets, dies, cores, threads } = p.topology;
        expect(sockets * dies * cores * threads).toBe(n);
        if (threads > 1) for (let i = 0; i < n; i += threads) expect(siblingsOf.get(p.vcpuPins[i])).toEqual(p.vcpuPins.slice(i, i + threads).sort((a, b) => a - b));
        if (n <= perfThreads) expect(p.vcpuPins.some((c) => eff.has(c))).toBe(false);
        // Whole cores: at most one pinned core is split.
        const split = new Set(p.vcpuPins.filter((c) => siblingsOf.get(c)!.some((s) => !p.vcpuPins.includes(s))).map((c) => siblingsOf.get(c)!.join()));
        expect(split.size).toBeLessThanOrEqual(1);
      }
    }
  });
});
