// Internal: doing and undoing file steps, and the reverse unwind shared by
// rollback (executor), undo and crash recovery. Not exported from index.ts.
//
// Every file effect is resolved under the root: symlinks are followed in host
// path space (an absolute link target is a host path) and a target that
// would leave the root is refused.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Problem } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { realInRoot } from '../host/root-links.js';
import type { RemoveFileStep, WriteFileStep } from '../model/plan.js';
import { encodeContent, fsyncDir, sha256, tmpPrefix, writeFileAtomic } from './atomic-write.js';
import type { FileBackup, Journal, JournalStep } from './journal.js';

interface Resolved {
  /** Real path of the host path as given. */
  real: string;
  /** Real path after following symlinks. */
  realTarget: string;
  /** Host path of the target. */
  target: string;
}

function hostOf(root: HostRoot, real: string): string {
  return root.isLive ? real : real.slice(root.dir.length) || '/';
}

/**
 * Resolve a host path to a real path inside the root (src/host/root-links.ts):
 * an absolute link target in any component (even a parent directory, like
 * etc -> /etc) restarts from the root, so a --root tree can never lead a
 * write onto the live host. `followLast: false` keeps a final symlink itself
 * (removing or restoring the link).
 */
export function resolveHostPath(root: HostRoot, hostPath: string, followLast = true): string {
  return realInRoot(root.dir, hostPath, { followLast });
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

/**
 * Can the file be replaced? Checked before the first change of a transaction,
 * so an immutable file (chattr +i), a read-only mount or a directory that
 * does not accept the temporary file is refused with nothing written.
 */
export function writableProblem(root: HostRoot, hostPath: string): Problem | null {
  const { realTarget, target } = resolveUnder(root, hostPath);
  let dir = path.dirname(realTarget);
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  for (const p of fs.existsSync(realTarget) ? [realTarget, dir] : [dir]) {
    try {
      fs.accessSync(p, fs.constants.W_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      const why = code === 'EPERM' ? 'it is immutable (chattr +i) or the system forbids writing it' : code === 'EROFS' ? 'its file system is mounted read-only' : code === 'EACCES' ? 'permission denied (run as root)' : code;
      return {
        code: 'E_NOT_WRITABLE',
        subject: target,
        message: `${p === realTarget ? target : hostOf(root, p)} cannot be written: ${why}`,
        hint: code === 'EPERM' ? `remove the flag (chattr -i ${target}) if you set it on purpose, then try again` : code === 'EROFS' ? 'remount it read-write (mount -o remount,rw …) and try again' : 'run vfiokit as root',
      };
    }
  }
  return null;
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
    writeFileAtomic(r.realTarget, bytes, { mode: keepMode ? undefined : step.after.mode, root: root.dir });
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
    const orig = journal.readBackup(b.file);
    const now = readCurrent(resolveHostPath(root, b.target));
    // Untouched (the step failed before its effect, or undone before a crash): nothing to write.
    if (now && now.equals(orig)) {
      const st = fs.statSync(resolveHostPath(root, b.target));
      if ((b.mode === null || (st.mode & 0o7777) === b.mode) && (b.uid === null || st.uid === b.uid) && (b.gid === null || st.gid === b.gid)) return;
    }
    writeFileAtomic(resolveHostPath(root, b.target), journal.readBackup(b.file), { mode: b.mode ?? undefined, uid: b.uid ?? undefined, gid: b.gid ?? undefined, root: root.dir });
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
