// The CLI shell: parses argv, lazily loads the command, and maps errors to
// exit codes. The only place that decides an exit code.

import { parseArgs } from 'node:util';
import { COMMANDS, EXIT_CODES_HELP, fillOptionalValues, GLOBAL_OPTIONS, type CommandSpec, type OptionSpec } from './registry.js';
import type { Io } from './context.js';

import pkg from '../../package.json' with { type: 'json' };

const VERSION: string = pkg.version;

function optionLines(opts: Record<string, OptionSpec>): string[] {
  return Object.entries(opts).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
    return `  ${flag.padEnd(28)} ${o.description}`;
  });
}

function mainHelp(): string {
  return [
    'vfiokit — plan, apply, verify and undo VFIO PCI passthrough',
    '',
    'Usage: vfiokit <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '      --version                vfiokit version',
    '',
    EXIT_CODES_HELP,
    '',
    'Run `vfiokit <command> --help` for a command\'s options.',
  ].join('\n');
}

function commandHelp(c: CommandSpec): string {
  return [
    `Usage: ${c.usage}`,
    '',
    c.summary.charAt(0).toUpperCase() + c.summary.slice(1) + '.',
    ...(c.description ? ['', c.description] : []),
    '',
    'Options:',
    ...optionLines({ ...c.options, ...GLOBAL_OPTIONS }),
    '',
    EXIT_CODES_HELP,
  ].join('\n');
}

/** What a usage error prints after the error itself: the command's usage lines and where the rest is (not the whole help). */
function usageBrief(c: CommandSpec): string {
  return [`Usage: ${c.usage}`, `See \`vfiokit ${c.name} --help\` for the options and exit codes.`].join('\n');
}

/** node:util parseArgs's messages, in one line each. */
function argsMessage(message: string): string {
  const needs = /^Option '(-[^' ]+)(?: <value>)?' argument (?:missing|is ambiguous)/.exec(message);
  if (needs) return `${needs[1]} needs a value (write ${needs[1]}=VALUE for a value that starts with a dash)`;
  return message.replace(/\. To specify.*$/s, '').split('\n')[0]!;
}

/** errno → what it means and the fix, for file operations the system refused. */
const ERRNO_FIX: Record<string, [string, string]> = {
  EACCES: ['permission denied', 'run vfiokit as root (sudo vfiokit …)'],
  EPERM: ['operation not permitted', 'run vfiokit as root; if it is root already, the file may be immutable (lsattr)'],
  EROFS: ['the file system is read-only', 'remount it read-write, or use --root on a writable copy'],
  ENOSPC: ['no space left on the device', 'free some space and try again'],
  ENOENT: ['no such file or directory', 'check the path (and --root)'],
  ENOTDIR: ['a component of the path is not a directory', 'check the path (and --root)'],
  ELOOP: ['too many levels of symbolic links (a link loop)', 'fix the symlinks on the way to the file (and under --root)'],
};

/** Exit status when the reader of stdout went away (`vfiokit inspect --json | head`): 128 + SIGPIPE, as a shell tool. */
const EXIT_PIPE_CLOSED = 141;

/** A closed stdout/stderr ends the process quietly instead of with an 'error' event's stack. */
function quietOnClosedOutput(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') {
        try {
          process.stderr.write(`vfiokit: cannot write the output: ${e.message.split('\n')[0]}\n`);
        } catch {
          /* stderr is gone too */
        }
        process.exit(1);
      }
      process.exit(EXIT_PIPE_CLOSED);
    });
  }
}

export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }): Promise<number> {
  if (io.stdout === process.stdout) quietOnClosedOutput();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp() + '\n');
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`vfiokit ${VERSION}\n`);
    return 0;
  }
  const spec = COMMANDS.find((c) => c.name === name);
  if (!spec) {
    io.stderr.write(`vfiokit: unknown command '${name}'\nUsage: vfiokit <command> [options]\nSee \`vfiokit --help\` for the commands.\n`);
    return 2;
  }
  const options = { ...spec.options, ...GLOBAL_OPTIONS };
  let parsed;
  try {
    parsed = parseArgs({
      args: fillOptionalValues(rest, options),
      options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) }])),
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    io.stderr.write(`vfiokit ${name}: ${argsMessage((e as Error).message)}\n${usageBrief(spec)}\n`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout.write(commandHelp(spec) + '\n');
    return 0;
  }
  if (spec.maxPositionals !== undefined && parsed.positionals.length > spec.maxPositionals) {
    const extra = parsed.positionals.slice(spec.maxPositionals);
    io.stderr.write(`vfiokit ${name}: unexpected argument${extra.length > 1 ? 's' : ''} ${extra.map((x) => `'${x}'`).join(' ')}\n${usageBrief(spec)}\n`);
    return 2;
  }
  const [{ HostRoot, rootProblem }, errors] = await Promise.all([import('../host/root.js'), import('../errors.js')]);
  try {
    if (typeof parsed.values.root === 'string') {
      const why = rootProblem(parsed.values.root);
      if (why) throw new errors.UsageError(`--root ${parsed.values.root}: ${why}`, 'pass the directory of a mounted Linux root (with /proc and /sys) or of an extracted `vfiokit snapshot` archive', 'E_ROOT_INVALID');
    }
    const mod = await spec.load();
    const root = new HostRoot(typeof parsed.values.root === 'string' ? parsed.values.root : '/');
    return await mod.run({ positionals: parsed.positionals, values: parsed.values as never, root, io });
  } catch (e) {
    if (e instanceof errors.VfioError) {
      io.stderr.write(`vfiokit ${name}: ${e.message}\n`);
      if (e instanceof errors.PreconditionError) for (const p of e.problems) io.stderr.write(`  - ${p.message}${p.hint ? `\n    fix: ${p.hint}` : ''}\n`);
      if (e instanceof errors.PreconditionError) for (const w of e.warnings) io.stderr.write(`  warning: ${w}\n`);
      if (e.hint) io.stderr.write(`  fix: ${e.hint}\n`);
      if (e instanceof errors.UsageError && !parsed.values.json) io.stderr.write(`${usageBrief(spec)}\n`);
      // With --json, machine consumers (the Ansible modules) also get the error as one JSON line, last.
      if (parsed.values.json) {
        const problems = e instanceof errors.PreconditionError ? e.problems : [];
        const warnings = e instanceof errors.PreconditionError ? e.warnings : [];
        io.stderr.write(JSON.stringify({ error: { code: e.code, message: e.message, hint: e.hint ?? null, subject: e.subject ?? null, exitCode: e.exitCode, problems, warnings } }) + '\n');
      }
      return e.exitCode;
    }
    const env = io.env ?? {};
    const err = e as NodeJS.ErrnoException;
    // The system refused a file operation: say which file and what to do, not a stack.
    if (err && typeof err.code === 'string' && typeof err.path === 'string' && ERRNO_FIX[err.code]) {
      io.stderr.write(`vfiokit ${name}: cannot ${err.syscall ?? 'access'} ${err.path}: ${ERRNO_FIX[err.code][0]}\n  fix: ${ERRNO_FIX[err.code][1]}\n`);
      return errors.EXIT.FAILURE;
    }
    if (err?.code === 'ENOENT' && err.syscall === 'uv_cwd') {
      io.stderr.write(`vfiokit ${name}: the current directory no longer exists\n  fix: cd to an existing directory and run the command again\n`);
      return errors.EXIT.FAILURE;
    }
    let tx = '';
    try {
      const { findUnfinished } = await import('../apply/recover.js');
      const open = findUnfinished(new HostRoot(typeof parsed.values.root === 'string' ? parsed.values.root : '/'));
      if (open.length) tx = ` (transaction ${open[open.length - 1].txid} is unfinished: run \`vfiokit recover\`)`;
    } catch {
      /* the journal cannot be read either; the message below is what matters */
    }
    io.stderr.write(`vfiokit ${name}: internal error: ${(err as Error)?.message?.split('\n')[0] ?? String(e)}${tx}\n`);
    io.stderr.write('  this is a bug in vfiokit: please report it with the output of `vfiokit snapshot report.tar.gz` attached (VFIOKIT_DEBUG=1 shows the stack)\n');
    if (env.VFIOKIT_DEBUG) io.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    return errors.EXIT.FAILURE;
  }
}
