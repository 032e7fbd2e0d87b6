// docs/errors.md is the catalogue of every error code: each code the source
// can raise is listed there, and it lists nothing the source cannot raise.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.ts') ? [path.join(d, e.name)] : []));

function sourceCodes(): Set<string> {
  const codes = new Set<string>();
  for (const f of walk('src')) {
    const text = fs.readFileSync(f, 'utf8');
    for (const m of text.matchAll(/['"`](E_[A-Z0-9_]+)['"`]/g)) codes.add(m[1]);
    // `E_${action.toUpperCase()}_REFUSED` for the actions that use it
    if (/`E_\$\{action\.toUpperCase\(\)\}_REFUSED`/.test(text)) for (const a of ['BIND', 'UNBIND']) codes.add(`E_${a}_REFUSED`);
  }
  return codes;
}

function documented(): Set<string> {
  const doc = fs.readFileSync('docs/errors.md', 'utf8');
  return new Set([...doc.matchAll(/^\| (E_[A-Z0-9_]+) \|/gm)].map((m) => m[1]));
}

describe('docs/errors.md', () => {
  it('lists every error code the source raises', () => {
    const missing = [...sourceCodes()].filter((c) => !documented().has(c)).sort();
    expect(missing, `add these codes to docs/errors.md (code, exit, meaning, fix)`).toEqual([]);
  });
  it('lists no code the source does not raise', () => {
    const stale = [...documented()].filter((c) => !sourceCodes().has(c)).sort();
    expect(stale, 'remove these codes from docs/errors.md').toEqual([]);
  });
  it('each row has an exit code and a fix', () => {
    const rows = fs.readFileSync('docs/errors.md', 'utf8').split('\n').filter((l) => /^\| E_/.test(l));
    for (const r of rows) {
      const cells = r.split('|').map((c) => c.trim());
      expect(cells[2], r).toMatch(/^[0-5]$/);
      expect(cells[4].length, r).toBeGreaterThan(3);
    }
  });
  it('one row per code: a code means one thing', () => {
    const codes = fs.readFileSync('docs/errors.md', 'utf8').split('\n').filter((l) => /^\| E_/.test(l)).map((l) => l.split('|')[1]!.trim());
    expect(codes.filter((c, i) => codes.indexOf(c) !== i)).toEqual([]);
  });
});
