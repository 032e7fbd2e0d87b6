// Scenario 4 — crash safety. The guest loses power in the middle of
// `vfiokit apply` at several points (a watcher in the guest triggers an
// immediate power-off, without syncing, when the point is reached). The next
// boot must come up; vfiokit must report the interrupted transaction and
// `vfiokit recover` must either finish it or roll it back — and the boot after
// that must agree with what it says: passthrough in effect, or the original
// configuration byte for byte with the host drivers.

import { defineLabTest, SkipTest, type LabRun } from '../lib/declare.js';
import { bootstateDiff, driversOf, functionsOf, GPU_ID, gpus, onHostDrivers, onVfio } from '../lib/gpu.js';
import { powerCutWatcher, running, type CutPoint } from '../lib/power-cut.js';

export type { CutPoint };

export const CUT_POINTS: CutPoint[] = [
  { id: 'journal', what: 'right after the journal is first written (before any step)', condition: 'find /var/lib/vfiokit/journal -type f 2>/dev/null | grep -q .', delayPolls: 0, cost: 2 },
  {
    id: 'config-written',
    what: 'right after the first boot-configuration file is replaced',
    condition: 'find /etc/default /etc/kernel /etc/modprobe.d /etc/modules-load.d /etc/initramfs-tools /etc/dracut.conf.d -newer "$LAB_OUT/apply.marker" -type f 2>/dev/null | grep -q .',
    delayPolls: 0,
    cost: 2.8,
  },
  { id: 'initramfs', what: 'half-way through regenerating the initramfs', condition: running('mkinitramfs|update-initramf|dracut'), delayPolls: 40, cost: 2.9 },
  { id: 'bootloader', what: 'while the bootloader configuration is regenerated', condition: running('grub-mkconfig|update-grub|kernel-install|bootctl'), delayPolls: 5, cost: 4.6 },
];

/** Rolled back (the boot files as before apply) or finished, as `recover` left them. */
function outcome(r: LabRun): 'rolled back' | 'finished' {
  return bootstateDiff(r.boot(cutBoot(r)).read('before.bootstate') ?? '', r.boot('after-cut').read('recovered.bootstate') ?? '').length === 0 ? 'rolled back' : 'finished';
}
const cutBoot = (r: LabRun) => r.boots[0]!.name;
const gpuOf = (r: LabRun) => gpus(r.boot(cutBoot(r)).listing('before'))[0]!;

const crash = (p: CutPoint) =>
  defineLabTest({
    id: `4.${p.id}`,
    title: `crash safety: power cut ${p.what}`,
    needs: ['apply', 'status', 'recover'],
    cost: p.cost,
    guest: { kind: 'image', image: 'grub-itools' },
    machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1536 },
    boots: [
      {
        name: `apply-cut-${p.id}`,
        timeoutMs: 40 * 60_000,
        allowUnfinished: true,
        steps: [
          'lab_listing before',
          'lab_bootstate before',
          `GPU=$(lab_find ${GPU_ID} | head -n 1)`,
          ': >"$LAB_OUT/apply.marker"',
          'sleep 1.1',
          powerCutWatcher(p),
          { label: 'apply', run: 'vfiokit apply "${GPU#0000:}" --yes' },
          '# apply finished before the point was reached: no cut happened.',
          'sleep 0.5',
          'lab_bootstate applied',
        ],
        checks: (b, t) => {
          t.require('the guest has the GPU-like device', !!gpus(b.listing('before'))[0]);
          if (b.finished === 'ok' && b.read('cut') === undefined) throw new SkipTest(`apply (exit ${b.rc('apply')}) finished without reaching the point "${p.what}" — nothing was interrupted`);
          t.require(`the power was cut ${p.what}`, b.read('cut')?.trim() === p.id && !b.finished, `cut=${b.read('cut')?.trim() ?? 'none'}, finished=${b.finished ?? 'no'}`);
          t.log(`power cut at ${p.id}; booting again`);
        },
      },
      {
        name: 'after-cut',
        timeoutMs: 40 * 60_000,
        steps: [
          'lab_listing boot',
          { label: 'status-first', run: 'vfiokit status --json' },
          { label: 'recover', run: 'vfiokit recover', expectExit: 0, check: '`vfiokit recover` exits 0' },
          { label: 'status', run: 'vfiokit status' },
          'lab_bootstate recovered',
        ],
        checks: (b, t, r) => {
          t.check('the guest boots after the power cut', b.finished === 'ok');
          const said = `${b.out('status-first')}\n${b.out('recover')}`;
          t.check('vfiokit reports the interrupted transaction (first command or `recover`)', /interrupt|incomplete|unfinished|roll(ed)?[ -]?back|resum|recover|pending|crash/i.test(said), said.slice(0, 800));
          const changed = bootstateDiff(r.boot(cutBoot(r)).read('before.bootstate') ?? '', b.read('recovered.bootstate') ?? '');
          t.log(`after recover: ${outcome(r)}${changed.length ? ` (changed: ${changed.join(', ')})` : ''}; status exit ${b.rc('status')}`);
        },
      },
      {
        name: 'after-recover',
        steps: ['lab_listing boot', 'lab_bootstate boot', { label: 'status', run: 'vfiokit status' }],
        checks: (b, t, r) => {
          const gpu = gpuOf(r);
          const l3 = b.listing('boot');
          if (outcome(r) === 'rolled back') {
            t.check('rolled back: the next boot has the host drivers', onHostDrivers(l3, gpu), driversOf(l3, functionsOf(gpu)));
            const d = bootstateDiff(r.boot(cutBoot(r)).read('before.bootstate') ?? '', b.read('boot.bootstate') ?? '');
            t.check('rolled back: boot configuration byte-identical to before apply', d.length === 0, d.join(', '));
            t.check('rolled back: `vfiokit status` does not claim passthrough is in effect', b.rc('status') !== 0, b.out('status'));
          } else {
            t.check('finished: the next boot has both GPU functions on vfio-pci', onVfio(l3, gpu), driversOf(l3, functionsOf(gpu)));
            t.check('finished: `vfiokit status` exits 0 after the reboot', b.rc('status') === 0, `exit ${b.rc('status')}\n${b.out('status')}`);
          }
        },
      },
    ],
  });

export const scenario4 = CUT_POINTS.map(crash);
