// Internal: doing and undoing file steps, and the reverse unwind shared by
// rollback (executor), undo and crash recovery. Not exported from index.ts.
//
// Every file effect is resolved under the root: symlinks are followed in host
// path space (an absolute link target is a host path) and a target that
// would leave the root is refused.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RollbackReport } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import type { RemoveFileStep, WriteFileStep } from '../model/plan.js';
import { encodeContent, fsyncDir, sha256, tmpPrefix, writeFileAtomic } from './atomic-write.js';
import { describeStep, type FileBackup, type Journal, type JournalStep } from './journal.js';
import { formatArgv, type Runner } from './runner.js';

export interface Resolved {
  /** Real path of the host path as given. */
  real: string;
  /** Real path after following symlinks. */
  realTarget: string;
  /** Host path of the target. */
  target: string;
}

export function hostOf(root: HostRoot, real: string): string {
  return root.isLive ? real : real.slice(root.dir.length) || '/';
}

/**
 * Resolve a host path to a real path, following symlinks in *every*
 * component in host path space: an absolute link target (even in a parent
 * directory, like etc -> /etc) restarts from the root, so a --root tree can
 * never lead a write onto the live host. `followLast: false` keeps a final
 * symlink itself (removing or restoring the link).
 */
export function resolveHostPath(root: HostRoot, hostPath: string, followLast = true): string {
  const base = root.isLive ? '' : root.dir;
  let todo = path.posix.normalize(hostPath).split('/').filter(Boolean);
  let done: string[] = [];
  for (let hops = 0; todo.length; ) {
    const name = todo.shift()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    const cand = [...done, name];
    const real = `${base}/${cand.join('/')}`;
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(real);
    } catch {
      st = null;
    }
    if (st?.isSymbolicLink() && (todo.length || followLast)) {
      if (++hops > 40) throw Object.assign(new Error(`too many levels of symbolic links at ${hostPath}`), { code: 'ELOOP' });
      const t = fs.readlinkSync(real);
      todo = [...t.split('/').filter(Boolean), ...todo];
      if (t.startsWith('/')) done = [];
      continue;
    }
    done = cand;
  }
  return `${base}/${done.join('/')}`;
}

export function resolveUnder(root: HostRoot, hostPath: string): Resolved {
  const real = resolveHostPath(root, hostPath, false);
  const realTarget = resolveHostPath(root, hostPath, true);
  return { real, realTarget, target: hostOf(root, realTarget) };
}

/** Current bytes of a file (following links), or null when absent. */
export function readCurrent(realTarget: string): Buffer | null {
  try {
    const st = fs.statSync(realTarget);
    if (!st.isFile()) return null;
    return fs.readFileSync(realTarget);
  } catch {
    return null;
  }
}

/** Does the file still hold what the plan saw? (content only; absent = null) */
export function matchesBefore(root: HostRoot, step: WriteFileStep | RemoveFileStep): { ok: boolean; now: string } {
  const { realTarget } = resolveUnder(root, step.path);
  const cur = readCurrent(realTarget);
  let isDir = false;
  try {
    isDir = fs.statSync(realTarget).isDirectory();
  } catch {
    /* absent */
  }
  if (isDir) return { ok: false, now: 'is a directory' };
  if (step.before === null) return { ok: cur === null, now: cur === null ? 'absent' : 'now exists' };
  if (cur === null) return { ok: false, now: 'has been removed' };
  return { ok: cur.equals(encodeContent(step.before.content)), now: 'content differs' };
}

function missingDirs(dir: string): string[] {
  const out: string[] = [];
  let d = dir;
  while (!fs.existsSync(d)) {
    out.unshift(d);
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  return out;
}

/** 1. back up, 2. journal "started" (synced), 3. hook, 4. effect, 5. journal "done". */
export function doFileStep(
  root: HostRoot,
  journal: Journal,
  js: JournalStep,
  step: WriteFileStep | RemoveFileStep,
  hook: (phase: 'before' | 'after') => void,
): string {
  const r = resolveUnder(root, step.path);
  let backup: FileBackup;
  const lst = (() => {
    try {
      return fs.lstatSync(r.real);
    } catch {
      return null;
    }
  })();
  if (step.kind === 'remove-file' && lst?.isSymbolicLink()) {
    backup = { target: step.path, existed: true, file: null, mode: null, uid: lst.uid, gid: lst.gid, sha256: null, link: fs.readlinkSync(r.real), createdDirs: [] };
  } else {
    const cur = readCurrent(r.realTarget);
    const st = cur ? fs.statSync(r.realTarget) : null;
    backup = {
      target: r.target,
      existed: cur !== null,
      file: cur ? journal.writeBackup(js.index, cur) : null,
      mode: st ? st.mode & 0o7777 : null,
      uid: st ? st.uid : null,
      gid: st ? st.gid : null,
      sha256: cur ? sha256(cur) : null,
      link: null,
      createdDirs: step.kind === 'write-file' ? missingDirs(path.dirname(r.realTarget)).map((d) => hostOf(root, d)) : [],
    };
  }
  js.backup = backup;
  js.state = 'started';
  js.startedAt = journal.now();
  journal.save();
  hook('before');
  if (step.kind === 'write-file') {
    for (const d of backup.createdDirs) fs.mkdirSync(resolveHostPath(root, d), { mode: 0o755 });
    const bytes = encodeContent(step.after.content);
    // Keep the file's current mode unless the plan changes it on purpose.
    const keepMode = backup.existed && step.before !== null && step.after.mode === step.before.mode;
    writeFileAtomic(r.realTarget, bytes, { mode: keepMode ? undefined : step.after.mode, mapAbsolute: (t) => root.path(t) });
    js.after = { sha256: sha256(bytes), mode: fs.statSync(r.realTarget).mode & 0o7777 };
  } else {
    const victim = backup.link !== null ? r.real : r.realTarget;
    fs.unlinkSync(victim);
    fsyncDir(path.dirname(victim));
    js.after = { sha256: null, mode: null };
  }
  hook('after');
  js.state = 'done';
  js.finishedAt = journal.now();
  journal.save();
  return backup.link !== null ? step.path : r.target;
}

/** Put a file back as the backup recorded it (idempotent). */
export function restoreFile(root: HostRoot, journal: Journal, b: FileBackup): void {
  const real = resolveHostPath(root, b.target, false);
  const dir = path.dirname(real);
  // Leftover temp files of an interrupted atomic write of this target.
  try {
    for (const n of fs.readdirSync(dir)) if (n.startsWith(tmpPrefix(path.basename(real))) && n.endsWith('.tmp')) fs.unlinkSync(path.join(dir, n));
  } catch {
    /* dir gone */
  }
  if (b.link !== null) {
    const cur = (() => {
      try {
        return fs.lstatSync(real);
      } catch {
        return null;
      }
    })();
    if (cur?.isSymbolicLink() && fs.readlinkSync(real) === b.link) return;
    if (cur) fs.rmSync(real, { force: true });
    fs.symlinkSync(b.link, real);
    if (b.uid !== null && b.gid !== null) fs.lchownSync(real, b.uid, b.gid);
    fsyncDir(dir);
    return;
  }
  if (b.existed) {
    if (!b.file) throw new Error(`journal has no backup of ${b.target}`);
    writeFileAtomic(resolveHostPath(root, b.target), journal.readBackup(b.file), { mode: b.mode ?? undefined, uid: b.uid ?? undefined, gid: b.gid ?? undefined, mapAbsolute: (t) => root.path(t) });
    return;
  }
  try {
    fs.unlinkSync(real);
    fsyncDir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const d of [...b.createdDirs].reverse()) {
    try {
      fs.rmdirSync(resolveHostPath(root, d));
    } catch {
      break; // not empty (someone put something there) or gone: keep the rest
    }
  }
}

export interface UnwindOptions {
  /** Steps (by index) whose file effects are undone, in this order. */
  fileSteps: number[];
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
  runner: Runner;
  log?: (line: string) => void;
}

/** Restore files in the given order, then re-run regenerate commands once each. Never throws. */
export async function unwind(root: HostRoot, journal: Journal, o: UnwindOptions): Promise<RollbackReport> {
  const rep: RollbackReport = { restored: [], reran: [], failures: [] };
  for (const i of o.fileSteps) {
    const js = journal.doc.steps[i];
    if (!js.backup) {
      js.state = o.markAs; // started without a backup never happens; pending steps did nothing
      continue;
    }
    try {
      restoreFile(root, journal, js.backup);
      js.state = o.markAs;
      if (!rep.restored.includes(js.backup.target)) rep.restored.push(js.backup.target);
      o.log?.(`  restored ${js.backup.target}`);
    } catch (e) {
      rep.failures.push(`could not restore ${js.backup.target} (step ${i + 1}): ${(e as Error).message}; its original is kept in ${journal.dir}/${js.backup.file ?? ''}`);
    }
    journal.save();
  }
  const seen = new Set<string>();
  for (const i of o.regenerate) {
    const js = journal.doc.steps[i];
    const argv = js.argv ?? [];
    const key = JSON.stringify(argv);
    if (seen.has(key)) continue;
    seen.add(key);
    try {
      await o.runner.run(argv, { label: js.label, timeoutMs: js.timeoutMs });
      rep.reran.push(js.label ?? formatArgv(argv));
      journal.event(`re-ran ${formatArgv(argv)}`);
    } catch (e) {
      const first = (e as Error).message.split('\n')[0];
      if (i === o.failedStep) (rep.notes ??= []).push(`${formatArgv(argv)} fails on the original files too (${first}): the failure is not caused by vfiokit's changes; fix it, then run it by hand`);
      else rep.failures.push(`re-running ${describeStep(js)} failed: ${first}; run \`${formatArgv(argv)}\` by hand`);
    }
    journal.save();
  }
  return rep;
}

export function summarizeRollback(rep: RollbackReport): string {
  const parts: string[] = [];
  parts.push(rep.restored.length ? `restored ${rep.restored.join(', ')}` : 'no file had been changed');
  if (rep.reran.length) parts.push(`re-ran ${rep.reran.join(', ')}`);
  if (rep.notes?.length) parts.push(`note: ${rep.notes.join('; ')}`);
  if (rep.failures.length) parts.push(`INCOMPLETE: ${rep.failures.join('; ')}`);
  return parts.join('; ');
}

/**
 * After the regenerate commands ran, record what the written files hold now:
 * a regenerate step may rewrite a file this transaction wrote (Debian's
 * initramfs post-update hook reinstalls systemd-boot entries through
 * kernel-install), and undo must not mistake that for a user's edit.
 * Returns the paths whose content changed after vfiokit wrote them.
 */
export function refreshAfterHashes(root: HostRoot, journal: Journal): string[] {
  const changed: string[] = [];
  for (const js of journal.doc.steps) {
    if (js.kind !== 'write-file' || js.state !== 'done' || !js.after || !js.path) continue;
    const cur = readCurrent(resolveHostPath(root, js.path));
    const now = cur ? sha256(cur) : null;
    if (now !== js.after.sha256) {
      changed.push(js.path);
      js.after = { sha256: now, mode: cur ? fs.statSync(resolveHostPath(root, js.path)).mode & 0o7777 : null };
    }
  }
  if (changed.length) journal.event(`regenerated by the transaction's own commands: ${changed.join(', ')}`);
  journal.save();
  return changed;
}
