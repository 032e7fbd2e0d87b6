// Crash recovery: a transaction left in "applying", "rolling-back" or
// "undoing" was interrupted (power cut, kill -9). Because the journal is
// synced before every step, its steps say exactly what may have happened:
//   applying / rolling-back → roll back every started or done step (restoring
//                             a backup is idempotent), re-run regenerate commands;
//   undoing                 → finish the undo (restore all file steps), re-run
//                             regenerate commands.
// Runs under the root's lock; apply, undo and `vfiokit recover` call it first.

import { PreconditionError } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { INTERRUPTED_STATES, Journal, listJournals, type JournalDoc, type TxState } from './journal.js';
import { acquireLock, type LockOptions } from './lock.js';
import type { Runner } from './runner.js';
import { asRoot } from './state-dir.js';
import { summarizeRollback, unwind } from './file-steps.js';

export interface RecoveryReport {
  txid: string;
  kind: string;
  fromState: TxState;
  toState: TxState;
  action: 'rolled back' | 'finished undo';
  restored: string[];
  reran: string[];
  failures: string[];
  /** One line for the user. */
  message: string;
}

export interface RecoverOptions {
  clock?: () => Date;
  log?: (line: string) => void;
  lock?: LockOptions;
}

/** Interrupted transactions, read only (for `status` without taking the lock). */
export function findInterrupted(root: HostRoot | string): JournalDoc[] {
  return listJournals(root).filter((d) => INTERRUPTED_STATES.includes(d.state));
}

/** Recover every interrupted transaction; caller holds the lock. */
export async function recoverLocked(rootArg: HostRoot | string, runner: Runner, opts: RecoverOptions = {}): Promise<RecoveryReport[]> {
  const root = asRoot(rootArg);
  const reports: RecoveryReport[] = [];
  for (const doc of findInterrupted(root).reverse()) {
    const j = Journal.open(root, doc.txid, opts.clock);
    const from = j.doc.state;
    const undoing = from === 'undoing';
    const touched = (s: (typeof j.doc.steps)[number]) => (undoing ? s.state !== 'pending' : s.state === 'started' || s.state === 'done' || s.state === 'rolled-back');
    const fileSteps = j.doc.steps.filter((s) => s.kind !== 'run-command' && touched(s)).map((s) => s.index).reverse();
    const regenerate = j.doc.steps.filter((s) => s.kind === 'run-command' && s.regenerate && touched(s)).map((s) => s.index);
    j.setState(undoing ? 'undoing' : 'rolling-back', `recovering a transaction interrupted in state ${from}`);
    opts.log?.(`vfiokit: transaction ${j.doc.txid} (${j.doc.kind}) was interrupted while ${from}; ${undoing ? 'finishing the undo' : 'rolling it back'}`);
    const rep = await unwind(root, j, { fileSteps, regenerate: fileSteps.length ? regenerate : [], markAs: undoing ? 'undone' : 'rolled-back', runner, log: opts.log });
    const ok = rep.failures.length === 0;
    const to: TxState = undoing ? (ok ? 'undone' : 'undo-failed') : ok ? 'rolled-back' : 'rollback-failed';
    const message = `transaction ${j.doc.txid} (${j.doc.kind}) was interrupted while ${from}: ${undoing ? 'undo finished' : 'rolled back'} — ${summarizeRollback(rep)}`;
    j.setState(to, message);
    reports.push({ txid: j.doc.txid, kind: j.doc.kind, fromState: from, toState: to, action: undoing ? 'finished undo' : 'rolled back', ...rep, message });
  }
  return reports;
}

/** apply/undo: refuse to go on when recovery left a transaction half undone. */
export function assertRecovered(reports: RecoveryReport[]): void {
  const bad = reports.filter((r) => r.failures.length);
  if (!bad.length) return;
  throw new PreconditionError(
    'E_RECOVERY_INCOMPLETE',
    `an interrupted transaction could not be fully recovered (${bad.map((r) => r.txid).join(', ')}); nothing new was changed`,
    'fix what the messages above name, then run `vfiokit recover` again',
    bad[0].txid,
    bad.flatMap((r) => r.failures.map((f) => ({ code: 'E_RECOVERY_INCOMPLETE', subject: r.txid, message: f }))),
  );
}

/**
 * `vfiokit recover`: take the lock and recover every interrupted transaction.
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
