// Item: files are bytes. Any byte vfiokit does not own (UTF-8 text, Latin-1,
// invalid UTF-8) around the lines it owns survives plan → apply → undo
// exactly, for every config format vfiokit edits.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { DISTRO_HOSTS, debianGrub } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

const TOOLS = ['update-initramfs', 'update-grub', 'grub-mkconfig', 'grub2-mkconfig', 'dracut', 'grubby', 'mkinitcpio', 'booster', 'kernelstub', 'bootctl', 'limine-update', 'limine-entry-tool', 'refind-install', 'modprobe', 'proxmox-boot-tool', 'update-initramfs', 'kernel-install', 'regenerate_images'];

function fakeBin(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bin-'));
  tmp.push(dir);
  for (const t of TOOLS) fs.writeFileSync(path.join(dir, t), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return dir;
}

/** Every regular file under dir, as bytes, by relative path (sys/proc/var excluded). */
function snapshotTree(dir: string, rel = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && ['sys', 'proc', 'var', 'dev', 'run'].includes(e.name)) continue;
    if (e.isDirectory()) for (const [k, v] of snapshotTree(dir, r)) out.set(k, v);
    else if (e.isFile()) out.set(r, fs.readFileSync(path.join(dir, r)));
  }
  return out;
}

/** A comment line of arbitrary bytes (no LF/CR/NUL), valid UTF-8 or not. */
const junk = fc.uint8Array({ minLength: 1, maxLength: 24 }).map((a) => Buffer.from(a.map((b) => (b === 10 || b === 13 || b === 0 ? 0xe9 : b))));

function isLineFormat(hostPath: string, content: Buffer): boolean {
  return !hostPath.startsWith('/etc/kernelstub') && !content.subarray(0, 1).equals(Buffer.from('{'));
}

describe('bytes vfiokit does not own', () => {
  it('a UTF-8 "é" comment in /etc/default/grub and a Latin-1 byte in initramfs-tools/modules: apply succeeds, undo is byte-identical', async () => {
    const root = buildFakeHost(debianGrub);
    tmp.push(root);
    const grub = path.join(root, 'etc/default/grub');
    fs.writeFileSync(grub, Buffer.concat([Buffer.from('# Réglages de démarrage\n', 'utf8'), fs.readFileSync(grub)]));
    const mods = path.join(root, 'etc/initramfs-tools/modules');
    fs.writeFileSync(mods, Buffer.concat([fs.readFileSync(mods), Buffer.from('# modules chargés\n', 'utf8'), Buffer.from([0x23, 0x20, 0x63, 0x61, 0x66, 0xe9, 0x0a])]));
    const before = snapshotTree(root);
    const env = { VFIOKIT_FAKE_BIN: fakeBin() };
    const plan = await runCli(['plan', '01:00.0', '--root', root], env);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('modules chargés');
    expect(plan.stdout).toContain('caf\\xE9');
    const applied = await runCli(['apply', '01:00.0', '--yes', '--root', root], env);
    expect(applied.stderr).not.toMatch(/vfiokit apply:/);
    expect(applied.code).toBe(0);
    expect(fs.readFileSync(grub).subarray(0, 26).equals(Buffer.from('# Réglages de démarrage\n', 'utf8'))).toBe(true);
    expect(fs.readFileSync(mods).includes(Buffer.from([0x66, 0xe9, 0x0a]))).toBe(true);
    const undone = await runCli(['undo', '--yes', '--root', root], env);
    expect(undone.code).toBe(0);
    expect(snapshotTree(root)).toEqual(before);
  });

  for (const [name, { host, select }] of Object.entries(DISTRO_HOSTS)) {
    it(`${name}: random bytes around the owned lines survive plan → apply → undo`, async () => {
      const env = { VFIOKIT_FAKE_BIN: fakeBin() };
      // Which existing files does the plan edit?
      const probe = buildFakeHost(host);
      tmp.push(probe);
      const p = await runCli(['plan', ...select, '--json', '--root', probe], env);
      const plan = JSON.parse(p.stdout);
      const edited: string[] = (plan.steps ?? []).filter((s: any) => s.kind === 'write-file' && s.before).map((s: any) => s.path);
      await fc.assert(
        fc.asyncProperty(fc.array(junk, { minLength: 2, maxLength: 2 }), async ([head, tail]) => {
          const root = buildFakeHost(host);
          tmp.push(root);
          for (const f of edited) {
            const real = path.join(root, f);
            const cur = fs.readFileSync(real);
            if (!isLineFormat(f, cur)) continue;
            if (f.endsWith('/cmdline')) {
              // one line of arguments: the bytes go into an argument of the user's
              const arg = (b: Buffer) => Buffer.from(b.map((x) => (x === 0x20 || x === 0x09 || x === 0x22 || x === 0x27 || x === 0x5c ? 0xe9 : x)));
              const text = cur.subarray(0, cur.length - 1);
              fs.writeFileSync(real, Buffer.concat([Buffer.from('note='), arg(head), Buffer.from(' '), text, Buffer.from(' tail='), arg(tail), Buffer.from('\n')]));
              continue;
            }
            const nl = cur.indexOf(0x0a);
            const first = nl >= 0 ? cur.subarray(0, nl + 1) : Buffer.alloc(0);
            const rest = nl >= 0 ? cur.subarray(nl + 1) : cur;
            const keepFirst = first.toString('latin1').startsWith('#!') || first.toString('latin1').startsWith('{');
            const line = (b: Buffer) => Buffer.concat([Buffer.from('# '), b, Buffer.from('\n')]);
            const body = keepFirst ? Buffer.concat([first, line(head), rest]) : Buffer.concat([line(head), cur]);
            fs.writeFileSync(real, Buffer.concat([body, body.length && body[body.length - 1] !== 0x0a ? Buffer.from('\n') : Buffer.alloc(0), line(tail)]));
          }
          const before = snapshotTree(root);
          const a = await runCli(['apply', ...select, '--yes', '--root', root], env);
          expect(a.stderr).not.toMatch(/vfiokit apply:/);
          expect(a.code).toBe(0);
          for (const f of edited) {
            const now = fs.readFileSync(path.join(root, f));
            const was = before.get(f.slice(1))!;
            // every line that was there is still there, byte for byte
            for (const l of was.toString('latin1').split(/[\n ]/).filter((x) => (x.startsWith('# ') || x.startsWith('note=') || x.startsWith('tail=')) && !x.includes('vfiokit'))) expect(now.toString('latin1')).toContain(l);
          }
          const u = await runCli(['undo', '--yes', '--root', root], env);
          expect(u.code).toBe(0);
          expect(snapshotTree(root)).toEqual(before);
          fs.rmSync(root, { recursive: true, force: true });
        }),
        { numRuns: 2 },
      );
    }, 60_000);
  }
});
