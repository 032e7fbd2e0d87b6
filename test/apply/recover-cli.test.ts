import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, recordingRunner, SimulatedCrash } from '../../src/apply/index.js';
import type { Plan } from '../../src/model/plan.js';
import { runCli } from '../helpers/run-cli.js';
import { treeFingerprint } from './_tree.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

describe('vfiokit recover', () => {
  it('rolls back an interrupted transaction and says so; then there is nothing to recover', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-recover-'));
    roots.push(root);
    fs.mkdirSync(path.join(root, 'etc/modprobe.d'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/modules'), 'loop\n');
    for (const d of ['proc', 'sys']) fs.mkdirSync(path.join(root, d)); // a Linux root
    fs.mkdirSync(path.join(root, 'var/lib'), { recursive: true }); // as on any host; vfiokit's state goes in var/lib/vfiokit
    const before = treeFingerprint(root);
    const plan: Plan = {
      kind: 'boot-passthrough',
      intent: {},
      summary: [],
      problems: [],
      warnings: [],
      steps: [
        { kind: 'write-file', path: '/etc/modprobe.d/vfio.conf', before: null, after: { content: 'options vfio-pci ids=10de:2204\n', mode: 0o644 }, reason: 'ids' },
        { kind: 'write-file', path: '/etc/modules', before: { content: 'loop\n', mode: 0o644, uid: 0, gid: 0 }, after: { content: 'loop\nvfio-pci\n', mode: 0o644 }, reason: 'load early' },
      ],
    };
    await expect(applyPlan(plan, { root, runner: recordingRunner(), failAt: { step: 1, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
    fs.writeFileSync(path.join(root, 'var/lib/vfiokit/lock'), '999999999\n');
    // --dry-run: what recover would do, from the journal; nothing changes (the lock included).
    const crashed = treeFingerprint(root);
    const dry = await runCli(['recover', '--root', root, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would roll back transaction \S+ \(boot-passthrough, left applying\):\n  reverses: write \/etc\/modules\n  reverses: write \/etc\/modprobe\.d\/vfio\.conf\n\(--dry-run: nothing was changed\)\n$/);
    const dryJson = JSON.parse((await runCli(['recover', '--root', root, '--dry-run', '--json'])).stdout);
    expect(dryJson).toMatchObject({ dryRun: true, unfinished: [{ kind: 'boot-passthrough', state: 'applying', action: 'roll back', reverses: ['write /etc/modules', 'write /etc/modprobe.d/vfio.conf'], reruns: [] }] });
    expect(treeFingerprint(root)).toEqual(crashed);
    const r = await runCli(['recover', '--root', root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/was interrupted while applying: rolled back — restored \/etc\/modules, \/etc\/modprobe\.d\/vfio\.conf/);
    expect(r.stderr).toContain('stale lock');
    expect(treeFingerprint(root)).toEqual(before);
    const again = await runCli(['recover', '--root', root, '--json']);
    expect(JSON.parse(again.stdout)).toEqual({ recovered: [], unfinished: [] });
    expect((await runCli(['recover', '--root', root, '--dry-run'])).stdout).toBe('no unfinished transaction: nothing to recover\n');
  });
});
