// Scenario 8 — CPU isolation on a real kernel with systemd and cgroup v2
// (the grub-itools image, booted with 4 vCPUs). `vfiokit isolate --cpus 2-3
// --irqs --workqueues` must leave system.slice, user.slice and init.scope
// granted only the host CPUs (cpuset.cpus.effective, as the kernel computes
// it), every IRQ vfiokit could move and the unbound workqueue mask on the host
// CPUs, and machine.slice with every CPU; `isolate --undo` must put every
// value back as it was (cpusets, runtime drop-ins, IRQ lists, masks). Then a
// kill -9 half-way through (VFIOKIT_KILL_AT_STEP) and `vfiokit recover`: the
// same values as before again.

import type { TestContext, TestDef } from '../lib/harness.js';
import { getImage } from '../lib/images.js';
import { GuestSession, outputOf, rcOf } from '../lib/session.js';

const UNITS = ['system.slice', 'user.slice', 'init.scope', 'machine.slice'];
const HOST = [0, 1];
const VM = '2-3';

/** Shell: every value isolate touches, one "key value" line each, read with builtins only. */
const STATE_HELPERS = `
lab_isostate() {
  _o="$LAB_OUT/$1.iso"; : >"$_o"
  read -r _c </sys/fs/cgroup/cgroup.subtree_control; echo "root.subtree_control $_c" >>"$_o"
  for _u in ${UNITS.join(' ')}; do
    for _f in cpuset.cpus cpuset.cpus.effective; do
      if [ -e "/sys/fs/cgroup/$_u/$_f" ]; then read -r _v <"/sys/fs/cgroup/$_u/$_f"; echo "$_u.$_f \${_v:-<empty>}" >>"$_o"; else echo "$_u.$_f <absent>" >>"$_o"; fi
    done
    for _k in system.control transient; do
      _d="/run/systemd/$_k/$_u.d/50-AllowedCPUs.conf"
      if [ -e "$_d" ]; then echo "$_u.dropin.$_k $(sha256sum <"$_d" | cut -c1-16)" >>"$_o"; else echo "$_u.dropin.$_k <absent>" >>"$_o"; fi
    done
    _a=$(systemctl show -p AllowedCPUs --value "$_u" 2>/dev/null); echo "$_u.AllowedCPUs \${_a:-<not set>}" >>"$_o"
  done
  read -r _v </proc/irq/default_smp_affinity; echo "irq.default $_v" >>"$_o"
  read -r _v </sys/devices/virtual/workqueue/cpumask; echo "workqueue.cpumask $_v" >>"$_o"
  for _i in /proc/irq/[0-9]*; do read -r _v <"$_i/smp_affinity_list"; echo "irq.\${_i##*/} $_v" >>"$_o"; done
  lab_say "isostate $1: $(wc -l <"$_o") values"
}
`;

const SCRIPT = `
# A process in user.slice (no one logs in to the lab guest), so the slice has a cgroup to check.
systemd-run --quiet --slice=user.slice --unit=lab-user-work sleep 3600
lab_isostate before
lab_run isolate vfiokit isolate --cpus ${VM} --irqs --workqueues --json
lab_isostate during
lab_run isolate-again vfiokit isolate --cpus ${VM} --irqs --workqueues
lab_run undo vfiokit isolate --undo
lab_isostate after
export VFIOKIT_KILL_AT_STEP=2
lab_run isolate-killed vfiokit isolate --cpus ${VM} --irqs --workqueues
unset VFIOKIT_KILL_AT_STEP
lab_isostate killed
lab_run recover vfiokit recover
lab_isostate recovered
lab_run history vfiokit history
`;

function parseState(text: string | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

const list = (t: string): number[] =>
  t.split(',').filter(Boolean).flatMap((p) => {
    const [a, b] = p.split('-').map(Number);
    return Array.from({ length: (b ?? a) - a + 1 }, (_, k) => a + k);
  });

/** Values that differ between two states (IRQs present in only one are listed apart: MSI vectors come and go). */
function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.has(k) && b.get(k) !== v) out.push(`${k}: ${v} → ${b.get(k)}`);
  for (const k of a.keys()) if (!b.has(k) && !k.startsWith('irq.')) out.push(`${k}: gone`);
  for (const k of b.keys()) if (!a.has(k) && !k.startsWith('irq.')) out.push(`${k}: new`);
  return out;
}

async function isolate(t: TestContext): Promise<void> {
  const image = await getImage('grub-itools');
  const s = new GuestSession(t, image, { topology: 'gpu', smp: 4 });
  await s.init();
  const r = await s.boot('isolate', STATE_HELPERS + SCRIPT, { timeoutMs: 30 * 60_000 });
  const before = parseState(r.read('before.iso'));
  const during = parseState(r.read('during.iso'));
  t.require('the guest has cgroup v2 with systemd (its state was read)', before.has('system.slice.AllowedCPUs') && before.has('irq.default'), r.read('before.iso') ?? 'no state');
  t.check('`isolate --cpus 2-3 --irqs --workqueues` exits 0', rcOf(r, 'isolate') === 0, outputOf(r, 'isolate'));
  let res: { irqsMoved?: number; irqsKept?: { path: string; errno: string }[]; txid?: string } = {};
  try {
    res = JSON.parse(r.read('isolate.out') ?? '{}');
  } catch {
    t.check('isolate --json prints JSON', false, r.read('isolate.out') ?? '');
  }
  for (const u of ['system.slice', 'user.slice', 'init.scope']) {
    t.check(`${u}: cpuset.cpus.effective is the host set 0-1 (the kernel's view)`, during.get(`${u}.cpuset.cpus.effective`) === '0-1', `${u}.cpuset.cpus.effective = ${during.get(`${u}.cpuset.cpus.effective`)}`);
    t.check(`${u}: systemd shows AllowedCPUs=0-1`, during.get(`${u}.AllowedCPUs`) === '0-1', String(during.get(`${u}.AllowedCPUs`)));
  }
  const mEff = during.get('machine.slice.cpuset.cpus.effective');
  t.check('machine.slice keeps every CPU (0-3)', mEff === '0-3' || mEff === '<absent>', String(mEff));
  const kept = new Set((res.irqsKept ?? []).map((k) => k.path.split('/')[3]));
  const offHost = [...during].filter(([k, v]) => k.startsWith('irq.') && k !== 'irq.default' && !kept.has(k.slice(4)) && list(v).some((c) => !HOST.includes(c)));
  t.check('every IRQ vfiokit did not report as kept by the kernel is on host CPUs only', offHost.length === 0, offHost.map(([k, v]) => `${k}=${v}`).join(', '));
  t.log(`IRQs moved ${res.irqsMoved ?? '?'}, kept by the kernel ${kept.size}${kept.size ? ` (${[...kept].join(' ')})` : ''}`);
  t.check('the default IRQ affinity is the host mask (3)', /^0*3$/.test(during.get('irq.default')?.replace(/,/g, '') ?? ''), String(during.get('irq.default')));
  t.check('the unbound workqueue mask is the host mask (3)', /^0*3$/.test(during.get('workqueue.cpumask')?.replace(/,/g, '') ?? ''), String(during.get('workqueue.cpumask')));
  t.check('isolating again changes nothing (exit 0, "in effect already")', rcOf(r, 'isolate-again') === 0 && /in effect already/.test(outputOf(r, 'isolate-again')), outputOf(r, 'isolate-again'));

  t.check('`isolate --undo` exits 0', rcOf(r, 'undo') === 0, outputOf(r, 'undo'));
  const after = parseState(r.read('after.iso'));
  const d1 = diff(before, after);
  t.check('after undo every value is as before (cpusets, AllowedCPUs, drop-ins, IRQs, masks)', d1.length === 0, d1.join('\n'));

  const killed = parseState(r.read('killed.iso'));
  t.check('kill -9 after step 2: the command died (exit 137)', rcOf(r, 'isolate-killed') === 137, `exit ${rcOf(r, 'isolate-killed')}\n${outputOf(r, 'isolate-killed')}`);
  t.check('kill -9 after step 2: the host was left half isolated (system.slice restricted)', killed.get('system.slice.cpuset.cpus.effective') === '0-1', String(killed.get('system.slice.cpuset.cpus.effective')));
  t.check('`vfiokit recover` exits 0', rcOf(r, 'recover') === 0, outputOf(r, 'recover'));
  const recovered = parseState(r.read('recovered.iso'));
  const d2 = diff(before, recovered);
  t.check('after recover every value is as before', d2.length === 0, d2.join('\n'));
}

export const scenario8: TestDef[] = [
  { id: '8.isolate', title: 'CPU isolation on systemd + cgroup v2: isolate, undo, kill -9 midway and recover — every value as before', needs: ['isolate'], cost: 2.5, run: isolate },
];
