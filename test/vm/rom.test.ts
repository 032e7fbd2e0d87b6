import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeRom, findRomStart, parseOptionRom } from '../../src/formats/option-rom.js';
import { buildRom, gpuRom, type RomImageSpec } from './rom-builder.js';

describe('option ROM parser', () => {
  it('walks a legacy + x64 EFI chain', () => {
    const r = parseOptionRom(gpuRom());
    expect(r.valid).toBe(true);
    expect(r.complete).toBe(true);
    expect(r.images.map((i) => [i.offset, i.length, i.codeType, i.vendor, i.device, i.last])).toEqual([
      [0, 2048, 'x86', '10de', '2204', false],
      [2048, 1536, 'efi', '10de', '2204', true],
    ]);
    expect(r.images[0].checksumOk).toBe(true);
    expect(r.images[1].efi).toMatchObject({ machine: 'x64', subsystem: 0x0b, signatureOk: true, compressed: false });
    expect(r.hasX64Efi).toBe(true);
    expect(r.hasLegacyX86).toBe(true);
    expect(r.trailingBytes).toBe(0);
    expect(describeRom(r)[1]).toMatch(/EFI x64 boot-service driver, last/);
  });

  it('a legacy-only ROM is valid but has no GOP; an AArch64 EFI image is not x64', () => {
    expect(parseOptionRom(buildRom([{ codeType: 0, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true }])).hasX64Efi).toBe(false);
    const arm = parseOptionRom(buildRom([{ codeType: 3, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true, machine: 0xaa64 }]));
    expect(arm.valid).toBe(true);
    expect(arm.images[0].efi?.machine).toBe('AArch64');
    expect(arm.hasX64Efi).toBe(false);
  });

  it('reports a bad legacy checksum and trailing padding without rejecting the ROM', () => {
    const r = parseOptionRom(buildRom([{ codeType: 0, vendor: 0x10de, device: 0x1f08, blocks: 2, last: true, badChecksum: true }], undefined, new Uint8Array(4096).fill(0xff)));
    expect(r.valid).toBe(true);
    expect(r.images[0].checksumOk).toBe(false);
    expect(r.trailingBytes).toBe(4096);
  });

  it('finds the ROM after an nvflash-style header and says where', () => {
    const header = new Uint8Array(0x600).fill(0x20);
    const r = parseOptionRom(buildRom([{ codeType: 0, vendor: 0x10de, device: 0x1b80, blocks: 2, last: true }], header));
    expect(r.valid).toBe(false);
    expect(r.romStart).toBe(0x600);
    expect(r.problems.join('\n')).toMatch(/no ROM signature at offset 0.*\n.*starts at offset 0x600/);
  });

  it('rejects non-ROMs and truncated chains with the reason', () => {
    expect(parseOptionRom(new TextEncoder().encode('not a rom at all, just text')).problems[0]).toMatch(/no ROM signature at offset 0 \(expected 55 aa, found 6e 6f\)/);
    expect(parseOptionRom(new Uint8Array(0)).problems).toEqual(['the file is empty']);
    const full = gpuRom();
    const cut = parseOptionRom(full.subarray(0, 1024));
    expect(cut.valid).toBe(false);
    expect(cut.problems.join()).toMatch(/claims 2048 bytes but only 1024 remain/);
    // First image intact, second missing: valid but incomplete.
    const half = parseOptionRom(full.subarray(0, 2048));
    expect(half.valid).toBe(true);
    expect(half.complete).toBe(false);
    const badPcir = full.slice();
    badPcir[0x40] = 0x58;
    expect(parseOptionRom(badPcir).problems[0]).toMatch(/no PCIR signature at 0x40/);
  });

  it('never throws on random bytes, and its report is self-consistent', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const r = parseOptionRom(bytes);
        expect(r.size).toBe(bytes.length);
        if (r.valid) expect(r.images.length).toBeGreaterThan(0);
        for (const i of r.images) expect(i.offset).toBeLessThan(bytes.length);
        findRomStart(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on random bytes that start like a ROM', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 2048 }), fc.integer({ min: 0, max: 0x7fc }), (tail, ptr) => {
        const b = new Uint8Array(0x1a + tail.length);
        b.set([0x55, 0xaa], 0);
        b[0x18] = ptr & 0xff;
        b[0x19] = ptr >> 8;
        b.set(tail, 0x1a);
        if (ptr + 4 <= b.length) b.set([0x50, 0x43, 0x49, 0x52], ptr);
        parseOptionRom(b);
      }),
      { numRuns: 2000 },
    );
  });

  it('parses any generated chain back to its images', () => {
    const spec = fc.record({
      codeType: fc.constantFrom(0, 1, 3),
      vendor: fc.integer({ min: 0, max: 0xffff }),
      device: fc.integer({ min: 0, max: 0xffff }),
      blocks: fc.integer({ min: 1, max: 8 }),
      machine: fc.constantFrom(0x8664, 0x014c, 0xaa64),
    });
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 5 }), (specs) => {
        const imgs: RomImageSpec[] = specs.map((s, i) => ({ ...s, last: i === specs.length - 1 }));
        const r = parseOptionRom(buildRom(imgs));
        expect(r.valid && r.complete).toBe(true);
        expect(r.images.map((i) => [i.codeTypeId, parseInt(i.vendor, 16), parseInt(i.device, 16), i.length / 512])).toEqual(imgs.map((s) => [s.codeType, s.vendor, s.device, s.blocks]));
        expect(r.hasX64Efi).toBe(imgs.some((s) => s.codeType === 3 && s.machine === 0x8664));
      }),
      { numRuns: 300 },
    );
  });
});
