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

import { defineLabTest, type BootView, type LabTestDecl, type Step } from '../lib/declare.js';
import { DISPLAY_HELPERS, fbconBound, journals, parseDisplay, parseQemu, showDisplay, stepTimes } from '../lib/display.js';
import { GPU_ID } from '../lib/gpu.js';
import type { TestContext } from '../lib/harness.js';
import { LIBVIRT_HELPERS } from '../lib/libvirt.js';

const VGA_SYSFS_ID = GPU_ID;
const HANDOFF = 'lab-handoff';
const WIN11 = 'lab-win11';
const PARTS = 'lab-hookparts';
const HP = '/sys/kernel/mm/hugepages/hugepages-2048kB';
/** lab_hp NAME: the 2 MiB pool (nr_hugepages, free_hugepages) and the global counters. */
const HP_HELPERS = `
lab_hp() { { echo "nr $(cat ${HP}/nr_hugepages)"; echo "free $(cat ${HP}/free_hugepages)"; grep -E '^HugePages_(Total|Free|Rsvd|Surp)' /proc/meminfo; } >"$LAB_OUT/$1.hp"; lab_say "hugepages $1: $(tr '\\n' ';' <"$LAB_OUT/$1.hp")"; }
`;

/** Every boot of this scenario: the GPU pair found, the display listed, libvirtd started, virsh adapted for TCG. */
const PREAMBLE: Step[] = [
  'lab_coldplug',
  `LAB_GPU=$(lab_find ${VGA_SYSFS_ID} | head -n 1)`,
  `LAB_AUDIO=\${LAB_GPU%.0}.1`,
  'LAB_GPU_FUNCS="$LAB_GPU $LAB_AUDIO"',
  `S=\${LAB_GPU#0000:}`,
  'cat "/sys/bus/pci/devices/$LAB_GPU/boot_vga" >"$LAB_OUT/boot_vga" 2>/dev/null',
  `GROUP=$(cd -P "/sys/bus/pci/devices/$LAB_GPU/iommu_group" && echo "\${PWD##*/}"); cd /`,
  'echo "$GROUP" >"$LAB_OUT/group"',
  'lab_display before',
  { label: 'libvirtd', run: 'lab_libvirtd_start', expectExit: 0, require: true, check: 'libvirtd (started by hand in the guest) answers on qemu:///system', showOnFailure: ['libvirtd.log'] },
  'lab_libvirt_tcg',
];

const MACHINE = { iommu: 'intel', topology: 'single-gpu', smp: 1, memoryMiB: 2048 } satisfies LabTestDecl['machine'];

/** What libvirt in the guest is and how it adapted each domain for TCG, for the log. */
function libvirtLog(b: BootView, t: TestContext): void {
  t.log(`libvirt in the guest: ${(b.read('libvirt.version') ?? '').trim().split('\n').join('; ')}; ${(b.read('libvirt.timing') ?? '').trim().split('\n').join('; ')}`);
  const adapt = (b.read('tcg-adapt.log') ?? '').trim();
  if (adapt) t.log(`domain XML adapted for TCG: ${[...new Set(adapt.split('\n').map((l) => l.replace(/^[^:]*: /, '')))].join(' | ')}`);
}

function handoffChecks(b: BootView, t: TestContext): void {
  libvirtLog(b, t);
  const { rc, out, secs } = b;
  const before = parseDisplay(b.read('before.display'));
  const [gpu, audio] = [...before.drivers.keys()];
  t.require('the guest\'s only display is the VGA function on bochs-drm, its HDA function on snd_hda_intel', before.drivers.get(gpu) === 'bochs-drm' && before.drivers.get(audio) === 'snd_hda_intel', showDisplay(before));
  t.check('the VGA function is the boot display (boot_vga 1)', (b.read('boot_vga') ?? '').trim() === '1', `boot_vga=${(b.read('boot_vga') ?? '').trim()}`);
  t.require('before: /dev/fb0 and a framebuffer console bound to it', before.devFb0 && fbconBound(before), showDisplay(before));
  const hook = b.read('hook.sh') ?? '';
  t.check('the hook is installed in /etc/libvirt/hooks/qemu.d as a single-GPU hook', /handoff prepare --hook --single-gpu/.test(hook) && out('hookslist').includes('"singleGpu": true'), `${hook}\n${out('hookslist')}`);
  t.check('the first hook says libvirtd must be restarted', /restart libvirtd/.test(out('define')), out('define'));

  const group = (b.read('group') ?? '').trim();
  const cycle = (n: string, s: string) => {
    const d = parseDisplay(b.read(`${s}.display`));
    t.check(`${n}: both functions on vfio-pci`, d.drivers.get(gpu) === 'vfio-pci' && d.drivers.get(audio) === 'vfio-pci', showDisplay(d));
    t.check(`${n}: no framebuffer console bound, no /dev/fb0, no DRM card`, !fbconBound(d) && !d.devFb0 && d.drm.length === 0, showDisplay(d));
    const q = parseQemu(b.read(`${s}.qemu`));
    t.check(`${n}: the nested QEMU (pid ${q.pid}) holds /dev/vfio/${group}`, /qemu/.test(q.comm) && q.holds.includes(`/dev/vfio/${group}`), `${b.read(`${s}.qemu`)}`);
  };
  const back = (n: string, s: string) => {
    const d = parseDisplay(b.read(`${s}.display`));
    t.check(`${n}: bochs-drm and snd_hda_intel back`, d.drivers.get(gpu) === 'bochs-drm' && d.drivers.get(audio) === 'snd_hda_intel', showDisplay(d));
    t.check(`${n}: /dev/fb0 and the framebuffer console bound again, the DRM card back`, d.devFb0 && fbconBound(d) && d.drm.some((c) => c.device === gpu), showDisplay(d));
  };
  cycle('started', 'started1');
  let st: { prepared?: { txid: string; steps: { kind: string; state: string }[] }[]; vfioHolders?: { group: number; pid: number; comm?: string }[] } = {};
  try {
    st = JSON.parse(b.read('status1.out') ?? '{}');
  } catch {
    /* reported below */
  }
  t.check('`handoff status` while running: one prepared transaction, every step done, the QEMU holding the group', st.prepared?.length === 1 && st.prepared[0].steps.every((s) => s.state === 'done') && (st.vfioHolders ?? []).some((h) => String(h.group) === group), out('status1').slice(0, 1500));
  back('after destroy', 'destroyed1');
  t.check('`handoff status` after destroy: no handoff in effect', /"prepared": \[\]/.test(out('status2')), out('status2').slice(0, 800));

  cycle('started again', 'started2');
  t.check('after kill -9 of the nested QEMU the display came back (release hook run by libvirt)', (b.read('killed.rc') ?? '').trim() === '0', `${out('state2')}\n${(b.read('libvirtd.log') ?? '').slice(-1500)}`);
  back('after kill -9', 'killed');
  t.check('`handoff status` after the kill: no handoff in effect', /"prepared": \[\]/.test(out('status3')), out('status3').slice(0, 800));

  const holder = (b.read('holder') ?? '').trim();
  t.check(`\`virsh start\` refused while a process (${holder}) keeps the DRM device open`, rc('start3') !== null && rc('start3') !== 0, `exit ${rc('start3')}\n${out('start3')}`);
  t.check('libvirt\'s error carries vfiokit\'s reason (the holder by pid)', /hook/i.test(out('start3')) && new RegExp(`\\b${holder.split(' ')[0]}\\b`).test(out('start3') + (b.read('libvirtd.log') ?? '')), out('start3'));
  back('after the refused start', 'refused');
  const refused = parseDisplay(b.read('refused.display'));
  t.check('after the refused start the display was never touched (the same DRM card, not re-probed)', JSON.stringify(refused.drm) === JSON.stringify(before.drm), `before: ${showDisplay(before)}\nafter: ${showDisplay(refused)}`);
  t.check('after the refused start the domain is shut off and no QEMU runs', /shut off/.test(out('state3')) && parseQemu(b.read('refused.qemu')).pid === '-', `${out('state3')} ${b.read('refused.qemu')}`);

  const js = journals(b).filter((j) => j.kind.startsWith('handoff'));
  const kinds = js.map((j) => `${j.kind}:${j.state}`).join(' ');
  t.check('the journal: three prepares — two undone by release, the refused one rolled back', kinds === 'handoff-prepare:undone handoff-prepare:undone handoff-prepare:rolled-back', kinds);
  for (const j of js) t.log(`  ${stepTimes(j)}`);
  t.log(`timings: define+hook ${secs('define')} s, libvirtd restart ${secs('restart')} s, prepare --dry-run (node + snapshot + plan) ${secs('dryprep')} s, start ${secs('start1')} s, destroy ${secs('destroy1')} s, start ${secs('start2')} s, kill -9 → display back ${(b.read('killed.secs') ?? '?').trim()} s, refused start ${secs('start3')} s`);
}

function isolateHookChecks(b: BootView, t: TestContext): void {
  libvirtLog(b, t);
  const { rc, out, secs } = b;
  const hp = (name: string) => {
    const m = Object.fromEntries((b.read(`${name}.hp`) ?? '').trim().split('\n').map((l) => l.split(/:?\s+/)));
    return { nr: Number(m.nr), free: Number(m.free), text: (b.read(`${name}.hp`) ?? '').trim().replace(/\n/g, '; ') };
  };
  const before = parseDisplay(b.read('before.display'));
  const [gpu, audio] = [...before.drivers.keys()];
  t.require('the guest\'s only display is the VGA function on bochs-drm, its HDA function on snd_hda_intel', before.drivers.get(gpu) === 'bochs-drm' && before.drivers.get(audio) === 'snd_hda_intel', showDisplay(before));
  const hp0 = hp('before');
  t.require('before: the 2 MiB pool is readable', Number.isFinite(hp0.nr), hp0.text);
  const xml = b.read('domain.xml') ?? '';
  t.check('the defined domain is backed by 2 MiB pages', /<memoryBacking>\s*<hugepages>\s*<page size='2048' unit='KiB'\/>/.test(xml), xml.slice(0, 1500));
  const hook = b.read('hook.sh') ?? '';
  t.check('the hook runs handoff prepare|release with --single-gpu --hugepages', /handoff prepare --hook --single-gpu --hugepages -- "\$1"/.test(hook) && /handoff release --hook --single-gpu --hugepages --reason/.test(hook), hook);
  t.check('`hooks install --isolate` without systemd: exit 3, E_NO_SYSTEMD', rc('isolatehook') === 3 && /E_NO_SYSTEMD/.test(out('isolatehook') + (b.read('isolatehook.err') ?? '')), `exit ${rc('isolatehook')}\n${out('isolatehook')}`);
  t.check('… and the installed hook is byte for byte as before', (b.read('hook.sha0') ?? 'a').split(' ')[0] === (b.read('hook.sha1') ?? 'b').split(' ')[0], `${b.read('hook.sha0')} ${b.read('hook.sha1')}`);
  t.check('`hooks list` shows the parts', new RegExp(`${PARTS}: .*\\(--single-gpu --hugepages\\)`).test(out('hookslist')), out('hookslist'));
  const hp1 = hp('started');
  t.check(`running: 128 more 2 MiB pages reserved (256 MiB of guest memory; ${hp0.nr} before)`, hp1.nr === hp0.nr + 128, hp1.text);
  t.check('running: QEMU took them (free_hugepages below nr_hugepages)', hp1.free < hp1.nr, hp1.text);
  const d1 = parseDisplay(b.read('started.display'));
  t.check('running: both functions on vfio-pci', d1.drivers.get(gpu) === 'vfio-pci' && d1.drivers.get(audio) === 'vfio-pci', showDisplay(d1));
  const q = parseQemu(b.read('started.qemu'));
  t.check(`running: the nested QEMU (pid ${q.pid}) holds /dev/vfio/${(b.read('group') ?? '').trim()}`, q.holds.includes(`/dev/vfio/${(b.read('group') ?? '').trim()}`), b.read('started.qemu'));
  t.check('after kill -9 of the nested QEMU the display came back (libvirt ran release)', (b.read('killed.rc') ?? '').trim() === '0', `${out('state')}\n${(b.read('libvirtd.log') ?? '').slice(-1500)}`);
  t.check('after the crash the domain is shut off', /shut off/.test(out('state')), out('state'));
  const hp2 = hp('killed');
  t.check(`after the crash: nr_hugepages back to exactly ${hp0.nr}, every page free`, hp2.nr === hp0.nr && hp2.free === hp0.free, `before: ${hp0.text}\nafter: ${hp2.text}`);
  const d2 = parseDisplay(b.read('killed.display'));
  t.check('after the crash: bochs-drm, snd_hda_intel, /dev/fb0 and the console back', d2.drivers.get(gpu) === 'bochs-drm' && d2.drivers.get(audio) === 'snd_hda_intel' && d2.devFb0 && fbconBound(d2), showDisplay(d2));
  const js = journals(b).filter((j) => j.kind !== 'vm-define' && j.kind !== 'hooks-install');
  const kinds = js.map((j) => `${j.kind}:${j.state}`).join(' ');
  t.check('the journal: the pages reserved first, then the handoff; both undone by the release', /^hugepages[^ ]*:undone handoff-prepare:undone$/.test(kinds), kinds);
  for (const j of js) t.log(`  ${stepTimes(j)}`);
  t.log(`timings: define+hook ${secs('define')} s, start (reserve + handoff + QEMU) ${secs('start')} s, kill -9 → display and pages back ${(b.read('killed.secs') ?? '?').trim()} s`);
}

function win11Checks(b: BootView, t: TestContext): void {
  libvirtLog(b, t);
  const { out, secs } = b;
  const before = parseDisplay(b.read('before.display'));
  const [gpu, audio] = [...before.drivers.keys()];
  t.require('the GPU pair is on bochs-drm and snd_hda_intel', before.drivers.get(gpu) === 'bochs-drm' && before.drivers.get(audio) === 'snd_hda_intel', showDisplay(before));
  let def: { firmware?: unknown; notes?: string[] } = {};
  try {
    def = JSON.parse(b.read('define.out') ?? '{}');
  } catch {
    /* reported below */
  }
  t.log(`firmware chosen: ${JSON.stringify(def.firmware)}`);
  const started = parseDisplay(b.read('started.display'));
  t.check('running: both functions on vfio-pci', started.drivers.get(gpu) === 'vfio-pci' && started.drivers.get(audio) === 'vfio-pci', showDisplay(started));
  const q = parseQemu(b.read('started.qemu'));
  t.check(`running: QEMU (pid ${q.pid}) holds /dev/vfio/${(b.read('group') ?? '').trim()}`, q.holds.includes(`/dev/vfio/${(b.read('group') ?? '').trim()}`), b.read('started.qemu'));
  t.check('running: the TPM emulator is up (an swtpm process and its socket)', /swtpm/.test(b.read('started.swtpm') ?? '') && /\.sock/.test(b.read('started.swtpmsock') ?? ''), `${b.read('started.swtpm')}\n${b.read('started.swtpmsock')}`);
  t.check('running: swtpm created a TPM 2.0 state directory', /tpm2-00|tpm2/.test(b.read('tpmstate') ?? ''), b.read('tpmstate'));
  const live = b.read('live.xml') ?? '';
  t.check('running: the live XML has the emulated TPM 2.0 (CRB) and secure-boot firmware with SMM', /<tpm model='tpm-crb'>/.test(live) && /<backend type='emulator' version='2.0'/.test(live) && /secure='yes'/.test(live) && /<smm state='on'\/>/.test(live), live.slice(0, 3000));
  const nv = Object.fromEntries((b.read('nvram') ?? '').trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(1)]));
  const tmpl = nv.template?.[0] ?? '';
  t.check(`running: the NVRAM ${nv.nvram?.[0] ?? '?'} was copied from the secure-boot template ${tmpl || '?'} (same size)`, /\.ms\.fd$|secboot|secure/i.test(tmpl) && nv.size?.[0] !== undefined && nv.size[0] === nv.size[1], b.read('nvram'));
  const after = parseDisplay(b.read('destroyed.display'));
  t.check('after destroy: the functions are back on bochs-drm and snd_hda_intel', after.drivers.get(gpu) === 'bochs-drm' && after.drivers.get(audio) === 'snd_hda_intel', showDisplay(after));
  t.check('after destroy: no swtpm and no QEMU left', !/swtpm/.test(b.read('destroyed.swtpm') ?? '') && parseQemu(b.read('destroyed.qemu')).pid === '-', `${b.read('destroyed.swtpm')} ${b.read('destroyed.qemu')}`);
  t.check('after destroy: the domain is still defined, shut off', out('list').split('\n').map((s) => s.trim()).includes(WIN11) && /shut off/.test(out('state')), `${out('list')}\n${out('state')}`);
  t.log(`timings: define ${secs('define')} s, start ${secs('start')} s, destroy ${secs('destroy')} s`);
}

export const scenario7 = [
  defineLabTest({
    id: '7.handoff',
    title: 'real libvirtd: single-GPU hook → start (pair on vfio-pci, console unbound) → destroy / kill -9 (display back); refused start when the DRM device is held',
    needs: ['vm', 'hooks', 'handoff', 'history'],
    cost: 6,
    guest: { kind: 'fast' },
    machine: MACHINE,
    helpers: [LIBVIRT_HELPERS, DISPLAY_HELPERS],
    boots: [
      {
        name: 'boot',
        timeoutMs: 40 * 60_000,
        steps: [
          ...PREAMBLE,
          { label: 'define', run: `vfiokit vm define ${HANDOFF} --device "$S" --os linux --memory 256M --vcpus 1 --pin none --hooks single-gpu`, expectExit: 0, require: true, check: '`vfiokit vm define --hooks single-gpu` exits 0' },
          { label: 'hookslist', run: 'vfiokit hooks list --json' },
          `cp /etc/libvirt/hooks/qemu.d/vfiokit-${HANDOFF} "$LAB_OUT/hook.sh" 2>/dev/null`,
          { label: 'restart', run: 'lab_libvirtd_restart', expectExit: 0, require: true, check: 'libvirtd restarted (it reads the hooks directory when it starts)' },
          '# What the hook costs before its first change: node, the host snapshot and the plan.',
          { label: 'dryprep', run: `vfiokit handoff prepare ${HANDOFF} --single-gpu --dry-run` },
          '# 1. start → destroy',
          { label: 'start1', run: `virsh -c qemu:///system start ${HANDOFF}`, expectExit: 0, require: true, check: '`virsh start` exits 0 (the prepare hook succeeded)', showOnFailure: ['libvirtd.log'] },
          'lab_display started1',
          `lab_qemu started1 ${HANDOFF}`,
          { label: 'status1', run: `vfiokit handoff status ${HANDOFF} --json` },
          { label: 'destroy1', run: `virsh -c qemu:///system destroy ${HANDOFF}`, expectExit: 0, check: '`virsh destroy` exits 0' },
          'lab_display destroyed1',
          { label: 'status2', run: `vfiokit handoff status ${HANDOFF} --json` },
          '# 2. start → kill -9 of the nested QEMU: libvirt sees the monitor close and runs release',
          { label: 'start2', run: `virsh -c qemu:///system start ${HANDOFF}`, expectExit: 0, check: 'second `virsh start` exits 0' },
          'lab_display started2',
          `lab_qemu started2 ${HANDOFF}`,
          '_k0=$(lab_now)',
          `kill -9 "$(cat /run/libvirt/qemu/${HANDOFF}.pid)"`,
          'lab_wait_display_back 600; echo $? >"$LAB_OUT/killed.rc"',
          `_k1=$(lab_now); echo "$_k0 $_k1" | awk '{print $2-$1}' >"$LAB_OUT/killed.secs"`,
          { label: 'state2', run: `virsh -c qemu:///system domstate --reason ${HANDOFF}` },
          '# The release hook checks the display after its last step: let it finish before the listing.',
          '_w=0; while pgrep -f "handoff release" >/dev/null && [ "$_w" -lt 300 ]; do sleep 0.2; _w=$((_w + 1)); done',
          'lab_display killed',
          { label: 'status3', run: `vfiokit handoff status ${HANDOFF} --json` },
          '# 3. a process keeps the DRM device open: prepare waits, fails, rolls back; libvirt refuses the start',
          `_card=$(for _c in /sys/class/drm/card[0-9]*; do [ -e "$_c/device" ] && echo "\${_c##*/}"; done | head -n 1)`,
          'sleep 600 3<"/dev/dri/$_card" &',
          'HOLDER=$!',
          'echo "$HOLDER /dev/dri/$_card" >"$LAB_OUT/holder"',
          { label: 'start3', run: `virsh -c qemu:///system start ${HANDOFF}` },
          'lab_display refused',
          `lab_qemu refused ${HANDOFF}`,
          'kill "$HOLDER"',
          { label: 'state3', run: `virsh -c qemu:///system domstate ${HANDOFF}` },
          { label: 'history', run: 'vfiokit history --json' },
          'lab_journals',
          'lab_libvirt_logs',
        ],
        checks: handoffChecks,
      },
    ],
  }),
  defineLabTest({
    id: '7.isolate-hook',
    title: 'real libvirtd: hook with --hugepages (and --single-gpu) → start reserves the pages then hands the pair over → kill -9 of QEMU: pages and display back exactly; --isolate refused without systemd',
    needs: ['vm', 'hooks', 'handoff', 'hugepages', 'history'],
    cost: 5,
    guest: { kind: 'fast' },
    machine: MACHINE,
    helpers: [LIBVIRT_HELPERS, DISPLAY_HELPERS, HP_HELPERS],
    boots: [
      {
        name: 'boot',
        timeoutMs: 40 * 60_000,
        steps: [
          ...PREAMBLE,
          '# libvirt finds hugetlbfs in /proc/mounts when it starts (the restart below).',
          'mkdir -p /dev/hugepages && mount -t hugetlbfs hugetlbfs /dev/hugepages',
          'lab_hp before',
          { label: 'define', run: `vfiokit vm define ${PARTS} --device "$S" --os linux --memory 256M --vcpus 1 --pin none --hooks single-gpu,hugepages`, expectExit: 0, require: true, check: '`vfiokit vm define --hooks single-gpu,hugepages` exits 0' },
          `cp /etc/libvirt/qemu/${PARTS}.xml "$LAB_OUT/domain.xml" 2>/dev/null`,
          `sha256sum /etc/libvirt/hooks/qemu.d/vfiokit-${PARTS} >"$LAB_OUT/hook.sha0" 2>&1`,
          `cp /etc/libvirt/hooks/qemu.d/vfiokit-${PARTS} "$LAB_OUT/hook.sh" 2>/dev/null`,
          '# --isolate needs systemd (AllowedCPUs): this guest has none — refused, the hook as it was.',
          { label: 'isolatehook', run: `vfiokit hooks install ${PARTS} --single-gpu --hugepages --isolate --json` },
          `sha256sum /etc/libvirt/hooks/qemu.d/vfiokit-${PARTS} >"$LAB_OUT/hook.sha1" 2>&1`,
          { label: 'hookslist', run: 'vfiokit hooks list' },
          { label: 'restart', run: 'lab_libvirtd_restart', expectExit: 0, require: true, check: 'libvirtd restarted (it reads the hooks directory and the hugetlbfs mounts when it starts)' },
          { label: 'start', run: `virsh -c qemu:///system start ${PARTS}`, expectExit: 0, require: true, check: '`virsh start` exits 0 (the hook reserved the pages and handed the pair over)', showOnFailure: ['libvirtd.log'] },
          'lab_hp started',
          'lab_display started',
          `lab_qemu started ${PARTS}`,
          '_k0=$(lab_now)',
          `kill -9 "$(cat /run/libvirt/qemu/${PARTS}.pid)"`,
          'lab_wait_display_back 600; echo $? >"$LAB_OUT/killed.rc"',
          '_w=0; while pgrep -f "handoff release" >/dev/null && [ "$_w" -lt 300 ]; do sleep 0.2; _w=$((_w + 1)); done',
          `_k1=$(lab_now); echo "$_k0 $_k1" | awk '{print $2-$1}' >"$LAB_OUT/killed.secs"`,
          { label: 'state', run: `virsh -c qemu:///system domstate --reason ${PARTS}` },
          'lab_hp killed',
          'lab_display killed',
          { label: 'history', run: 'vfiokit history --json' },
          'lab_journals',
          'lab_libvirt_logs',
        ],
        checks: isolateHookChecks,
      },
    ],
  }),
  defineLabTest({
    id: '7.win11',
    title: 'real libvirtd: the win11 profile with the GPU pair starts (swtpm, secure-boot NVRAM, vfio-pci) and is destroyed cleanly',
    needs: ['vm'],
    cost: 3,
    guest: { kind: 'fast' },
    machine: MACHINE,
    helpers: [LIBVIRT_HELPERS, DISPLAY_HELPERS],
    boots: [
      {
        name: 'boot',
        timeoutMs: 30 * 60_000,
        steps: [
          ...PREAMBLE,
          { label: 'define', run: `vfiokit vm define ${WIN11} --os win11 --device "$S" --allow-boot-vga --memory 512M --vcpus 1 --pin none --json`, expectExit: 0, require: true, check: '`vfiokit vm define --os win11` exits 0' },
          { label: 'start', run: `virsh -c qemu:///system start ${WIN11}`, expectExit: 0, require: true, check: '`virsh start` of the win11 domain exits 0', showOnFailure: [`qemu-${WIN11}.log`] },
          'lab_display started',
          `lab_qemu started ${WIN11}`,
          'pgrep -a swtpm >"$LAB_OUT/started.swtpm" 2>&1',
          'ls /run/libvirt/qemu/swtpm/ >"$LAB_OUT/started.swtpmsock" 2>&1',
          `virsh -c qemu:///system dumpxml ${WIN11} >"$LAB_OUT/live.xml" 2>&1`,
          `_nv=$(sed -n "s/.*<nvram[^>]*>\\(.*\\)<\\/nvram>.*/\\1/p" "$LAB_OUT/live.xml")`,
          `_tp=$(sed -n "s/.*<nvram[^>]*template='\\([^']*\\)'.*/\\1/p" "$LAB_OUT/live.xml")`,
          '{ echo "nvram $_nv"; echo "template $_tp"; [ -f "$_nv" ] && echo "size $(stat -c %s "$_nv") $(stat -c %s "$_tp")"; } >"$LAB_OUT/nvram"',
          'ls /var/lib/libvirt/swtpm/*/tpm2 >"$LAB_OUT/tpmstate" 2>&1',
          { label: 'destroy', run: `virsh -c qemu:///system destroy ${WIN11}`, expectExit: 0, check: '`virsh destroy` exits 0' },
          'lab_display destroyed',
          `lab_qemu destroyed ${WIN11}`,
          'pgrep -a swtpm >"$LAB_OUT/destroyed.swtpm" 2>&1',
          { label: 'list', run: 'virsh -c qemu:///system list --all --name' },
          { label: 'state', run: `virsh -c qemu:///system domstate ${WIN11}` },
          'lab_libvirt_logs',
        ],
        checks: win11Checks,
      },
    ],
  }),
];
