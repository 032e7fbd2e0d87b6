// Scenario 5 — runtime binding and VM start, in a fast-boot guest with an
// Intel IOMMU: `vfiokit bind` moves the GPU-like group to vfio-pci now; a
// nested QEMU started from `vfiokit vm qemu`'s command line opens the device
// (QMP query-pci shows it); `vfiokit unbind` gives the functions back to their
// original drivers.

import path from 'node:path';
import { bootFast } from '../lib/fast-guest.js';
import { guestOutputs } from '../lib/guest-script.js';
import type { TestContext, TestDef } from '../lib/harness.js';
import { repoRoot } from '../lib/util.js';
import { BOOT_HELPERS, driversOf } from '../lib/session.js';
import { functionsOf, GPU_ID, gpus, onHostDrivers, onVfio } from './s2-boot.js';

async function runtime(t: TestContext): Promise<void> {
  const nested = path.join(repoRoot(), 'dist', 'lab', 'guest', 'nested-vm.js');
  const script = `${BOOT_HELPERS}
lab_coldplug
lab_listing before
GPU=$(lab_find ${GPU_ID} | head -n 1)
S=\${GPU#0000:}
lab_run bind vfiokit bind "$S" --yes
lab_listing bound
lab_vfio_devnodes bound
lab_run vmqemu vfiokit vm qemu lab-nested --device "$S" --memory 256M --pin none
export LAB_NESTED_EXPECT=1234:1111,8086:293e
lab_run nested node ${nested} "$LAB_OUT/vmqemu.out" "$LAB_OUT/nested.json"
lab_run unbind vfiokit unbind "$S" --yes
lab_listing after
`;
  const r = await bootFast(t, {
    machine: { iommu: 'intel', topology: 'gpu', cpuVendor: 'GenuineIntel', memMb: 1536 },
    append: 'intel_iommu=on',
    script,
    timeoutMs: 30 * 60_000,
  });
  const { rc, out, listing } = guestOutputs(r.read);
  const before = listing('before');
  const gpu = gpus(before)[0];
  t.require('the guest has the GPU-like device on its host drivers', !!gpu && onHostDrivers(before, gpu), gpu ? driversOf(before, functionsOf(gpu)) : 'none');
  t.require(`\`vfiokit bind ${gpu!.slice(5)} --yes\` exits 0`, rc('bind') === 0, `exit ${rc('bind')}\n${out('bind')}`);
  const bound = listing('bound');
  t.check('after bind: both functions are on vfio-pci', onVfio(bound, gpu!), driversOf(bound, functionsOf(gpu!)));
  const group = bound.devices.get(gpu!)?.group;
  const nodes = (r.read('bound.vfio') ?? '').trim().split(/\s+/);
  t.check('after bind: /dev/vfio/<group> exists', group != null && nodes.includes(String(group)), `group ${group}; /dev/vfio: ${nodes.join(' ')}`);
  t.check('`vfiokit vm qemu` exits 0', rc('vmqemu') === 0, `exit ${rc('vmqemu')}\n${out('vmqemu')}`);
  let res: { waitedMs?: number; qtreeVfio?: string[]; started?: boolean; qmpOk?: boolean; pci?: { addr: string; id: string }[]; stderr?: string; error?: string; adaptations?: string[]; argv?: string[] } = {};
  try {
    res = JSON.parse(r.read('nested.json') ?? '{}');
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
  t.check('`vfiokit unbind --yes` exits 0', rc('unbind') === 0, `exit ${rc('unbind')}\n${out('unbind')}`);
  const after = listing('after');
  t.check('after unbind: the original drivers are back', onHostDrivers(after, gpu!), driversOf(after, functionsOf(gpu!)));
}

/**
 * The engine on a real kernel: \`vfiokit bind\` killed with SIGKILL right after
 * the first device moved (VFIOKIT_KILL_AT_STEP), \`vfiokit recover\` puts every
 * function back on its original driver; then bind → \`vfiokit undo\` → back.
 */
async function crashRecover(t: TestContext): Promise<void> {
  const script = `${BOOT_HELPERS}
lab_coldplug
lab_listing before
GPU=$(lab_find ${GPU_ID} | head -n 1)
S=\${GPU#0000:}
lab_run killed env VFIOKIT_KILL_AT_STEP=2 $LAB_VFIOKIT bind "$S" --yes
lab_listing killed
lab_run recover vfiokit recover
lab_listing recovered
lab_run bind vfiokit bind "$S" --yes
lab_listing bound
lab_run undo vfiokit undo --yes
lab_listing undone
lab_run history vfiokit history --json
`;
  const r = await bootFast(t, {
    machine: { iommu: 'intel', topology: 'gpu', cpuVendor: 'GenuineIntel', memMb: 1024 },
    append: 'intel_iommu=on',
    script,
    timeoutMs: 30 * 60_000,
  });
  const { rc, out, secs, listing } = guestOutputs(r.read);
  const before = listing('before');
  const gpu = gpus(before)[0];
  t.require('the guest has the GPU-like device on its host drivers', !!gpu && onHostDrivers(before, gpu), gpu ? driversOf(before, functionsOf(gpu)) : 'none');
  t.check('`vfiokit bind` killed with SIGKILL midway (exit 137)', rc('killed') === 137, `exit ${rc('killed')}\n${out('killed')}`);
  const killed = listing('killed');
  t.check('after the kill: the sysfs sequence had begun (the GPU on vfio-pci) but not finished', killed.devices.get(gpu!)?.driver === 'vfio-pci' && !onVfio(killed, gpu!), driversOf(killed, functionsOf(gpu!)));
  t.check('`vfiokit recover` exits 0', rc('recover') === 0, `exit ${rc('recover')}\n${out('recover')}`);
  t.check('after recover: every function back on its original driver', onHostDrivers(listing('recovered'), gpu!), driversOf(listing('recovered'), functionsOf(gpu!)));
  t.check('`vfiokit bind` exits 0 and moves both functions', rc('bind') === 0 && onVfio(listing('bound'), gpu!), `exit ${rc('bind')}\n${out('bind')}\n${driversOf(listing('bound'), functionsOf(gpu!))}`);
  t.check('`vfiokit undo` exits 0 and gives both functions back', rc('undo') === 0 && onHostDrivers(listing('undone'), gpu!), `exit ${rc('undo')}\n${out('undo')}\n${driversOf(listing('undone'), functionsOf(gpu!))}`);
  let states: string[] = [];
  try {
    states = (JSON.parse(r.read('history.out') ?? '{}').transactions ?? []).map((x: { kind: string; state: string }) => `${x.kind}:${x.state}`);
  } catch {
    /* reported below */
  }
  t.check('`vfiokit history` shows the killed bind rolled back and the second one undone', states.join(' ') === 'runtime-bind:rolled-back runtime-bind:undone', `${states.join(' ')}\n${out('history').slice(0, 500)}`);
  t.log(`timings: killed bind ${secs('killed')} s, recover ${secs('recover')} s, bind ${secs('bind')} s, undo ${secs('undo')} s`);
}

export const scenario5: TestDef[] = [
  { id: '5.bind-vm', title: 'runtime bind, nested QEMU from `vm qemu` opens the device, unbind restores drivers', needs: ['bind', 'unbind', 'vm'], cost: 0.7, run: runtime },
  { id: '5.crash-recover', title: 'bind killed with SIGKILL midway → recover restores every driver; bind → undo', needs: ['bind', 'recover', 'undo', 'history'], cost: 0.5, run: crashRecover },
];
