// POSIX shell quoting: the one place vfiokit turns an argv into text a user
// can paste (plans, progress lines, `vm qemu`, hook files, lab scripts).

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Always single-quote (for generated scripts that must read the same whatever the value). */
export function singleQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote one argument for a POSIX shell (left bare when it needs no quotes). */
export function shellQuote(arg: string): string {
  return arg !== '' && SAFE.test(arg) ? arg : singleQuote(arg);
}

/** Display form of an argv: each argument quoted as needed, joined by spaces. */
export function formatArgv(argv: string[]): string {
  return argv.map(shellQuote).join(' ');
}
