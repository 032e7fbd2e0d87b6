// The unit-property step: `systemctl set-property --runtime` of one systemd
// unit property (AllowedCPUs= of the host slices), undone exactly. What the
// step found is journaled before its effect: the cgroup attribute showing the
// property (cpuset.cpus: "" = not set) and the runtime drop-in systemd keeps
// (/run/systemd/system.control/UNIT.d/50-PROPERTY.conf: bytes or absent, and
// the directories it would create). Undo: set the old value back (an empty
// assignment resets the property), put the drop-in back byte for byte (or
// remove it and the directories created for it), then `systemctl
// daemon-reload` so the loaded unit agrees with the files. Never
// `systemctl revert` (it drops every drop-in of the unit, the admin's too).
// Idempotent: undoing twice, or after a crash halfway, is safe.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { VfioError } from '../errors.js';
import { parseCpuList } from '../formats/cpu-list.js';
import type { UnitPropertyStep } from '../model/plan.js';
import { fsyncDir, writeFileAtomic } from './atomic-write.js';
import type { KernelContext } from './kernel-steps.js';
import { readAttr, writeAttr } from './kernel-steps.js';
import { SYS_CPU_ONLINE } from '../host/cpu-topology.js';
import { formatArgv } from './runner.js';

export interface UnitLive {
  /** The attribute before ("" = not set, null = absent). */
  value: string | null;
  /** base64 of the drop-in before; null = absent. */
  dropInBase64: string | null;
  /** Directories of the drop-in that did not exist, outermost first (removed on undo when empty). */
  createdDirs: string[];
}

export const setPropertyArgv = (unit: string, property: string, value: string) => ['systemctl', 'set-property', '--runtime', '--', unit, `${property}=${value}`];
const showArgv = (unit: string, property: string) => ['systemctl', 'show', '-p', property, '--value', '--', unit];
const DAEMON_RELOAD = ['systemctl', 'daemon-reload'];

/** Two CPU list texts name the same CPUs ("0-1" = "0,1"; "" = not set). */
export function sameCpus(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  const x = parseCpuList(a);
  const y = parseCpuList(b);
  return x !== null && y !== null ? x.join(',') === y.join(',') : a.trim() === b.trim();
}

function missingDirs(ctx: KernelContext, file: string): string[] {
  const out: string[] = [];
  for (let d = path.posix.dirname(file); d !== '/' && !ctx.root.exists(d); d = path.posix.dirname(d)) out.unshift(d);
  return out;
}

export function unitLive(ctx: KernelContext, s: UnitPropertyStep): UnitLive {
  const real = ctx.root.path(s.dropIn);
  let dropInBase64: string | null = null;
  try {
    dropInBase64 = fs.readFileSync(real).toString('base64');
  } catch {
    dropInBase64 = null;
  }
  return { value: readAttr(ctx.root, s.attr), dropInBase64, createdDirs: missingDirs(ctx, s.dropIn) };
}

/** What the runtime drop-in assigns to the property now (the last assignment wins, as systemd reads it); null when the drop-in or the assignment is gone. */
export function dropInValue(ctx: KernelContext, s: UnitPropertyStep): string | null {
  let text: string;
  try {
    text = fs.readFileSync(ctx.root.path(s.dropIn), 'utf8');
  } catch {
    return null;
  }
  const m = [...text.matchAll(new RegExp(`^${s.property}=(.*)$`, 'gm'))].pop();
  return m ? m[1]!.trim() : null;
}

async function systemctl(ctx: KernelContext, argv: string[]): Promise<void> {
  await ctx.runner.run(argv, { label: formatArgv(argv), timeoutMs: 60_000 });
}

export async function doUnitProperty(ctx: KernelContext, s: UnitPropertyStep): Promise<void> {
  await systemctl(ctx, setPropertyArgv(s.unit, s.property, s.value));
  // A unit without a cgroup (user.slice before the first login) gets the property when it starts.
  if (!ctx.root.exists(path.posix.dirname(s.attr))) return;
  const now = readAttr(ctx.root, s.attr);
  if (!sameCpus(now, s.value)) {
    throw new VfioError('E_UNIT_PROPERTY_NOT_SET', `${s.unit}: ${s.attr} reads ${JSON.stringify(now)} after \`systemctl set-property --runtime ${s.unit} ${s.property}=${s.value}\``, 'check `systemctl show -p AllowedCPUs,EffectiveCPUs ' + s.unit + '` and that the cpuset controller is in /sys/fs/cgroup/cgroup.controllers', s.unit);
  }
}

export async function undoUnitProperty(ctx: KernelContext, s: UnitPropertyStep, live: UnitLive): Promise<void> {
  const old = live.value ?? '';
  // Always (idempotent): the cgroup may not show systemd's value (no cgroup yet, or a stale one).
  await systemctl(ctx, setPropertyArgv(s.unit, s.property, old));
  // The drop-in back as it was: bytes, or absent with the directories made for it.
  const real = ctx.root.path(s.dropIn);
  let changed = false;
  if (live.dropInBase64 === null) {
    if (fs.existsSync(real)) {
      fs.unlinkSync(real);
      fsyncDir(path.dirname(real));
      changed = true;
    }
    for (const d of [...live.createdDirs].reverse()) {
      try {
        fs.rmdirSync(ctx.root.path(d));
      } catch {
        // Not empty (someone else's drop-in) or gone already: keep it.
      }
    }
  } else {
    const want = Buffer.from(live.dropInBase64, 'base64');
    let cur: Buffer | null = null;
    try {
      cur = fs.readFileSync(real);
    } catch {
      cur = null;
    }
    if (!cur || !cur.equals(want)) {
      fs.mkdirSync(path.dirname(real), { recursive: true });
      writeFileAtomic(real, want);
      changed = true;
    }
  }
  if (changed) await systemctl(ctx, DAEMON_RELOAD);
  const shown = (await ctx.runner.run(showArgv(s.unit, s.property), { label: formatArgv(showArgv(s.unit, s.property)), timeoutMs: 60_000 })).stdout.trim();
  if (!sameCpus(shown, old)) {
    throw new VfioError('E_RESTORE_FAILED', `${s.unit}: systemd shows ${s.property}=${shown}, not ${JSON.stringify(old)} as before`, `run \`systemctl set-property --runtime -- ${s.unit} ${s.property}=${old}\` and \`vfiokit recover\``, s.unit);
  }
  // systemd resets a property to "not set" without rewriting the cgroup while another unit keeps the
  // cpuset controller enabled: the cgroup keeps the old restriction. Put the kernel in line with systemd:
  // an empty cpuset.cpus (inherit), or — a populated cgroup refuses that with ENOSPC — every CPU the
  // parent grants, which restricts nothing (the file goes away once no unit needs cpuset).
  const now = readAttr(ctx.root, s.attr);
  const parentEff = readAttr(ctx.root, `${path.posix.dirname(path.posix.dirname(s.attr))}/cpuset.cpus.effective`) ?? readAttr(ctx.root, SYS_CPU_ONLINE);
  const unrestricted = (v: string | null) => v === null || v.trim() === '' || (parentEff !== null && sameCpus(v, parentEff));
  if (old === '' && !unrestricted(now)) {
    if (!ctx.sysfs) throw new VfioError('E_NOT_LIVE', `${s.attr} still reads ${JSON.stringify(now)} and there is no kernel to write to`, 'run `vfiokit recover` on the host itself', s.attr);
    try {
      writeAttr(ctx, s.attr, '\n');
    } catch (e) {
      if (!parentEff) throw e;
      writeAttr(ctx, s.attr, parentEff);
    }
  }
  const after = readAttr(ctx.root, s.attr);
  if (after !== null && !(old === '' ? unrestricted(after) : sameCpus(after, old))) {
    throw new VfioError('E_RESTORE_FAILED', `${s.unit}: ${s.attr} reads ${JSON.stringify(after)}, not ${JSON.stringify(old)} as before`, `run \`systemctl set-property --runtime -- ${s.unit} ${s.property}=${old}\` and \`vfiokit recover\``, s.unit);
  }
}
