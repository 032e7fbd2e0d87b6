import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { formatMemorySize, MIN_GUEST_KIB, parseMemorySize } from '../../src/vm/memory.js';

const FACTOR: Record<string, number> = { K: 1, M: 1024, G: 1024 ** 2, T: 1024 ** 3 };

describe('memory sizes', () => {
  it('reads binary units the way QEMU -m does', () => {
    expect(parseMemorySize('8G')).toBe(8388608);
    expect(parseMemorySize('8GiB')).toBe(8388608);
    expect(parseMemorySize('8gb')).toBe(8388608);
    expect(parseMemorySize('8192M')).toBe(8388608);
    expect(parseMemorySize('1.5G')).toBe(1572864);
    expect(parseMemorySize(' 16 G ')).toBe(16777216);
    expect(parseMemorySize('1T')).toBe(1073741824);
  });

  it('rejects malformed, unit-less, fractional-KiB and tiny sizes with the fix', () => {
    const err = (t: string) => {
      try {
        parseMemorySize(t);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return e as UsageError;
      }
      throw new Error(`accepted ${t}`);
    };
    expect(err('8192').hint).toMatch(/add a unit, e\.g\. --memory 8192M/);
    expect(err('eight gigs').message).toMatch(/'eight gigs' is not a memory size/);
    expect(err('1.000001G').message).toMatch(/not a whole number of KiB/);
    expect(err('64M').message).toMatch(/below 128 MiB/);
    expect(err('-8G').code).toBe('E_BAD_MEMORY');
    expect(err('8X').code).toBe('E_BAD_MEMORY');
    // Another flag's hints give examples with that flag.
    expect(() => parseMemorySize('1.000001G', '--hugepages')).toThrow(expect.objectContaining({ hint: 'use a smaller unit, e.g. --hugepages 1536M instead of 1.5G' }));
  });

  it('property: n + unit is n × unit KiB (or a UsageError below the minimum)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_000_000 }), fc.constantFrom('K', 'M', 'G', 'T'), fc.constantFrom('', 'i', 'iB', 'B'), (n, u, suffix) => {
        if (u === 'T' && n > 1000) return;
        const text = `${n}${suffix === 'i' ? u : u + suffix}`;
        const want = n * FACTOR[u];
        if (want < MIN_GUEST_KIB) expect(() => parseMemorySize(text)).toThrow(UsageError);
        else expect(parseMemorySize(text)).toBe(want);
      }),
    );
  });

  it('property: any string gives a positive whole KiB count or a UsageError, never anything else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9. ]{0,8}[kmgtKMGTiIbB]{0,3}$/)), (text) => {
        try {
          const k = parseMemorySize(text);
          expect(Number.isSafeInteger(k) && k >= MIN_GUEST_KIB).toBe(true);
        } catch (e) {
          expect(e).toBeInstanceOf(UsageError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('property: format and parse round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: MIN_GUEST_KIB, max: 2 ** 40 }), (k) => {
        expect(parseMemorySize(formatMemorySize(k))).toBe(k);
      }),
    );
  });
});
