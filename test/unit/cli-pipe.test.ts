// No stack trace reaches a user: a reader that closes the output early, or a
// current directory that was removed, give a quiet exit or one line.
// Runs the built CLI (npm test builds first), as a shell pipeline would.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { synthetic } from '../../bench/synthetic.js';

const BIN = path.resolve(__dirname, '../../bin/vfiokit.js');
const roots: string[] = [];
afterAll(() => Promise.all(roots.map((r) => fs.promises.rm(r, { recursive: true, force: true }))));

describe('the CLI in a pipeline', () => {
  it('`inspect --json | head -c 100` exits 141 (SIGPIPE-like) and prints nothing on stderr', () => {
    const root = buildFakeHost({ iommu: 'intel', pci: synthetic(256) });
    roots.push(root);
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/os-release'), 'ID=debian\n');
    const r = spawnSync('bash', ['-c', `node "${BIN}" inspect --json --root "${root}" 2>"${root}/err" | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('141');
    expect(fs.readFileSync(path.join(root, 'err'), 'utf8')).toBe('');
  });

  it('a removed current directory is one line with a fix, exit 1', () => {
    const gone = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-cwd-'));
    const r = spawnSync('bash', ['-c', `cd "${gone}" && rmdir "${gone}" && node "${BIN}" inspect --root somewhere`], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('vfiokit inspect: the current directory no longer exists\n  fix: cd to an existing directory and run the command again\n');
  });
});
