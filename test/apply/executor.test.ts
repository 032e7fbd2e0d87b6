import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { realInRoot } from '../../src/host/root-links.js';
import { realRunner } from '../../src/apply/runner.js';
import { applyPlan, listJournals, recordingRunner, SimulatedCrash, undoLatest, recoverInterrupted, findInterrupted, latestJournal } from '../../src/apply/index.js';
import { ApplyError, PreconditionError } from '../../src/errors.js';
import type { FileState, Plan, Step } from '../../src/model/plan.js';
import { treeFingerprint } from './_tree.js';

const roots: string[] = [];
afterEach(() => {
  if (!process.env.KEEP_TMP) for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

const GRUB = 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\n# caf\xe9 latin1 byte kept as is\n';
const MODULES = '# /etc/initramfs-tools/modules\nloop\n';

/** A small /etc with odd modes, a foreign owner, a symlink and a file to remove. */
function makeRoot(): string {
  const r = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-apply-'));
  roots.push(r);
  const w = (p: string, c: string | Buffer, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(r, p)), { recursive: true });
    fs.writeFileSync(path.join(r, p), c);
    fs.chmodSync(path.join(r, p), mode);
  };
  w('/etc/default/grub', Buffer.from(GRUB, 'latin1'));
  w('/etc/initramfs-tools/modules', MODULES, 0o640);
  fs.chownSync(path.join(r, '/etc/initramfs-tools/modules'), 1234, 5678);
  fs.mkdirSync(path.join(r, '/etc/modprobe.d'), { recursive: true });
  w('/usr/lib/kernel/cmdline-real', 'root=UUID=1 ro quiet\n', 0o600);
  fs.mkdirSync(path.join(r, '/etc/kernel'), { recursive: true });
  fs.symlinkSync('/usr/lib/kernel/cmdline-real', path.join(r, '/etc/kernel/cmdline')); // absolute: a host path
  w('/etc/modprobe.d/old-vfio.conf', 'options vfio-pci ids=dead:beef\n', 0o600);
  fs.mkdirSync(path.join(r, '/var/lib'), { recursive: true });
  return r;
}

function state(root: string, p: string): FileState | null {
  try {
    const real = realInRoot(root, p); // absolute link targets are host paths
    const st = fs.statSync(real);
    return { content: fs.readFileSync(real, 'latin1'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}

/** 9 steps: new file, edits (one through a symlink), new dirs, a removal, regenerate and plain commands. */
function makePlan(root: string): Plan {
  const wf = (p: string, content: string, mode = 0o644): Step => {
    const before = state(root, p);
    return { kind: 'write-file', path: p, before, after: { content, mode: before?.mode ?? mode }, reason: `edit ${p}` };
  };
  const steps: Step[] = [
    wf('/etc/modprobe.d/vfio.conf', '# vfiokit\noptions vfio-pci ids=10de:2204,10de:1aef\n'),
    wf('/etc/default/grub', GRUB.replace('quiet splash', 'quiet splash intel_iommu=on iommu=pt') + '# vfiokit — owned line\n'),
    wf('/etc/initramfs-tools/modules', MODULES + 'vfio_pci\nvfio\nvfio_iommu_type1\n'),
    { kind: 'run-command', argv: ['update-initramfs', '-u', '-k', 'all'], label: 'update-initramfs -u -k all', regenerate: true, reason: 'rebuild initramfs' },
    wf('/etc/kernel/cmdline', 'root=UUID=1 ro quiet intel_iommu=on\n'),
    wf('/etc/vfiokit/deep/dir/hook.conf', 'x=1\n', 0o600),
    { kind: 'remove-file', path: '/etc/modprobe.d/old-vfio.conf', before: state(root, '/etc/modprobe.d/old-vfio.conf')!, reason: 'stale ids' },
    { kind: 'run-command', argv: ['update-grub'], label: 'update-grub', regenerate: true, reason: 'regenerate grub.cfg' },
    { kind: 'run-command', argv: ['systemctl', 'daemon-reload'], label: 'systemctl daemon-reload', regenerate: false, reason: 'reload units' },
  ];
  return { kind: 'boot-passthrough', intent: { selectors: ['01:00.0'] }, steps, problems: [], warnings: [], summary: ['test plan'] };
}

const clock = () => new Date('2025-01-02T03:04:05Z');

describe('applyPlan', () => {
  it('applies every step, preserving mode, owner and symlinks, and journals it', async () => {
    const root = makeRoot();
    const plan = makePlan(root);
    const runner = recordingRunner();
    const res = await applyPlan(plan, { root, runner, clock });
    expect(res.txid).toMatch(/^20250102T030405Z-0001$/);
    expect(res.touched).toEqual(['/etc/modprobe.d/vfio.conf', '/etc/default/grub', '/etc/initramfs-tools/modules', '/usr/lib/kernel/cmdline-real', '/etc/vfiokit/deep/dir/hook.conf', '/etc/modprobe.d/old-vfio.conf']);
    expect(runner.log()).toBe('update-initramfs -u -k all\nupdate-grub\nsystemctl daemon-reload\n');
    // Bytes: latin1 original byte kept, new UTF-8 text encoded as UTF-8.
    const grub = fs.readFileSync(path.join(root, '/etc/default/grub'));
    expect(grub.includes(Buffer.from([0x63, 0x61, 0x66, 0xe9]))).toBe(true);
    expect(grub.toString('latin1')).not.toContain('—');
    expect(grub.includes(Buffer.from('—', 'utf8'))).toBe(true);
    const mods = fs.statSync(path.join(root, '/etc/initramfs-tools/modules'));
    expect([mods.mode & 0o7777, mods.uid, mods.gid]).toEqual([0o640, 1234, 5678]);
    expect(fs.lstatSync(path.join(root, '/etc/kernel/cmdline')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(path.join(root, '/etc/kernel/cmdline'))).toBe('/usr/lib/kernel/cmdline-real');
    expect(fs.readFileSync(path.join(root, '/usr/lib/kernel/cmdline-real'), 'utf8')).toContain('intel_iommu=on');
    expect(fs.statSync(path.join(root, '/usr/lib/kernel/cmdline-real')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(root, '/etc/modprobe.d/old-vfio.conf'))).toBe(false);
    expect(fs.statSync(path.join(root, '/etc/vfiokit/deep/dir/hook.conf')).mode & 0o777).toBe(0o600);
    const j = latestJournal(root)!;
    expect(j.state).toBe('applied');
    expect(j.steps.map((s) => s.state)).toEqual(Array(9).fill('done'));
    expect(j.steps[5].backup?.createdDirs).toEqual(['/etc/vfiokit', '/etc/vfiokit/deep', '/etc/vfiokit/deep/dir']);
    // No temp files left next to targets; lock released.
    expect(fs.readdirSync(path.join(root, '/etc/default'))).toEqual(['grub']);
    expect(fs.existsSync(path.join(root, '/var/lib/vfiokit/lock'))).toBe(false);
  });

  it('apply then undo leaves the tree byte-identical (content, mode, owner, symlinks) and re-runs regenerate commands', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const runner = recordingRunner();
    const res = await applyPlan(makePlan(root), { root, runner, clock });
    expect(treeFingerprint(root)).not.toEqual(before);
    const u = await undoLatest({ root, runner, clock });
    expect(u.txid).toBe(res.txid);
    expect(treeFingerprint(root)).toEqual(before);
    expect(runner.log()).toBe('update-initramfs -u -k all\nupdate-grub\nsystemctl daemon-reload\nupdate-initramfs -u -k all\nupdate-grub\n');
    expect(latestJournal(root)!.state).toBe('undone');
    // Nothing left to undo.
    expect((await undoLatest({ root, runner })).txid).toBeNull();
  });

  it('undo is a stack: two transactions undo newest first back to the original tree', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const runner = recordingRunner();
    await applyPlan(makePlan(root), { root, runner });
    const mid = treeFingerprint(root);
    const p2: Plan = { kind: 'boot-passthrough', intent: {}, summary: [], problems: [], warnings: [], steps: [{ kind: 'write-file', path: '/etc/default/grub', before: state(root, '/etc/default/grub'), after: { content: 'GRUB_DEFAULT=1\n', mode: 0o644 }, reason: 'second' }] };
    const r2 = await applyPlan(p2, { root, runner });
    expect((await undoLatest({ root, runner })).txid).toBe(r2.txid);
    expect(treeFingerprint(root)).toEqual(mid);
    await undoLatest({ root, runner });
    expect(treeFingerprint(root)).toEqual(before);
  });

  const N = 9;
  for (let k = 0; k < N; k++) {
    for (const after of [false, true]) {
      it(`fault at step ${k + 1} (${after ? 'after' : 'before'} its effect) rolls back to a byte-identical tree, exit 4`, async () => {
        const root = makeRoot();
        const plan = makePlan(root);
        const before = treeFingerprint(root);
        const runner = recordingRunner();
        const err = await applyPlan(plan, { root, runner, failAt: { step: k, after } }).catch((e) => e);
        expect(err).toBeInstanceOf(ApplyError);
        expect((err as ApplyError).exitCode).toBe(4);
        expect((err as ApplyError).message).toContain(`step ${k + 1}/${N}`);
        expect((err as ApplyError).message).toContain('journal: ');
        expect(treeFingerprint(root)).toEqual(before);
        const j = latestJournal(root)!;
        expect(j.state).toBe('rolled-back');
        expect(j.txid).toBe((err as ApplyError).journalId);
        // Commands ran up to the fault; regenerate commands that ran (or were running) are re-run once after the files were restored.
        const cmds: Record<number, string> = { 3: 'update-initramfs -u -k all', 7: 'update-grub', 8: 'systemctl daemon-reload' };
        const firstRun = Object.entries(cmds).filter(([i]) => Number(i) < k || (Number(i) === k && after)).map(([, c]) => c);
        const reran = [...(k >= 3 ? ['update-initramfs -u -k all'] : []), ...(k >= 7 ? ['update-grub'] : [])];
        expect((err as ApplyError).rollback.reran).toEqual(reran);
        expect(runner.log()).toBe([...firstRun, ...reran].map((c) => c + '\n').join(''));
        expect(fs.existsSync(path.join(root, '/var/lib/vfiokit/lock'))).toBe(false);
      });
    }
  }

  it('a failing regenerate command (update-initramfs exits 1) is reported with argv and stderr, and rollback re-runs it after restoring', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const runner = recordingRunner({ failAt: 1, failStderr: 'E: mkinitramfs failure cpio 141\n' });
    const err = (await applyPlan(makePlan(root), { root, runner }).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(4);
    expect(err.message).toContain('step 4/9 (run update-initramfs -u -k all)');
    expect(err.message).toContain('exit code 1');
    expect(err.message).toContain('mkinitramfs failure cpio 141');
    expect(err.rollback.restored).toEqual(['/etc/initramfs-tools/modules', '/etc/default/grub', '/etc/modprobe.d/vfio.conf']);
    expect(err.rollback.reran).toEqual(['update-initramfs -u -k all']);
    expect(runner.log()).toBe('update-initramfs -u -k all\nupdate-initramfs -u -k all\n');
    expect(treeFingerprint(root)).toEqual(before);
  });

  it('exit 5 when the rollback itself fails (re-running a completed regenerate command fails), journal says rollback-failed', async () => {
    const root = makeRoot();
    // update-initramfs succeeds during apply, update-grub fails; during the
    // rollback update-initramfs (which had completed) fails on re-run.
    let initramfsRuns = 0;
    const runner = recordingRunner({ failMatch: (argv) => argv[0] === 'update-grub' || (argv[0] === 'update-initramfs' && ++initramfsRuns > 1) });
    const err = (await applyPlan(makePlan(root), { root, runner }).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(5);
    expect(err.code).toBe('E_ROLLBACK_INCOMPLETE');
    expect(err.message).toContain('INCOMPLETE');
    expect(err.message).toContain(err.journalId!);
    expect(latestJournal(root)!.state).toBe('rollback-failed');
  });

  it('exit 4 when only the failed command fails again on the restored files: a note, not an incomplete rollback', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const runner = recordingRunner({ failMatch: /^update-grub/ });
    const err = (await applyPlan(makePlan(root), { root, runner }).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(4);
    expect(err.message).toContain('fails on the original files too');
    expect(err.message).not.toContain('INCOMPLETE');
    expect(treeFingerprint(root)).toEqual(before);
    expect(latestJournal(root)!.state).toBe('rolled-back');
  });

  it('refuses a plan whose file changed since planning, writing nothing', async () => {
    const root = makeRoot();
    const plan = makePlan(root);
    fs.appendFileSync(path.join(root, '/etc/default/grub'), 'GRUB_TIMEOUT=3\n');
    fs.writeFileSync(path.join(root, '/etc/modprobe.d/vfio.conf'), 'someone else\n'); // planned as absent
    const before = treeFingerprint(root);
    const runner = recordingRunner();
    const err = (await applyPlan(plan, { root, runner }).catch((e) => e)) as PreconditionError;
    expect(err).toBeInstanceOf(PreconditionError);
    expect(err.code).toBe('E_FILE_CHANGED_SINCE_PLAN');
    expect(err.exitCode).toBe(3);
    expect(err.problems.map((p) => p.subject)).toEqual(['/etc/modprobe.d/vfio.conf', '/etc/default/grub']);
    expect(treeFingerprint(root)).toEqual(before);
    expect(runner.calls).toEqual([]);
    expect(listJournals(root)).toEqual([]);
  });

  it('refuses a plan with problems and does nothing for an empty plan', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const plan = makePlan(root);
    plan.problems.push({ code: 'E_IOMMU_DISABLED', subject: 'iommu', message: 'off' });
    await expect(applyPlan(plan, { root, runner: recordingRunner() })).rejects.toMatchObject({ code: 'E_PLAN_HAS_PROBLEMS', exitCode: 3 });
    const empty = await applyPlan({ ...plan, problems: [], steps: [] }, { root, runner: recordingRunner() });
    expect(empty).toEqual({ txid: null, touched: [], commands: [], recovered: [] });
    expect(treeFingerprint(root, [])).toEqual(before);
  });

  it('writes the journal entry (and the backup) before each step', async () => {
    const root = makeRoot();
    const seen: string[] = [];
    const runner = recordingRunner({
      onCall: (argv) => {
        const j = latestJournal(root)!;
        const i = j.steps.findIndex((s) => s.argv?.join(' ') === argv.join(' '));
        seen.push(`${argv[0]}:${j.steps[i].state}:${j.steps.slice(0, i).every((s) => s.state === 'done')}`);
      },
    });
    await applyPlan(makePlan(root), { root, runner });
    expect(seen).toEqual(['update-initramfs:started:true', 'update-grub:started:true', 'systemctl:started:true']);
    // A power cut just before step 2's write: the journal already holds its backup; the file is untouched.
    const root2 = makeRoot();
    const err = await applyPlan(makePlan(root2), { root: root2, runner: recordingRunner(), failAt: { step: 1, crash: true } }).catch((e) => e);
    expect(err).toBeInstanceOf(SimulatedCrash);
    const j = latestJournal(root2)!;
    expect(j.state).toBe('applying');
    expect(j.steps.map((s) => s.state).slice(0, 3)).toEqual(['done', 'started', 'pending']);
    const backup = path.join(root2, '/var/lib/vfiokit/journal', j.txid, j.steps[1].backup!.file!);
    expect(fs.readFileSync(backup, 'latin1')).toBe(GRUB);
    expect(fs.readFileSync(path.join(root2, '/etc/default/grub'), 'latin1')).toBe(GRUB);
  });
});

describe('applyPlan with the real runner', () => {
  it('refuses before any change when a command could only run on the live host (--root tree, no fake bin)', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const err = (await applyPlan(makePlan(root), { root, runner: realRunner(root, { env: {}, progress: null }) }).catch((e) => e)) as PreconditionError;
    expect(err).toBeInstanceOf(PreconditionError);
    expect(err.code).toBe('E_RUN_OUTSIDE_ROOT');
    expect(treeFingerprint(root)).toEqual(before);
    expect(listJournals(root)).toEqual([]);
  });

  it('end to end with VFIOKIT_FAKE_BIN: fake tools run, a failing update-grub rolls everything back and re-runs the regenerators (exit 4)', async () => {
    const root = makeRoot();
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bin-'));
    roots.push(bin);
    const log = path.join(bin, 'calls.log');
    const script = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n${body}\n`, { mode: 0o755 });
    script('update-initramfs', 'echo "update-initramfs: Generating /boot/initrd.img-6.1.0-18-amd64"');
    // Fails once (on the edited config), succeeds when re-run on the restored one.
    script('update-grub', `if [ ! -e ${bin}/failed ]; then touch ${bin}/failed; echo "grub-mkconfig: error: syntax error in /etc/default/grub" >&2; exit 1; fi`);
    script('systemctl', '');
    const before = treeFingerprint(root);
    const progress: string[] = [];
    const runner = realRunner(root, { env: { VFIOKIT_FAKE_BIN: bin }, progress: { write: (s) => progress.push(s) } });
    const err = (await applyPlan(makePlan(root), { root, runner }).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(4);
    expect(err.message).toContain('syntax error in /etc/default/grub');
    expect(fs.readFileSync(log, 'utf8')).toBe('update-initramfs -u -k all\nupdate-grub \nupdate-initramfs -u -k all\nupdate-grub \n');
    expect(err.rollback).toMatchObject({ failures: [], reran: ['update-initramfs -u -k all', 'update-grub'] });
    expect(treeFingerprint(root)).toEqual(before);
    expect(progress.some((l) => l.includes('running update-initramfs -u -k all'))).toBe(true);
  });
});

describe('paths under a root', () => {
  it('an absolute symlink in a parent directory resolves inside the root, never on the live host', async () => {
    const root = makeRoot();
    const inRoot = path.join(root, 'vfiokit-test-only/conf-real'); // a path that does not exist on the live host
    fs.mkdirSync(inRoot, { recursive: true });
    fs.writeFileSync(path.join(inRoot, 'y.conf'), 'y=1\n');
    fs.symlinkSync('/vfiokit-test-only/conf-real', path.join(root, 'etc/conf'));
    const before = treeFingerprint(root);
    const plan: Plan = {
      kind: 't', intent: {}, summary: [], problems: [], warnings: [],
      steps: [
        { kind: 'write-file', path: '/etc/conf/x.conf', before: null, after: { content: 'x=1\n', mode: 0o644 }, reason: 'new' },
        { kind: 'write-file', path: '/etc/conf/y.conf', before: { content: 'y=1\n', mode: 0o644, uid: 0, gid: 0 }, after: { content: 'y=2\n', mode: 0o644 }, reason: 'edit' },
        { kind: 'write-file', path: '/etc/conf/../conf/../../../../etc/escape.conf', before: null, after: { content: 'e\n', mode: 0o644 }, reason: 'dots stay in the root' },
      ],
    };
    const res = await applyPlan(plan, { root, runner: recordingRunner() });
    expect(res.touched).toEqual(['/vfiokit-test-only/conf-real/x.conf', '/vfiokit-test-only/conf-real/y.conf', '/etc/escape.conf']);
    expect(fs.readFileSync(path.join(inRoot, 'y.conf'), 'utf8')).toBe('y=2\n');
    expect(fs.existsSync('/vfiokit-test-only')).toBe(false);
    expect(fs.readlinkSync(path.join(root, 'etc/conf'))).toBe('/vfiokit-test-only/conf-real');
    await undoLatest({ root, runner: recordingRunner() });
    expect(treeFingerprint(root)).toEqual(before);
  });
});

describe('undo', () => {
  it('refuses when a file was edited after apply, listing it; --force restores and keeps the edit', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const runner = recordingRunner();
    await applyPlan(makePlan(root), { root, runner });
    fs.appendFileSync(path.join(root, '/etc/default/grub'), 'GRUB_TIMEOUT=9\n');
    fs.writeFileSync(path.join(root, '/etc/modprobe.d/old-vfio.conf'), 'back again\n');
    const mid = treeFingerprint(root);
    const err = (await undoLatest({ root, runner }).catch((e) => e)) as PreconditionError;
    expect(err.code).toBe('E_EDITED_SINCE_APPLY');
    expect(err.exitCode).toBe(3);
    expect(err.problems.map((p) => p.subject).sort()).toEqual(['/etc/default/grub', '/etc/modprobe.d/old-vfio.conf']);
    expect(treeFingerprint(root)).toEqual(mid);
    expect(latestJournal(root)!.state).toBe('applied');
    const u = await undoLatest({ root, runner, force: true });
    expect(u.overwritten.map((o) => o.path).sort()).toEqual(['/etc/default/grub', '/etc/modprobe.d/old-vfio.conf']);
    expect(fs.readFileSync(u.overwritten.find((o) => o.path === '/etc/default/grub')!.savedAs, 'utf8')).toContain('GRUB_TIMEOUT=9');
    expect(treeFingerprint(root)).toEqual(before);
  });

  it('undo refuses a txid that names no transaction', async () => {
    const root = makeRoot();
    await expect(undoLatest({ root, runner: recordingRunner(), txid: 'nope' })).rejects.toMatchObject({ code: 'E_NO_TRANSACTION', exitCode: 3 });
  });
});

describe('crash recovery', () => {
  for (const [k, after] of [[0, false], [2, true], [4, false], [5, true], [6, true], [7, false]] as const) {
    it(`a transaction interrupted at step ${k + 1} (${after ? 'after' : 'before'} the effect) is detected and rolled back to a byte-identical tree`, async () => {
      const root = makeRoot();
      const before = treeFingerprint(root);
      const err = await applyPlan(makePlan(root), { root, runner: recordingRunner(), failAt: { step: k, after, crash: true } }).catch((e) => e);
      expect(err).toBeInstanceOf(SimulatedCrash);
      // Power is back: the lock holds a pid that no longer runs; a half-written temp file lies around.
      fs.writeFileSync(path.join(root, '/var/lib/vfiokit/lock'), '999999999\n');
      fs.writeFileSync(path.join(root, '/etc/default/.grub.vfiokit-123-abcd.tmp'), 'torn');
      expect(findInterrupted(root).map((d) => d.state)).toEqual(['applying']);
      const stale: string[] = [];
      const runner = recordingRunner();
      // Both call forms: (root, runner, opts) and ({ root, runner, ...opts }).
      const reps = k === 0 ? await recoverInterrupted({ root, runner, log: (l) => stale.push(l) }) : await recoverInterrupted(root, runner, { log: (l) => stale.push(l) });
      expect(stale.some((l) => l.includes('stale lock') && l.includes('999999999'))).toBe(true);
      expect(reps).toHaveLength(1);
      expect(reps[0]).toMatchObject({ fromState: 'applying', toState: 'rolled-back', failures: [] });
      expect(reps[0].message).toContain('interrupted');
      if (k > 3 || (k === 3 && after)) expect(runner.log()).toContain('update-initramfs');
      // The temp file next to grub only goes when grub was touched.
      if (k >= 1) expect(fs.existsSync(path.join(root, '/etc/default/.grub.vfiokit-123-abcd.tmp'))).toBe(false);
      else fs.rmSync(path.join(root, '/etc/default/.grub.vfiokit-123-abcd.tmp'));
      expect(treeFingerprint(root)).toEqual(before);
      expect(findInterrupted(root)).toEqual([]);
      expect(await recoverInterrupted(root, runner)).toEqual([]);
    });
  }

  it('apply recovers an interrupted transaction first and reports it, then applies', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const plan = makePlan(root);
    await applyPlan(plan, { root, runner: recordingRunner(), failAt: { step: 5, after: true, crash: true } }).catch(() => {});
    fs.writeFileSync(path.join(root, '/var/lib/vfiokit/lock'), '999999999\n');
    const lines: string[] = [];
    // The same plan (made before the crash) applies again once recovery restored the tree.
    const res = await applyPlan(plan, { root, runner: recordingRunner(), log: (l) => lines.push(l) });
    expect(res.recovered).toHaveLength(1);
    expect(res.recovered[0]).toMatchObject({ fromState: 'applying', toState: 'rolled-back' });
    expect(lines.some((l) => l.includes('was interrupted while applying'))).toBe(true);
    expect(listJournals(root).map((j) => j.state)).toEqual(['rolled-back', 'applied']);
    await undoLatest({ root, runner: recordingRunner() });
    expect(treeFingerprint(root)).toEqual(before);
  });

  it('apply refuses to go on when recovery cannot complete (a regenerate command fails again)', async () => {
    const root = makeRoot();
    const plan = makePlan(root);
    await applyPlan(plan, { root, runner: recordingRunner(), failAt: { step: 4, crash: true } }).catch(() => {});
    fs.writeFileSync(path.join(root, '/var/lib/vfiokit/lock'), '999999999\n');
    const err = (await applyPlan(plan, { root, runner: recordingRunner({ failMatch: /^update-initramfs/ }) }).catch((e) => e)) as PreconditionError;
    expect(err.code).toBe('E_RECOVERY_INCOMPLETE');
    expect(err.problems[0].message).toContain('update-initramfs');
    expect(listJournals(root).map((j) => j.state)).toEqual(['rollback-failed']);
  });

  it('an undo interrupted midway is finished by recovery', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    await applyPlan(makePlan(root), { root, runner: recordingRunner() });
    // Simulate a power cut during undo: journal says undoing, only the newest file restored.
    const j = latestJournal(root)!;
    const jpath = path.join(root, '/var/lib/vfiokit/journal', j.txid, 'journal.json');
    fs.writeFileSync(path.join(root, '/etc/modprobe.d/old-vfio.conf'), 'options vfio-pci ids=dead:beef\n');
    j.state = 'undoing';
    j.steps[6].state = 'undone';
    fs.writeFileSync(jpath, JSON.stringify(j));
    const runner = recordingRunner();
    const reps = await recoverInterrupted(root, runner);
    expect(reps[0]).toMatchObject({ fromState: 'undoing', toState: 'undone', action: 'finished undo' });
    expect(runner.log()).toBe('update-initramfs -u -k all\nupdate-grub\n');
    // old-vfio.conf was recreated with other mode by hand above; recovery restores the recorded mode
    expect(treeFingerprint(root)).toEqual(before);
  });
});
