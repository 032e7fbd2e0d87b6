// The apply layer's public API (the only code that changes files). See
// executor.ts (applyPlan), undo.ts (undoLatest), recover.ts
// (recoverInterrupted), runner.ts (Runner, realRunner, recordingRunner).

export { applyPlan, SimulatedCrash, type ApplyOptions, type ApplyResult, type FailAt } from './executor.js';
export { undoLatest, type UndoOptions, type UndoResult } from './undo.js';
export { assertRecovered, findInterrupted, recoverInterrupted, recoverLocked, type RecoverOptions, type RecoveryReport } from './recover.js';
export {
  commandFailure,
  formatArgv,
  realRunner,
  recordingRunner,
  resolveInvocation,
  type RealRunnerOptions,
  type RecordingRunner,
  type RecordingRunnerOptions,
  type RunOptions,
  type RunResult,
  type Runner,
} from './runner.js';
export { describeStep, Journal, latestJournal, listJournals, type JournalDoc, type JournalStep, type TxState, type StepState } from './journal.js';
export { acquireLock, withLock, type Lock, type LockOptions } from './lock.js';
export { encodeContent, followLinks, sha256, writeFileAtomic, type AtomicWriteOptions } from './atomic-write.js';
export { JOURNAL_DIR, LOCK_FILE, RUNTIME_JOURNAL, STATE_DIR } from './state-dir.js';
