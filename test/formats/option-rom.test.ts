// The option-ROM parser against ROMs generated from the PCI Firmware 3.0 and
// UEFI layouts (test/vm/rom-builder.ts writes every field itself): every field
// varied, multi-image chains, bad checksums, truncation at every offset, wrong
// signatures, images pointing past the end; verdicts; strip.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { imageMatches, parseOptionRom, romVerdict, stripRom } from '../../src/formats/option-rom.js';
import { buildRom, buildRomImage, gpuRom, type RomImageSpec } from '../vm/rom-builder.js';

const imageSpec = fc.record({
  codeType: fc.constantFrom(0, 0, 1, 2, 3, 3, 0x70, 0xff),
  vendor: fc.integer({ min: 0, max: 0xffff }),
  device: fc.integer({ min: 0, max: 0xffff }),
  blocks: fc.integer({ min: 1, max: 6 }),
  machine: fc.constantFrom(0x8664, 0x014c, 0xaa64, 0x0ebc, 0x1234),
  subsystem: fc.constantFrom(0x0b, 0x0c, 0x0a),
  compression: fc.constantFrom(0, 1),
  classCode: fc.integer({ min: 0, max: 0xffffff }),
  pcirRevision: fc.constantFrom(0, 3),
  deviceList: fc.array(fc.integer({ min: 1, max: 0xffff }), { maxLength: 6 }),
  npde: fc.option(fc.record({ blocks: fc.integer({ min: 1, max: 8 }), last: fc.boolean() }), { nil: undefined }),
  badChecksum: fc.boolean(),
});
const chain = fc.array(imageSpec, { minLength: 1, maxLength: 5 }).map((specs) => specs.map((s, i): RomImageSpec => ({ ...s, last: i === specs.length - 1 })));
const starts = (imgs: RomImageSpec[]) => imgs.reduce<number[]>((a, s, i) => [...a, i === 0 ? 0 : a[i - 1] + imgs[i - 1].blocks * 512], []);
const hex4 = (n: number) => n.toString(16).padStart(4, '0');
/** Bytes with no 0x55 in them: no ROM header can start inside. */
const header = fc.uint8Array({ minLength: 1, maxLength: 3000 }).map((a) => a.map((x) => (x === 0x55 ? 0x56 : x)));

describe('option ROM parser: generated ROMs', () => {
  it('parses every field of every image of any generated chain', () => {
    fc.assert(
      fc.property(chain, (imgs) => {
        const r = parseOptionRom(buildRom(imgs));
        expect(r.valid && r.complete).toBe(true);
        expect(r.brokenAt).toBeNull();
        expect(r.trailingBytes).toBe(0);
        const at = starts(imgs);
        r.images.forEach((img, k) => {
          const s = imgs[k];
          expect(img.offset).toBe(at[k]);
          expect(img.length).toBe(s.blocks * 512);
          expect([img.codeTypeId, img.vendor, img.device, img.classCode, img.pcirRevision, img.last]).toEqual([s.codeType, hex4(s.vendor), hex4(s.device), s.classCode!.toString(16).padStart(6, '0'), s.pcirRevision, s.last]);
          // The FW 3.0 device list is read only from revision 3 structures.
          expect(img.deviceList).toEqual(s.pcirRevision === 3 ? s.deviceList!.map(hex4) : []);
          expect(img.npde).toEqual(s.npde ? { offset: expect.any(Number), imageSize: s.npde.blocks * 512, last: s.npde.last } : null);
          if (s.codeType === 3) {
            expect(img.efi).toMatchObject({ machineType: s.machine, subsystem: s.subsystem, compressionType: s.compression, compressed: s.compression === 1, signatureOk: true, initSize: s.blocks * 512, peOffset: 0x60 });
          } else expect(img.efi).toBeNull();
          expect(img.checksumOk).toBe(s.codeType === 0 ? !s.badChecksum : null);
        });
        expect(r.images.length).toBe(imgs.length);
        expect(r.hasX64Efi).toBe(imgs.some((s) => s.codeType === 3 && s.machine === 0x8664 && s.subsystem === 0x0b));
        expect(r.hasLegacyX86).toBe(imgs.some((s) => s.codeType === 0));
      }),
      { numRuns: 300 },
    );
  });

  it('is total: any bytes give a report, a verdict and a strip result, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const r = parseOptionRom(bytes);
        expect(r.size).toBe(bytes.length);
        if (r.valid) expect(r.images.length).toBeGreaterThan(0);
        for (const i of r.images) expect(i.offset).toBeLessThan(bytes.length);
        const v = romVerdict(r, { vendor: '10de', device: '2204' });
        expect(v.usable).toBe(v.kind === 'usable-ovmf' || v.kind === 'legacy-only');
        stripRom(bytes);
      }),
      { numRuns: 1500 },
    );
  });

  it('is total on generated chains with random bytes spliced in anywhere', () => {
    fc.assert(
      fc.property(chain, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 64 }), (imgs, pos, junk) => {
        const rom = buildRom(imgs);
        const at = pos % rom.length;
        const b = rom.slice();
        b.set(junk.subarray(0, Math.min(junk.length, b.length - at)), at);
        const r = parseOptionRom(b);
        romVerdict(r);
        stripRom(b);
        if (r.brokenAt !== null) expect(r.complete).toBe(false);
      }),
      { numRuns: 800 },
    );
  });

  it('truncation at every offset of a legacy + EFI ROM: never complete, and says where it broke', () => {
    const rom = gpuRom();
    const firstLen = 2048;
    for (let k = 0; k < rom.length; k++) {
      const r = parseOptionRom(rom.subarray(0, k));
      expect(r.complete, `cut at ${k}`).toBe(false);
      expect(r.valid, `cut at ${k}`).toBe(k >= firstLen);
      const v = romVerdict(r);
      expect(v.usable, `cut at ${k}`).toBe(false);
      expect(v.kind).toBe('broken');
      if (k > 0) expect(v.summary).toMatch(/^broken at offset 0x[0-9a-f]+: /);
    }
    expect(romVerdict(parseOptionRom(rom)).kind).toBe('usable-ovmf');
  });

  it('truncation of any generated chain at any offset is never reported complete', () => {
    fc.assert(
      fc.property(chain, fc.nat(), (imgs, cut) => {
        const rom = buildRom(imgs);
        const k = cut % rom.length;
        const r = parseOptionRom(rom.subarray(0, k));
        expect(r.complete).toBe(false);
        expect(r.valid).toBe(k >= imgs[0].blocks * 512);
      }),
      { numRuns: 500 },
    );
  });

  it('a wrong ROM or PCIR signature in image n breaks the chain at that image', () => {
    fc.assert(
      fc.property(chain, fc.nat(), fc.boolean(), (imgs, which, pcir) => {
        const rom = buildRom(imgs);
        const n = which % imgs.length;
        const off = starts(imgs)[n];
        const p = off + (imgs[n].codeType === 3 ? 0x1c : 0x40);
        if (pcir) rom[p] = 0x51;
        else rom[off + 1] = 0xab;
        const r = parseOptionRom(rom);
        expect(r.complete).toBe(false);
        expect(r.images.length).toBe(n);
        if (n === 0 && !pcir) expect(r.brokenAt).toBe(0);
        else expect(r.brokenAt).toBe(pcir ? p : off);
      }),
      { numRuns: 300 },
    );
  });

  it('an image whose length points past the end is reported as a truncated dump at the end', () => {
    fc.assert(
      fc.property(chain, fc.integer({ min: 1, max: 200 }), (imgs, extra) => {
        const rom = buildRom(imgs);
        const lastAt = starts(imgs)[imgs.length - 1];
        const p = lastAt + (imgs[imgs.length - 1].codeType === 3 ? 0x1c : 0x40);
        const blocks = imgs[imgs.length - 1].blocks + extra;
        rom[p + 0x10] = blocks & 0xff;
        rom[p + 0x11] = blocks >> 8;
        const r = parseOptionRom(rom);
        expect(r.complete).toBe(false);
        expect(r.brokenAt).toBe(rom.length);
        expect(r.problems.join('\n')).toContain(`claims ${blocks * 512} bytes but only ${rom.length - lastAt} remain`);
      }),
      { numRuns: 200 },
    );
  });

  it('vendor header + ROM (+ trailing bytes) → strip gives the ROM back byte for byte', () => {
    fc.assert(
      fc.property(header, chain, fc.uint8Array({ maxLength: 2000 }), (head, imgs, trail) => {
        const rom = buildRom(imgs);
        const file = buildRom([], head, new Uint8Array([...rom, ...trail]));
        const before = parseOptionRom(file);
        expect(before.romStart).toBe(head.length);
        expect(romVerdict(before).kind).toBe('needs-strip');
        const s = stripRom(file)!;
        expect(s).not.toBeNull();
        expect(Buffer.from(s.bytes).equals(Buffer.from(rom))).toBe(true);
        expect([s.changed, s.head, s.tail]).toEqual([true, head.length, trail.length]);
        expect(s.report.complete).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('strip leaves a ROM that needs nothing unchanged, and cuts only trailing bytes when there is no header', () => {
    const rom = gpuRom();
    const same = stripRom(rom)!;
    expect([same.changed, same.head, same.tail]).toEqual([false, 0, 0]);
    expect(Buffer.from(same.bytes).equals(Buffer.from(rom))).toBe(true);
    const padded = buildRom([], new Uint8Array(0), new Uint8Array([...rom, ...new Uint8Array(4096).fill(0xff)]));
    const cut = stripRom(padded)!;
    expect([cut.changed, cut.head, cut.tail]).toEqual([true, 0, 4096]);
    expect(Buffer.from(cut.bytes).equals(Buffer.from(rom))).toBe(true);
    expect(stripRom(new TextEncoder().encode('hello, not a rom'))).toBeNull();
    expect(stripRom(new Uint8Array(0))).toBeNull();
  });

  it('skips a stray 55 AA with a PCIR in the header whose chain does not parse', () => {
    const stray = buildRomImage({ codeType: 0x42, vendor: 0x1111, device: 0x2222, blocks: 1, last: false });
    stray[3] = 0; // not "EB"
    stray.fill(0, 0x0e, 0x13); // no VIDEO
    const rom = gpuRom(0x10de, 0x1b80);
    const file = buildRom([], new Uint8Array([...new Uint8Array(0x40).fill(0x20), ...stray.subarray(0, 0x80), ...new Uint8Array(0x40)]), rom);
    expect(parseOptionRom(file).romStart).toBe(0x40 + 0x80 + 0x40);
  });
});

describe('option ROM verdicts', () => {
  const legacyOnly = buildRom([{ codeType: 0, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true }]);
  it('usable with OVMF when an x64 EFI boot-service driver is present; legacy only otherwise', () => {
    expect(romVerdict(parseOptionRom(gpuRom())).kind).toBe('usable-ovmf');
    expect(romVerdict(parseOptionRom(legacyOnly))).toMatchObject({ kind: 'legacy-only', usable: true });
    const runtimeOnly = buildRom([{ codeType: 3, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true, subsystem: 0x0c }]);
    expect(romVerdict(parseOptionRom(runtimeOnly))).toMatchObject({ kind: 'broken', usable: false });
    const arm = buildRom([{ codeType: 3, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true, machine: 0xaa64 }]);
    expect(romVerdict(parseOptionRom(arm)).summary).toMatch(/no image an x86 guest can run \(EFI AArch64\)/);
  });

  it('wrong device names both IDs; the FW 3.0 device list counts as a match', () => {
    const v = romVerdict(parseOptionRom(gpuRom(0x10de, 0x2204)), { vendor: '10de', device: '2484', label: '01:00.0' });
    expect(v).toMatchObject({ kind: 'wrong-device', usable: false });
    expect(v.summary).toBe('wrong device: the ROM is for 10de:2204, not 10de:2484 (01:00.0)');
    const listed = parseOptionRom(buildRom([{ codeType: 0, vendor: 0x8086, device: 0x100e, blocks: 2, last: true, deviceList: [0x100e, 0x100f] }]));
    expect(imageMatches(listed.images[0], '8086', '100f')).toBe(true);
    expect(romVerdict(listed, { vendor: '8086', device: '100f' }).kind).toBe('legacy-only');
    expect(romVerdict(listed, { vendor: '8087', device: '100f' }).kind).toBe('wrong-device');
  });

  it('all-ones and zeros reads are explained (D3 / not POSTed)', () => {
    const ones = romVerdict(parseOptionRom(new Uint8Array(65536).fill(0xff)));
    expect(ones.kind).toBe('broken');
    expect(ones.summary).toMatch(/all-ones/);
    expect(ones.details[0]).toMatch(/D3/);
    expect(romVerdict(parseOptionRom(new Uint8Array(512))).details[0]).toMatch(/not POSTed/);
  });

  it('a bad legacy checksum is broken without EFI, a remark with it', () => {
    const bad = parseOptionRom(buildRom([{ codeType: 0, vendor: 0x10de, device: 0x1f08, blocks: 2, last: true, badChecksum: true }]));
    expect(romVerdict(bad)).toMatchObject({ kind: 'broken', offset: 0 });
    const badWithEfi = parseOptionRom(buildRom([
      { codeType: 0, vendor: 0x10de, device: 0x1f08, blocks: 2, last: false, badChecksum: true },
      { codeType: 3, vendor: 0x10de, device: 0x1f08, blocks: 2, last: true },
    ]));
    const v = romVerdict(badWithEfi);
    expect(v.kind).toBe('usable-ovmf');
    expect(v.details.join()).toMatch(/wrong checksum/);
  });

  it('an ISA ROM (no PCIR pointer) is broken with the reason', () => {
    const isa = buildRomImage({ codeType: 0, vendor: 0, device: 0, blocks: 1, last: true });
    isa[0x18] = 0;
    expect(romVerdict(parseOptionRom(isa)).summary).toBe('broken at offset 0x18: image 0 at 0x0: no PCI data structure (pointer at 0x18 is 0): an ISA option ROM, not a PCI ROM');
  });
});
