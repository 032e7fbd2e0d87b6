// Golden tests: every test/fixtures/formats/<format>/<case>.in through every op of its format.
// Also checks that each input which parses renders back byte for byte.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectExactGolden, FIXTURES } from './golden-exact.js';
import { OPS, runOp } from './ops.js';

const formats = fs.readdirSync(FIXTURES).filter((d) => d in OPS);

describe('format fixture directories', () => {
  it('every fixture directory has ops and every format has fixtures', () => {
    const dirs = fs.readdirSync(FIXTURES).filter((d) => fs.statSync(path.join(FIXTURES, d)).isDirectory() && d !== 'corpus' && d !== 'owned');
    expect(dirs.sort()).toEqual(Object.keys(OPS).sort());
  });
  it('no stale goldens (each .out belongs to an existing case and op)', () => {
    for (const f of formats) {
      for (const out of fs.readdirSync(path.join(FIXTURES, f)).filter((x) => x.endsWith('.out'))) {
        const [base, op] = out.slice(0, -4).split(/\.(?=[^.]+$)/);
        expect(fs.existsSync(path.join(FIXTURES, f, `${base}.in`)), `${f}/${out}`).toBe(true);
        expect(Object.keys(OPS[f]), `${f}/${out}`).toContain(op);
      }
    }
  });
});

for (const format of formats) {
  describe(format, () => {
    const dir = path.join(FIXTURES, format);
    for (const input of fs.readdirSync(dir).filter((x) => x.endsWith('.in')).sort()) {
      const base = input.slice(0, -3);
      const text = fs.readFileSync(path.join(dir, input), 'utf8');
      for (const [name, op] of Object.entries(OPS[format])) {
        it(`${base} ${name}`, () => {
          expectExactGolden(path.join(dir, `${base}.${name}.out`), runOp(op, text, `${format}/${input}`));
        });
      }
    }
  });
}
