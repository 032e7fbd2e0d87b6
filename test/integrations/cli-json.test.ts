// The JSON the Ansible modules read: apply --json, undo --dry-run/--json, and
// errors also as one JSON line, last on stderr, when --json is given.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { debianGrub } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => tmp.forEach((t) => fs.rmSync(t, { recursive: true, force: true })));

function fakeBin(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bin-'));
  tmp.push(dir);
  for (const t of ['update-initramfs', 'update-grub']) fs.writeFileSync(path.join(dir, t), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return dir;
}

describe('JSON for machine consumers', () => {
  it('apply --json → again → undo --dry-run --json → undo --json', async () => {
    const root = buildFakeHost(debianGrub);
    tmp.push(root);
    const modulesBefore = fs.readFileSync(path.join(root, 'etc/initramfs-tools/modules'), 'utf8');
    const env = { VFIOKIT_FAKE_BIN: fakeBin() };
    const noYes = await runCli(['apply', '01:00.0', '--json', '--root', root], env);
    expect(noYes.code).toBe(2);
    expect(JSON.parse(noYes.stderr.trim().split('\n').pop()!).error).toMatchObject({ code: 'E_USAGE', exitCode: 2 });

    const a = await runCli(['apply', '01:00.0', '--yes', '--json', '--root', root], env);
    expect(a.code).toBe(0);
    const res = JSON.parse(a.stdout);
    expect(res).toMatchObject({ changed: true, rebootRequired: true });
    expect(res.touched).toContain('/etc/modprobe.d/vfiokit.conf');
    expect(res.commands).toEqual([['update-initramfs', '-u', '-k', 'all'], ['update-grub']]);
    const again = JSON.parse((await runCli(['apply', '01:00.0', '--yes', '--json', '--root', root], env)).stdout);
    expect(again).toMatchObject({ changed: false, txid: null, rebootRequired: false });

    const conf = fs.readFileSync(path.join(root, 'etc/modprobe.d/vfiokit.conf'), 'utf8');
    const dry = JSON.parse((await runCli(['undo', '--dry-run', '--json', '--root', root], env)).stdout);
    expect(dry).toMatchObject({ changed: true, dryRun: true, txid: res.txid, kind: 'boot-passthrough' });
    expect(dry.restores).toContain('/etc/modprobe.d/vfiokit.conf');
    // Each restored file as it is now and as undo leaves it (null: removed), for diffs.
    const files = new Map((dry.files as { path: string; current: string | null; restored: string | null }[]).map((f) => [f.path, f]));
    expect([...files.keys()].sort()).toEqual([...dry.restores].sort());
    expect(files.get('/etc/modprobe.d/vfiokit.conf')).toMatchObject({ current: conf, restored: null });
    expect(files.get('/etc/initramfs-tools/modules')).toMatchObject({ current: fs.readFileSync(path.join(root, 'etc/initramfs-tools/modules'), 'utf8'), restored: modulesBefore });
    expect(files.get('/etc/initramfs-tools/modules')!.current).not.toBe(modulesBefore);
    expect(fs.readFileSync(path.join(root, 'etc/modprobe.d/vfiokit.conf'), 'utf8')).toBe(conf);
    expect(dry).toMatchObject({ kept: [], refused: [], forcedOver: [] });

    // A file edited since: the dry run says the undo would refuse, and why, with the fix.
    const p = path.join(root, 'etc/modprobe.d/vfiokit.conf');
    fs.appendFileSync(p, '# mine\n');
    // It ends as the undo would: exit 3 with the error (and its JSON on stderr), after the preview on stdout.
    const r = await runCli(['undo', '--dry-run', '--json', '--root', root], env);
    expect(r.code).toBe(3);
    const refused = JSON.parse(r.stdout);
    expect(refused.refused).toEqual([expect.objectContaining({ code: 'E_EDITED_SINCE_APPLY', subject: '/etc/modprobe.d/vfiokit.conf', message: expect.stringContaining('was edited since transaction') })]);
    expect(JSON.parse(r.stderr.trim().split('\n').pop()!).error).toMatchObject({ code: 'E_EDITED_SINCE_APPLY', exitCode: 3, hint: expect.stringContaining('merge your edit by hand, or undo with --force') });
    const text = await runCli(['undo', '--dry-run', '--root', root], env);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain('(--dry-run: nothing was changed)');
    expect(text.stderr).toContain('the undo would be refused: 1 thing(s) changed since transaction');
    expect(text.stderr).toContain('fix: merge your edit by hand, or undo with --force');
    const forced = JSON.parse((await runCli(['undo', '--dry-run', '--force', '--json', '--root', root], env)).stdout);
    expect(forced).toMatchObject({ refused: [], forcedOver: ['/etc/modprobe.d/vfiokit.conf'] });
    fs.writeFileSync(p, conf);

    const u = JSON.parse((await runCli(['undo', '--yes', '--json', '--root', root], env)).stdout);
    expect(u).toMatchObject({ changed: true, txid: res.txid, rebootRequired: true });
    expect(fs.existsSync(path.join(root, 'etc/modprobe.d/vfiokit.conf'))).toBe(false);
    const none = JSON.parse((await runCli(['undo', '--dry-run', '--json', '--root', root], env)).stdout);
    expect(none).toMatchObject({ changed: false, txid: null });
  });

  it('a refused plan: the error code, message, fix and every problem as JSON on stderr', async () => {
    const root = buildFakeHost(debianGrub);
    tmp.push(root);
    const r = await runCli(['plan', '00:02.0', '--json', '--root', root]);
    expect(r.code).toBe(3);
    const e = JSON.parse(r.stderr.trim().split('\n').pop()!).error;
    expect(e).toMatchObject({ code: 'E_BOOT_VGA', exitCode: 3 });
    expect(e.problems[0].hint).toContain('--allow-boot-vga');
    // The text is printed too; without --json only the text.
    expect(r.stderr).toContain('fix:');
    const t = await runCli(['plan', '00:02.0', '--root', root]);
    expect(t.stderr).toContain('fix:');
    expect(t.stderr).not.toContain('{"error"');
  });
});
