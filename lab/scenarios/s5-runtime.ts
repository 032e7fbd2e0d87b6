// Scenario 5 — runtime binding and VM start, in a fast-boot guest with an
// Intel IOMMU: `vfiokit bind` moves the GPU-like group to vfio-pci now; a
// nested QEMU started from `vfiokit vm qemu`'s command line opens the device
// (QMP query-pci shows it); `vfiokit unbind` gives the functions back to their
// original drivers.

import path from 'node:path';
import { defineLabTest, type BootView } from '../lib/declare.js';
import type { TestContext } from '../lib/harness.js';
import { repoRoot } from '../lib/util.js';
import { driversOf, functionsOf, GPU_ID, gpus, onHostDrivers, onVfio } from '../lib/gpu.js';

const FIND_GPU = [`GPU=$(lab_find ${GPU_ID} | head -n 1)`, 'S=${GPU#0000:}'];

/** The GPU-like device, required on its host drivers before anything moved. */
function gpuBefore(b: BootView, t: TestContext): string {
  const before = b.listing('before');
  const gpu = gpus(before)[0];
  t.require('the guest has the GPU-like device on its host drivers', !!gpu && onHostDrivers(before, gpu), gpu ? driversOf(before, functionsOf(gpu)) : 'none');
  return gpu!;
}

function runtimeChecks(b: BootView, t: TestContext): void {
  const gpu = gpuBefore(b, t);
  const bound = b.listing('bound');
  t.check('after bind: both functions are on vfio-pci', onVfio(bound, gpu), driversOf(bound, functionsOf(gpu)));
  const group = bound.devices.get(gpu)?.group;
  const nodes = (b.read('bound.vfio') ?? '').trim().split(/\s+/);
  t.check('after bind: /dev/vfio/<group> exists', group != null && nodes.includes(String(group)), `group ${group}; /dev/vfio: ${nodes.join(' ')}`);
  let res: { waitedMs?: number; qtreeVfio?: string[]; started?: boolean; qmpOk?: boolean; pci?: { addr: string; id: string }[]; stderr?: string; error?: string; adaptations?: string[]; argv?: string[] } = {};
  try {
    res = JSON.parse(b.read('nested.json') ?? '{}');
  } catch {
    /* reported below */
  }
  const ids = (res.pci ?? []).map((d) => d.id);
  t.check(
    'the nested QEMU from `vfiokit vm qemu` starts and QMP answers',
    res.started === true && res.qmpOk === true,
    `${res.error ?? ''}${res.stderr ? `\nqemu stderr: ${res.stderr.trim().slice(0, 1500)}` : ''}\nargv: ${(res.argv ?? []).join(' ')}`,
  );
  t.check('QMP query-pci shows the passed-through GPU (1234:1111) and its audio function (8086:293e)', ids.includes('1234:1111') && ids.includes('8086:293e'), `nested PCI: ${ids.join(' ')}`);
  t.log(`nested VM: query-pci after ${((res.waitedMs ?? 0) / 1000).toFixed(0)}s; vfio devices in its qtree: ${(res.qtreeVfio ?? []).join(' ;; ') || 'none'}`);
  if (res.adaptations?.length) t.log(`nested VM command adapted for TCG: ${res.adaptations.join('; ')}`);
  const after = b.listing('after');
  t.check('after unbind: the original drivers are back', onHostDrivers(after, gpu), driversOf(after, functionsOf(gpu)));
}

/**
 * The engine on a real kernel: `vfiokit bind` killed with SIGKILL right after
 * the first device moved (VFIOKIT_KILL_AT_STEP), `vfiokit recover` puts every
 * function back on its original driver; then bind → `vfiokit undo` → back.
 */
function crashRecoverChecks(b: BootView, t: TestContext): void {
  const gpu = gpuBefore(b, t);
  const { rc, out, secs, listing } = b;
  const killed = listing('killed');
  t.check('after the kill: the sysfs sequence had begun (the GPU on vfio-pci) but not finished', killed.devices.get(gpu)?.driver === 'vfio-pci' && !onVfio(killed, gpu), driversOf(killed, functionsOf(gpu)));
  t.check('after recover: every function back on its original driver', onHostDrivers(listing('recovered'), gpu), driversOf(listing('recovered'), functionsOf(gpu)));
  t.check('`vfiokit bind` exits 0 and moves both functions', rc('bind') === 0 && onVfio(listing('bound'), gpu), `exit ${rc('bind')}\n${out('bind')}\n${driversOf(listing('bound'), functionsOf(gpu))}`);
  t.check('`vfiokit undo` exits 0 and gives both functions back', rc('undo') === 0 && onHostDrivers(listing('undone'), gpu), `exit ${rc('undo')}\n${out('undo')}\n${driversOf(listing('undone'), functionsOf(gpu))}`);
  t.log(`timings: killed bind ${secs('killed')} s, recover ${secs('recover')} s, bind ${secs('bind')} s, undo ${secs('undo')} s`);
}

const historyStates = (j: any): string => ((j.transactions ?? []) as { kind: string; state: string }[]).map((x) => `${x.kind}:${x.state}`).join(' ');

export const scenario5 = [
  defineLabTest({
    id: '5.bind-vm',
    title: 'runtime bind, nested QEMU from `vm qemu` opens the device, unbind restores drivers',
    needs: ['bind', 'unbind', 'vm'],
    cost: 0.7,
    guest: { kind: 'fast' },
    machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1536 },
    boots: [
      {
        name: 'boot',
        timeoutMs: 30 * 60_000,
        steps: [
          'lab_coldplug',
          'lab_listing before',
          ...FIND_GPU,
          { label: 'bind', run: 'vfiokit bind "$S" --yes', expectExit: 0, require: true, check: (b) => `\`vfiokit bind ${gpus(b.listing('before'))[0]?.slice(5) ?? '(no GPU found)'} --yes\` exits 0` },
          'lab_listing bound',
          'lab_vfio_devnodes bound',
          { label: 'vmqemu', run: 'vfiokit vm qemu lab-nested --device "$S" --memory 256M --pin none', expectExit: 0, check: '`vfiokit vm qemu` exits 0' },
          {
            label: 'nested',
            run: `node ${path.join(repoRoot(), 'dist', 'lab', 'guest', 'nested-vm.js')} "$LAB_OUT/vmqemu.out" "$LAB_OUT/nested.json"`,
            env: { LAB_NESTED_EXPECT: '1234:1111,8086:293e' },
          },
          { label: 'unbind', run: 'vfiokit unbind "$S" --yes', expectExit: 0, check: '`vfiokit unbind --yes` exits 0' },
          'lab_listing after',
        ],
        checks: runtimeChecks,
      },
    ],
  }),
  defineLabTest({
    id: '5.crash-recover',
    title: 'bind killed with SIGKILL midway → recover restores every driver; bind → undo',
    needs: ['bind', 'recover', 'undo', 'history'],
    cost: 0.5,
    guest: { kind: 'fast' },
    machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1024 },
    boots: [
      {
        name: 'boot',
        timeoutMs: 30 * 60_000,
        steps: [
          'lab_coldplug',
          'lab_listing before',
          ...FIND_GPU,
          { label: 'killed', run: 'vfiokit bind "$S" --yes', env: { VFIOKIT_KILL_AT_STEP: '2' }, expectExit: 137, check: '`vfiokit bind` killed with SIGKILL midway (exit 137)' },
          'lab_listing killed',
          { label: 'recover', run: 'vfiokit recover', expectExit: 0, check: '`vfiokit recover` exits 0' },
          'lab_listing recovered',
          { label: 'bind', run: 'vfiokit bind "$S" --yes' },
          'lab_listing bound',
          { label: 'undo', run: 'vfiokit undo --yes' },
          'lab_listing undone',
          {
            label: 'history',
            run: 'vfiokit history --json',
            expectJson: {
              check: '`vfiokit history` shows the killed bind rolled back and the second one undone',
              ok: (j) => historyStates(j) === 'runtime-bind:rolled-back runtime-bind:undone',
              detail: (j) => historyStates(j),
            },
          },
        ],
        checks: crashRecoverChecks,
      },
    ],
  }),
];
