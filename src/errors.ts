// Error classes for vfiokit. Only src/cli/main.ts turns them into exit codes.
// Every message names the thing, the rule it broke and (in `hint`) the fix.

export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  PRECONDITION: 3,
  ROLLED_BACK: 4,
  ROLLBACK_INCOMPLETE: 5,
} as const;

export class VfioError extends Error {
  readonly exitCode: number = EXIT.FAILURE;
  constructor(
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly subject?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad command line: unknown flag, malformed selector. Exit 2. */
export class UsageError extends VfioError {
  override readonly exitCode: number = EXIT.USAGE;
  constructor(message: string, hint?: string, code = 'E_USAGE') {
    super(code, message, hint);
  }
}

/** The host is not in a state where the request can be honoured; nothing was changed. Exit 3. */
export class PreconditionError extends VfioError {
  override readonly exitCode: number = EXIT.PRECONDITION;
  constructor(code: string, message: string, hint?: string, subject?: string, readonly problems: Problem[] = [], readonly warnings: string[] = []) {
    super(code, message, hint, subject);
  }
}

/** A file could not be understood: names the file, the line and what was expected. */
export class FileFormatError extends VfioError {
  override readonly exitCode: number = EXIT.PRECONDITION;
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
    hint?: string,
  ) {
    super('E_FILE_FORMAT', `${file}:${line}: ${message}`, hint, file);
  }
}

/** A problem found while validating; collected, then reported together. */
export interface Problem {
  code: string;
  subject: string;
  message: string;
  hint?: string;
}

/** A command run by vfiokit exited non-zero, was killed, or could not start (after zx's ProcessOutput). */
export class CommandFailedError extends VfioError {
  constructor(
    readonly argv: string[],
    readonly exitStatus: number | null,
    readonly signal: string | null,
    readonly durationMs: number,
    readonly stdoutTail: string,
    readonly stderrTail: string,
    message: string,
    hint?: string,
  ) {
    super('E_COMMAND_FAILED', message, hint, argv[0]);
  }
}

/** An output file the user asked for (e.g. `vfiokit report -o FILE`) could not be written. Exit 1. */
export class OutputError extends VfioError {
  constructor(path: string, reason: string) {
    super('E_OUTPUT_WRITE', `cannot write ${path}: ${reason}`, 'choose a path in an existing directory you can write to (-o FILE.html), or leave out -o to print the page on standard output', path);
  }
}

/** What a rollback (or undo) did after a failure. */
export interface RollbackReport {
  /** Host paths restored to their original bytes (or removed when they did not exist). */
  restored: string[];
  /** Commands re-run after restoring (regenerate steps), as display strings. */
  reran: string[];
  /** What could not be undone; empty when the rollback is complete. */
  failures: string[];
  /** Remarks that do not make the rollback incomplete (e.g. the failed command still fails on the original files). */
  notes?: string[];
}

/**
 * Applying (a plan, a runtime bind/unbind) failed. Exit 4 when everything done
 * was rolled back, 5 when the rollback itself was incomplete; the message names
 * the failed step, what the rollback did and the journal id.
 */
export class ApplyError extends VfioError {
  override readonly exitCode: number;
  constructor(
    message: string,
    readonly journalId: string | null,
    readonly failedStep: string,
    readonly rollback: RollbackReport,
    override readonly cause?: unknown,
    hint?: string,
    code?: string,
  ) {
    const complete = rollback.failures.length === 0;
    super(code ?? (complete ? 'E_APPLY_FAILED' : 'E_ROLLBACK_INCOMPLETE'), message, hint);
    this.exitCode = complete ? EXIT.ROLLED_BACK : EXIT.ROLLBACK_INCOMPLETE;
  }
}
