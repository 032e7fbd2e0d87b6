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
  constructor(code: string, message: string, hint?: string, subject?: string, readonly problems: Problem[] = []) {
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
