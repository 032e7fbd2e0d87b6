// Item: --root is validated before any command reads or writes under it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

describe('--root validation', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-emptyroot-'));
  tmp.push(empty);
  const missing = path.join(empty, 'no-such-dir');
  for (const cmd of [['check'], ['recover'], ['snapshot', path.join(os.tmpdir(), 'vfiokit-never-written.tar.gz')], ['status'], ['inspect', '--json']]) {
    for (const [what, dir] of [['empty', empty], ['nonexistent', missing]] as const) {
      it(`${cmd[0]} with an ${what} --root exits 2 naming the root, writes nothing, prints no stack`, async () => {
        const r = await runCli([...cmd, '--root', dir]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(`--root ${dir}`);
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
        expect(fs.readdirSync(empty)).toEqual([]);
      });
    }
  }
});

describe('help text', () => {
  it('status --help reads as a sentence (no "?.")', async () => {
    const r = await runCli(['status', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('?.');
  });
});
