// Scenario 4 — crash safety. The guest loses power in the middle of
// `vfiokit apply` at several points (a watcher in the guest triggers an
// immediate power-off, without syncing, when the point is reached). The next
// boot must come up; vfiokit must report the interrupted transaction and
// `vfiokit recover` must either finish it or roll it back — and the boot after
// that must agree with what it says: passthrough in effect, or the original
// configuration byte for byte with the host drivers.

import { SkipTest, type TestContext, type TestDef } from '../lib/harness.js';
import { getImage } from '../lib/images.js';
import { driversOf, GuestSession, outputOf, rcOf } from '../lib/session.js';
import { bootstateDiff, functionsOf, GPU_ID, gpus, listingOf, onHostDrivers, onVfio } from './s2-boot.js';

interface CutPoint {
  id: string;
  what: string;
  /** Shell condition, true once the point is reached (evaluated every ~50 ms). */
  condition: string;
  /** Polls to wait after the condition first holds (lets a regeneration get half-way). */
  delayPolls: number;
  /** Rough minutes (TestDef.cost). */
  cost: number;
}

const running = (names: string) => `grep -qsxE '${names}' /proc/[0-9]*/comm`;

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

function applyWithCut(p: CutPoint): string {
  return `
lab_listing before
lab_bootstate before
GPU=$(lab_find ${GPU_ID} | head -n 1)
: >"$LAB_OUT/apply.marker"
sleep 1.1
# The watcher: cut the power when the point is reached.
(
  n=0; seen=0
  while :; do
    if [ $seen = 0 ] && ${p.condition}; then seen=1; fi
    if [ $seen = 1 ]; then
      if [ $n -ge ${p.delayPolls} ]; then
        echo ${p.id} >"$LAB_OUT/cut"
        echo "LAB: power cut at ${p.id}"
        echo o >/proc/sysrq-trigger
        sleep 30
      fi
      n=$((n + 1))
    fi
    sleep 0.05
  done
) &
lab_run apply vfiokit apply "\${GPU#0000:}" --yes
# apply finished before the point was reached: no cut happened.
sleep 0.5
lab_bootstate applied
`;
}

const AFTER_CUT = `
lab_listing boot
lab_run status-first vfiokit status --json
lab_run recover vfiokit recover
lab_run status vfiokit status
lab_bootstate recovered
`;

const FINAL = `
lab_listing boot
lab_bootstate boot
lab_run status vfiokit status
`;

async function crash(t: TestContext, p: CutPoint): Promise<void> {
  const image = await getImage('grub-itools');
  const s = new GuestSession(t, image, { topology: 'gpu' });
  await s.init();
  const r1 = await s.boot(`apply-cut-${p.id}`, applyWithCut(p), { timeoutMs: 40 * 60_000, allowUnfinished: true });
  const before = listingOf(r1, 'before');
  const gpu = gpus(before)[0];
  t.require('the guest has the GPU-like device', !!gpu);
  if (r1.finished === 'ok' && r1.read('cut') === undefined) {
    throw new SkipTest(`apply (exit ${rcOf(r1, 'apply')}) finished without reaching the point "${p.what}" — nothing was interrupted`);
  }
  t.require(`the power was cut ${p.what}`, r1.read('cut')?.trim() === p.id && !r1.finished, `cut=${r1.read('cut')?.trim() ?? 'none'}, finished=${r1.finished ?? 'no'}`);
  t.log(`power cut at ${p.id}; booting again`);

  const r2 = await s.boot('after-cut', AFTER_CUT, { timeoutMs: 40 * 60_000 });
  t.check('the guest boots after the power cut', r2.finished === 'ok');
  const said = `${outputOf(r2, 'status-first')}\n${outputOf(r2, 'recover')}`;
  t.check(
    'vfiokit reports the interrupted transaction (first command or `recover`)',
    /interrupt|incomplete|unfinished|roll(ed)?[ -]?back|resum|recover|pending|crash/i.test(said),
    said.slice(0, 800),
  );
  t.check('`vfiokit recover` exits 0', rcOf(r2, 'recover') === 0, `exit ${rcOf(r2, 'recover')}\n${outputOf(r2, 'recover')}`);
  const rolledBack = bootstateDiff(r1.read('before.bootstate') ?? '', r2.read('recovered.bootstate') ?? '');
  const outcome = rolledBack.length === 0 ? 'rolled back' : 'finished';
  t.log(`after recover: ${outcome}${rolledBack.length ? ` (changed: ${rolledBack.join(', ')})` : ''}; status exit ${rcOf(r2, 'status')}`);

  const r3 = await s.boot('after-recover', FINAL);
  const l3 = listingOf(r3, 'boot');
  if (outcome === 'rolled back') {
    t.check('rolled back: the next boot has the host drivers', onHostDrivers(l3, gpu), driversOf(l3, functionsOf(gpu)));
    const d = bootstateDiff(r1.read('before.bootstate') ?? '', r3.read('boot.bootstate') ?? '');
    t.check('rolled back: boot configuration byte-identical to before apply', d.length === 0, d.join(', '));
    t.check('rolled back: `vfiokit status` does not claim passthrough is in effect', rcOf(r3, 'status') !== 0, outputOf(r3, 'status'));
  } else {
    t.check('finished: the next boot has both GPU functions on vfio-pci', onVfio(l3, gpu), driversOf(l3, functionsOf(gpu)));
    t.check('finished: `vfiokit status` exits 0 after the reboot', rcOf(r3, 'status') === 0, `exit ${rcOf(r3, 'status')}\n${outputOf(r3, 'status')}`);
  }
}

export const scenario4: TestDef[] = CUT_POINTS.map((p) => ({
  id: `4.${p.id}`,
  title: `crash safety: power cut ${p.what}`,
  needs: ['apply', 'status', 'recover'],
  cost: p.cost,
  run: (t) => crash(t, p),
}));
