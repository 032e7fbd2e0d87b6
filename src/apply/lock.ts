// One lock per root: <root>/var/lib/vfiokit/lock, holding the owner's pid
// (after PVE's lock_file and its "leftover reservation" report).
//
// Taking it is atomic *with* its content: the pid is written to a private
// temporary file first, which is then hard-linked to the lock name — link(2)
// fails with EEXIST when the lock exists, so no one can ever read a lock that
// is there but still empty (and mistake it for a stale one).
//
// A lock whose pid is no longer running is stale. Taking one over is guarded
// by a second lock (lock.takeover, taken the same way): under it the stale
// lock is read again and replaced only if it still names the same dead pid,
// so two processes can never both take over one stale lock. A takeover guard
// left by a process that died in those few instructions is itself stale by
// its pid and removed. Must not: wait or retry in a loop — a second vfiokit
// gets a clear error naming the holder.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { PreconditionError } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { asRoot, LOCK_FILE } from './state-dir.js';

export interface Lock {
  /** Real path of the lock file. */
  path: string;
  /** Set when a stale lock (dead pid) was taken over. */
  tookOverFrom: number | null;
  release(): void;
}

export interface LockOptions {
  /** Told about a stale lock before it is taken over. */
  onStale?: (message: string) => void;
  /** Test hook: is this pid running? Default: signal 0. */
  isAlive?: (pid: number) => boolean;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let seq = 0;

/** Create `file` holding our pid, atomically; false when it exists. */
function tryCreate(file: string): boolean {
  const tmp = `${file}.${process.pid}.${++seq}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
  try {
    fs.writeSync(fd, `${process.pid}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function readPid(file: string): { pid: number; text: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null; // removed meanwhile
  }
  return { pid: /^\s*(\d+)\s*$/.test(text) ? parseInt(text, 10) : NaN, text };
}

function removeIfOurs(file: string): void {
  try {
    if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
  } catch {
    /* already gone */
  }
}

export function acquireLock(rootArg: HostRoot | string, opts: LockOptions = {}): Lock {
  const root = asRoot(rootArg);
  const file = root.path(LOCK_FILE);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const isAlive = opts.isAlive ?? pidAlive;
  const held = (tookOverFrom: number | null): Lock => {
    let released = false;
    return {
      path: file,
      tookOverFrom,
      release() {
        if (released) return;
        released = true;
        removeIfOurs(file);
      },
    };
  };
  const busy = (pid: number) =>
    new PreconditionError(
      'E_LOCKED',
      `another vfiokit (pid ${pid}) holds the lock ${LOCK_FILE}${root.isLive ? '' : ` under ${root.dir}`}: a transaction is under way`,
      `wait for it to finish (\`vfiokit history\` shows it); if pid ${pid} is not vfiokit, remove ${file} by hand`,
      LOCK_FILE,
    );
  // A command that wrote nothing removes the state directory it made (withWriteLock): make it again if it just went.
  const first = (): boolean => {
    for (let i = 0; ; i++) {
      try {
        return tryCreate(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || i >= 3) throw e;
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
      }
    }
  };
  if (first()) return held(null);
  const cur = readPid(file);
  if (cur && Number.isFinite(cur.pid) && isAlive(cur.pid)) throw busy(cur.pid);

  // Stale (or vanished): take it over under the takeover guard.
  const guard = `${file}.takeover`;
  if (!tryCreate(guard)) {
    const g = readPid(guard);
    if (g && Number.isFinite(g.pid) && isAlive(g.pid)) throw new PreconditionError('E_LOCKED', `another vfiokit (pid ${g.pid}) is taking over the stale lock ${LOCK_FILE}`, 'run the command again in a moment', LOCK_FILE);
    // The guard's owner died mid-takeover: remove its guard only if it is still that one.
    const again = readPid(guard);
    if (again && again.text === g?.text) fs.rmSync(guard, { force: true });
    throw new PreconditionError('E_LOCKED', `a stale takeover of ${LOCK_FILE} was cleared`, 'run the command again', LOCK_FILE);
  }
  try {
    if (tryCreate(file)) return held(null); // it was released meanwhile
    const now = readPid(file);
    // Gone again: someone released it; whoever creates it next holds it — never remove a lock we did not read as stale.
    if (!now) {
      if (tryCreate(file)) return held(null);
      throw new PreconditionError('E_LOCKED', `another vfiokit took the lock ${LOCK_FILE} just now`, 'run the command again when it has finished', LOCK_FILE);
    }
    if (Number.isFinite(now.pid) && isAlive(now.pid)) throw busy(now.pid);
    opts.onStale?.(
      `stale lock ${LOCK_FILE} ${Number.isFinite(now.pid) ? `left by pid ${now.pid}, which is no longer running` : `with unreadable content ${JSON.stringify(now.text.slice(0, 20))}`}; taking it over`,
    );
    fs.rmSync(file, { force: true });
    if (!tryCreate(file)) throw new PreconditionError('E_LOCKED', `could not take the lock ${LOCK_FILE}: another vfiokit took it at the same time`, 'run the command again', LOCK_FILE);
    return held(Number.isFinite(now.pid) ? now.pid : -1);
  } finally {
    removeIfOurs(guard);
  }
}

/** Run `fn` holding the root's lock. */
export async function withLock<T>(root: HostRoot | string, opts: LockOptions, fn: (lock: Lock) => Promise<T>): Promise<T> {
  const lock = acquireLock(root, opts);
  try {
    return await fn(lock);
  } finally {
    lock.release();
  }
}
