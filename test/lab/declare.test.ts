// The declaration runner (lab/lib/declare.ts) with a fake guest: the files a
// boot leaves in /lab/out are given by the test, so each expectation can be
// seen to fail — a wrong exit code with the command's output tail, a missing
// output, JSON that is not JSON or not what was expected — and a required
// step to stop the boots that follow.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defineLabTest, runDeclaration, stepScript, type GuestBackend, type LabTestDecl } from '../../lab/lib/declare.js';
import { runTest, runTestRetryingSilence, TestContext, type TestResult } from '../../lab/lib/harness.js';
import type { BootResult } from '../../lab/lib/qemu.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-declare-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

type FakeBoot = { files: Record<string, string>; finished?: string | null };

/** A guest whose boot NAME leaves `files` in its out/ and finishes "ok" unless told otherwise. */
function fakeGuest(boots: Record<string, FakeBoot>): GuestBackend & { booted: string[]; scripts: string[] } {
  const booted: string[] = [];
  const scripts: string[] = [];
  return {
    booted,
    scripts,
    boot: async ({ name, script }) => {
      booted.push(name);
      scripts.push(script);
      const b = boots[name];
      if (!b) throw new Error(`fake guest: no boot ${name}`);
      const boot: BootResult = { code: 0, timedOut: false, timeoutReason: null, killed: false, stoppedAfterFinish: false, durationMs: 1, serialLog: '/dev/null', serial: '' };
      const finished = b.finished === null ? undefined : (b.finished ?? 'ok');
      return { boot, outDir: path.join(tmp, name), finished, read: (f) => b.files[f] };
    },
  };
}

const base: Omit<LabTestDecl, 'boots'> = {
  id: 'x.fake',
  title: 'fake',
  needs: [],
  cost: 0,
  guest: { kind: 'image', image: 'grub-itools' },
  machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1024 },
};

/** Runs a declaration against the fake guest through the harness, as `npm run lab` would. */
async function run(decl: LabTestDecl, guest: GuestBackend): Promise<TestResult> {
  const def = { ...defineLabTest(decl), run: (t: TestContext) => runDeclaration(decl, t, guest) };
  return runTest(def, tmp);
}

const check = (r: TestResult, name: string) => r.checks.find((c) => c.name === name);

describe('stepScript', () => {
  it('writes plain shell as is and commands through lab_run, env exported for that command only', () => {
    const s = stepScript(['lab_listing before', { label: 'bind', run: 'vfiokit bind "$S" --yes' }, { label: 'killed', run: 'vfiokit bind "$S"', env: { VFIOKIT_KILL_AT_STEP: '2', X: "it's" } }]);
    expect(s.split('\n')).toEqual(['lab_listing before', 'lab_run bind vfiokit bind "$S" --yes', `(export VFIOKIT_KILL_AT_STEP='2'; export X='it'\\''s'; lab_run killed vfiokit bind "$S")`]);
  });
});

describe('runDeclaration', () => {
  it('an unexpected exit code fails the test, the check carrying the exit code and the output tail', async () => {
    const err = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`).join('\n');
    const guest = fakeGuest({ boot: { files: { 'apply.rc': '3\n', 'apply.out': '', 'apply.err': err } } });
    const r = await run({ ...base, boots: [{ name: 'boot', steps: [{ label: 'apply', run: 'vfiokit apply x --yes', expectExit: 0 }] }] }, guest);
    expect(r.status).toBe('fail');
    const c = check(r, '`vfiokit apply x --yes` exits 0')!;
    expect(c.ok).toBe(false);
    expect(c.detail).toContain('exit 3, expected 0');
    expect(c.detail).toContain('line 40');
    expect(c.detail).not.toMatch(/\bline 1\n/);
    expect(r.reason).toContain('`vfiokit apply x --yes` exits 0');
  });

  it('the expected exit code (one of several) passes', async () => {
    const guest = fakeGuest({ boot: { files: { 'a.rc': '137\n', 'b.rc': '0\n' } } });
    const r = await run({ ...base, boots: [{ name: 'boot', steps: [{ label: 'a', run: 'vfiokit a', expectExit: [0, 137], check: 'a ok' }, { label: 'b', run: 'vfiokit b', expectExit: 0 }] }] }, guest);
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
      ['boot 1 (boot) came up and ran its script', true],
      ['a ok', true],
      ['`vfiokit b` exits 0', true],
    ]);
    expect(r.status).toBe('pass');
  });

  it('a check named from the boot\'s outputs (the device found) carries that name', async () => {
    const guest = fakeGuest({ boot: { files: { 'bind.rc': '1\n', gpu: '0000:01:00.0\n' } } });
    const r = await run({ ...base, boots: [{ name: 'boot', steps: [{ label: 'bind', run: 'vfiokit bind "$S"', expectExit: 0, check: (b) => `\`vfiokit bind ${b.read('gpu')?.trim().slice(5)}\` exits 0` }] }] }, guest);
    expect(check(r, '`vfiokit bind 01:00.0` exits 0')).toMatchObject({ ok: false, detail: 'exit 1, expected 0\nno output' });
  });

  it('a step whose exit code is missing is a failure, not a pass', async () => {
    const guest = fakeGuest({ boot: { files: {} } });
    const r = await run({ ...base, boots: [{ name: 'boot', steps: [{ label: 'status', run: 'vfiokit status', expectExit: 0 }] }] }, guest);
    expect(r.status).toBe('fail');
    const c = check(r, '`vfiokit status` exits 0')!;
    expect(c.ok).toBe(false);
    expect(c.detail).toMatch(/no exit code for step status/);
  });

  it('JSON expectations: met, not met (output tail), not JSON, missing output, a throwing predicate', async () => {
    const want = { check: 'prediction matches', ok: (j: any) => j.prediction.matchesKernel === true };
    const guest = fakeGuest({
      boot: {
        files: {
          'good.out': '{"prediction":{"matchesKernel":true}}',
          'bad.out': '{"prediction":{"matchesKernel":false}}',
          'bad.err': 'the differences',
          'text.out': 'Error: nope',
          'throws.out': '{}',
        },
      },
    });
    const steps = ['good', 'bad', 'text', 'missing', 'throws'].map((l) => ({ label: l, run: `vfiokit ${l}`, expectJson: { ...want, check: `${l}: ${want.check}` } }));
    const r = await run({ ...base, boots: [{ name: 'boot', steps }] }, guest);
    expect(r.status).toBe('fail');
    expect(check(r, 'good: prediction matches')!.ok).toBe(true);
    expect(check(r, 'bad: prediction matches')).toMatchObject({ ok: false, detail: expect.stringContaining('the differences') });
    expect(check(r, 'text: prediction matches')).toMatchObject({ ok: false, detail: expect.stringContaining('did not print JSON') });
    expect(check(r, 'missing: prediction matches')).toMatchObject({ ok: false, detail: expect.stringContaining('missing.out missing') });
    expect(check(r, 'throws: prediction matches')).toMatchObject({ ok: false, detail: expect.stringContaining('the expectation threw') });
  });

  it('a required step that fails stops the test: no later boot, no later checks', async () => {
    const guest = fakeGuest({ first: { files: { 'apply.rc': '1\n' } }, second: { files: {} } });
    let laterChecks = 0;
    const r = await run(
      {
        ...base,
        boots: [
          { name: 'first', steps: [{ label: 'apply', run: 'vfiokit apply', expectExit: 0, require: true }], checks: () => void laterChecks++ },
          { name: 'second', steps: ['true'] },
        ],
        checks: () => void laterChecks++,
      },
      guest,
    );
    expect(r.status).toBe('fail');
    expect(guest.booted).toEqual(['first']);
    expect(laterChecks).toBe(0);
  });

  it('boots run in order with their own steps and helpers; checks see every boot; a boot that never finished is a failure unless allowed', async () => {
    const guest = fakeGuest({ cut: { files: { cut: 'x\n' }, finished: null }, after: { files: { 'recover.rc': '0\n' } } });
    let seen = '';
    const r = await run(
      {
        ...base,
        helpers: ['lab_helper() { :; }'],
        boots: [
          { name: 'cut', allowUnfinished: true, steps: ['echo cut'] },
          {
            name: 'after',
            steps: [{ label: 'recover', run: 'vfiokit recover', expectExit: 0 }],
            checks: (b, t, all) => {
              seen = `${all.boot('cut').read('cut')?.trim()} ${b.rc('recover')}`;
              t.check('saw both boots', true);
            },
          },
        ],
      },
      guest,
    );
    expect(guest.booted).toEqual(['cut', 'after']);
    expect(guest.scripts[0]).toBe('lab_helper() { :; }\necho cut');
    expect(seen).toBe('x 0');
    expect(r.status).toBe('pass');

    const unfinished = await run({ ...base, boots: [{ name: 'b', steps: ['true'] }] }, fakeGuest({ b: { files: {}, finished: null } }));
    expect(unfinished.status).toBe('fail');
    expect(check(unfinished, 'boot 1 (b) came up and ran its script')).toMatchObject({ ok: false, detail: 'the script never finished' });
  });

  it('a fast guest boots once, and step labels (file names) do not repeat', () => {
    expect(() => defineLabTest({ ...base, guest: { kind: 'fast' }, boots: [{ name: 'a', steps: [] }, { name: 'b', steps: [] }] })).toThrow(/boots once/);
    expect(() => defineLabTest({ ...base, boots: [{ name: 'a', steps: [{ label: 'x', run: 'true' }, { label: 'x', run: 'false' }] }] })).toThrow(/label x repeats/);
    expect(() => defineLabTest({ ...base, boots: [{ name: 'a', steps: [{ label: '../x', run: 'true' }] }] })).toThrow(/not a file name/);
  });
});

describe('a guest that goes silent', () => {
  const silent: BootResult = { code: null as unknown as number, timedOut: true, timeoutReason: 'killed: the console was silent for 6m00s', killed: false, stoppedAfterFinish: false, durationMs: 1, serialLog: '/dev/null', serial: '' };
  /** Boot NAME goes silent on the attempts listed in `silentOn` (1-based), else leaves `files`. */
  function flakyGuest(silentOn: number[], files: Record<string, string>): GuestBackend & { attempts: number } {
    const g = { attempts: 0 } as GuestBackend & { attempts: number };
    g.boot = async ({ name }) => {
      g.attempts++;
      if (silentOn.includes(g.attempts)) return { boot: silent, outDir: path.join(tmp, name), finished: undefined, read: () => undefined };
      const ok: BootResult = { ...silent, code: 0, timedOut: false, timeoutReason: null };
      return { boot: ok, outDir: path.join(tmp, name), finished: 'ok', read: (f) => files[f] };
    };
    return g;
  }
  const decl: LabTestDecl = { ...base, id: 'x.silent', boots: [{ name: 'boot', steps: [{ label: 'inspect', run: 'vfiokit inspect', expectExit: 0 }] }] };
  const retried = (guest: GuestBackend) => runTestRetryingSilence({ ...defineLabTest(decl), run: (t: TestContext) => runDeclaration(decl, t, guest) }, tmp);

  it('is run once more; a pass then says so and keeps the first attempt', async () => {
    const g = flakyGuest([1], { 'inspect.rc': '0\n', 'inspect.out': '' });
    const r = await retried(g);
    expect(g.attempts).toBe(2);
    expect(r.status).toBe('pass');
    expect(r.reason).toMatch(/^passed on a second attempt; the first: .*came up/);
    expect(r.firstAttempt?.reason).toMatch(/came up and ran its script/);
    expect(fs.existsSync(path.join(tmp, 'x.silent.attempt1'))).toBe(true);
  });

  it('silent twice fails', async () => {
    const g = flakyGuest([1, 2], {});
    const r = await retried(g);
    expect(g.attempts).toBe(2);
    expect(r.status).toBe('fail');
    expect(r.checks.find((c) => !c.ok)?.detail).toBe('killed: the console was silent for 6m00s');
  });

  it('a failure that is not the watchdog\'s is not retried', async () => {
    const g = flakyGuest([], { 'inspect.rc': '1\n', 'inspect.out': '', 'inspect.err': 'boom' });
    const r = await retried(g);
    expect(g.attempts).toBe(1);
    expect(r.status).toBe('fail');
    expect(r.firstAttempt).toBeUndefined();
  });
});

