// The scenario harness: named tests with checks, boots (serial logs) and a
// pass / fail / skip outcome. A test passes only when it ran and every check
// it made held; a test that could not run (a vfiokit command is not built
// yet) is a skip with the reason, never a pass.

import path from 'node:path';
import { mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { run as runProc, repoRoot, log, tail } from './util.js';
import { bootOutcome, type BootResult } from './qemu.js';
import type { LabTestDecl } from './declare.js';

export type Status = 'pass' | 'fail' | 'skip';

export interface CheckRecord {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface BootRecord {
  label: string;
  serialLog: string;
  durationMs: number;
  outcome: string;
}

export interface TestResult {
  id: string;
  title: string;
  status: Status;
  reason: string | null;
  durationMs: number;
  checks: CheckRecord[];
  boots: BootRecord[];
  /** A first attempt that failed because a guest's console went silent (runTestRetryingSilence). */
  firstAttempt?: { reason: string | null; durationMs: number; boots: BootRecord[] };
}

export class SkipTest extends Error {}

export class TestContext {
  readonly checks: CheckRecord[] = [];
  readonly boots: BootRecord[] = [];
  constructor(
    readonly id: string,
    readonly workDir: string,
  ) {}

  log(msg: string): void {
    log(`[${this.id}] ${msg}`);
  }

  /** Records a check; returns whether it held. */
  check(name: string, ok: boolean, detail?: string): boolean {
    this.checks.push({ name, ok, ...(detail !== undefined ? { detail } : {}) });
    if (!ok) this.log(`  FAIL ${name}${detail ? `: ${detail}` : ''}`);
    return ok;
  }

  /** Records a check and stops the test when it does not hold (later steps depend on it). */
  require(name: string, ok: boolean, detail?: string): void {
    if (!this.check(name, ok, detail)) throw new RequirementFailed(name);
  }

  /** A directory for one boot's /lab share and serial log. */
  bootDir(name: string): string {
    const d = path.join(this.workDir, name);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    return d;
  }

  recordBoot(label: string, b: BootResult): void {
    const outcome = bootOutcome(b);
    this.boots.push({ label, serialLog: b.serialLog, durationMs: b.durationMs, outcome });
  }
}

export class RequirementFailed extends Error {}

export interface TestDef {
  id: string;
  title: string;
  /** vfiokit commands this test needs; missing ones make it a skip. */
  needs: string[];
  /** Minutes measured with warm caches (2 jobs, 2 cores): the longest tests start first, so parallel jobs end together. */
  cost: number;
  run: (t: TestContext) => Promise<void>;
  /** The declaration it was made from (`defineLabTest`); absent for a free-form test. */
  decl?: LabTestDecl;
}

const commandPresence = new Map<string, Promise<string | null>>();

/**
 * Whether the built vfiokit has `cmd`: `vfiokit CMD --help` exits 2 with
 * "unknown command" when it does not. Returns the skip reason or null.
 */
export function missingCommand(cmd: string): Promise<string | null> {
  let p = commandPresence.get(cmd);
  if (!p) {
    p = runProc([process.execPath, path.join(repoRoot(), 'bin', 'vfiokit.js'), ...cmd.split(' '), '--help'], { timeoutMs: 30_000 }).then((r) =>
      r.code === 2 && /unknown command/i.test(r.stderr + r.stdout) ? `\`vfiokit ${cmd}\` is not in this build yet (\`vfiokit ${cmd} --help\` exits 2: unknown command)` : null,
    );
    commandPresence.set(cmd, p);
  }
  return p;
}

export async function runTest(def: TestDef, resultsDir: string): Promise<TestResult> {
  const t0 = Date.now();
  const workDir = path.join(resultsDir, def.id);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const t = new TestContext(def.id, workDir);
  const done = (status: Status, reason: string | null): TestResult => ({
    id: def.id,
    title: def.title,
    status,
    reason,
    durationMs: Date.now() - t0,
    checks: t.checks,
    boots: t.boots,
  });
  for (const c of def.needs) {
    const missing = await missingCommand(c);
    if (missing) return done('skip', missing);
  }
  t.log(`start: ${def.title}`);
  let result: TestResult;
  try {
    await def.run(t);
    const failed = t.checks.filter((c) => !c.ok);
    if (!t.checks.length) result = done('fail', 'the test made no checks');
    else result = failed.length ? done('fail', failed.map((c) => c.name).join('; ')) : done('pass', null);
  } catch (e) {
    if (e instanceof SkipTest) result = done('skip', e.message);
    else if (e instanceof RequirementFailed) result = done('fail', t.checks.filter((c) => !c.ok).map((c) => c.name).join('; '));
    else {
      t.check('test ran to completion', false, (e as Error).stack ?? String(e));
      result = done('fail', `error: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (result.status === 'fail') printFailure(result);
  else {
    // Disks of tests that did not fail are not needed: keep lab-results small (a failed test keeps its disk to inspect).
    for (const f of ['disk.qcow2', 'efivars.fd']) rmSync(path.join(workDir, f), { force: true });
  }
  return result;
}

/** The watchdog's word for a guest whose console stayed silent (qemu.ts). */
const SILENT = /killed: the console was silent/;

/**
 * runTest, and once more when it failed only because a guest went silent
 * (every failed check says the watchdog killed a silent guest):
 * on a loaded 2-CPU machine a TCG guest can stall for minutes (while an image
 * is built beside it), which says nothing about vfiokit. The second attempt's
 * result is the test's, with the first one's reason and boots kept in
 * `firstAttempt` (its results directory as <id>.attempt1) and said in the
 * log; a vfiokit that hangs hangs twice and fails.
 */
export async function runTestRetryingSilence(def: TestDef, resultsDir: string): Promise<TestResult> {
  const first = await runTest(def, resultsDir);
  const failed = first.checks.filter((c) => !c.ok);
  if (first.status !== 'fail' || !failed.length || !failed.every((c) => SILENT.test(c.detail ?? ''))) return first;
  const kept = path.join(resultsDir, `${def.id}.attempt1`);
  rmSync(kept, { recursive: true, force: true });
  renameSync(path.join(resultsDir, def.id), kept);
  log(`[${def.id}] a guest's console went silent (${first.reason}); running the test once more (the first attempt is in ${kept})`);
  const second = await runTest(def, resultsDir);
  const boots = first.boots.map((b) => ({ ...b, serialLog: b.serialLog.replace(path.join(resultsDir, def.id), kept) }));
  return { ...second, reason: second.reason ?? `passed on a second attempt; the first: ${first.reason}`, firstAttempt: { reason: first.reason, durationMs: first.durationMs, boots } };
}

/** On failure: the failed checks, then the end of every boot's serial console with its path. */
export function printFailure(r: TestResult): void {
  const lines: string[] = [`---- ${r.id} FAILED: ${r.title}`];
  for (const c of r.checks.filter((x) => !x.ok)) lines.push(`  check failed: ${c.name}${c.detail ? `\n    ${c.detail.split('\n').join('\n    ')}` : ''}`);
  for (const b of r.boots) {
    lines.push(`  serial console of ${b.label} (${b.outcome}), last lines — full log: ${b.serialLog}`);
    try {
      const text = readFileSync(b.serialLog, 'utf8');
      lines.push(
        tail(text, 25)
          .split('\n')
          .map((l) => `    | ${l}`)
          .join('\n'),
      );
    } catch {
      lines.push('    (log not readable)');
    }
  }
  lines.push(`---- end of ${r.id}`);
  log(lines.join('\n'));
}
