// Crash recovery, and retrying what could not be finished. A transaction left
// in "applying", "rolling-back" or "undoing" was interrupted (power cut,
// kill -9); one in "rollback-failed" or "undo-failed" could not be unwound
// (a file that could not be written, a driver that would not take a device
// back). Because the journal is synced before every step, its steps say
// exactly what may have happened:
//   applying / rolling-back / rollback-failed → roll back every started or
//       done step not yet rolled back (every undo is idempotent), re-run
//       regenerate commands;
//   undoing / undo-failed → finish the undo.
// Kernel changes made in an earlier boot are void (the reboot undid them) and
// are skipped with a note. Runs under the root's lock; every writing command
// calls it first (withWriteLock), and `vfiokit recover` on its own.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { PreconditionError } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { corruptJournalError, fromEarlierBoot, Journal, scanJournals, type JournalDoc, type TxState } from './journal.js';
import { acquireLock, type LockOptions } from './lock.js';
import type { Runner } from './runner.js';
import { asRoot, STATE_DIR } from './state-dir.js';
import { summarizeRollback, unwind } from './steps.js';
import type { SysfsWriter } from './sysfs-writer.js';
import { PROC_BOOT_ID } from '../host/sysfs-paths.js';

const INTERRUPTED: TxState[] = ['applying', 'rolling-back', 'undoing'];
export const UNFINISHED: TxState[] = [...INTERRUPTED, 'rollback-failed', 'undo-failed'];

export interface RecoveryReport {
  txid: string;
  kind: string;
  fromState: TxState;
  toState: TxState;
  action: 'rolled back' | 'finished undo';
  restored: string[];
  reran: string[];
  failures: string[];
  notes?: string[];
  /** One line for the user. */
  message: string;
}

export interface RecoverOptions {
  clock?: () => Date;
  log?: (line: string) => void;
  lock?: LockOptions;
  /** Needed to put kernel state back (drivers, attributes); null under a --root without a kernel fake. */
  sysfs?: SysfsWriter | null;
}

/** Transactions that are not finished (interrupted, or failed to unwind), read only (for `status`). */
export function findUnfinished(root: HostRoot | string): JournalDoc[] {
  return scanJournals(root).docs.filter((d) => UNFINISHED.includes(d.state));
}

/** Interrupted transactions only (kept for callers that distinguish them). */
export function findInterrupted(root: HostRoot | string): JournalDoc[] {
  return scanJournals(root).docs.filter((d) => INTERRUPTED.includes(d.state));
}

/**
 * What recovering one unfinished transaction does, read from its journal
 * alone: finish its undo or roll it back; the steps to reverse, newest first
 * (run-commands without an undo are only marked); the regenerate commands to
 * re-run. Used by recoverLocked and by `recover --dry-run`.
 */
export function recoveryOf(doc: JournalDoc): { undoing: boolean; action: RecoveryReport['action']; steps: number[]; marked: number[]; regenerate: number[] } {
  const undoing = doc.state === 'undoing' || doc.state === 'undo-failed';
  // Everything that may have happened, including steps already put back (every undo is idempotent).
  const pending = (s: JournalDoc['steps'][number]) => (undoing ? s.state !== 'pending' : s.state === 'started' || s.state === 'done' || s.state === 'rolled-back');
  const onlyMarked = (s: JournalDoc['steps'][number]) => s.kind === 'run-command' && !s.regenerate && !s.undoArgv?.length;
  return {
    undoing,
    action: undoing ? 'finished undo' : 'rolled back',
    steps: doc.steps.filter((s) => pending(s) && !(s.kind === 'run-command' && (s.regenerate || !s.undoArgv?.length))).map((s) => s.index).reverse(),
    marked: doc.steps.filter((s) => pending(s) && onlyMarked(s)).map((s) => s.index),
    regenerate: doc.steps.filter((s) => s.kind === 'run-command' && s.regenerate && s.state !== 'pending').map((s) => s.index),
  };
}

/** Recover every unfinished transaction, newest first; caller holds the lock. Throws E_JOURNAL_CORRUPT on an unreadable journal. */
export async function recoverLocked(rootArg: HostRoot | string, runner: Runner, opts: RecoverOptions = {}): Promise<RecoveryReport[]> {
  const root = asRoot(rootArg);
  const { docs, corrupt } = scanJournals(root);
  if (corrupt.length) throw corruptJournalError(corrupt, root);
  const bootNow = root.tryReadAttr(PROC_BOOT_ID)?.trim() || null;
  const reports: RecoveryReport[] = [];
  for (const doc of docs.filter((d) => UNFINISHED.includes(d.state)).reverse()) {
    const j = Journal.open(root, doc.txid, opts.clock);
    const from = j.doc.state;
    const { undoing, steps, marked, regenerate } = recoveryOf(j.doc);
    const markAs = undoing ? 'undone' : 'rolled-back';
    for (const i of marked) j.doc.steps[i].state = markAs;
    const otherBoot = fromEarlierBoot(j.doc, bootNow);
    j.setState(undoing ? 'undoing' : 'rolling-back', `recovering a transaction left in state ${from}`);
    const what = INTERRUPTED.includes(from) ? `was interrupted while ${from}` : `was left ${from}`;
    opts.log?.(`vfiokit: transaction ${j.doc.txid} (${j.doc.kind}) ${what}; ${undoing ? 'finishing the undo' : 'rolling it back'}`);
    const rep = await unwind({ root, runner, sysfs: opts.sysfs ?? null, log: opts.log ?? (() => {}), txDir: j.dir }, j, {
      steps,
      // Files restored by an earlier attempt still need the regeneration.
      regenerate,
      markAs,
      skipVolatile: otherBoot,
      forceRegenerate: from === 'rollback-failed' || from === 'undo-failed',
    });
    const ok = rep.failures.length === 0;
    const to: TxState = undoing ? (ok ? 'undone' : 'undo-failed') : ok ? 'rolled-back' : 'rollback-failed';
    const message = `transaction ${j.doc.txid} (${j.doc.kind}) ${what}: ${ok ? (undoing ? 'undo finished' : 'rolled back') : 'still incomplete'} — ${summarizeRollback(rep)}`;
    j.setState(to, message);
    reports.push({ txid: j.doc.txid, kind: j.doc.kind, fromState: from, toState: to, action: undoing ? 'finished undo' : 'rolled back', ...rep, message });
  }
  return reports;
}

/** Writing commands: refuse to go on while a transaction is left half done (after recovery tried). */
export function assertRecovered(root: HostRoot | string, reports: RecoveryReport[] = []): void {
  const left = findUnfinished(root);
  if (!left.length) return;
  const byId = new Map(reports.map((r) => [r.txid, r]));
  throw new PreconditionError(
    'E_RECOVERY_INCOMPLETE',
    `transaction ${left.map((d) => `${d.txid} (${d.kind}, ${d.state})`).join(', ')} is not finished and could not be recovered; nothing new was changed`,
    'fix what the messages name, then run `vfiokit recover` again (`vfiokit history` shows every step)',
    left[0].txid,
    left.flatMap((d) => (byId.get(d.txid)?.failures ?? [`state ${d.state}`]).map((f) => ({ code: 'E_RECOVERY_INCOMPLETE', subject: d.txid, message: f }))),
  );
}

/**
 * `vfiokit recover`: take the lock and recover every unfinished transaction.
 * Called as recoverInterrupted(root, runner, opts?) or recoverInterrupted({ root, runner, ...opts }).
 */
export async function recoverInterrupted(root: HostRoot | string, runner: Runner, opts?: RecoverOptions): Promise<RecoveryReport[]>;
export async function recoverInterrupted(opts: RecoverOptions & { root: HostRoot | string; runner: Runner }): Promise<RecoveryReport[]>;
export async function recoverInterrupted(
  a: HostRoot | string | (RecoverOptions & { root: HostRoot | string; runner: Runner }),
  b?: Runner,
  c: RecoverOptions = {},
): Promise<RecoveryReport[]> {
  const isOpts = typeof a === 'object' && 'runner' in a;
  const root = isOpts ? a.root : a;
  const runner = isOpts ? a.runner : b!;
  const opts: RecoverOptions = isOpts ? a : c;
  const lock = acquireLock(root, { onStale: opts.log, ...opts.lock });
  try {
    return await recoverLocked(root, runner, opts);
  } finally {
    lock.release();
  }
}

/**
 * Every writing command: take the lock, recover what is unfinished, refuse
 * while something stays unfinished, then run `fn` (plan and apply) under the
 * same lock — so nothing is ever planned over a half-applied host.
 */
export async function withWriteLock<T>(root: HostRoot | string, runner: Runner, opts: RecoverOptions, fn: (recovered: RecoveryReport[]) => Promise<T>): Promise<T> {
  // The state directory is made for the lock; a command that then writes nothing leaves no trace.
  const made = missingStateDirs(asRoot(root));
  const lock = acquireLock(root, { onStale: opts.log, ...opts.lock });
  try {
    const recovered = await recoverLocked(root, runner, opts);
    for (const r of recovered) opts.log?.(r.message);
    assertRecovered(root, recovered);
    return await fn(recovered);
  } finally {
    lock.release();
    for (const d of made) {
      try {
        fs.rmdirSync(d);
      } catch {
        break; // not empty: something was written
      }
    }
  }
}

/** Real paths of the state directory and its ancestors that do not exist yet, deepest first. */
function missingStateDirs(root: HostRoot): string[] {
  const out: string[] = [];
  for (let d = STATE_DIR; d !== '/'; d = path.posix.dirname(d)) {
    const real = root.path(d);
    if (fs.existsSync(real)) break;
    out.push(real);
  }
  return out;
}
