// One dispatcher for every step kind: check before the first change, do
// (journal "started" with what the step found, synced, then the effect, then
// "done"), undo (idempotent), what each step touches (undo order between
// transactions), and the reverse unwind shared by rollback, undo and crash
// recovery. New effects are new kinds here, never new try/catch ladders.

import * as fs from 'node:fs';
import { VfioError, type Problem, type RollbackReport } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import type { CopyAttrStep, InstallFileStep, Step, WriteFileStep } from '../model/plan.js';
import { VOLATILE_STEP_KINDS } from '../model/plan.js';
import { encodeContent, sha256 } from './atomic-write.js';
import { doFileStep, matchesBefore, readCurrent, resolveUnder, restoreFile, writableProblem } from './file-steps.js';
import { describeStep, type Journal, type JournalStep } from './journal.js';
import {
  bindLive,
  doBind,
  doDomain,
  doModule,
  doWait,
  doWriteAttr,
  optionalWrite,
  writeOneShot,
  refusedByKernel,
  domainLive,
  moduleLive,
  readAttr,
  restoreDevice,
  undoDomain,
  undoModule,
  undoCounter,
  undoWriteAttr,
  type AttrLive,
  type BindLive,
  type DomainLive,
  type KernelContext,
  type ModuleLive,
} from './kernel-steps.js';
import { formatArgv } from './runner.js';
import { doUnitProperty, dropInValue, sameCpus, undoUnitProperty, unitLive, type UnitLive } from './unit-steps.js';
import { pciDevice } from '../host/sysfs-paths.js';

export type Hook = (phase: 'before' | 'after') => void;

/** The spec of a journaled step (file and command steps carry their fields directly). */
function specOf(js: JournalStep): Step | null {
  return js.spec ?? null;
}

export function isVolatile(js: JournalStep): boolean {
  return (VOLATILE_STEP_KINDS as readonly string[]).includes(js.kind) || (js.kind === 'run-command' && Boolean(js.volatile));
}

/** What a step touches, as keys: two transactions that share one must be undone newest first. */
export function resourcesOf(js: JournalStep): string[] {
  const s = specOf(js);
  switch (js.kind) {
    case 'write-file':
    case 'remove-file':
      return [`file:${js.backup?.target ?? js.path}`];
    case 'run-command':
      return [];
    default:
      if (!s) return [];
      if (s.kind === 'bind-driver') return [`pci:${s.address}`];
      if (s.kind === 'module') return [s.module, ...(s.also ?? [])].map((m) => `module:${m}`);
      if (s.kind === 'domain') return [`domain:${s.name}`];
      // A one-shot trigger leaves nothing behind, a counter is shared: neither orders undos.
      if (s.kind === 'write-attr') return s.counter || s.oneShot ? [] : [`attr:${s.path}`];
      if (s.kind === 'unit-property') return [`unit:${s.unit}:${s.property}`];
      if (s.kind === 'install-file' || s.kind === 'copy-attr') return [`file:${s.path}`];
      return [];
  }
}

/** As a write-file step: install-file and copy-attr are file effects with binary content. */
function asWrite(root: HostRoot, s: InstallFileStep | CopyAttrStep, bytes: Buffer): WriteFileStep {
  const cur = readCurrent(resolveUnder(root, s.path).realTarget);
  const st = cur ? fs.statSync(resolveUnder(root, s.path).realTarget) : null;
  return {
    kind: 'write-file',
    path: s.path,
    before: cur && st ? { content: cur.toString('latin1'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } : null,
    after: { content: bytes.toString('latin1'), mode: s.mode },
    reason: s.reason,
  };
}

/** Before the first change: does the host still hold what the plan saw, and can the step be done? */
export function checkStep(ctx: KernelContext, s: Step): Problem | null {
  const root = ctx.root;
  const changed = (subject: string, now: string): Problem => ({ code: 'E_CHANGED_SINCE_PLAN', subject, message: `${subject} changed since the plan was made (${now})`, hint: 'plan again so the plan shows the current state' });
  switch (s.kind) {
    case 'run-command':
      return null;
    case 'write-file':
    case 'remove-file': {
      const m = matchesBefore(root, s);
      if (!m.ok) return { code: 'E_FILE_CHANGED_SINCE_PLAN', subject: s.path, message: `${s.path} changed since the plan was made (${m.now})`, hint: 'plan again so the diff shows the current file' };
      return writableProblem(root, s.path);
    }
    case 'install-file': {
      const cur = readCurrent(resolveUnder(root, s.path).realTarget);
      const now = cur ? sha256(cur) : null;
      if (now !== s.beforeSha256) return changed(s.path, now === null ? 'has been removed' : s.beforeSha256 === null ? 'now exists' : 'content differs');
      return writableProblem(root, s.path);
    }
    case 'copy-attr':
      if (!root.exists(s.from)) return { code: 'E_NO_ATTRIBUTE', subject: s.from, message: `${s.from} does not exist`, hint: 'check the device address' };
      if (readCurrent(resolveUnder(root, s.path).realTarget) !== null) return changed(s.path, 'now exists');
      return writableProblem(root, s.path);
    case 'unit-property': {
      const l = unitLive(ctx, s);
      const drop = l.dropInBase64 === null ? null : Buffer.from(l.dropInBase64, 'base64').toString('utf8');
      if (!sameCpus(l.value, s.before.value)) return changed(s.unit, `${s.attr} reads ${JSON.stringify(l.value)}, planned with ${JSON.stringify(s.before.value)}`);
      if (drop !== s.before.dropIn) return changed(s.dropIn, drop === null ? 'has been removed' : s.before.dropIn === null ? 'now exists' : 'content differs');
      return null;
    }
    case 'write-attr': {
      if (s.optional && !root.exists(s.path)) return null;
      if (!root.exists(s.path)) return { code: 'E_NO_ATTRIBUTE', subject: s.path, message: `${s.path} does not exist`, hint: 'the kernel does not offer this attribute here; plan again' };
      if (s.before === null) return null;
      const now = readAttr(root, s.path);
      return now !== null && now.trim() !== s.before.trim() ? changed(s.path, `reads ${JSON.stringify(now)}, planned with ${JSON.stringify(s.before)}`) : null;
    }
    case 'bind-driver': {
      const l = bindLive(ctx, s);
      if (!root.exists(pciDevice(s.address))) return { code: 'E_NO_DEVICE', subject: s.address, message: `PCI device ${s.address} is gone`, hint: 'the hardware changed: run `vfiokit groups` and plan again' };
      return l.driver !== s.before.driver ? changed(s.address, `driver ${l.driver ?? 'none'}, planned with ${s.before.driver ?? 'none'}`) : null;
    }
    case 'module':
    case 'domain':
    case 'wait':
      return null;
  }
}

function ctxLog(ctx: KernelContext, line: string): void {
  ctx.log(line);
}

/** Do one step. Returns the host path a file step touched (for the result), else null. */
export async function doStep(ctx: KernelContext, journal: Journal, js: JournalStep, s: Step, hook: Hook, sourceBytes?: Buffer): Promise<string | null> {
  const root = ctx.root;
  const start = (live?: Record<string, unknown>) => {
    if (live) js.live = live;
    js.state = 'started';
    js.startedAt = journal.now();
    journal.save();
    hook('before');
  };
  const finish = () => {
    hook('after');
    js.state = 'done';
    js.finishedAt = journal.now();
    journal.save();
  };
  switch (s.kind) {
    case 'write-file':
    case 'remove-file': {
      const t = doFileStep(root, journal, js, s, hook);
      ctxLog(ctx, `  ${s.kind === 'write-file' ? 'wrote' : 'removed'} ${t}`);
      return t;
    }
    case 'install-file':
    case 'copy-attr': {
      let bytes: Buffer;
      if (s.kind === 'install-file') bytes = sourceBytes ?? Buffer.from(s.contentBase64, 'base64');
      else {
        bytes = fs.readFileSync(root.path(s.from));
        if (bytes.length > s.maxBytes) throw Object.assign(new Error(`${s.from} yielded ${bytes.length} bytes, more than the ${s.maxBytes} its BAR can hold`), { code: 'E2BIG' });
      }
      const w = asWrite(root, s, bytes);
      const t = doFileStep(root, journal, js, w, hook);
      if (js.after && encodeContent(w.after.content).length !== bytes.length) throw new Error(`internal: ${s.path} was not written byte for byte`);
      ctxLog(ctx, `  ${s.kind === 'install-file' ? 'installed' : 'copied'} ${t}`);
      return t;
    }
    case 'run-command': {
      start();
      const r = await ctx.runner.run(s.argv, { label: s.label, timeoutMs: s.timeoutMs });
      js.result = { code: r.code, signal: r.signal, durationMs: r.durationMs };
      finish();
      ctxLog(ctx, `  ran ${s.label || formatArgv(s.argv)}`);
      return null;
    }
    case 'unit-property': {
      const live = unitLive(ctx, s);
      start(live as unknown as Record<string, unknown>);
      await doUnitProperty(ctx, s);
      finish();
      ctxLog(ctx, `  ${s.unit}: ${s.property}=${s.value} (runtime)`);
      return null;
    }
    case 'write-attr': {
      const live: AttrLive = { found: readAttr(root, s.path) };
      start(live as unknown as Record<string, unknown>);
      if (s.oneShot) {
        if (s.restore) throw new VfioError('E_BAD_PLAN', `step "${s.reason}" is a one-shot trigger with a value to restore`, 'this is a bug in the planner');
        live.nothingToRestore = s.oneShot;
        writeOneShot(ctx, s);
      } else if (s.optional) {
        const skipped = optionalWrite(ctx, s, live);
        if (skipped) live.skipped = skipped;
      } else doWriteAttr(ctx, s, live);
      js.live = live as unknown as Record<string, unknown>;
      finish();
      return null;
    }
    case 'bind-driver': {
      const live = bindLive(ctx, s);
      start(live as unknown as Record<string, unknown>);
      doBind(ctx, s);
      finish();
      ctxLog(ctx, `  ${s.address}: ${live.driver ?? 'unbound'} → ${s.driver ?? 'default driver'}`);
      return null;
    }
    case 'module': {
      const live = moduleLive(ctx, s);
      start(live as unknown as Record<string, unknown>);
      await doModule(ctx, s, live);
      finish();
      return null;
    }
    case 'domain': {
      const live = domainLive(ctx, s, js.index);
      start(live as unknown as Record<string, unknown>);
      await doDomain(ctx, s, js.index);
      finish();
      ctxLog(ctx, `  ${s.action === 'define' ? 'defined' : 'undefined'} libvirt domain ${s.name}`);
      return null;
    }
    case 'wait': {
      start();
      await doWait(ctx, s);
      finish();
      return null;
    }
  }
}

/** Undo one step from its journal record. Throws when it could not be undone. Returns what was restored (for reports), or null. */
async function undoStep(ctx: KernelContext, journal: Journal, js: JournalStep): Promise<string | null> {
  const s = specOf(js);
  switch (js.kind) {
    case 'write-file':
    case 'remove-file':
    case 'install-file':
    case 'copy-attr':
      if (!js.backup) return null; // never started its effect
      restoreFile(ctx.root, journal, js.backup);
      ctx.log(`  restored ${js.backup.target}`);
      return js.backup.target;
    case 'run-command':
      if (!js.undoArgv?.length) return null;
      await ctx.runner.run(js.undoArgv, { label: formatArgv(js.undoArgv), timeoutMs: js.timeoutMs });
      return `ran ${formatArgv(js.undoArgv)}`;
    case 'unit-property':
      if (s?.kind !== 'unit-property' || !js.live) return null;
      await undoUnitProperty(ctx, s, js.live as unknown as UnitLive);
      return `${s.unit} ${s.property}=${JSON.stringify((js.live as unknown as UnitLive).value ?? '')}`;
    case 'write-attr':
      if (s?.kind !== 'write-attr' || !s.restore) return null;
      if (s.optional) {
        const l = js.live as AttrLive | undefined;
        if (l?.skipped) return null;
        if (!ctx.root.exists(s.path)) return null;
        try {
          undoWriteAttr(ctx, s);
        } catch (e) {
          if (refusedByKernel(e)) return null;
          throw e;
        }
        return `${s.path} = ${JSON.stringify(s.restore.value)}`;
      }
      if (s.counter) return undoCounter(ctx, s, js.live as AttrLive | undefined);
      undoWriteAttr(ctx, s);
      return `${s.path} = ${JSON.stringify(s.restore.value)}`;
    case 'bind-driver': {
      if (s?.kind !== 'bind-driver' || !js.live) return null;
      const want = js.live as unknown as BindLive;
      restoreDevice(ctx, s.address, want);
      return `${s.address} (${want.driver ?? 'unbound'})`;
    }
    case 'module':
      if (s?.kind !== 'module' || !js.live) return null;
      await undoModule(ctx, s, js.live as unknown as ModuleLive);
      return `module ${s.module}`;
    case 'domain':
      if (s?.kind !== 'domain' || !js.live) return null;
      await undoDomain(ctx, s, js.live as unknown as DomainLive);
      return `domain ${s.name}`;
    case 'wait':
      return null;
  }
}

/**
 * Has someone changed what the step left, since it was done? (undo refuses
 * unless forced). Returns a description, or null when it is as left.
 */
export function editedSince(ctx: KernelContext, js: JournalStep): string | null {
  const s = specOf(js);
  if (js.kind === 'bind-driver' && s?.kind === 'bind-driver') {
    const now = bindLive(ctx, s).driver;
    if (s.driver !== null && now !== s.driver) return `${s.address} is now on ${now ?? 'no driver'}, not ${s.driver}`;
  }
  if (js.kind === 'unit-property' && s?.kind === 'unit-property' && js.state === 'done') {
    // The cgroup shows the property; a unit without a cgroup (user.slice before a login) only has its drop-in.
    const now = readAttr(ctx.root, s.attr);
    if (now !== null && !sameCpus(now, s.value)) return `${s.unit}: ${s.attr} now reads ${JSON.stringify(now)}, not ${JSON.stringify(s.value)}`;
    const set = dropInValue(ctx, s);
    if (set === null || !sameCpus(set, s.value)) return `${s.unit}: ${set === null ? `the runtime drop-in ${s.dropIn} no longer sets ${s.property}=` : `${s.property}=${set} was set`}, not ${s.property}=${s.value} as vfiokit left it`;
  }
  // Optional writes (IRQ affinity) count as much as the others once done: a value set by hand since is someone's.
  if (js.kind === 'write-attr' && s?.kind === 'write-attr' && s.restore && !(js.live as AttrLive | undefined)?.skipped) {
    const after = (js.live as AttrLive | undefined)?.after;
    const now = readAttr(ctx.root, s.path);
    if (after !== undefined && now !== null && after !== null && now.trim() !== after.trim()) return `${s.path} now reads ${JSON.stringify(now)}, not ${JSON.stringify(after)}`;
  }
  return null;
}

interface UnwindOptions {
  /** Steps (by index) to undo, in this order (newest first). */
  steps: number[];
  /** Regenerate commands to re-run afterwards (step indices, in plan order). */
  regenerate: number[];
  /**
   * The step that failed, when it is among `regenerate`: it is re-run on the
   * restored files, but if it fails again the failure is not vfiokit's (the
   * original configuration fails too) and the files are fully restored, so it
   * is a note, not an incomplete rollback.
   */
  failedStep?: number;
  markAs: 'rolled-back' | 'undone';
  /** Kernel changes of another boot are void: skip them (with a note). */
  skipVolatile?: boolean;
  /** Re-run regenerate commands even if no file was restored this time (retrying an unwind whose regeneration failed). */
  forceRegenerate?: boolean;
}

/** Undo the given steps newest first, then re-run regenerate commands once each. Never throws; tries every step. */
export async function unwind(ctx: KernelContext, journal: Journal, o: UnwindOptions): Promise<RollbackReport> {
  const rep: RollbackReport = { restored: [], reran: [], failures: [] };
  let fileRestored = false;
  for (const i of o.steps) {
    const js = journal.doc.steps[i];
    if (o.skipVolatile && isVolatile(js)) {
      js.state = o.markAs;
      (rep.notes ??= []).push(`step ${i + 1} (${describeStep(js)}) changed the kernel of an earlier boot; nothing to put back`);
      journal.save();
      continue;
    }
    try {
      const what = await undoStep(ctx, journal, js);
      js.state = o.markAs;
      if (what && !rep.restored.includes(what)) rep.restored.push(what);
      if (js.backup) fileRestored = true;
    } catch (e) {
      const msg = (e as Error).message.split('\n')[0];
      rep.failures.push(js.backup ? `could not restore ${js.backup.target} (step ${i + 1}): ${msg}; its original is kept in ${journal.dir}/${js.backup.file ?? ''}` : `could not undo step ${i + 1} (${describeStep(js)}): ${msg}`);
    }
    journal.save();
  }
  const seen = new Set<string>();
  for (const i of fileRestored || o.forceRegenerate ? o.regenerate : []) {
    const js = journal.doc.steps[i];
    const argv = js.argv ?? [];
    const key = JSON.stringify(argv);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await ctx.runner.run(argv, { label: js.label, timeoutMs: js.timeoutMs });
      rep.reran.push(js.label ?? formatArgv(argv));
      journal.event(`re-ran ${formatArgv(argv)}`);
    } catch (e) {
      const first = (e as Error).message.split('\n')[0];
      if (i === o.failedStep) (rep.notes ??= []).push(`${formatArgv(argv)} fails on the original files too (${first}): the failure is not caused by vfiokit's changes; fix it, then run it by hand`);
      else rep.failures.push(`re-running ${describeStep(js)} failed: ${first}; run \`${formatArgv(argv)}\` by hand`);
    }
    journal.save();
  }
  if (!rep.failures.length) for (const i of o.regenerate) journal.doc.steps[i].state = o.markAs;
  journal.save();
  return rep;
}

export function summarizeRollback(rep: RollbackReport): string {
  const parts: string[] = [];
  parts.push(rep.restored.length ? `restored ${rep.restored.join(', ')}` : 'nothing had been changed');
  if (rep.reran.length) parts.push(`re-ran ${rep.reran.join(', ')}`);
  if (rep.notes?.length) parts.push(`note: ${rep.notes.join('; ')}`);
  if (rep.failures.length) parts.push(`INCOMPLETE: ${rep.failures.join('; ')}`);
  return parts.join('; ');
}
