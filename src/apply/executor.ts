// applyPlan: the only code that carries out a Plan, for every step kind. A
// numbered transaction with a reverse unwind (libvirt virHostdevPreparePCIDevicesImpl):
//   0. refuse a plan with problems; an empty plan does nothing
//   1. take the root's lock (unless the caller holds it); recover interrupted
//      transactions first; refuse while one is left half undone
//   2. check every step against the host — files still as planned and
//      writable, attributes and drivers still as planned, a kernel to write to —
//      all of them, before anything changes (exit 3, nothing written)
//   3. open a journal (state "applying", the boot id recorded)
//   4. for each step: journal "started" (with the file's backup or what the
//      kernel showed) → do it → journal "done"
//   5. on any failure: unwind the steps 4 started, newest first — files back
//      byte for byte, drivers and attributes as found, modules and domains as
//      they were, undo commands run — then re-run regenerate commands once,
//      and throw ApplyError (exit 4; 5 when the unwind was incomplete)
//   6. mark the journal "applied"; return the touched paths and the txid

import { ApplyError, PreconditionError, VfioError, type Problem } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { PROC_BOOT_ID } from '../host/sysfs-paths.js';
import type { Plan } from '../model/plan.js';
import { refreshAfterHashes } from './file-steps.js';
import { describeStep, Journal } from './journal.js';
import { acquireLock, type Lock, type LockOptions } from './lock.js';
import { assertRecovered, recoverLocked, type RecoveryReport } from './recover.js';
import type { Runner } from './runner.js';
import { asRoot } from './state-dir.js';
import { checkStep, doStep, summarizeRollback, unwind } from './steps.js';
import type { KernelContext } from './kernel-steps.js';
import type { SysfsWriter } from './sysfs-writer.js';
import { setPropertyArgv } from './unit-steps.js';

/**
 * Fault injection (tests): fail at plan step `step` (0-based), before its
 * effect (default) or after it. `crash: true` simulates a power cut: no
 * rollback, the journal stays "applying" and the lock file stays behind.
 */
export type FailAt = number | { step: number; after?: boolean; crash?: boolean };

export interface ApplyOptions {
  root: HostRoot | string;
  runner: Runner;
  /** Writes kernel attributes; needed by plans with write-attr, bind-driver or copy-attr steps. */
  sysfs?: SysfsWriter | null;
  clock?: () => Date;
  failAt?: FailAt;
  /** Progress lines ("  wrote /etc/default/grub"); default: silent. */
  log?: (line: string) => void;
  lock?: LockOptions;
  /** The caller already holds the lock and has recovered (see withWriteLock). */
  locked?: boolean;
  /** Test hook for wait steps. */
  sleep?: (ms: number) => Promise<void>;
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

export const currentBootId = (root: HostRoot): string | null => root.tryReadAttr(PROC_BOOT_ID)?.trim() || null;

const KERNEL_KINDS = new Set(['write-attr', 'bind-driver', 'copy-attr']);

export async function applyPlan(plan: Plan, opts: ApplyOptions): Promise<ApplyResult> {
  const root = asRoot(opts.root);
  const log = opts.log ?? (() => {});
  // 0. Refusals and the empty plan.
  if (plan.problems.length) {
    throw new PreconditionError('E_PLAN_HAS_PROBLEMS', `the plan has ${plan.problems.length} problem(s); nothing was changed`, 'fix the problems listed, then plan again', undefined, plan.problems);
  }
  if (!plan.steps.length) return { txid: null, touched: [], commands: [], recovered: [] };

  // 1. Lock, then recover what an earlier run left half done.
  const lock: Lock | null = opts.locked ? null : acquireLock(root, { onStale: log, ...opts.lock });
  let crashed = false;
  try {
    const recovered = opts.locked ? [] : await recoverLocked(root, opts.runner, { clock: opts.clock, log, sysfs: opts.sysfs });
    if (!opts.locked) assertRecovered(root, recovered);

    // 2. Validate everything before the first change.
    const ctx: KernelContext = { root, runner: opts.runner, sysfs: opts.sysfs ?? null, log, txDir: '', sleep: opts.sleep };
    if (plan.steps.some((s) => KERNEL_KINDS.has(s.kind)) && !ctx.sysfs) {
      throw new PreconditionError('E_NOT_LIVE', `this plan changes the running kernel, but --root ${root.dir} is a directory tree with no kernel behind it; nothing was changed`, 'run the command on the host itself, without --root');
    }
    const problems: Problem[] = [];
    for (const s of plan.steps) {
      if (s.kind === 'run-command') {
        if (!s.argv.length || !s.argv[0]) throw new PreconditionError('E_BAD_PLAN', `step "${s.reason}" has an empty command`, 'this is a bug in the planner');
        opts.runner.preflight?.(s.argv); // e.g. E_RUN_OUTSIDE_ROOT: refuse now rather than roll back later
        if (s.undoArgv?.length) opts.runner.preflight?.(s.undoArgv);
        continue;
      }
      if (s.kind === 'module') opts.runner.preflight?.(['modprobe', s.module]);
      if (s.kind === 'domain') opts.runner.preflight?.(['virsh', 'define', '/dev/null']);
      if (s.kind === 'unit-property') opts.runner.preflight?.(setPropertyArgv(s.unit, s.property, s.value));
      if ('path' in s && !s.path.startsWith('/')) throw new PreconditionError('E_BAD_PLAN', `step path ${s.path} is not absolute`, 'this is a bug in the planner');
      const p = checkStep(ctx, s);
      if (p) problems.push(p);
    }
    if (problems.length) {
      const code = problems.every((p) => p.code === problems[0].code) ? problems[0].code : 'E_CHANGED_SINCE_PLAN';
      const what = code === 'E_NOT_WRITABLE' ? `${problems.length} file(s) cannot be written` : code === 'E_FILE_CHANGED_SINCE_PLAN' ? `${problems.length} file(s) changed since the plan was made` : `${problems.length} problem(s) found before the first change`;
      throw new PreconditionError(code, `${what}; nothing was written`, code === 'E_NOT_WRITABLE' ? problems[0].hint : 'run the plan again (vfiokit plan …) and review it', problems[0].subject, problems);
    }

    // 3. The journal, synced before the first step.
    const journal = Journal.create(root, plan, opts.clock, currentBootId(root));
    ctx.txDir = journal.dir;
    log(`transaction ${journal.doc.txid}: ${plan.steps.length} step(s)`);
    const fa = opts.failAt === undefined ? null : typeof opts.failAt === 'number' ? { step: opts.failAt } : opts.failAt;
    // The lab's crash test: a real kill -9 right after step N's effect, before the journal says it is done.
    const killAt = Number(process.env.VFIOKIT_KILL_AT_STEP ?? NaN);
    const hook = (i: number) => (phase: 'before' | 'after') => {
      if (phase === 'after' && killAt === i + 1) process.kill(process.pid, 'SIGKILL');
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
      try {
        const t = await doStep(ctx, journal, journal.doc.steps[i], s, hook(i));
        if (t && !touched.includes(t)) touched.push(t);
        if (s.kind === 'run-command') commands.push(s.argv);
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
      const rep = await unwind(ctx, journal, rollbackOrder(journal, failed));
      const ok = rep.failures.length === 0;
      journal.setState(ok ? 'rolled-back' : 'rollback-failed', summarizeRollback(rep));
      const stepText = `step ${failed + 1}/${plan.steps.length} (${describeStep(plan.steps[failed])})`;
      const cause = (failure as Error)?.message ?? String(failure);
      throw new ApplyError(
        [`apply failed at ${stepText}: ${cause}`, `rollback: ${summarizeRollback(rep)}`, `journal: ${journal.doc.txid}${root.isLive ? '' : ` (under ${root.dir})`}`].join('\n'),
        journal.doc.txid,
        stepText,
        rep,
        failure,
        ok ? (failure instanceof VfioError && failure.hint ? `nothing remains changed; ${failure.hint}` : 'nothing remains changed; fix the cause above and apply again') : `run \`vfiokit recover\` once the cause is fixed (it retries the rollback); the original files are in ${journal.dir}`,
      );
    }

    // 6. Done. Files a regenerate command rewrote keep their new content as the "after" state.
    for (const p of refreshAfterHashes(root, journal)) log(`  ${p} was rewritten by a regenerate command; recorded as the applied state`);
    journal.setState('applied', `applied ${plan.steps.length} step(s)`);
    return { txid: journal.doc.txid, touched, commands, recovered };
  } finally {
    if (!crashed) lock?.release();
  }
}

/** Which steps a rollback undoes (started or done up to `last`, newest first) and which regenerate commands it re-runs. */
function rollbackOrder(journal: Journal, last: number): { steps: number[]; regenerate: number[]; failedStep: number; markAs: 'rolled-back' } {
  const touched = (k: number) => ['started', 'done'].includes(journal.doc.steps[k].state);
  const steps: number[] = [];
  const regenerate: number[] = [];
  for (let k = last; k >= 0; k--) {
    const s = journal.doc.steps[k];
    if (!touched(k)) continue;
    if (s.kind === 'run-command' && s.regenerate) continue;
    if (s.kind === 'run-command' && !s.undoArgv?.length) {
      s.state = 'rolled-back'; // ran, and has nothing to undo
      continue;
    }
    steps.push(k);
  }
  for (let k = 0; k <= last; k++) if (journal.doc.steps[k].kind === 'run-command' && journal.doc.steps[k].regenerate && touched(k)) regenerate.push(k);
  return { steps, regenerate, failedStep: last, markAs: 'rolled-back' };
}
