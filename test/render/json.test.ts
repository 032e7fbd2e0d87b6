import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonChunks } from '../../src/render/json.js';

const written = (v: unknown, depth?: number) => [...jsonChunks(v, depth)];

describe('JSON written in chunks', () => {
  it('is the text of JSON.stringify(value, null, 2) and a newline, at any walking depth', () => {
    // Values JSON.stringify treats specially, next to plain data: undefined, functions, toJSON, sparse arrays, Object.create(null).
    const odd = fc.constantFrom<unknown>(undefined, () => 1, new Date(0), { toJSON: () => ({ a: [1, { b: 2 }] }) }, [1, , 3], Object.assign(Object.create(null), { x: 'a\nb' }), { a: undefined, b: 1 }, [undefined], '', '\n"', -0, NaN);
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 2 }), odd, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.string({ maxLength: 4 }), tie('v'), { maxKeys: 4 })),
    })).v;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 5 }), (v, depth) => {
        const expected = v === undefined ? 'undefined\n' : JSON.stringify(v, null, 2) + '\n';
        expect(written(v, depth).join('')).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
  it('hands a large value over in pieces of about 64 KiB, not as one string', () => {
    const big = { pci: Array.from({ length: 4096 }, (_, i) => ({ address: `0000:${i.toString(16).padStart(4, '0')}.0`, caps: { pcie: true, link: null }, upstream: ['a', 'b'] })) };
    const chunks = written(big);
    expect(chunks.join('')).toBe(JSON.stringify(big, null, 2) + '\n');
    expect(chunks.length).toBeGreaterThan(5);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(70 * 1024);
  });
});
