// Small helpers shared by the lab: process running, hashing, progress output.
// The lab runs on the developer's machine (or CI) and drives QEMU guests; none
// of this code touches the host's /etc, /boot or /sys.

import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { singleQuote } from '../../src/formats/shell-quote.js';

/** The project root (the directory holding package.json), found from this file. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'bin', 'vfiokit.js'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('lab: cannot find the project root (package.json + bin/vfiokit.js) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(typeof p === 'string' ? Buffer.from(p) : p);
    h.update('\0');
  }
  return h.digest('hex');
}

export function fileHash(file: string): string {
  return sha256(readFileSync(file));
}

export function fmtDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------- output

let logPrefix = '';
export function setLogPrefix(p: string): void {
  logPrefix = p;
}

export function log(msg: string): void {
  process.stdout.write(`${logPrefix}${msg}\n`);
}

/**
 * Shows that a long operation is alive: prints what is running and the elapsed
 * time every `everyMs` (CI output is not a terminal, so no carriage returns).
 */
export async function withProgress<T>(what: string, fn: (note: (s: string) => void) => Promise<T>, everyMs = 20_000): Promise<T> {
  const t0 = Date.now();
  let last = '';
  log(`  … ${what}`);
  const timer = setInterval(() => log(`  … ${what} (${fmtDuration(Date.now() - t0)}${last ? `; ${last}` : ''})`), everyMs);
  try {
    const r = await fn((s) => (last = s.length > 100 ? s.slice(0, 97) + '...' : s));
    log(`  ✓ ${what} (${fmtDuration(Date.now() - t0)})`);
    return r;
  } catch (e) {
    log(`  ✗ ${what} (${fmtDuration(Date.now() - t0)})`);
    throw e;
  } finally {
    clearInterval(timer);
  }
}

// ---------------------------------------------------------------- processes

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv, capturing output; never throws on a non-zero exit. */
export function run(argv: string[], opts: SpawnOptions & { timeoutMs?: number; input?: string; onLine?: (l: string) => void } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { ...opts, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let partial = '';
    const onData = (chunk: Buffer, which: 'out' | 'err') => {
      const s = chunk.toString();
      if (which === 'out') stdout += s;
      else stderr += s;
      if (opts.onLine) {
        partial += s;
        const lines = partial.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) opts.onLine(l);
      }
    };
    child.stdout!.on('data', (c: Buffer) => onData(c, 'out'));
    child.stderr!.on('data', (c: Buffer) => onData(c, 'err'));
    child.on('error', reject);
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : null;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Runs argv and throws with its output when it fails. */
export async function runOk(argv: string[], opts: Parameters<typeof run>[1] = {}): Promise<RunResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-30).join('\n');
    throw new Error(`command failed (${r.timedOut ? 'timed out' : r.signal ?? `exit ${r.code}`}): ${argv.join(' ')}\n${tail}`);
  }
  return r;
}

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v "${cmd}"`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || null : null;
}

/** Single-quotes a string for POSIX sh. */
export const shq = singleQuote;

/** Last `n` lines of a text. */
export function tail(text: string, n: number): string {
  const lines = text.replace(/\r/g, '').split('\n');
  while (lines.length && !lines[lines.length - 1]!.trim()) lines.pop();
  return lines.slice(-n).join('\n');
}

/** A TCP port free on this machine's loopback (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}
