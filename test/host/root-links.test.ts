// Resolving paths inside a root (src/host/root-links.ts, HostRoot.path/linkPath,
// the writes of src/apply): random trees of symlinks — chains, "..", absolute
// targets, loops, links climbing out of the root — checked against the kernel
// itself (openat2 with RESOLVE_IN_ROOT, through test/helpers/openat2-in-root.py)
// and against the one rule that matters: nothing resolves outside the root.
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveHostPath } from '../../src/apply/file-steps.js';
import { writeFileAtomic } from '../../src/apply/atomic-write.js';
import { realInRoot } from '../../src/host/root-links.js';
import { HostRoot } from '../../src/host/root.js';

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-links-')));
afterAll(() => fs.promises.rm(tmp, { recursive: true, force: true }));

const PYTHON = '/usr/bin/python3';
const RUNS = Number(process.env.FC_RUNS ?? 100);
const ORACLE = path.resolve(__dirname, '../helpers/openat2-in-root.py');
const SECRET = 'outside the root\n';
const haveOracle = fs.existsSync(PYTHON) && spawnSync(PYTHON, [ORACLE], { input: `${JSON.stringify({ root: '/', path: '/', follow: true })}\n`, encoding: 'utf8' }).stdout.includes('"ok"');
if (!haveOracle && process.env.CI) throw new Error(`${PYTHON} with openat2 (Linux >= 5.6) is needed for the kernel oracle (apt-get install python3)`);

type Answer = { ok: string } | { err: string };
/** Asks the kernel (asynchronously, so a long property run leaves the test runner's worker responsive). */
function kernel(queries: { root: string; path: string; follow: boolean }[]): Promise<Answer[]> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [ORACLE], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout.trim().split('\n').map((l) => JSON.parse(l) as Answer));
    });
    child.stdin!.end(queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
  });
}

// The tree: a fixed skeleton (dirs, files) plus random symlinks.
const DIRS = ['a', 'a/b', 'etc', 'sys', 'sys/bus', 'sys/devices', 'sys/devices/p0'];
const FILES = ['a/f', 'a/b/g', 'etc/conf', 'sys/devices/p0/attr', 'sys/bus/attr'];
const LINK_DIRS = ['', 'a', 'a/b', 'etc', 'sys', 'sys/bus', 'sys/devices/p0'];
const NAMES = ['a', 'b', 'f', 'g', 'etc', 'conf', 'sys', 'bus', 'devices', 'p0', 'attr', 'l0', 'l1', 'l2', 'l3', 'missing'];
const LINK_NAMES = ['l0', 'l1', 'l2', 'l3'];

const component = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...NAMES) }, { weight: 2, arbitrary: fc.constant('..') }, { weight: 1, arbitrary: fc.constantFrom('.', '') });
const relPath = fc.array(component, { minLength: 1, maxLength: 6 }).map((c) => c.join('/'));
// Link targets: relative, absolute (a host path under --root), or naming the real file outside the root.
const target = (outside: string) =>
  fc.oneof(
    { weight: 4, arbitrary: relPath.filter((p) => p !== '') },
    { weight: 2, arbitrary: relPath.map((p) => `/${p}`) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }).map((n) => `${'../'.repeat(n)}outside/secret`) },
    { weight: 1, arbitrary: fc.constant(`${outside}/secret`) },
  );
const linkSpec = (outside: string) => fc.record({ dir: fc.constantFrom(...LINK_DIRS), name: fc.constantFrom(...LINK_NAMES), target: target(outside) });
const query = fc.oneof(relPath.map((p) => `/${p}`), relPath.map((p) => `/sys/${p}`), relPath.map((p) => `/sys/devices/p0/${p}`));

let cases = 0;
function makeTree(): { root: string; outside: string } {
  const base = path.join(tmp, `t${cases++}`);
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(outside, 'secret'), SECRET);
  for (const d of DIRS) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const f of FILES) fs.writeFileSync(path.join(root, f), `${f}\n`);
  return { root, outside };
}
const OUTSIDE_PLACEHOLDER = '/OUTSIDE';
const fixOutside = (t: string, outside: string) => (t.startsWith(OUTSIDE_PLACEHOLDER) ? outside + t.slice(OUTSIDE_PLACEHOLDER.length) : t);

const attempt = <T>(f: () => T): { value: T } | { error: NodeJS.ErrnoException } => {
  try {
    return { value: f() };
  } catch (e) {
    return { error: e as NodeJS.ErrnoException };
  }
};
const isLink = (p: string) => {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
  } catch {
    return false; // ENOTDIR: nothing there
  }
};
const inside = (root: string, real: string) => real === root || real.startsWith(root + '/');

const trees = fc.record({ links: fc.array(linkSpec(OUTSIDE_PLACEHOLDER), { maxLength: 10 }), queries: fc.array(fc.tuple(query, fc.boolean()), { minLength: 1, maxLength: 12 }) });

describe('resolving inside the root', () => {
  it('never leaves the root: no link, "..", absolute target or loop resolves outside it', () => {
    fc.assert(
      fc.property(trees, ({ links, queries }) => {
        const made = makeTree();
        const { root, outside } = made;
        for (const l of links) {
          const at = path.join(root, l.dir, l.name);
          if (fs.lstatSync(at, { throwIfNoEntry: false }) === undefined) fs.symlinkSync(fixOutside(l.target, outside), at);
        }
        const host = new HostRoot(root);
        for (const [q, follow] of queries) {
          const r = attempt(() => realInRoot(root, q, { followLast: follow }));
          if ('error' in r) {
            expect(r.error.code).toBe('ELOOP');
            continue;
          }
          expect(inside(root, r.value)).toBe(true);
          // No symlink left in any component (but the last when it is kept).
          const rel = r.value.slice(root.length).split('/').filter(Boolean);
          for (let i = 1; i <= rel.length - (follow ? 0 : 1); i++) expect([q, follow, r.value, i, isLink(`${root}/${rel.slice(0, i).join('/')}`)]).toEqual([q, follow, r.value, i, false]);
          // HostRoot (cached sysfs directories) agrees, and reads nothing from outside.
          expect(attempt(() => (follow ? host.path(q) : host.linkPath(q)))).toEqual({ value: r.value });
          expect(host.tryReadText(q)).not.toBe(SECRET);
          expect(resolveHostPath(host, q, follow)).toBe(r.value);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it.skipIf(!haveOracle)('resolves exactly as the kernel does with openat2 RESOLVE_IN_ROOT', async () => {
    await fc.assert(
      fc.asyncProperty(trees, async ({ links, queries }) => {
        const { root, outside } = makeTree();
        for (const l of links) {
          const at = path.join(root, l.dir, l.name);
          if (fs.lstatSync(at, { throwIfNoEntry: false }) === undefined) fs.symlinkSync(fixOutside(l.target, outside), at);
        }
        const answers = await kernel(queries.map(([q, follow]) => ({ root, path: q, follow })));
        queries.forEach(([q, follow], i) => {
          const k = answers[i];
          const ours = attempt(() => realInRoot(root, q, { followLast: follow }));
          if ('ok' in k) expect([q, follow, ours]).toEqual([q, follow, { value: k.ok }]);
          else if (k.err === 'ELOOP') expect([q, follow, 'error' in ours && ours.error.code]).toEqual([q, follow, 'ELOOP']);
          // The kernel stops at a missing component or a file used as a directory
          // (ENOENT, ENOTDIR); the resolution goes on by name (see root-links.ts),
          // inside the root as the first property checks.
          else expect(['ENOENT', 'ENOTDIR']).toContain(k.err);
        });
      }),
      { numRuns: RUNS },
    );
  });
});

describe('symlinks under --root, as on the live root', () => {
  const tree = () => {
    const { root, outside } = makeTree();
    fs.symlinkSync('../../outside/secret', path.join(root, 'etc/escape.conf')); // climbs out of the root
    fs.symlinkSync(`${outside}/secret`, path.join(root, 'etc/absolute.conf')); // the real path outside
    fs.symlinkSync('../../../../../../outside/secret', path.join(root, 'sys/devices/p0/config')); // a sysfs attribute
    fs.mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/lib/os-release'), 'ID=debian\n');
    fs.symlinkSync('../usr/lib/os-release', path.join(root, 'etc/os-release'));
    fs.symlinkSync('/usr/lib/nowhere', path.join(root, 'etc/dangling'));
    // 41 links in a chain, the last pointing at the real file outside.
    for (let i = 0; i < 41; i++) fs.symlinkSync(i === 40 ? `${outside}/secret` : `/etc/c${i + 1}`, path.join(root, `etc/c${i}`));
    return { root, outside };
  };

  it('a symlinked config or sysfs file whose target leaves the root is not read outside it', () => {
    const { root } = tree();
    const h = new HostRoot(root);
    for (const p of ['/etc/escape.conf', '/etc/absolute.conf', '/sys/devices/p0/config', '/etc/c0']) {
      expect(h.tryReadText(p)).toBeUndefined();
      expect(h.tryReadAttr(p)).toBeUndefined();
      expect(h.tryReadBytes(p)).toBeUndefined();
      expect(h.tryReadFileState(p)).toBeUndefined();
    }
    expect(h.tryReadText('/etc/os-release')).toBe('ID=debian\n');
    expect(() => h.path('/etc/c0')).toThrow(/ELOOP/);
  });

  it('withFile, hasFile and entry resolve inside the root too, and a link loop is absent, not a throw', () => {
    const { root } = tree();
    const h = new HostRoot(root);
    for (const p of ['/etc/escape.conf', '/etc/absolute.conf', '/sys/devices/p0/config', '/etc/c0']) {
      expect(h.withFile(p, () => 'read')).toBeUndefined();
      expect(h.hasFile(p)).toBe(false);
    }
    expect(h.withFile('/etc/os-release', (read) => { const b = Buffer.alloc(64); return b.toString('latin1', 0, read(b, 0, 64, 0)); })).toBe('ID=debian\n');
    expect(h.hasFile('/etc/os-release')).toBe(true);
    expect(h.entry('/etc/os-release')).toEqual({ type: 'file', link: '/usr/lib/os-release' });
    expect(h.entry('/etc/absolute.conf').type).toBe('dangling');
    expect(h.entry('/etc/dangling')).toEqual({ type: 'dangling', link: '/usr/lib/nowhere' });
    expect(h.entry('/etc/none')).toEqual({ type: 'absent', link: null });
    expect(h.entry('/etc/c0')).toEqual({ type: 'dangling', link: '/etc/c1' });
  });

  it('a link itself is seen (readlink, existence of a dangling link) as on the live root', () => {
    const { root } = tree();
    const h = new HostRoot(root);
    expect(h.tryReadLink('/etc/os-release')).toBe('../usr/lib/os-release');
    expect(h.tryReadLink('/etc/dangling')).toBe('/usr/lib/nowhere');
    expect(h.exists('/etc/dangling')).toBe(true);
    expect(h.has('/etc/dangling')).toBe(true);
    expect(h.isDir('/etc/dangling')).toBe(false);
    expect(h.tryReadText('/etc/dangling')).toBeUndefined();
  });

  it('a write through a link that leaves the root lands inside it', () => {
    const { root, outside } = tree();
    const h = new HostRoot(root);
    fs.mkdirSync(path.join(root, 'outside'));
    fs.mkdirSync(path.join(root, outside), { recursive: true });
    writeFileAtomic(resolveHostPath(h, '/etc/escape.conf'), 'mine\n', { root });
    writeFileAtomic(path.join(root, 'etc/absolute.conf'), 'mine\n', { root });
    expect(fs.readFileSync(path.join(outside, 'secret'), 'utf8')).toBe(SECRET);
    expect(fs.readFileSync(path.join(root, 'outside/secret'), 'utf8')).toBe('mine\n');
    expect(fs.readFileSync(path.join(root, outside, 'secret'), 'utf8')).toBe('mine\n');
  });
});
