// Running commands: argv arrays only, never a shell string. Owns progress
// output, timeouts and the CommandFailedError that names the command, its
// exit code and meaning, the tail of its output and how long it ran.
//
// Safety: under a --root other than "/", a command must never act on the live
// host. The real runner therefore either
//   - runs `<VFIOKIT_FAKE_BIN>/<basename argv0>` when that env var is set
//     (end-to-end tests with fake update-initramfs, modprobe, …), or
//   - runs `chroot <root> argv…` when we are root and the root holds an
//     executable for argv[0], or
//   - refuses with E_RUN_OUTSIDE_ROOT.
// The recording runner (tests) logs one line per call and can fail on demand.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CommandFailedError, PreconditionError } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { asRoot } from './state-dir.js';

export interface RunOptions {
  /** Short label for progress and errors; default: the argv joined. */
  label?: string;
  timeoutMs?: number;
  /** Receives output as it arrives. */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Return a failed result instead of throwing (probes that expect non-zero exits). */
  nothrow?: boolean;
}

export interface RunResult {
  argv: string[];
  /** Exit code; null when killed by a signal or when it could not start. */
  code: number | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  signal: string | null;
}

export interface Runner {
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** Throws (PreconditionError) when `argv` could never run here; lets the executor refuse before any change. */
  preflight?(argv: string[]): void;
}

import { formatArgv } from '../formats/shell-quote.js';
export { formatArgv };

const EXIT_MEANING: Record<number, string> = {
  1: 'general error',
  2: 'misuse or bad arguments',
  126: 'found but not executable',
  127: 'command not found',
  130: 'interrupted',
};

const tail = (s: string, n = 20) => {
  const lines = s.replace(/\s+$/, '').split('\n');
  return lines.slice(-n).join('\n');
};

/** Build the CommandFailedError for a finished (or unstartable) command. */
export function commandFailure(r: RunResult, label: string, note?: string): CommandFailedError {
  const secs = (r.durationMs / 1000).toFixed(1);
  const how = r.signal
    ? `was killed by ${r.signal}${note ? ` (${note})` : ''}`
    : r.code === null
      ? `could not be started${note ? `: ${note}` : ''}`
      : `failed with exit code ${r.code}${EXIT_MEANING[r.code] ? ` (${EXIT_MEANING[r.code]})` : ''}`;
  const errTail = tail(r.stderr);
  const outTail = tail(r.stdout);
  const msg = [`\`${label}\` ${how} after ${secs} s`, `  command: ${formatArgv(r.argv)}`];
  if (errTail) msg.push('  stderr (last lines):', ...errTail.split('\n').map((l) => `    ${l}`));
  else if (outTail) msg.push('  stdout (last lines):', ...outTail.split('\n').map((l) => `    ${l}`));
  return new CommandFailedError(
    r.argv,
    r.code,
    r.signal,
    r.durationMs,
    outTail,
    errTail,
    msg.join('\n'),
    r.code === 127 || r.code === null ? `install the program that provides ${r.argv[0]}, or check PATH` : `read the output above; run \`${formatArgv(r.argv)}\` by hand to see the full output`,
  );
}

interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export interface RealRunnerOptions {
  env?: Record<string, string | undefined>;
  /** Where progress goes (default process.stderr); null = no progress. */
  progress?: ProgressStream | null;
  /** Non-TTY progress line interval (default 10 s). */
  progressIntervalMs?: number;
  /** Test hook: our uid (chroot needs 0). */
  uid?: number;
}

const ROOT_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Decide how argv runs under `root`; throws when it must not run at all. */
export function resolveInvocation(root: HostRoot, argv: string[], opts: RealRunnerOptions = {}): string[] {
  if (!argv.length || !argv[0]) throw new Error('empty argv');
  const env = opts.env ?? process.env;
  const fakeBin = env.VFIOKIT_FAKE_BIN;
  if (fakeBin) {
    const exe = path.join(fakeBin, path.basename(argv[0]));
    try {
      const st = fs.statSync(exe);
      if (st.isFile() && st.mode & 0o111) return [exe, ...argv.slice(1)];
    } catch {
      /* fall through to the refusal */
    }
    throw new PreconditionError(
      'E_RUN_OUTSIDE_ROOT',
      `VFIOKIT_FAKE_BIN=${fakeBin} is set but holds no executable ${path.basename(argv[0])}; refusing to run ${formatArgv(argv)} on the live host`,
      `add ${exe}, or unset VFIOKIT_FAKE_BIN`,
      argv[0],
    );
  }
  if (root.isLive) return argv;
  const candidates = argv[0].startsWith('/') ? [argv[0]] : ROOT_PATH.map((d) => `${d}/${argv[0]}`);
  const inRoot = root.findExecutable(candidates);
  const uid = opts.uid ?? process.getuid?.() ?? -1;
  if (inRoot && uid === 0) return ['chroot', root.dir, inRoot, ...argv.slice(1)];
  throw new PreconditionError(
    'E_RUN_OUTSIDE_ROOT',
    `will not run \`${formatArgv(argv)}\` for --root ${root.dir}: it would act on the live host, and ${inRoot ? 'running it inside the root (chroot) needs root privileges' : `the root holds no executable ${argv[0]}`}`,
    inRoot ? 'run vfiokit as root to run it inside the root with chroot' : `run it yourself inside the root (e.g. chroot ${root.dir} ${formatArgv(argv)}), or set VFIOKIT_FAKE_BIN for tests`,
    argv[0],
  );
}

/** The runner that spawns real processes (see the safety rules at the top). */
export function realRunner(rootArg: HostRoot | string, opts: RealRunnerOptions = {}): Runner {
  const root = asRoot(rootArg);
  const progress = opts.progress === undefined ? process.stderr : opts.progress;
  const every = opts.progressIntervalMs ?? 10_000;
  return {
    preflight(argv) {
      resolveInvocation(root, argv, opts);
    },
    async run(argv, ro = {}) {
      const label = ro.label ?? formatArgv(argv);
      const inv = resolveInvocation(root, argv, opts);
      const env = { ...(opts.env ?? process.env) } as NodeJS.ProcessEnv;
      if (!root.isLive && !env.VFIOKIT_FAKE_BIN) env.PATH = ROOT_PATH.join(':');
      const started = Date.now();
      return new Promise<RunResult>((resolve, reject) => {
        let stdout = '';
        let stderr = '';
        let timedOut = false;
        let settled = false;
        const tty = Boolean(progress?.isTTY);
        progress?.write(tty ? `  running ${label} …` : `  running ${label}\n`);
        const tick = setInterval(
          () => {
            const s = Math.round((Date.now() - started) / 1000);
            progress?.write(tty ? `\r\x1b[K  running ${label} … ${s}s` : `  still running ${label} (${s}s)\n`);
          },
          tty ? 1000 : every,
        );
        const child = spawn(inv[0], inv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', (c: string) => {
          stdout += c;
          ro.onOutput?.(c, 'stdout');
        });
        child.stderr.on('data', (c: string) => {
          stderr += c;
          ro.onOutput?.(c, 'stderr');
        });
        let killer: NodeJS.Timeout | undefined;
        const timer = ro.timeoutMs
          ? setTimeout(() => {
              timedOut = true;
              child.kill('SIGTERM');
              killer = setTimeout(() => child.kill('SIGKILL'), 5000);
            }, ro.timeoutMs)
          : undefined;
        const finish = (code: number | null, signal: string | null, spawnError?: Error) => {
          if (settled) return;
          settled = true;
          clearInterval(tick);
          if (timer) clearTimeout(timer);
          if (killer) clearTimeout(killer);
          const r: RunResult = { argv, code, stdout, stderr, durationMs: Date.now() - started, signal };
          const ok = code === 0 && !spawnError;
          if (progress) progress.write(tty ? `\r\x1b[K  ${ok ? 'done' : 'FAILED'}: ${label} (${(r.durationMs / 1000).toFixed(1)}s)\n` : `  ${ok ? 'done' : 'FAILED'}: ${label} (${(r.durationMs / 1000).toFixed(1)}s)\n`);
          if (ok || ro.nothrow) return resolve(spawnError ? { ...r, code: 127, stderr: r.stderr || spawnError.message } : r);
          reject(commandFailure(spawnError ? { ...r, code: null } : r, label, spawnError ? spawnError.message : timedOut ? `timed out after ${ro.timeoutMs} ms` : undefined));
        };
        child.on('error', (e) => finish(null, null, e));
        child.on('close', (code, signal) => finish(code, signal));
      });
    },
  };
}

interface RecordedCall {
  argv: string[];
  label?: string;
}

export interface RecordingRunnerOptions {
  /** Fail the Nth call (1-based), or each listed N. */
  failAt?: number | number[];
  /** Fail every call whose argv (joined by spaces) matches. */
  failMatch?: RegExp | ((argv: string[]) => boolean);
  /** Exit code of a failing call (default 1) and its stderr. */
  failCode?: number;
  failStderr?: string;
  /** Side effect or canned result per call (e.g. a fake modprobe creating a driver dir). */
  onCall?: (argv: string[], n: number) => Partial<RunResult> | void;
}

export interface RecordingRunner extends Runner {
  /** Every call, in order. */
  calls: RecordedCall[];
  /** One line per call: the formatted argv. */
  log(): string;
}

/** A runner that runs nothing: records each call and fails on demand (tests, --dry-run). */
export function recordingRunner(opts: RecordingRunnerOptions = {}): RecordingRunner {
  const calls: RecordedCall[] = [];
  const failAt = new Set(opts.failAt === undefined ? [] : Array.isArray(opts.failAt) ? opts.failAt : [opts.failAt]);
  return {
    calls,
    log: () => calls.map((c) => formatArgv(c.argv) + '\n').join(''),
    async run(argv, ro = {}) {
      calls.push({ argv: [...argv], label: ro.label });
      const n = calls.length;
      const m = opts.failMatch;
      const fail = failAt.has(n) || (m instanceof RegExp ? m.test(argv.join(' ')) : m ? m(argv) : false);
      const extra = fail ? undefined : opts.onCall?.(argv, n);
      const r: RunResult = { argv, code: fail ? (opts.failCode ?? 1) : 0, stdout: '', stderr: fail ? (opts.failStderr ?? `${argv[0]}: injected failure (call ${n})`) : '', durationMs: 0, signal: null, ...(extra ?? {}) };
      if (r.stdout) ro.onOutput?.(r.stdout, 'stdout');
      if (r.stderr) ro.onOutput?.(r.stderr, 'stderr');
      if (r.code !== 0 && !ro.nothrow) throw commandFailure(r, ro.label ?? formatArgv(argv));
      return r;
    },
  };
}
