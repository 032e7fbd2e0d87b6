// Real option ROMs no one here wrote: Debian's ipxe-qemu (network-boot ROMs
// QEMU loads: pxe-* legacy only, efi-* legacy + x64 EFI) and seabios (QEMU's
// VGA BIOS files, legacy only; the ISA and ramfb ones carry no PCI data
// structure). Each file's chain is read a second, independent way — field by
// field with `od` — and the IDs are checked against the PCI IDs of the QEMU
// device each file is named after (QEMU include/hw/pci/pci_ids.h and the
// device models: e1000 8086:100e, e1000e 8086:10d3, i82557b 8086:1229,
// rtl8139 10ec:8139, pcnet 1022:2000, virtio-net (modern) 1af4:1041, vmxnet3
// 15ad:07b0, VGA/bochs-display 1234:1111, cirrus 1013:00b8, qxl 1b36:0100,
// vmware-svga 15ad:0405, virtio-vga 1af4:1050, ati-vga 1002:5159).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOptionRom, romVerdict } from '../../src/formats/option-rom.js';

const IPXE = '/usr/lib/ipxe/qemu';
const SEABIOS = '/usr/share/seabios';

const NIC_IDS: Record<string, string | null> = {
  e1000: '8086:100e',
  e1000e: '8086:10d3',
  eepro100: '8086:1229',
  rtl8139: '10ec:8139',
  pcnet: '1022:2000',
  virtio: '1af4:1041',
  vmxnet3: '15ad:07b0',
  // Debian's build of this ROM carries vendor 0000 in its PCIR: only the od reading is compared.
  ne2k_pci: null,
};
const VGA_IDS: Record<string, string | null> = {
  stdvga: '1234:1111',
  'bochs-display': '1234:1111',
  cirrus: '1013:00b8',
  qxl: '1b36:0100',
  vmware: '15ad:0405',
  virtio: '1af4:1050',
  ati: '1002:5159',
  // No PCI data structure: ISA VGA and ramfb are not PCI devices.
  isavga: null,
  ramfb: null,
};

const od = (file: string, type: string, off: number, n: number): string => execFileSync('od', ['-An', `-t${type}`, '-v', '-j', String(off), '-N', String(n), file], { encoding: 'utf8' }).trim();
const u8 = (f: string, o: number) => Number(od(f, 'u1', o, 1));
const u16 = (f: string, o: number) => Number(od(f, 'u2', o, 2));
const x16 = (f: string, o: number) => od(f, 'x2', o, 2);
const ascii = (f: string, o: number, n: number) => od(f, 'c', o, n).replace(/\s+/g, '');
/** Sum of the bytes [o, o+n) mod 256, by od + awk. */
const byteSum = (f: string, o: number, n: number) => Number(execFileSync('sh', ['-c', `od -An -tu1 -v -j ${o} -N ${n} "$1" | awk '{for(i=1;i<=NF;i++)s+=$i} END{print s%256}'`, 'sh', f], { encoding: 'utf8' }).trim());

interface OdImage {
  offset: number;
  length: number;
  ids: string;
  codeType: number;
  last: boolean;
  machine: number | null;
  subsystem: number | null;
  compression: number | null;
  checksumZero: boolean | null;
}

/** The chain walked with od: 55 AA, PCIR pointer at +0x18, length at PCIR+0x10, type +0x14, indicator +0x15. */
function walkWithOd(f: string): OdImage[] | 'no-pcir' {
  const size = fs.statSync(f).size;
  const out: OdImage[] = [];
  for (let off = 0; off < size && out.length < 8; ) {
    expect(od(f, 'x1', off, 2)).toBe('55 aa');
    const ptr = u16(f, off + 0x18);
    if (ptr === 0 || ascii(f, off + ptr, 4) !== 'PCIR') return 'no-pcir';
    const p = off + ptr;
    const length = u16(f, p + 0x10) * 512;
    const codeType = u8(f, p + 0x14);
    const efi = codeType === 3;
    out.push({
      offset: off,
      length,
      ids: `${x16(f, p + 4)}:${x16(f, p + 6)}`,
      codeType,
      last: (u8(f, p + 0x15) & 0x80) !== 0,
      machine: efi ? u16(f, off + 0x0a) : null,
      subsystem: efi ? u16(f, off + 0x08) : null,
      compression: efi ? u16(f, off + 0x0c) : null,
      checksumZero: codeType === 0 ? byteSum(f, off, length) === 0 : null,
    });
    if (out[out.length - 1].last) break;
    off += length;
  }
  return out;
}

const files = (dir: string, re: RegExp) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => re.test(n) && !fs.lstatSync(path.join(dir, n)).isSymbolicLink()).sort() : []);
const ipxe = files(IPXE, /^(pxe|efi)-.*\.rom$/);
const vga = files(SEABIOS, /^vgabios-.*\.bin$/);
const missing = !ipxe.length || !vga.length;
if (missing && process.env.CI) {
  describe('real option ROMs', () => it('needs ipxe-qemu and seabios installed (.ci/run installs them)', () => expect.fail(`missing: ${!ipxe.length ? `${IPXE}/*.rom (ipxe-qemu) ` : ''}${!vga.length ? `${SEABIOS}/vgabios-*.bin (seabios)` : ''}`)));
} else if (missing) {
  describe.skip('real option ROMs (skipped: ipxe-qemu or seabios is not installed; CI installs them)', () => it('', () => {}));
}

describe.runIf(!missing)('real option ROMs', () => {
  it.each(ipxe)('ipxe-qemu %s: chain, IDs and verdict', (name) => {
    const f = path.join(IPXE, name);
    const [, kind, model] = /^(pxe|efi)-(.*)\.rom$/.exec(name)!;
    const walked = walkWithOd(f);
    expect(walked).not.toBe('no-pcir');
    const oracle = walked as OdImage[];
    const r = parseOptionRom(new Uint8Array(fs.readFileSync(f)));
    expect(r.valid && r.complete).toBe(true);
    expect(r.images.map((i) => ({ offset: i.offset, length: i.length, ids: `${i.vendor}:${i.device}`, codeType: i.codeTypeId, last: i.last, machine: i.efi?.machineType ?? null, subsystem: i.efi?.subsystem ?? null, compression: i.efi?.compressionType ?? null, checksumZero: i.checksumOk }))).toEqual(oracle);
    // Network class 02xxxx in every image.
    expect(r.images.every((i) => i.classCode.startsWith('02'))).toBe(true);
    if (kind === 'pxe') {
      expect(oracle.map((i) => i.codeType)).toEqual([0]);
      expect(romVerdict(r).kind).toBe('legacy-only');
    } else {
      expect(oracle.map((i) => i.codeType)).toEqual([0, 3]);
      expect(oracle[1]).toMatchObject({ machine: 0x8664, subsystem: 0x0b });
      expect(romVerdict(r).kind).toBe('usable-ovmf');
    }
    const ids = NIC_IDS[model];
    expect(ids, `a known QEMU model: ${model}`).not.toBeUndefined();
    if (ids) {
      expect(oracle[0].ids).toBe(ids);
      const [vendor, device] = ids.split(':');
      expect(romVerdict(r, { vendor, device }).usable).toBe(true);
      expect(romVerdict(r, { vendor: '10de', device: '2204' }).kind).toBe('wrong-device');
    }
    expect(r.trailingBytes).toBe(fs.statSync(f).size - (oracle[oracle.length - 1].offset + oracle[oracle.length - 1].length));
  });

  it.each(vga)('seabios %s: chain, IDs and verdict', (name) => {
    const f = path.join(SEABIOS, name);
    const model = /^vgabios-(.*)\.bin$/.exec(name)![1];
    const ids = VGA_IDS[model];
    expect(ids, `a known QEMU model: ${model}`).not.toBeUndefined();
    const walked = walkWithOd(f);
    const r = parseOptionRom(new Uint8Array(fs.readFileSync(f)));
    if (walked === 'no-pcir') {
      expect(ids).toBeNull();
      const v = romVerdict(r);
      expect(v.kind).toBe('broken');
      expect(v.summary).toMatch(/ISA option ROM|no PCIR signature/);
      return;
    }
    expect(walked.length).toBe(1);
    expect(walked[0]).toMatchObject({ codeType: 0, last: true, checksumZero: true, ids: ids! });
    expect(r.images.map((i) => ({ offset: i.offset, length: i.length, ids: `${i.vendor}:${i.device}`, codeType: i.codeTypeId, last: i.last, checksumZero: i.checksumOk }))).toEqual(walked.map(({ machine: _m, subsystem: _s, compression: _c, ...rest }) => rest));
    expect(r.images[0].classCode).toBe('030000');
    expect(romVerdict(r).kind).toBe('legacy-only');
    const [vendor, device] = ids!.split(':');
    expect(romVerdict(r, { vendor, device }).kind).toBe('legacy-only');
  });
});
