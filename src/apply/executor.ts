// applyPlan: the only code that carries out a Plan. A numbered transaction
// with a reverse unwind (libvirt virHostdevPreparePCIDevicesImpl):
//   0. refuse a plan with problems; an empty plan does nothing
//   1. take the root's lock; recover interrupted transactions first
//   2. check every file step's `before` against the disk — all of them,
//      before anything changes (E_FILE_CHANGED_SINCE_PLAN, nothing written)
//   3. open a journal (state "applying")
//   4. for each step: journal "started" (with the file's backup) → do it →
//      journal "done"
//   5. on any failure: unwind steps 4 did, newest first — restore files byte
//      for byte with mode and owner, then re-run regenerate commands once —
//      and throw ApplyError (exit 4; 5 when the unwind was incomplete)
//   6. mark the journal "applied"; return the touched paths and the txid

import { ApplyError, PreconditionError, type Problem } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import type { Plan, RunCommandStep } from '../model/plan.js';
import { describeStep, Journal } from './journal.js';
import { acquireLock, type Lock, type LockOptions } from './lock.js';
import { assertRecovered, recoverLocked, type RecoveryReport } from './recover.js';
import { formatArgv, type Runner } from './runner.js';
import { asRoot } from './state-dir.js';
import { doFileStep, matchesBefore, refreshAfterHashes, summarizeRollback, unwind } from './file-steps.js';

/**
 * Fault injection (tests): fail at plan step `step` (0-based), before its
 * effect (default) or after it. `crash: true` simulates a power cut: no
 * rollback, the journal stays "applying" and the lock file stays behind.
 */
export type FailAt = number | { step: number; after?: boolean; crash?: boolean };

export interface ApplyOptions {
  root: HostRoot | string;
  runner: Runner;
  clock?: () => Date;
  failAt?: FailAt;
  /** Progress lines ("  wrote /etc/default/grub"); default: silent. */
  log?: (line: string) => void;
  lock?: LockOptions;
}

export interface ApplyResult {
  /** null when the plan was empty (nothing done, no journal). */
  txid: string | null;
  /** Host paths written or removed, in step order, without duplicates. */
  touched: string[];
  /** Commands run, as argv arrays. */
  commands: string[][];
  /** Interrupted transactions recovered before applying. */
  recovered: RecoveryReport[];
}

/** Thrown by fault injection with `crash: true`; never caught by the executor. */
export class SimulatedCrash extends Error {
  constructor(step: number) {
    super(`simulated power loss at step ${step + 1}`);
  }
}

class InjectedFault extends Error {}

export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const root = asRoot(opts.root);
  const log = opts.log ?? (() => {});
  // 0. Refusals and the empty plan.
  if (plan.problems.length) {
    throw new PreconditionError('E_PLAN_HAS_PROBLEMS', `the plan has ${plan.problems.length} problem(s); nothing was changed`, 'fix the problems listed, then plan again', undefined, plan.problems);
  }
  if (!plan.steps.length) return { txid: null, touched: [], commands: [], recovered: [] };

  // 1. Lock, then recover what an earlier run left half done.
  const lock: Lock = acquireLock(root, { onStale: log, ...opts.lock });
  let crashed = false;
  try {
    const recovered = await recoverLocked(root, opts.runner, { clock: opts.clock, log });
    assertRecovered(recovered);

    // 2. Validate everything before the first change.
    const changed: Problem[] = [];
    for (const s of plan.steps) {
      if (s.kind === 'run-command') {
        if (!s.argv.length || !s.argv[0]) throw new PreconditionError('E_BAD_PLAN', `step "${s.reason}" has an empty command`, 'this is a bug in the planner');
        opts.runner.preflight?.(s.argv); // e.g. E_RUN_OUTSIDE_ROOT: refuse now rather than roll back later
        continue;
      }
      if (s.kind !== 'write-file' && s.kind !== 'remove-file') throw new PreconditionError('E_BAD_PLAN', `step kind ${s.kind} is not supported by this executor yet`, 'this is a bug in the planner');
      if (!s.path.startsWith('/')) throw new PreconditionError('E_BAD_PLAN', `step path ${s.path} is not absolute`, 'this is a bug in the planner');
      const m = matchesBefore(root, s);
      if (!m.ok) changed.push({ code: 'E_FILE_CHANGED_SINCE_PLAN', subject: s.path, message: `${s.path} changed since the plan was made (${m.now})`, hint: 'plan again so the diff shows the current file' });
    }
    if (changed.length) {
      throw new PreconditionError(
        'E_FILE_CHANGED_SINCE_PLAN',
        `${changed.length} file(s) changed since the plan was made; nothing was written`,
        'run the plan again (vfiokit plan …) and review the new diff',
        changed[0].subject,
        changed,
      );
    }

    // 3. The journal, synced before the first step.
    const journal = Journal.create(root, plan, opts.clock);
    log(`transaction ${journal.doc.txid}: ${plan.steps.length} step(s)`);
    const fa = opts.failAt === undefined ? null : typeof opts.failAt === 'number' ? { step: opts.failAt } : opts.failAt;
    const hook = (i: number) => (phase: 'before' | 'after') => {
      if (!fa || fa.step !== i || (phase === 'after') !== Boolean(fa.after)) return;
      if (fa.crash) {
        crashed = true;
        throw new SimulatedCrash(i);
      }
      throw new InjectedFault(`injected failure at step ${i + 1} (${phase} its effect)`);
    };
    const touched: string[] = [];
    const commands: string[][] = [];
    let failed = -1;
    let failure: unknown;

    // 4. The steps.
    for (let i = 0; i < plan.steps.length; i++) {
      const s = plan.steps[i];
      const js = journal.doc.steps[i];
      try {
        if (s.kind === 'run-command') {
          js.state = 'started';
          js.startedAt = journal.now();
          journal.save();
          hook(i)('before');
          const r = await opts.runner.run(s.argv, { label: s.label, timeoutMs: s.timeoutMs });
          commands.push(s.argv);
          js.result = { code: r.code, signal: r.signal, durationMs: r.durationMs };
          hook(i)('after');
          js.state = 'done';
          js.finishedAt = journal.now();
          journal.save();
          log(`  ran ${s.label || formatArgv(s.argv)}`);
        } else if (s.kind === 'write-file' || s.kind === 'remove-file') {
          const t = doFileStep(root, journal, js, s, hook(i));
          if (!touched.includes(t)) touched.push(t);
          log(`  ${s.kind === 'write-file' ? 'wrote' : 'removed'} ${t}`);
        }
      } catch (e) {
        if (e instanceof SimulatedCrash) throw e;
        failed = i;
        failure = e;
        break;
      }
    }

    // 5. Unwind in reverse.
    if (failed >= 0) {
      const js = journal.doc.steps[failed];
      js.error = (failure as Error)?.message ?? String(failure);
      journal.setState('rolling-back', `step ${failed + 1} failed: ${js.error.split('\n')[0]}`);
      log(`step ${failed + 1} failed; rolling back`);
      const done = (k: number) => journal.doc.steps[k].state === 'started' || journal.doc.steps[k].state === 'done';
      const fileSteps: number[] = [];
      const regenerate: number[] = [];
      for (let k = failed; k >= 0; k--) if (plan.steps[k].kind !== 'run-command' && done(k)) fileSteps.push(k);
      for (let k = 0; k <= failed; k++) {
        const s = plan.steps[k];
        if (s.kind === 'run-command' && (s as RunCommandStep).regenerate && done(k)) regenerate.push(k);
      }
      // Commands that ran and do not regenerate anything have nothing to undo.
      for (let k = 0; k <= failed; k++) if (plan.steps[k].kind === 'run-command' && done(k) && !regenerate.includes(k)) journal.doc.steps[k].state = 'rolled-back';
      const rep = await unwind(root, journal, { fileSteps, regenerate: fileSteps.length ? regenerate : [], failedStep: failed, markAs: 'rolled-back', runner: opts.runner, log });
      for (const k of regenerate) if (!rep.failures.length) journal.doc.steps[k].state = 'rolled-back';
      const ok = rep.failures.length === 0;
      journal.setState(ok ? 'rolled-back' : 'rollback-failed', summarizeRollback(rep));
      const stepText = `step ${failed + 1}/${plan.steps.length} (${describeStep(plan.steps[failed])})`;
      const cause = (failure as Error)?.message ?? String(failure);
      throw new ApplyError(
        [
          `apply failed at ${stepText}: ${cause}`,
          `rollback: ${summarizeRollback(rep)}`,
          `journal: ${journal.doc.txid}${root.isLive ? '' : ` (under ${root.dir})`}`,
        ].join('\n'),
        journal.doc.txid,
        stepText,
        rep,
        failure,
        ok ? 'nothing remains changed; fix the cause above and apply again' : `finish the rollback by hand: the original files are in ${journal.dir}`,
      );
    }

    // 6. Done. Files a regenerate command rewrote keep their new content as the "after" state.
    for (const p of refreshAfterHashes(root, journal)) log(`  ${p} was rewritten by a regenerate command; recorded as the applied state`);
    journal.setState('applied', `applied ${plan.steps.length} step(s)`);
    return { txid: journal.doc.txid, touched, commands, recovered };
  } finally {
    if (!crashed) lock.release();
  }
}
