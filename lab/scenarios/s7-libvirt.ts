// Scenario 7 — a real libvirtd in a fast guest (lab/lib/libvirt.ts) whose
// only display is the emulated GPU pair: VGA 1234:1111 on bochs-drm with the
// framebuffer console, and its HDA function 8086:293e on snd_hda_intel.
//
// 7.handoff: `vfiokit vm define --hooks single-gpu` → restart libvirtd (it
//   looks for hooks when it starts) → `virsh start`: libvirt runs the hook,
//   `vfiokit handoff prepare` unbinds the console and moves the pair to
//   vfio-pci, a nested QEMU holds /dev/vfio/N → `virsh destroy`: release gives
//   bochs-drm, snd_hda_intel, /dev/fb0 and the console back. Then the same with
//   kill -9 of the nested QEMU, and a start refused because a process keeps
//   the DRM device open (prepare fails midway and rolls back; the console stays).
// 7.isolate-hook: `vm define --hooks single-gpu,hugepages` (the domain on 2 MiB
//   pages) → `virsh start`: the hook reserves the pages first (one
//   transaction), then hands the pair over; QEMU takes the pages → kill -9 of
//   the nested QEMU (a crash): libvirt's release gives the pair back and
//   releases the pages, nr_hugepages exactly as before. The fast guest has no
//   systemd and no cgroup hierarchy, so the hook's --isolate is refused there
//   at install (E_NO_SYSTEMD, the hook file unchanged); --isolate inside the
//   hook is covered by test/handoff/hook-session.test.ts and the isolation on
//   a real systemd + cgroup v2 kernel by 8.isolate.
// 7.win11: the win11 profile (TPM 2.0 by swtpm, Secure Boot firmware and its
//   NVRAM template, Hyper-V) with the GPU pair, defined and started by the
//   guest's libvirtd, then destroyed: only the defined domain remains.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { bootFast, type FastRun } from '../lib/fast-guest.js';
import { guestOutputs } from '../lib/guest-script.js';
import type { TestContext, TestDef } from '../lib/harness.js';
import { BOOT_HELPERS } from '../lib/session.js';
import { LIBVIRT_HELPERS } from '../lib/libvirt.js';

const VGA_SYSFS_ID = '0x1234:0x1111';

/** Guest helpers of this scenario: the display's state and what the nested QEMU holds. */
const DISPLAY_HELPERS = `
# lab_display NAME: drivers of the GPU pair, framebuffers, consoles, DRM cards (shell builtins only).
lab_display() {
  {
    for _a in $LAB_GPU_FUNCS; do _drv=-; cd -P "/sys/bus/pci/devices/$_a/driver" 2>/dev/null && _drv=\${PWD##*/}; echo "drv $_a $_drv"; done
    for _f in /sys/class/graphics/fb[0-9]*; do [ -e "$_f" ] || continue; read -r _n <"$_f/name"; echo "fb \${_f##*/} $_n"; done
    for _v in /sys/class/vtconsole/vtcon*; do read -r _b <"$_v/bind"; read -r _n <"$_v/name"; echo "vtcon \${_v##*/} $_b $_n"; done
    for _c in /sys/class/drm/card[0-9]*; do case \${_c##*/} in *-*) continue ;; esac; _dv=-; cd -P "$_c/device" 2>/dev/null && _dv=\${PWD##*/}; echo "drm \${_c##*/} $_dv"; done
    [ -e /dev/fb0 ] && echo "devfb0 yes" || echo "devfb0 no"
  } >"$LAB_OUT/$1.display"
  cd /
  lab_say "display $1: $(tr '\\n' ';' <"$LAB_OUT/$1.display")"
}
# lab_qemu NAME DOMAIN: the domain's QEMU process and the /dev/vfio nodes it holds.
lab_qemu() {
  _p=$(cat "/run/libvirt/qemu/$2.pid" 2>/dev/null)
  {
    echo "pid \${_p:--}"
    if [ -n "$_p" ] && [ -d "/proc/$_p" ]; then read -r _c <"/proc/$_p/comm"; echo "comm $_c"; ls -l "/proc/$_p/fd" 2>/dev/null | grep -o '/dev/vfio/[0-9a-z]*' | sort -u | sed 's/^/holds /'; fi
  } >"$LAB_OUT/$1.qemu"
}
# lab_wait_display_back TENTHS: until the VGA is on bochs-drm, the HDA on snd_hda_intel and a framebuffer console bound.
lab_wait_display_back() {
  _w=0
  while [ "$_w" -lt "$1" ]; do
    _ok=1
    cd -P "/sys/bus/pci/devices/$LAB_GPU/driver" 2>/dev/null && [ "\${PWD##*/}" = bochs-drm ] || _ok=0
    cd -P "/sys/bus/pci/devices/$LAB_AUDIO/driver" 2>/dev/null && [ "\${PWD##*/}" = snd_hda_intel ] || _ok=0
    cd /
    grep -l 'frame buffer' /sys/class/vtconsole/vtcon*/name 2>/dev/null | while read -r _n; do read -r _b <"\${_n%/name}/bind"; echo "$_b"; done | grep -q 1 || _ok=0
    [ "$_ok" = 1 ] && return 0
    sleep 0.2; _w=$((_w + 2))
  done
  return 1
}
lab_journals() { mkdir -p "$LAB_OUT/journal"; for _j in /var/lib/vfiokit/journal/*/journal.json; do [ -f "$_j" ] || continue; _t=\${_j%/journal.json}; cp "$_j" "$LAB_OUT/journal/\${_t##*/}.json"; done; }
`;

const PREAMBLE = `${BOOT_HELPERS}
${LIBVIRT_HELPERS}
${DISPLAY_HELPERS}
lab_coldplug
LAB_GPU=$(lab_find ${VGA_SYSFS_ID} | head -n 1)
LAB_AUDIO=\${LAB_GPU%.0}.1
LAB_GPU_FUNCS="$LAB_GPU $LAB_AUDIO"
S=\${LAB_GPU#0000:}
cat "/sys/bus/pci/devices/$LAB_GPU/boot_vga" >"$LAB_OUT/boot_vga" 2>/dev/null
GROUP=$(cd -P "/sys/bus/pci/devices/$LAB_GPU/iommu_group" && echo "\${PWD##*/}"); cd /
echo "$GROUP" >"$LAB_OUT/group"
lab_display before
lab_run libvirtd lab_libvirtd_start
lab_libvirt_tcg
`;

interface Display {
  drivers: Map<string, string>;
  fbs: string[];
  consoles: { id: string; bound: boolean; name: string }[];
  drm: { card: string; device: string }[];
  devFb0: boolean;
}

function parseDisplay(text: string | undefined): Display {
  const d: Display = { drivers: new Map(), fbs: [], consoles: [], drm: [], devFb0: false };
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'drv') d.drivers.set(f[1], f[2]);
    else if (f[0] === 'fb') d.fbs.push(`${f[1]} ${f.slice(2).join(' ')}`);
    else if (f[0] === 'vtcon') d.consoles.push({ id: f[1], bound: f[2] === '1', name: f.slice(3).join(' ') });
    else if (f[0] === 'drm') d.drm.push({ card: f[1], device: f[2] });
    else if (f[0] === 'devfb0') d.devFb0 = f[1] === 'yes';
  }
  return d;
}
const fbconBound = (d: Display) => d.consoles.some((c) => c.bound && /frame buffer/.test(c.name));
const show = (d: Display) => `drivers ${[...d.drivers].map(([a, v]) => `${a}=${v}`).join(' ')}; fb ${d.fbs.join(', ') || 'none'}; consoles ${d.consoles.map((c) => `${c.id}:${c.bound ? 'bound' : 'unbound'}(${c.name})`).join(' ')}; drm ${d.drm.map((c) => `${c.card}→${c.device}`).join(' ') || 'none'}; /dev/fb0 ${d.devFb0 ? 'yes' : 'no'}`;

function parseQemu(text: string | undefined): { pid: string; comm: string; holds: string[] } {
  const q = { pid: '-', comm: '', holds: [] as string[] };
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1).trim()];
    if (k === 'pid') q.pid = v;
    else if (k === 'comm') q.comm = v;
    else if (k === 'holds') q.holds.push(v);
  }
  return q;
}

interface JournalStep {
  kind: string;
  state: string;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
  reason?: string;
  spec?: { reason?: string };
}
interface Journal {
  txid: string;
  seq: number;
  kind: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  steps: JournalStep[];
  events?: { at: string; message: string }[];
}

function journals(r: FastRun): Journal[] {
  const dir = path.join(r.outDir, 'journal');
  let names: string[] = [];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const out: Journal[] = [];
  for (const n of names) {
    try {
      out.push(JSON.parse(readFileSync(path.join(dir, n), 'utf8')) as Journal);
    } catch {
      /* a journal that does not parse is reported by the check that needs it */
    }
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/** "kind 0.12 s, kind 1.30 s, …" from a journal's step timestamps. */
function stepTimes(j: Journal): string {
  const ms = (a?: string, b?: string) => (a && b ? Date.parse(b) - Date.parse(a) : NaN);
  const steps = j.steps.map((s) => `${s.kind}${s.state === 'done' || s.state === 'undone' ? '' : `[${s.state}]`}${s.startedAt && s.finishedAt ? ` ${(ms(s.startedAt, s.finishedAt) / 1000).toFixed(2)} s` : ''}`);
  const last = j.steps.map((s) => s.finishedAt).filter((x): x is string => !!x).sort().pop();
  const ev = j.events ?? [];
  const undoAt = ev.findIndex((e) => e.message === 'undo started');
  const undo = undoAt >= 0 && ev.length > undoAt + 1 ? `; undo by release ${(ms(ev[undoAt].at, ev[ev.length - 1].at) / 1000).toFixed(2)} s` : '';
  return `${j.kind} ${j.state}${last ? ` (steps took ${(ms(j.createdAt, last) / 1000).toFixed(2)} s from the journal's creation${undo})` : ''}: ${steps.join(', ')}`;
}

function requireBoot(t: TestContext, r: FastRun): ReturnType<typeof guestOutputs> {
  const g = guestOutputs(r.read);
  t.require('libvirtd (started by hand in the guest) answers on qemu:///system', g.rc('libvirtd') === 0, `exit ${g.rc('libvirtd')}\n${g.out('libvirtd')}\n${(r.read('libvirtd.log') ?? '').slice(-1500)}`);
  t.log(`libvirt in the guest: ${(r.read('libvirt.version') ?? '').trim().split('\n').join('; ')}; ${(r.read('libvirt.timing') ?? '').trim().split('\n').join('; ')}`);
  const adapt = (r.read('tcg-adapt.log') ?? '').trim();
  if (adapt) t.log(`domain XML adapted for TCG: ${[...new Set(adapt.split('\n').map((l) => l.replace(/^[^:]*: /, '')))].join(' | ')}`);
  return g;
}

async function handoff(t: TestContext): Promise<void> {
  const D = 'lab-handoff';
  const script = `${PREAMBLE}
lab_run define vfiokit vm define ${D} --device "$S" --os linux --memory 256M --vcpus 1 --pin none --hooks single-gpu
lab_run hookslist vfiokit hooks list --json
cp /etc/libvirt/hooks/qemu.d/vfiokit-${D} "$LAB_OUT/hook.sh" 2>/dev/null
lab_run restart lab_libvirtd_restart
# What the hook costs before its first change: node, the host snapshot and the plan.
lab_run dryprep vfiokit handoff prepare ${D} --single-gpu --dry-run
# 1. start → destroy
lab_virsh start1 start ${D}
lab_display started1
lab_qemu started1 ${D}
lab_run status1 vfiokit handoff status ${D} --json
lab_virsh destroy1 destroy ${D}
lab_display destroyed1
lab_run status2 vfiokit handoff status ${D} --json
# 2. start → kill -9 of the nested QEMU: libvirt sees the monitor close and runs release
lab_virsh start2 start ${D}
lab_display started2
lab_qemu started2 ${D}
_k0=$(lab_now)
kill -9 "$(cat /run/libvirt/qemu/${D}.pid)"
lab_wait_display_back 600; echo $? >"$LAB_OUT/killed.rc"
_k1=$(lab_now); echo "$_k0 $_k1" | awk '{print $2-$1}' >"$LAB_OUT/killed.secs"
lab_virsh state2 domstate --reason ${D}
# The release hook checks the display after its last step: let it finish before the listing.
_w=0; while pgrep -f "handoff release" >/dev/null && [ "$_w" -lt 300 ]; do sleep 0.2; _w=$((_w + 1)); done
lab_display killed
lab_run status3 vfiokit handoff status ${D} --json
# 3. a process keeps the DRM device open: prepare waits, fails, rolls back; libvirt refuses the start
_card=$(for _c in /sys/class/drm/card[0-9]*; do [ -e "$_c/device" ] && echo "\${_c##*/}"; done | head -n 1)
sleep 600 3<"/dev/dri/$_card" &
HOLDER=$!
echo "$HOLDER /dev/dri/$_card" >"$LAB_OUT/holder"
lab_virsh start3 start ${D}
lab_display refused
lab_qemu refused ${D}
kill "$HOLDER"
lab_virsh state3 domstate ${D}
lab_run history vfiokit history --json
lab_journals
lab_libvirt_logs
`;
  const r = await bootFast(t, { machine: { iommu: 'intel', topology: 'single-gpu', cpuVendor: 'GenuineIntel', memMb: 2048 }, append: 'intel_iommu=on', script, timeoutMs: 40 * 60_000 });
  const { rc, out, secs } = requireBoot(t, r);
  const before = parseDisplay(r.read('before.display'));
  const [gpu, audio] = [...before.drivers.keys()];
  t.require('the guest\'s only display is the VGA function on bochs-drm, its HDA function on snd_hda_intel', before.drivers.get(gpu) === 'bochs-drm' && before.drivers.get(audio) === 'snd_hda_intel', show(before));
  t.check('the VGA function is the boot display (boot_vga 1)', (r.read('boot_vga') ?? '').trim() === '1', `boot_vga=${(r.read('boot_vga') ?? '').trim()}`);
  t.require('before: /dev/fb0 and a framebuffer console bound to it', before.devFb0 && fbconBound(before), show(before));
  t.require('`vfiokit vm define --hooks single-gpu` exits 0', rc('define') === 0, `exit ${rc('define')}\n${out('define')}`);
  const hook = r.read('hook.sh') ?? '';
  t.check('the hook is installed in /etc/libvirt/hooks/qemu.d as a single-GPU hook', /handoff prepare --hook --single-gpu/.test(hook) && out('hookslist').includes('"singleGpu": true'), `${hook}\n${out('hookslist')}`);
  t.check('the first hook says libvirtd must be restarted', /restart libvirtd/.test(out('define')), out('define'));
  t.require('libvirtd restarted (it reads the hooks directory when it starts)', rc('restart') === 0, out('restart'));

  const group = (r.read('group') ?? '').trim();
  const cycle = (n: string, s: string) => {
    const d = parseDisplay(r.read(`${s}.display`));
    t.check(`${n}: both functions on vfio-pci`, d.drivers.get(gpu) === 'vfio-pci' && d.drivers.get(audio) === 'vfio-pci', show(d));
    t.check(`${n}: no framebuffer console bound, no /dev/fb0, no DRM card`, !fbconBound(d) && !d.devFb0 && d.drm.length === 0, show(d));
    const q = parseQemu(r.read(`${s}.qemu`));
    t.check(`${n}: the nested QEMU (pid ${q.pid}) holds /dev/vfio/${group}`, /qemu/.test(q.comm) && q.holds.includes(`/dev/vfio/${group}`), `${r.read(`${s}.qemu`)}`);
  };
  const back = (n: string, s: string) => {
    const d = parseDisplay(r.read(`${s}.display`));
    t.check(`${n}: bochs-drm and snd_hda_intel back`, d.drivers.get(gpu) === 'bochs-drm' && d.drivers.get(audio) === 'snd_hda_intel', show(d));
    t.check(`${n}: /dev/fb0 and the framebuffer console bound again, the DRM card back`, d.devFb0 && fbconBound(d) && d.drm.some((c) => c.device === gpu), show(d));
  };
  t.require('`virsh start` exits 0 (the prepare hook succeeded)', rc('start1') === 0, `exit ${rc('start1')}\n${out('start1')}\n${(r.read('libvirtd.log') ?? '').slice(-2000)}`);
  cycle('started', 'started1');
  let st: { prepared?: { txid: string; steps: { kind: string; state: string }[] }[]; vfioHolders?: { group: number; pid: number; comm?: string }[] } = {};
  try {
    st = JSON.parse(r.read('status1.out') ?? '{}');
  } catch {
    /* reported below */
  }
  t.check('`handoff status` while running: one prepared transaction, every step done, the QEMU holding the group', st.prepared?.length === 1 && st.prepared[0].steps.every((s) => s.state === 'done') && (st.vfioHolders ?? []).some((h) => String(h.group) === group), out('status1').slice(0, 1500));
  t.check('`virsh destroy` exits 0', rc('destroy1') === 0, out('destroy1'));
  back('after destroy', 'destroyed1');
  t.check('`handoff status` after destroy: no handoff in effect', /"prepared": \[\]/.test(out('status2')), out('status2').slice(0, 800));

  t.check('second `virsh start` exits 0', rc('start2') === 0, out('start2'));
  cycle('started again', 'started2');
  t.check('after kill -9 of the nested QEMU the display came back (release hook run by libvirt)', (r.read('killed.rc') ?? '').trim() === '0', `${out('state2')}\n${(r.read('libvirtd.log') ?? '').slice(-1500)}`);
  back('after kill -9', 'killed');
  t.check('`handoff status` after the kill: no handoff in effect', /"prepared": \[\]/.test(out('status3')), out('status3').slice(0, 800));

  const holder = (r.read('holder') ?? '').trim();
  t.check(`\`virsh start\` refused while a process (${holder}) keeps the DRM device open`, rc('start3') !== null && rc('start3') !== 0, `exit ${rc('start3')}\n${out('start3')}`);
  t.check('libvirt\'s error carries vfiokit\'s reason (the holder by pid)', /hook/i.test(out('start3')) && new RegExp(`\\b${holder.split(' ')[0]}\\b`).test(out('start3') + (r.read('libvirtd.log') ?? '')), out('start3'));
  back('after the refused start', 'refused');
  const refused = parseDisplay(r.read('refused.display'));
  t.check('after the refused start the display was never touched (the same DRM card, not re-probed)', JSON.stringify(refused.drm) === JSON.stringify(before.drm), `before: ${show(before)}\nafter: ${show(refused)}`);
  t.check('after the refused start the domain is shut off and no QEMU runs', /shut off/.test(out('state3')) && parseQemu(r.read('refused.qemu')).pid === '-', `${out('state3')} ${r.read('refused.qemu')}`);

  const js = journals(r).filter((j) => j.kind.startsWith('handoff'));
  const kinds = js.map((j) => `${j.kind}:${j.state}`).join(' ');
  t.check('the journal: three prepares — two undone by release, the refused one rolled back', kinds === 'handoff-prepare:undone handoff-prepare:undone handoff-prepare:rolled-back', kinds);
  for (const j of js) t.log(`  ${stepTimes(j)}`);
  t.log(`timings: define+hook ${secs('define')} s, libvirtd restart ${secs('restart')} s, prepare --dry-run (node + snapshot + plan) ${secs('dryprep')} s, start ${secs('start1')} s, destroy ${secs('destroy1')} s, start ${secs('start2')} s, kill -9 → display back ${(r.read('killed.secs') ?? '?').trim()} s, refused start ${secs('start3')} s`);
}

async function isolateHook(t: TestContext): Promise<void> {
  const D = 'lab-hookparts';
  const HP = '/sys/kernel/mm/hugepages/hugepages-2048kB';
  const script = `${PREAMBLE}
# lab_hp NAME: the 2 MiB pool (nr_hugepages, free_hugepages) and the global counters.
lab_hp() { { echo "nr $(cat ${HP}/nr_hugepages)"; echo "free $(cat ${HP}/free_hugepages)"; grep -E '^HugePages_(Total|Free|Rsvd|Surp)' /proc/meminfo; } >"$LAB_OUT/$1.hp"; lab_say "hugepages $1: $(tr '\\n' ';' <"$LAB_OUT/$1.hp")"; }
# libvirt finds hugetlbfs in /proc/mounts when it starts (the restart below).
mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages
lab_hp before
lab_run define vfiokit vm define ${D} --device "$S" --os linux --memory 256M --vcpus 1 --pin none --hooks single-gpu,hugepages
cp /etc/libvirt/qemu/${D}.xml "$LAB_OUT/domain.xml" 2>/dev/null
sha256sum /etc/libvirt/hooks/qemu.d/vfiokit-${D} >"$LAB_OUT/hook.sha0" 2>&1
cp /etc/libvirt/hooks/qemu.d/vfiokit-${D} "$LAB_OUT/hook.sh" 2>/dev/null
# --isolate needs systemd (AllowedCPUs): this guest has none — refused, the hook as it was.
lab_run isolatehook vfiokit hooks install ${D} --single-gpu --hugepages --isolate --json
sha256sum /etc/libvirt/hooks/qemu.d/vfiokit-${D} >"$LAB_OUT/hook.sha1" 2>&1
lab_run hookslist vfiokit hooks list
lab_run restart lab_libvirtd_restart
lab_virsh start start ${D}
lab_hp started
lab_display started
lab_qemu started ${D}
_k0=$(lab_now)
kill -9 "$(cat /run/libvirt/qemu/${D}.pid)"
lab_wait_display_back 600; echo $? >"$LAB_OUT/killed.rc"
_w=0; while pgrep -f "handoff release" >/dev/null && [ "$_w" -lt 300 ]; do sleep 0.2; _w=$((_w + 1)); done
_k1=$(lab_now); echo "$_k0 $_k1" | awk '{print $2-$1}' >"$LAB_OUT/killed.secs"
lab_virsh state domstate --reason ${D}
lab_hp killed
lab_display killed
lab_run history vfiokit history --json
lab_journals
lab_libvirt_logs
`;
  const r = await bootFast(t, { machine: { iommu: 'intel', topology: 'single-gpu', cpuVendor: 'GenuineIntel', memMb: 2048 }, append: 'intel_iommu=on', script, timeoutMs: 40 * 60_000 });
  const { rc, out, secs } = requireBoot(t, r);
  const hp = (name: string) => {
    const m = Object.fromEntries((r.read(`${name}.hp`) ?? '').trim().split('\n').map((l) => l.split(/:?\s+/)));
    return { nr: Number(m.nr), free: Number(m.free), text: (r.read(`${name}.hp`) ?? '').trim().replace(/\n/g, '; ') };
  };
  const before = parseDisplay(r.read('before.display'));
  const [gpu, audio] = [...before.drivers.keys()];
  t.require('the guest\'s only display is the VGA function on bochs-drm, its HDA function on snd_hda_intel', before.drivers.get(gpu) === 'bochs-drm' && before.drivers.get(audio) === 'snd_hda_intel', show(before));
  const hp0 = hp('before');
  t.require('before: the 2 MiB pool is readable', Number.isFinite(hp0.nr), hp0.text);
  t.require('`vfiokit vm define --hooks single-gpu,hugepages` exits 0', rc('define') === 0, `exit ${rc('define')}\n${out('define')}`);
  const xml = r.read('domain.xml') ?? '';
  t.check('the defined domain is backed by 2 MiB pages', /<memoryBacking>\s*<hugepages>\s*<page size='2048' unit='KiB'\/>/.test(xml), xml.slice(0, 1500));
  const hook = r.read('hook.sh') ?? '';
  t.check('the hook runs handoff prepare|release with --single-gpu --hugepages', /handoff prepare --hook --single-gpu --hugepages -- "\$1"/.test(hook) && /handoff release --hook --single-gpu --hugepages --reason/.test(hook), hook);
  let iso: { error?: { code?: string; exitCode?: number } } = {};
  try {
    iso = JSON.parse((r.read('isolatehook.err') ?? out('isolatehook')).trim().split('\n').pop() ?? '{}');
  } catch {
    /* reported below */
  }
  t.check('`hooks install --isolate` without systemd: exit 3, E_NO_SYSTEMD', rc('isolatehook') === 3 && /E_NO_SYSTEMD/.test(out('isolatehook') + JSON.stringify(iso)), `exit ${rc('isolatehook')}\n${out('isolatehook')}`);
  t.check('… and the installed hook is byte for byte as before', (r.read('hook.sha0') ?? 'a').split(' ')[0] === (r.read('hook.sha1') ?? 'b').split(' ')[0], `${r.read('hook.sha0')} ${r.read('hook.sha1')}`);
  t.check('`hooks list` shows the parts', /lab-hookparts: .*\(--single-gpu --hugepages\)/.test(out('hookslist')), out('hookslist'));
  t.require('libvirtd restarted (it reads the hooks directory and the hugetlbfs mounts when it starts)', rc('restart') === 0, out('restart'));
  t.require('`virsh start` exits 0 (the hook reserved the pages and handed the pair over)', rc('start') === 0, `exit ${rc('start')}\n${out('start')}\n${(r.read('libvirtd.log') ?? '').slice(-2500)}`);
  const hp1 = hp('started');
  t.check(`running: 128 more 2 MiB pages reserved (256 MiB of guest memory; ${hp0.nr} before)`, hp1.nr === hp0.nr + 128, hp1.text);
  t.check('running: QEMU took them (free_hugepages below nr_hugepages)', hp1.free < hp1.nr, hp1.text);
  const d1 = parseDisplay(r.read('started.display'));
  t.check('running: both functions on vfio-pci', d1.drivers.get(gpu) === 'vfio-pci' && d1.drivers.get(audio) === 'vfio-pci', show(d1));
  const q = parseQemu(r.read('started.qemu'));
  t.check(`running: the nested QEMU (pid ${q.pid}) holds /dev/vfio/${(r.read('group') ?? '').trim()}`, q.holds.includes(`/dev/vfio/${(r.read('group') ?? '').trim()}`), r.read('started.qemu'));
  t.check('after kill -9 of the nested QEMU the display came back (libvirt ran release)', (r.read('killed.rc') ?? '').trim() === '0', `${out('state')}\n${(r.read('libvirtd.log') ?? '').slice(-1500)}`);
  t.check('after the crash the domain is shut off (crashed/destroyed)', /shut off/.test(out('state')), out('state'));
  const hp2 = hp('killed');
  t.check(`after the crash: nr_hugepages back to exactly ${hp0.nr}, every page free`, hp2.nr === hp0.nr && hp2.free === hp0.free, `before: ${hp0.text}\nafter: ${hp2.text}`);
  const d2 = parseDisplay(r.read('killed.display'));
  t.check('after the crash: bochs-drm, snd_hda_intel, /dev/fb0 and the console back', d2.drivers.get(gpu) === 'bochs-drm' && d2.drivers.get(audio) === 'snd_hda_intel' && d2.devFb0 && fbconBound(d2), show(d2));
  const js = journals(r).filter((j) => j.kind !== 'vm-define' && j.kind !== 'hooks-install');
  const kinds = js.map((j) => `${j.kind}:${j.state}`).join(' ');
  t.check('the journal: the pages reserved first, then the handoff; both undone by the release', /^hugepages[^ ]*:undone handoff-prepare:undone$/.test(kinds), kinds);
  for (const j of js) t.log(`  ${stepTimes(j)}`);
  t.log(`timings: define+hook ${secs('define')} s, start (reserve + handoff + QEMU) ${secs('start')} s, kill -9 → display and pages back ${(r.read('killed.secs') ?? '?').trim()} s`);
}

async function win11(t: TestContext): Promise<void> {
  const D = 'lab-win11';
  const script = `${PREAMBLE}
lab_run define vfiokit vm define ${D} --os win11 --device "$S" --allow-boot-vga --memory 512M --vcpus 1 --pin none --json
lab_virsh start start ${D}
lab_display started
lab_qemu started ${D}
pgrep -a swtpm >"$LAB_OUT/started.swtpm" 2>&1
ls /run/libvirt/qemu/swtpm/ >"$LAB_OUT/started.swtpmsock" 2>&1
virsh -c qemu:///system dumpxml ${D} >"$LAB_OUT/live.xml" 2>&1
_nv=$(sed -n "s/.*<nvram[^>]*>\\(.*\\)<\\/nvram>.*/\\1/p" "$LAB_OUT/live.xml")
_tp=$(sed -n "s/.*<nvram[^>]*template='\\([^']*\\)'.*/\\1/p" "$LAB_OUT/live.xml")
{ echo "nvram $_nv"; echo "template $_tp"; [ -f "$_nv" ] && echo "size $(stat -c %s "$_nv") $(stat -c %s "$_tp")"; } >"$LAB_OUT/nvram"
ls /var/lib/libvirt/swtpm/*/tpm2 >"$LAB_OUT/tpmstate" 2>&1
lab_virsh destroy destroy ${D}
lab_display destroyed
lab_qemu destroyed ${D}
pgrep -a swtpm >"$LAB_OUT/destroyed.swtpm" 2>&1
lab_virsh list list --all --name
lab_virsh state domstate ${D}
lab_libvirt_logs
`;
  const r = await bootFast(t, { machine: { iommu: 'intel', topology: 'single-gpu', cpuVendor: 'GenuineIntel', memMb: 2048 }, append: 'intel_iommu=on', script, timeoutMs: 30 * 60_000 });
  const { rc, out, secs } = requireBoot(t, r);
  const before = parseDisplay(r.read('before.display'));
  const [gpu, audio] = [...before.drivers.keys()];
  t.require('the GPU pair is on bochs-drm and snd_hda_intel', before.drivers.get(gpu) === 'bochs-drm' && before.drivers.get(audio) === 'snd_hda_intel', show(before));
  t.require('`vfiokit vm define --os win11` exits 0', rc('define') === 0, `exit ${rc('define')}\n${out('define')}`);
  let def: { firmware?: unknown; notes?: string[] } = {};
  try {
    def = JSON.parse(r.read('define.out') ?? '{}');
  } catch {
    /* reported below */
  }
  t.log(`firmware chosen: ${JSON.stringify(def.firmware)}`);
  t.require('`virsh start` of the win11 domain exits 0', rc('start') === 0, `exit ${rc('start')}\n${out('start')}\n${(r.read(`qemu-${D}.log`) ?? '').slice(-2000)}`);
  const started = parseDisplay(r.read('started.display'));
  t.check('running: both functions on vfio-pci', started.drivers.get(gpu) === 'vfio-pci' && started.drivers.get(audio) === 'vfio-pci', show(started));
  const q = parseQemu(r.read('started.qemu'));
  t.check(`running: QEMU (pid ${q.pid}) holds /dev/vfio/${(r.read('group') ?? '').trim()}`, q.holds.includes(`/dev/vfio/${(r.read('group') ?? '').trim()}`), r.read('started.qemu'));
  t.check('running: the TPM emulator is up (an swtpm process and its socket)', /swtpm/.test(r.read('started.swtpm') ?? '') && /\.sock/.test(r.read('started.swtpmsock') ?? ''), `${r.read('started.swtpm')}\n${r.read('started.swtpmsock')}`);
  t.check('running: swtpm created a TPM 2.0 state directory', /tpm2-00|tpm2/.test(r.read('tpmstate') ?? ''), r.read('tpmstate'));
  const live = r.read('live.xml') ?? '';
  t.check('running: the live XML has the emulated TPM 2.0 (CRB) and secure-boot firmware with SMM', /<tpm model='tpm-crb'>/.test(live) && /<backend type='emulator' version='2.0'/.test(live) && /secure='yes'/.test(live) && /<smm state='on'\/>/.test(live), live.slice(0, 3000));
  const nv = Object.fromEntries((r.read('nvram') ?? '').trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(1)]));
  const tmpl = nv.template?.[0] ?? '';
  t.check(`running: the NVRAM ${nv.nvram?.[0] ?? '?'} was copied from the secure-boot template ${tmpl || '?'} (same size)`, /\.ms\.fd$|secboot|secure/i.test(tmpl) && nv.size?.[0] !== undefined && nv.size[0] === nv.size[1], r.read('nvram'));
  t.check('`virsh destroy` exits 0', rc('destroy') === 0, out('destroy'));
  const after = parseDisplay(r.read('destroyed.display'));
  t.check('after destroy: the functions are back on bochs-drm and snd_hda_intel', after.drivers.get(gpu) === 'bochs-drm' && after.drivers.get(audio) === 'snd_hda_intel', show(after));
  t.check('after destroy: no swtpm and no QEMU left', !/swtpm/.test(r.read('destroyed.swtpm') ?? '') && parseQemu(r.read('destroyed.qemu')).pid === '-', `${r.read('destroyed.swtpm')} ${r.read('destroyed.qemu')}`);
  t.check('after destroy: the domain is still defined, shut off', out('list').split('\n').map((s) => s.trim()).includes(D) && /shut off/.test(out('state')), `${out('list')}\n${out('state')}`);
  t.log(`timings: define ${secs('define')} s, start ${secs('start')} s, destroy ${secs('destroy')} s`);
}

export const scenario7: TestDef[] = [
  { id: '7.handoff', title: 'real libvirtd: single-GPU hook → start (pair on vfio-pci, console unbound) → destroy / kill -9 (display back); refused start when the DRM device is held', needs: ['vm', 'hooks', 'handoff', 'history'], cost: 6, run: handoff },
  { id: '7.isolate-hook', title: 'real libvirtd: hook with --hugepages (and --single-gpu) → start reserves the pages then hands the pair over → kill -9 of QEMU: pages and display back exactly; --isolate refused without systemd', needs: ['vm', 'hooks', 'handoff', 'hugepages', 'history'], cost: 5, run: isolateHook },
  { id: '7.win11', title: 'real libvirtd: the win11 profile with the GPU pair starts (swtpm, secure-boot NVRAM, vfio-pci) and is destroyed cleanly', needs: ['vm'], cost: 3, run: win11 },
];
