// PCI option ROM parser (PCI Firmware 3.0 §5.1, UEFI spec "PCI Option ROMs";
// layout as in docs: reference §6.1, §13). Walks the image chain — 0x55AA
// header, PCIR data structure, image length, last-image indicator — and
// reports every image: code type, vendor/device (and the PCI FW 3.0 device
// list), class, EFI header (signature, subsystem, machine type, compression,
// PE offset), legacy checksum, NVIDIA's NPDE extension and NPDS structures.
// Finds a ROM that starts after a vendor header (nvflash/GPU-Z dumps, §6.3),
// says what a user can do with the file (romVerdict) and cuts it to the chain
// (stripRom). Pure and total: any byte string gives a report, never an
// exception.

type RomCodeType = 'x86' | 'open-firmware' | 'pa-risc' | 'efi' | 'reserved';

interface RomEfiInfo {
  /** 0x0B boot-service driver, 0x0C runtime driver. */
  subsystem: number;
  /** 0x8664 x64, 0x014C IA-32, 0xAA64 AArch64, 0x0EBC EBC … */
  machineType: number;
  machine: string;
  /** Compression type word at +0x0C: 0 none, 1 UEFI (EFI 1.1) compression. */
  compressionType: number;
  compressed: boolean;
  /** InitializationSize in bytes. */
  initSize: number;
  /** Offset of the PE image from the image start (+0x16). */
  peOffset: number;
  /** EfiSignature 0x0EF1 present at +4. */
  signatureOk: boolean;
}

/** NVIDIA PCI data extension ("NPDE"), 16-byte aligned after PCIR (nouveau's nvbios_npdeTp). */
interface RomNpde {
  offset: number;
  /** Image size in bytes (+0x08, 512-byte units). */
  imageSize: number;
  /** Last-image flag (+0x0A bit 7). */
  last: boolean;
}

export interface RomImage {
  /** Offset of the image's 0x55AA header within the buffer. */
  offset: number;
  /** Image length from PCIR, in bytes. */
  length: number;
  pcirOffset: number;
  vendor: string;
  device: string;
  /** PCI FW 3.0 device list (other device IDs the image supports), hex; empty when absent. */
  deviceList: string[];
  /** 24-bit class code, hex. */
  classCode: string;
  /** PCIR revision: 0 = PCI 2.2, 3 = PCI Firmware 3.0. */
  pcirRevision: number;
  codeTypeId: number;
  codeType: RomCodeType;
  last: boolean;
  /** Legacy x86 images: all bytes of the image sum to 0 mod 256; null for other code types or truncated images. */
  checksumOk: boolean | null;
  efi: RomEfiInfo | null;
  /** NVIDIA images: the NPDE extension after PCIR, when present. */
  npde: RomNpde | null;
  /** Offsets of NVIDIA `NPDS` structures inside the image. */
  npds: number[];
  /** NVIDIA images carry an NPDS/NPDE structure after PCIR. */
  nvidiaNpds: boolean;
}

export interface RomReport {
  /** The first image (at offset 0) parsed completely: this is an option ROM. */
  valid: boolean;
  /** The chain walk reached an image with the last-image indicator without errors. */
  complete: boolean;
  size: number;
  images: RomImage[];
  /** Some image is an x64 UEFI boot-service driver (a GOP driver OVMF can run). */
  hasX64Efi: boolean;
  hasLegacyX86: boolean;
  /** When offset 0 is not a ROM but one starts later (vendor header): where. */
  romStart: number | null;
  /** Bytes after the last image (padding or trailing data). */
  trailingBytes: number;
  /** Offset where the chain walk failed (null when it did not). */
  brokenAt: number | null;
  /** Every byte is 0xff / 0x00 (a ROM read while not decoded). */
  uniform: 'ones' | 'zeros' | null;
  /** Reasons the chain is invalid or suspicious, one per line. */
  problems: string[];
}

/** The largest expansion ROM a PCI device can decode (PCI Local Bus 3.0 §6.2.5.2: 16 MiB). */
export const MAX_ROM_BYTES = 16 * 1024 * 1024;

const MACHINES: Record<number, string> = { 0x014c: 'IA-32', 0x0200: 'Itanium', 0x0ebc: 'EBC', 0x8664: 'x64', 0x01c2: 'ARM', 0xaa64: 'AArch64', 0x5064: 'RISC-V 64' };
const CODE_TYPES: Record<number, RomCodeType> = { 0: 'x86', 1: 'open-firmware', 2: 'pa-risc', 3: 'efi' };
const MAX_IMAGES = 32;
const MAX_DEVICE_LIST = 256;

const u16 = (b: Uint8Array, o: number) => (o >= 0 && o + 1 < b.length ? b[o] | (b[o + 1] << 8) : 0);
const u32 = (b: Uint8Array, o: number) => (o >= 0 && o + 3 < b.length ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0 : 0);
const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
export const hexOffset = (n: number) => `0x${hex(n, 0)}`;
const isSig = (b: Uint8Array, o: number) => o >= 0 && o + 1 < b.length && b[o] === 0x55 && b[o + 1] === 0xaa;

function hasAscii(b: Uint8Array, o: number, text: string): boolean {
  if (o < 0 || o + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[o + i] !== text.charCodeAt(i)) return false;
  return true;
}
const isPcir = (b: Uint8Array, o: number) => hasAscii(b, o, 'PCIR');

/** A ROM header at `o` whose PCIR pointer leads to a `PCIR` signature inside the buffer. */
function looksLikeImage(b: Uint8Array, o: number): boolean {
  if (!isSig(b, o) || o + 0x1a > b.length) return false;
  const p = o + u16(b, o + 0x18);
  return isPcir(b, p) && p + 0x18 <= b.length && u16(b, p + 0x10) > 0;
}

/** NVIDIA's legacy image header: 55 AA ?? EB with ASCII `VIDEO` at +0x0E (§13.1). */
const isNvidiaVideoHeader = (b: Uint8Array, o: number) => isSig(b, o) && b[o + 3] === 0xeb && hasAscii(b, o + 0x0e, 'VIDEO');

/**
 * Where a real ROM starts in a file with a vendor header: the first 0x55AA
 * from which the whole chain parses (valid PCIR, images inside the file, a
 * last image); failing that, the first NVIDIA `VIDEO` header, then the first
 * 0x55AA with a valid PCIR.
 */
export function findRomStart(b: Uint8Array): number | null {
  let first: number | null = null;
  let video: number | null = null;
  let tried = 0;
  for (let o = 0; o + 0x1a <= b.length && tried < 64; o++) {
    if (b[o] !== 0x55 || !looksLikeImage(b, o)) continue;
    tried++;
    if (first === null) first = o;
    if (video === null && isNvidiaVideoHeader(b, o)) video = o;
    if (o > 0 && walkChain(b.subarray(o)).complete) return o;
  }
  return video ?? first;
}

function deviceListAt(b: Uint8Array, p: number, rev: number): string[] {
  const ptr = u16(b, p + 0x08);
  if (rev < 3 || ptr === 0) return [];
  const out: string[] = [];
  for (let q = p + ptr; q + 1 < b.length && out.length < MAX_DEVICE_LIST; q += 2) {
    const id = u16(b, q);
    if (id === 0) break;
    out.push(hex(id, 4));
  }
  return out;
}

function npdeAt(b: Uint8Array, p: number, structLen: number): RomNpde | null {
  const q = (p + structLen + 0x0f) & ~0x0f;
  if (!hasAscii(b, q, 'NPDE') || q + 0x0b > b.length) return null;
  return { offset: q, imageSize: u16(b, q + 0x08) * 512, last: (b[q + 0x0a] & 0x80) !== 0 };
}

function uniformity(b: Uint8Array): 'ones' | 'zeros' | null {
  if (b.length === 0) return null;
  const v = b[0];
  if (v !== 0xff && v !== 0) return null;
  for (let i = 1; i < b.length; i++) if (b[i] !== v) return null;
  return v === 0xff ? 'ones' : 'zeros';
}

export function parseOptionRom(bytes: Uint8Array): RomReport {
  return walkChain(bytes, true);
}

function walkChain(bytes: Uint8Array, searchStart = false): RomReport {
  const b = bytes;
  const problems: string[] = [];
  const images: RomImage[] = [];
  const uniform = uniformity(b);
  let romStart: number | null = null;
  if (b.length < 0x1a || !isSig(b, 0)) {
    if (b.length === 0) problems.push('the file is empty');
    else if (uniform) problems.push(`every byte is ${uniform === 'ones' ? '0xff' : '0x00'}: this is not ROM content (the ROM was not decoded when it was read)`);
    else if (!isSig(b, 0)) problems.push(`no ROM signature at offset 0 (expected 55 aa, found ${hex(b[0], 2)}${b.length > 1 ? ` ${hex(b[1], 2)}` : ''})`);
    else problems.push(`the file is ${b.length} bytes, shorter than a ROM header`);
    const start = uniform || !searchStart ? null : findRomStart(b);
    if (start !== null && start > 0) {
      romStart = start;
      problems.push(`a ROM image starts at offset ${hexOffset(start)} (${start} bytes of vendor header before it, as in nvflash/GPU-Z dumps)`);
    }
    return { valid: false, complete: false, size: b.length, images, hasX64Efi: false, hasLegacyX86: false, romStart, trailingBytes: 0, brokenAt: b.length === 0 ? null : 0, uniform, problems };
  }
  let off = 0;
  let end = 0;
  let brokenAt: number | null = null;
  const fail = (at: number, msg: string) => {
    problems.push(msg);
    brokenAt = at;
  };
  while (images.length < MAX_IMAGES) {
    const n = images.length;
    if (off + 0x1a > b.length) {
      fail(off, `image ${n} at ${hexOffset(off)}: header runs past the end of the file (${b.length} bytes)`);
      break;
    }
    if (!isSig(b, off)) {
      fail(off, `image ${n} at ${hexOffset(off)}: no ROM signature (expected 55 aa, found ${hex(b[off], 2)} ${hex(b[off + 1], 2)})`);
      break;
    }
    const pcirPtr = u16(b, off + 0x18);
    const p = off + pcirPtr;
    if (p + 0x18 > b.length) {
      fail(off + 0x18, `image ${n} at ${hexOffset(off)}: PCI data structure pointer 0x${hex(pcirPtr, 4)} points past the end of the file`);
      break;
    }
    if (pcirPtr === 0) {
      fail(off + 0x18, `image ${n} at ${hexOffset(off)}: no PCI data structure (pointer at ${hexOffset(off + 0x18)} is 0): an ISA option ROM, not a PCI ROM`);
      break;
    }
    if (!isPcir(b, p)) {
      fail(p, `image ${n} at ${hexOffset(off)}: no PCIR signature at ${hexOffset(p)} (found ${[0, 1, 2, 3].map((i) => hex(b[p + i], 2)).join(' ')})`);
      break;
    }
    if (pcirPtr % 4 !== 0) problems.push(`image ${n}: PCI data structure at ${hexOffset(p)} is not 4-byte aligned`);
    const structLen = u16(b, p + 0x0a);
    if (structLen < 0x18) problems.push(`image ${n}: PCI data structure length ${structLen} is below 24 bytes`);
    const rev = b[p + 0x0c];
    const length = u16(b, p + 0x10) * 512;
    const codeTypeId = b[p + 0x14];
    const last = (b[p + 0x15] & 0x80) !== 0;
    const codeType = CODE_TYPES[codeTypeId] ?? 'reserved';
    let efi: RomEfiInfo | null = null;
    if (codeType === 'efi') {
      const machineType = u16(b, off + 0x0a);
      const compressionType = u16(b, off + 0x0c);
      efi = {
        subsystem: u16(b, off + 0x08),
        machineType,
        machine: MACHINES[machineType] ?? `unknown (0x${hex(machineType, 4)})`,
        compressionType,
        compressed: compressionType === 1,
        initSize: u16(b, off + 0x02) * 512,
        peOffset: u16(b, off + 0x16),
        signatureOk: u32(b, off + 0x04) === 0x0ef1,
      };
      if (!efi.signatureOk) problems.push(`image ${n}: EFI code type without the EfiSignature 0x0EF1 at ${hexOffset(off + 4)}`);
      if (compressionType > 1) problems.push(`image ${n}: unknown EFI compression type ${compressionType}`);
    }
    let checksumOk: boolean | null = null;
    if (codeType === 'x86' && length > 0 && off + length <= b.length) {
      let sum = 0;
      for (let i = off; i < off + length; i++) sum = (sum + b[i]) & 0xff;
      checksumOk = sum === 0;
    }
    const imageEnd = Math.min(b.length, off + Math.max(length, 0x1a));
    const npds: number[] = [];
    for (let q = p + 4; q + 4 <= imageEnd && npds.length < 16; q++) if (b[q] === 0x4e && hasAscii(b, q, 'NPDS')) npds.push(q);
    const npde = npdeAt(b, p, structLen);
    images.push({
      offset: off,
      length,
      pcirOffset: p,
      vendor: hex(u16(b, p + 0x04), 4),
      device: hex(u16(b, p + 0x06), 4),
      deviceList: deviceListAt(b, p, rev),
      classCode: hex(b[p + 0x0d] | (b[p + 0x0e] << 8) | (b[p + 0x0f] << 16), 6),
      pcirRevision: rev,
      codeTypeId,
      codeType,
      last,
      checksumOk,
      efi,
      npde,
      npds,
      nvidiaNpds: npde !== null || npds.length > 0,
    });
    if (length === 0) {
      fail(p + 0x10, `image ${n} at ${hexOffset(off)}: image length is 0`);
      end = b.length;
      break;
    }
    if (off + length > b.length) {
      fail(b.length, `image ${n} at ${hexOffset(off)}: claims ${length} bytes but only ${b.length - off} remain (truncated dump)`);
      end = b.length;
      break;
    }
    end = off + length;
    if (last) break;
    off += length;
  }
  if (images.length === MAX_IMAGES && !images[images.length - 1].last && brokenAt === null) {
    fail(end, `more than ${MAX_IMAGES} images without a last-image indicator`);
  }
  const hasX64Efi = images.some((i) => i.efi?.signatureOk && i.efi.machineType === 0x8664 && i.efi.subsystem === 0x0b);
  return {
    valid: images.length > 0 && images[0].length > 0 && images[0].length <= b.length,
    complete: brokenAt === null && images.length > 0 && images[images.length - 1].last,
    size: b.length,
    images,
    hasX64Efi,
    hasLegacyX86: images.some((i) => i.codeType === 'x86'),
    romStart,
    trailingBytes: Math.max(0, b.length - end),
    brokenAt,
    uniform,
    problems,
  };
}

/** Does this image declare support for vendor:device (PCIR IDs or the FW 3.0 device list)? */
export function imageMatches(i: RomImage, vendor: string, device: string): boolean {
  const v = vendor.toLowerCase();
  const d = device.toLowerCase();
  return i.vendor === v && (i.device === d || i.deviceList.includes(d));
}

type RomVerdictKind = 'usable-ovmf' | 'legacy-only' | 'needs-strip' | 'wrong-device' | 'broken';

export interface RomVerdict {
  kind: RomVerdictKind;
  /** usable-ovmf and legacy-only: the file can be given to the VM as it is. */
  usable: boolean;
  /** One line a user acts on. */
  summary: string;
  /** Where the ROM breaks (broken), or where it starts (needs-strip). */
  offset: number | null;
  /** Further facts and what to do. */
  details: string[];
}

export interface RomTarget {
  vendor: string;
  device: string;
  /** How to name the device in messages (an address). */
  label?: string;
}

/** The verdict for a ROM file, optionally for the device it is meant for. */
export function romVerdict(r: RomReport, target?: RomTarget): RomVerdict {
  const details: string[] = [];
  if (r.size === 0) return { kind: 'broken', usable: false, summary: 'broken: the file is empty', offset: null, details: ['dump the ROM again, or use the vendor image for this card'] };
  if (r.uniform) {
    return {
      kind: 'broken',
      usable: false,
      summary: `broken at offset 0x0: every byte is ${r.uniform === 'ones' ? '0xff (all-ones)' : '0x00'}`,
      offset: 0,
      details: [
        r.uniform === 'ones'
          ? 'all-ones is what a read returns when the device does not decode its ROM: it was powered down (D3) or disabled when dumped'
          : 'zeros are what a read returns when the card was never initialised (not POSTed) or its ROM is not mapped',
        'dump again with the device in D0 and bound to a driver (or from a secondary slot), or use the vendor image for this card',
      ],
    };
  }
  if (r.romStart !== null) {
    return {
      kind: 'needs-strip',
      usable: false,
      summary: `needs strip: ${r.romStart} bytes of vendor header before the ROM at offset ${hexOffset(r.romStart)}`,
      offset: r.romStart,
      details: ['QEMU and OVMF read the ROM from offset 0; remove the header with `vfiokit rom strip FILE -o OUT`'],
    };
  }
  if (!r.valid || r.images.length === 0) {
    return { kind: 'broken', usable: false, summary: `broken at offset ${hexOffset(r.brokenAt ?? 0)}: ${r.problems[0] ?? 'not an option ROM'}`, offset: r.brokenAt ?? 0, details: r.problems.slice(1) };
  }
  if (!r.complete) {
    details.push(`the chain is incomplete: ${r.problems.join('; ')}`);
  }
  if (target) {
    const code = r.images.filter((i) => i.codeType === 'x86' || i.codeType === 'efi');
    const matching = code.filter((i) => imageMatches(i, target.vendor, target.device));
    if (code.length && !matching.length) {
      const ids = [...new Set(code.map((i) => `${i.vendor}:${i.device}`))].join(', ');
      return {
        kind: 'wrong-device',
        usable: false,
        summary: `wrong device: the ROM is for ${ids}, not ${target.vendor}:${target.device}${target.label ? ` (${target.label})` : ''}`,
        offset: code[0].pcirOffset + 4,
        details: ['a ROM for another card harms nothing but will not initialise this one: dump this card\'s own ROM, or get the vendor image for exactly this model'],
      };
    }
  }
  const legacy = r.images.find((i) => i.codeType === 'x86');
  if (legacy?.checksumOk === false) details.push(`image ${r.images.indexOf(legacy)} (legacy x86) has a wrong checksum: SeaBIOS refuses it`);
  if (r.trailingBytes > 0) details.push(`${r.trailingBytes} bytes after the last image (padding or trailing data; \`vfiokit rom strip\` removes them)`);
  const broken = !r.complete && r.brokenAt !== null;
  if (r.hasX64Efi && !broken) {
    return { kind: 'usable-ovmf', usable: true, summary: `usable with OVMF: image ${r.images.findIndex((i) => i.efi?.machineType === 0x8664 && i.efi.subsystem === 0x0b && i.efi.signatureOk)} is an x64 UEFI boot-service driver${legacy ? ' (and a legacy x86 image for SeaBIOS)' : ''}`, offset: null, details };
  }
  if (legacy && legacy.checksumOk !== false && !broken) {
    return { kind: 'legacy-only', usable: true, summary: 'legacy BIOS only: an x86 image for SeaBIOS, no x64 UEFI driver (under OVMF a GPU shows nothing until the guest driver loads)', offset: null, details };
  }
  if (broken) return { kind: 'broken', usable: false, summary: `broken at offset ${hexOffset(r.brokenAt ?? 0)}: ${r.problems.find((p) => p.includes(hexOffset(r.brokenAt ?? 0))) ?? r.problems[0]}`, offset: r.brokenAt, details };
  if (legacy) return { kind: 'broken', usable: false, summary: `broken at offset ${hexOffset(legacy.offset)}: the legacy x86 image's checksum is wrong and there is no x64 UEFI driver`, offset: legacy.offset, details };
  return { kind: 'broken', usable: false, summary: `broken: no image an x86 guest can run (${r.images.map((i) => (i.efi ? `EFI ${i.efi.machine}` : i.codeType)).join(', ')})`, offset: r.images[0].offset, details };
}

interface StripResult {
  /** The ROM alone (a copy); equal to the input when nothing needed stripping. */
  bytes: Uint8Array;
  changed: boolean;
  /** Bytes removed before the ROM and after its last image. */
  head: number;
  tail: number;
  /** The report of the result. */
  report: RomReport;
}

/** Remove a vendor header before the ROM and any bytes after its last image. null: no ROM found in the file. */
export function stripRom(bytes: Uint8Array): StripResult | null {
  const first = parseOptionRom(bytes);
  const start = first.valid ? 0 : first.romStart;
  if (start === null) return null;
  const r = start === 0 ? first : parseOptionRom(bytes.subarray(start));
  if (!r.valid) return null;
  const end = start + (r.size - r.trailingBytes);
  const out = bytes.slice(start, end);
  const changed = start !== 0 || end !== bytes.length;
  return { bytes: out, changed, head: start, tail: bytes.length - end, report: changed ? parseOptionRom(out) : r };
}

function imageKind(i: RomImage): string {
  if (i.efi) {
    const sub = i.efi.subsystem === 0x0b ? 'boot-service driver' : i.efi.subsystem === 0x0c ? 'runtime driver' : `subsystem 0x${hex(i.efi.subsystem, 2)}`;
    return `EFI ${i.efi.machine} ${sub}${i.efi.compressed ? ', compressed' : ''}${i.efi.signatureOk ? '' : ', no EfiSignature'}`;
  }
  if (i.codeType === 'x86') return `legacy x86 (PC-AT)${i.checksumOk === false ? ', checksum wrong' : i.checksumOk ? ', checksum ok' : ''}`;
  return i.codeType === 'reserved' ? `code type 0x${hex(i.codeTypeId, 2)}` : i.codeType;
}

/** One line per image, for the CLI. */
export function describeRom(r: RomReport): string[] {
  return r.images.map((i, n) => {
    const extra = [i.deviceList.length ? `device list ${i.deviceList.join(' ')}` : '', i.npde ? `NPDE @${hexOffset(i.npde.offset)} ${i.npde.imageSize / 1024} KiB${i.npde.last ? ' last' : ''}` : '', i.npds.length ? `NPDS @${i.npds.map(hexOffset).join(',')}` : ''].filter(Boolean);
    return `image ${n} @0x${hex(i.offset, 5)}: ${i.vendor}:${i.device} class ${i.classCode}, ${i.length / 1024} KiB, ${imageKind(i)}${i.last ? ', last' : ''}${extra.length ? ` (${extra.join('; ')})` : ''}`;
  });
}
