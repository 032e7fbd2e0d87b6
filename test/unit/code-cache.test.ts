// The built CLI's V8 code cache (bin/code-cache.js, made by scripts/code-cache.mjs
// during `npm run build`, which `npm test` runs first): V8 takes it for the
// short commands, outputs are byte for byte what they are without it, and a
// cache that does not fit (corrupt, or for other sources) is rejected by V8
// and costs nothing but the read.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { DISTRO_HOSTS } from '../helpers/distros.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';

const REPO = path.resolve(__dirname, '../..');
const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

const run = (repo: string, argv: string[], cache: 'stats' | 'off') => {
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/vfiokit.js'), ...argv], { encoding: 'utf8', env: { ...process.env, VFIOKIT_CODE_CACHE: cache, VFIOKIT_DEBUG: '' } });
  const m = /^code cache: (\{.*\})$/m.exec(r.stderr);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.replace(/^code cache: .*\n/m, ''), stats: m ? (JSON.parse(m[1]!) as { accepted: number; rejected: number; missing: number }) : null };
};

/** bin/ and dist/cli/ of this build in a directory of their own (the bundle needs nothing else). */
function copyOfBuild(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-build-'));
  tmp.push(d);
  fs.cpSync(path.join(REPO, 'bin'), path.join(d, 'bin'), { recursive: true });
  fs.cpSync(path.join(REPO, 'dist/cli'), path.join(d, 'dist/cli'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'package.json'), path.join(d, 'package.json'));
  return d;
}

describe('the code cache of the built CLI', () => {
  const deb = DISTRO_HOSTS['debian-grub'];
  const debian = buildFakeHost(deb.host);
  const desktop = buildFakeHost(FIXTURE_HOSTS['desktop-nvidia']);
  tmp.push(debian, desktop);
  const commands = [
    ['plan', ...deb.select, '--root', debian],
    ['inspect', '--json', '--root', desktop],
    ['check', '--root', desktop],
    ['groups', '--root', desktop],
  ];

  it.each(commands.map((c) => [c[0], c] as const))('%s: V8 takes the cache for every file it loads, and the output is the same byte for byte as without it', (_n, argv) => {
    const cached = run(REPO, [...argv], 'stats');
    const plain = run(REPO, [...argv], 'off');
    expect(cached.stats).not.toBeNull();
    expect(cached.stats!.rejected).toBe(0);
    expect(cached.stats!.accepted).toBeGreaterThan(5);
    expect(cached.stats!.missing).toBe(0);
    expect(plain.stats).toBeNull();
    expect({ status: cached.status, stdout: cached.stdout, stderr: cached.stderr }).toEqual({ status: plain.status, stdout: plain.stdout, stderr: plain.stderr });
  });

  it('a command that is not short (diagnose) does not read it: its V8 settings differ, so V8 would reject it', () => {
    const r = run(REPO, ['diagnose', '--help'], 'stats');
    expect(r.status).toBe(0);
    expect(r.stats).toBeNull();
  });

  it('a corrupt cache file and one made for other sources are rejected by V8; the command runs as without a cache', () => {
    const d = copyOfBuild();
    const dir = fs.readdirSync(path.join(d, 'dist/cli/code-cache')).map((v) => path.join(d, 'dist/cli/code-cache', v))[0]!;
    const files = fs.readdirSync(dir).sort();
    // main.js's cache cut short, the first chunk's cache swapped with another chunk's.
    const main = path.join(dir, 'main.js.v8');
    fs.writeFileSync(main, fs.readFileSync(main).subarray(0, 100));
    const [a, b] = files.filter((f) => f.startsWith('chunks_chunk-'));
    const ta = fs.readFileSync(path.join(dir, a!));
    fs.copyFileSync(path.join(dir, b!), path.join(dir, a!));
    fs.writeFileSync(path.join(dir, b!), ta);
    const argv = commands[0]!;
    const broken = run(d, argv, 'stats');
    const plain = run(REPO, argv, 'off');
    expect(broken.stats!.rejected).toBeGreaterThanOrEqual(1);
    expect({ status: broken.status, stdout: broken.stdout, stderr: broken.stderr }).toEqual({ status: plain.status, stdout: plain.stdout, stderr: plain.stderr });
    // No cache for this Node at all: nothing is read, the same output.
    fs.rmSync(path.join(d, 'dist/cli/code-cache'), { recursive: true });
    const none = run(d, argv, 'stats');
    expect(none.stats).toBeNull();
    expect(none.stdout).toBe(plain.stdout);
  });
});
