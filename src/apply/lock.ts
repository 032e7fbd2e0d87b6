// One lock per root: <root>/var/lib/vfiokit/lock, created with O_EXCL and
// holding the owner's pid (after PVE's lock_file and its "leftover
// reservation" report). A lock whose pid is no longer running is stale: it
// is reported through `onStale` and taken over. Must not: wait or retry in a
// loop — a second vfiokit gets a clear error naming the holder.

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

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryCreate(file: string): boolean {
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    try {
      fs.writeSync(fd, `${process.pid}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

export function acquireLock(rootArg: HostRoot | string, opts: LockOptions = {}): Lock {
  const root = asRoot(rootArg);
  const file = root.path(LOCK_FILE);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const isAlive = opts.isAlive ?? pidAlive;
  let tookOverFrom: number | null = null;
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(file)) {
      let released = false;
      return {
        path: file,
        tookOverFrom,
        release() {
          if (released) return;
          released = true;
          try {
            if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    }
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue; // removed meanwhile: retry
    }
    const pid = /^\s*(\d+)\s*$/.test(text) ? parseInt(text, 10) : NaN;
    if (Number.isFinite(pid) && isAlive(pid)) {
      throw new PreconditionError(
        'E_LOCKED',
        `another vfiokit (pid ${pid}) holds the lock ${LOCK_FILE}${root.isLive ? '' : ` under ${root.dir}`}`,
        `wait for it to finish; if pid ${pid} is not vfiokit, remove ${file} by hand`,
        LOCK_FILE,
      );
    }
    opts.onStale?.(
      `stale lock ${LOCK_FILE} ${Number.isFinite(pid) ? `left by pid ${pid}, which is no longer running` : `with unreadable content ${JSON.stringify(text.slice(0, 20))}`}; taking it over`,
    );
    tookOverFrom = Number.isFinite(pid) ? pid : -1;
    try {
      fs.unlinkSync(file);
    } catch {
      /* someone else took it over; the retry decides */
    }
  }
  throw new PreconditionError('E_LOCKED', `could not take the lock ${LOCK_FILE}: another vfiokit took it over at the same time`, 'run the command again');
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
