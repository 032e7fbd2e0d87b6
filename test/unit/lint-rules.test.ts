// npm run lint's source rules (scripts/check-layers.mjs + check-paths.mjs): a
// planted violation must fail the lint, the real tree must pass it.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { duplicatePathProblems, pathLiteralProblems, selfCheck } from '../../scripts/check-paths.mjs';

const repo = path.resolve(__dirname, '../..');
const script = path.join(repo, 'scripts/check-layers.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-lint-'));
afterAll(() => fs.promises.rm(tmp, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(tmp, 'repo-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}
const lint = (dir: string) => spawnSync(process.execPath, [script, dir], { encoding: 'utf8' });

describe('path rule', () => {
  it('passes its own self-check', () => {
    expect(selfCheck()).toEqual([]);
  });

  it('names the file, line and literal of each sysfs/procfs/etc literal', () => {
    const text = ["import { SYS } from '../model/kernel-paths.js';", "const a = `${SYS}/bus`;", "const b = '/proc/mounts';", 'const c = `/etc/${x}`;', "// '/sys/in/a/comment'"].join('\n');
    const got: string[] = pathLiteralProblems('src/host/boot.ts', text);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatch(/^src\/host\/boot\.ts:3: path literal "\/proc\/mounts"/);
    expect(got[1]).toMatch(/^src\/host\/boot\.ts:4: path literal "\/etc\/"/);
  });

  it('a planted literal fails the lint script; the same text in a path module passes', () => {
    const planted = "export const P = '/sys/kernel/mm/transparent_hugepage/enabled';\n";
    const bad = lint(tree({ 'src/vm/thp.ts': planted }));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('src/vm/thp.ts:1: path literal "/sys/kernel/mm/transparent_hugepage/enabled"');
    const good = lint(tree({ 'src/model/thp-paths.ts': planted }));
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
  });

  it('the layer rule still fails a pure layer importing the host layer', () => {
    const bad = lint(tree({ 'src/plan/x.ts': "import { HostRoot } from '../host/root.js';\n", 'src/host/root.ts': 'export class HostRoot {}\n' }));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("src/plan/x.ts:1: 'plan' may not import 'host'");
  });

  it('a path named twice (in one path module or two) is a problem naming both; other modules and non-path strings do not count', () => {
    const a = ["export const PROC_MOUNTS = '/proc/mounts';", "export const NAME = 'vfio';", "export const RUN = '/run';"].join('\n');
    const b = ["export const MOUNTS = '/proc/mounts';", "export const OTHER = 'vfio';", "const LOCAL = '/run';"].join('\n');
    const got: string[] = duplicatePathProblems([
      ['src/host/sysfs-paths.ts', a],
      ['src/model/isolation-paths.ts', b],
      ['src/host/other.ts', "export const X = '/proc/mounts';"],
    ]);
    expect(got).toEqual(['src/model/isolation-paths.ts:1 MOUNTS: path "/proc/mounts" is already named src/host/sysfs-paths.ts:1 PROC_MOUNTS; import that one instead']);
    const bad = lint(tree({ 'src/model/thp-paths.ts': "export const A = '/sys/x';\n", 'src/host/sysfs-paths.ts': "export const B = '/sys/x';\n" }));
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('path "/sys/x" is already named');
  });

  it('the repository passes', () => {
    expect(execFileSync(process.execPath, [script], { encoding: 'utf8' })).toContain('paths ok');
  });
});
