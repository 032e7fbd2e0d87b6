// The apply layer's public API: the one engine that changes a host. See
// executor.ts (applyPlan), steps.ts (every step kind), undo.ts
// (undoTransaction), recover.ts (recoverInterrupted, withWriteLock),
// runner.ts (Runner, realRunner, recordingRunner).

export { applyPlan, currentBootId, SimulatedCrash, type ApplyOptions, type ApplyResult, type FailAt } from './executor.js';
export { chooseUndo, dependents, undoChangesPreview, undoFilePreview, undoLatest, undoTransaction, type UndoFilePreview, type UndoOptions, type UndoResult } from './undo.js';
export { assertRecovered, findInterrupted, findUnfinished, recoverInterrupted, recoverLocked, recoveryOf, withWriteLock, UNFINISHED, type RecoverOptions, type RecoveryReport } from './recover.js';
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
export { appliedThisBoot, describeStep, fromEarlierBoot, Journal, latestJournal, listJournals, scanJournals, type CorruptJournal, type JournalDoc, type JournalStep, type TxState, type StepState } from './journal.js';
export { acquireLock, withLock, type Lock, type LockOptions } from './lock.js';
export { encodeContent, sha256, writeFileAtomic, type AtomicWriteOptions } from './atomic-write.js';
export { realSysfsWriter, describeWriteError, type SysfsWriter } from './sysfs-writer.js';
export { JOURNAL_DIR, LOCK_FILE, STATE_DIR } from './state-dir.js';
export { isVolatile } from './steps.js';
