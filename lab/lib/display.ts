// A guest's display and the processes holding its VFIO groups, as the lab's
// shell reads them (builtins only), and the vfiokit journals a guest copied
// out: for tests where the GPU pair is the only display (single-GPU handoff)
// or a libvirt domain holds the devices.

import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Guest shell helpers: the display's state (`lab_display`), what a domain's QEMU holds (`lab_qemu`), waiting for the display to come back, the journals. They read LAB_GPU, LAB_AUDIO and LAB_GPU_FUNCS. */
export const DISPLAY_HELPERS = `
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


export interface Display {
  drivers: Map<string, string>;
  fbs: string[];
  consoles: { id: string; bound: boolean; name: string }[];
  drm: { card: string; device: string }[];
  devFb0: boolean;
}

export function parseDisplay(text: string | undefined): Display {
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
export const fbconBound = (d: Display) => d.consoles.some((c) => c.bound && /frame buffer/.test(c.name));
export const showDisplay = (d: Display) => `drivers ${[...d.drivers].map(([a, v]) => `${a}=${v}`).join(' ')}; fb ${d.fbs.join(', ') || 'none'}; consoles ${d.consoles.map((c) => `${c.id}:${c.bound ? 'bound' : 'unbound'}(${c.name})`).join(' ')}; drm ${d.drm.map((c) => `${c.card}→${c.device}`).join(' ') || 'none'}; /dev/fb0 ${d.devFb0 ? 'yes' : 'no'}`;

export function parseQemu(text: string | undefined): { pid: string; comm: string; holds: string[] } {
  const q = { pid: '-', comm: '', holds: [] as string[] };
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1).trim()];
    if (k === 'pid') q.pid = v;
    else if (k === 'comm') q.comm = v;
    else if (k === 'holds') q.holds.push(v);
  }
  return q;
}

export interface JournalStep {
  kind: string;
  state: string;
  startedAt?: string;
  finishedAt?: string;
  error?: string;
  reason?: string;
  spec?: { reason?: string };
}
export interface Journal {
  txid: string;
  seq: number;
  kind: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  steps: JournalStep[];
  events?: { at: string; message: string }[];
}

export function journals(r: { outDir: string }): Journal[] {
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
export function stepTimes(j: Journal): string {
  const ms = (a?: string, b?: string) => (a && b ? Date.parse(b) - Date.parse(a) : NaN);
  const steps = j.steps.map((s) => `${s.kind}${s.state === 'done' || s.state === 'undone' ? '' : `[${s.state}]`}${s.startedAt && s.finishedAt ? ` ${(ms(s.startedAt, s.finishedAt) / 1000).toFixed(2)} s` : ''}`);
  const last = j.steps.map((s) => s.finishedAt).filter((x): x is string => !!x).sort().pop();
  const ev = j.events ?? [];
  const undoAt = ev.findIndex((e) => e.message === 'undo started');
  const undo = undoAt >= 0 && ev.length > undoAt + 1 ? `; undo by release ${(ms(ev[undoAt].at, ev[ev.length - 1].at) / 1000).toFixed(2)} s` : '';
  return `${j.kind} ${j.state}${last ? ` (steps took ${(ms(j.createdAt, last) / 1000).toFixed(2)} s from the journal's creation${undo})` : ''}: ${steps.join(', ')}`;
}

