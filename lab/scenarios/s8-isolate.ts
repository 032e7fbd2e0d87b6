// Scenario 8 — CPU isolation on a real kernel with systemd and cgroup v2
// (the grub-itools image, booted with 4 vCPUs). `vfiokit isolate --cpus 2-3
// --irqs --workqueues` must leave system.slice, user.slice and init.scope
// granted only the host CPUs (cpuset.cpus.effective, as the kernel computes
// it), every IRQ vfiokit could move and the unbound workqueue mask on the host
// CPUs, and machine.slice with every CPU; `isolate --undo` must put every
// value back as it was (cpusets, runtime drop-ins, IRQ lists, masks). Then a
// kill -9 half-way through (VFIOKIT_KILL_AT_STEP) and `vfiokit recover`: the
// same values as before again.

import { defineLabTest, readJson, type BootView } from '../lib/declare.js';
import type { TestContext } from '../lib/harness.js';
import { cpuList, ISOLATION_HELPERS, parseState, stateDiff } from '../lib/isolation.js';

const HOST = [0, 1];
const VM = '2-3';
const ISOLATE = `vfiokit isolate --cpus ${VM} --irqs --workqueues`;

function isolateChecks(b: BootView, t: TestContext): void {
  const before = parseState(b.read('before.iso'));
  const during = parseState(b.read('during.iso'));
  t.require('the guest has cgroup v2 with systemd (its state was read)', before.has('system.slice.AllowedCPUs') && before.has('irq.default'), b.read('before.iso') ?? 'no state');
  const res: { irqsMoved?: number; irqsKept?: { path: string; errno: string }[]; txid?: string } = readJson(t, 'isolate --json', b.read('isolate.out')) ?? {};
  for (const u of ['system.slice', 'user.slice', 'init.scope']) {
    t.check(`${u}: cpuset.cpus.effective is the host set 0-1 (the kernel's view)`, during.get(`${u}.cpuset.cpus.effective`) === '0-1', `${u}.cpuset.cpus.effective = ${during.get(`${u}.cpuset.cpus.effective`)}`);
    t.check(`${u}: systemd shows AllowedCPUs=0-1`, during.get(`${u}.AllowedCPUs`) === '0-1', String(during.get(`${u}.AllowedCPUs`)));
  }
  const mEff = during.get('machine.slice.cpuset.cpus.effective');
  t.check('machine.slice keeps every CPU (0-3)', mEff === '0-3' || mEff === '<absent>', String(mEff));
  const kept = new Set((res.irqsKept ?? []).map((k) => k.path.split('/')[3]));
  const offHost = [...during].filter(([k, v]) => k.startsWith('irq.') && k !== 'irq.default' && !kept.has(k.slice(4)) && cpuList(v).some((c) => !HOST.includes(c)));
  t.check('every IRQ vfiokit did not report as kept by the kernel is on host CPUs only', offHost.length === 0, offHost.map(([k, v]) => `${k}=${v}`).join(', '));
  t.log(`IRQs moved ${res.irqsMoved ?? '?'}, kept by the kernel ${kept.size}${kept.size ? ` (${[...kept].join(' ')})` : ''}`);
  t.check('the default IRQ affinity is the host mask (3)', /^0*3$/.test(during.get('irq.default')?.replace(/,/g, '') ?? ''), String(during.get('irq.default')));
  t.check('the unbound workqueue mask is the host mask (3)', /^0*3$/.test(during.get('workqueue.cpumask')?.replace(/,/g, '') ?? ''), String(during.get('workqueue.cpumask')));
  t.check('isolating again changes nothing (exit 0, "in effect already")', b.rc('isolate-again') === 0 && /in effect already/.test(b.out('isolate-again')), b.out('isolate-again'));
  const d1 = stateDiff(before, parseState(b.read('after.iso')));
  t.check('after undo every value is as before (cpusets, AllowedCPUs, drop-ins, IRQs, masks)', d1.length === 0, d1.join('\n'));
  const killed = parseState(b.read('killed.iso'));
  t.check('kill -9 after step 2: the host was left half isolated (system.slice restricted)', killed.get('system.slice.cpuset.cpus.effective') === '0-1', String(killed.get('system.slice.cpuset.cpus.effective')));
  const d2 = stateDiff(before, parseState(b.read('recovered.iso')));
  t.check('after recover every value is as before', d2.length === 0, d2.join('\n'));
}

export const scenario8 = [
  defineLabTest({
    id: '8.isolate',
    title: 'CPU isolation on systemd + cgroup v2: isolate, undo, kill -9 midway and recover — every value as before',
    needs: ['isolate'],
    cost: 2.5,
    guest: { kind: 'image', image: 'grub-itools' },
    // 4 vCPUs: two for the host, two to isolate for the VM.
    machine: { iommu: 'intel', topology: 'gpu', smp: 4, memoryMiB: 1536 },
    helpers: [ISOLATION_HELPERS],
    boots: [
      {
        name: 'isolate',
        timeoutMs: 30 * 60_000,
        steps: [
          '# A process in user.slice (no one logs in to the lab guest), so the slice has a cgroup to check.',
          'systemd-run --quiet --slice=user.slice --unit=lab-user-work sleep 3600',
          'lab_isostate before',
          { label: 'isolate', run: `${ISOLATE} --json`, expectExit: 0, check: '`isolate --cpus 2-3 --irqs --workqueues` exits 0' },
          'lab_isostate during',
          { label: 'isolate-again', run: ISOLATE },
          { label: 'undo', run: 'vfiokit isolate --undo', expectExit: 0, check: '`isolate --undo` exits 0' },
          'lab_isostate after',
          { label: 'isolate-killed', run: ISOLATE, env: { VFIOKIT_KILL_AT_STEP: '2' }, expectExit: 137, check: 'kill -9 after step 2: the command died (exit 137)' },
          'lab_isostate killed',
          { label: 'recover', run: 'vfiokit recover', expectExit: 0, check: '`vfiokit recover` exits 0' },
          'lab_isostate recovered',
          { label: 'history', run: 'vfiokit history' },
        ],
        checks: isolateChecks,
      },
    ],
  }),
];
