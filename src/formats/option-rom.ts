// PCI option ROM parser (PCI Firmware 3.0 §5.1, UEFI spec "PCI Option ROMs";
// layout as in docs: reference §6.1). Walks the image chain — 0x55AA header,
// PCIR data structure, image length, last-image indicator — and reports every
// image: code type, vendor/device, EFI machine type and subsystem, legacy
// checksum. Also finds a ROM that starts after a vendor header (nvflash/GPU-Z
// dumps, §6.3). Pure and total: any byte string gives a report, never an
// exception. The start of the VBIOS pipeline (validate, strip, match).

export type RomCodeType = 'x86' | 'open-firmware' | 'pa-risc' | 'efi' | 'reserved';

export interface RomEfiInfo {
  /** 0x0B boot-service driver, 0x0C runtime driver. */
  subsystem: number;
  /** 0x8664 x64, 0x014C IA-32, 0xAA64 AArch64, 0x0EBC EBC … */
  machineType: number;
  machine: string;
  compressed: boolean;
  /** InitializationSize in bytes. */
  initSize: number;
  /** EfiSignature 0x0EF1 present at +4. */
  signatureOk: boolean;
}

export interface RomImage {
  /** Offset of the image's 0x55AA header within the buffer. */
  offset: number;
  /** Image length from PCIR, in bytes. */
  length: number;
  pcirOffset: number;
  vendor: string;
  device: string;
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
  /** NVIDIA images carry an NPDS structure after PCIR. */
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
  /** When offset 0 is not a ROM but one starts later (nvflash header): where. */
  romStart: number | null;
  /** Bytes after the last image (padding or trailing data). */
  trailingBytes: number;
  /** Reasons the chain is invalid or suspicious, one per line. */
  problems: string[];
}

const MACHINES: Record<number, string> = { 0x014c: 'IA-32', 0x0200: 'Itanium', 0x0ebc: 'EBC', 0x8664: 'x64', 0x01c2: 'ARM', 0xaa64: 'AArch64', 0x5064: 'RISC-V 64' };
const CODE_TYPES: Record<number, RomCodeType> = { 0: 'x86', 1: 'open-firmware', 2: 'pa-risc', 3: 'efi' };
const MAX_IMAGES = 32;

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
const isSig = (b: Uint8Array, o: number) => o + 1 < b.length && b[o] === 0x55 && b[o + 1] === 0xaa;
const isPcir = (b: Uint8Array, o: number) => o + 4 <= b.length && b[o] === 0x50 && b[o + 1] === 0x43 && b[o + 2] === 0x49 && b[o + 3] === 0x52;

/** A ROM header at `o` whose PCIR pointer leads to a `PCIR` signature inside the buffer. */
function looksLikeImage(b: Uint8Array, o: number): boolean {
  if (!isSig(b, o) || o + 0x1a > b.length) return false;
  const p = o + u16(b, o + 0x18);
  return isPcir(b, p) && p + 0x18 <= b.length;
}

/** Find where a real ROM starts in a file with a vendor header: the first 0x55AA with a valid PCIR. */
export function findRomStart(b: Uint8Array): number | null {
  for (let o = 0; o + 0x1a <= b.length; o++) if (looksLikeImage(b, o)) return o;
  return null;
}

function hasAscii(b: Uint8Array, o: number, text: string): boolean {
  if (o < 0 || o + text.length > b.length) return false;
  for (let i = 0; i < text.length; i++) if (b[o + i] !== text.charCodeAt(i)) return false;
  return true;
}

export function parseOptionRom(bytes: Uint8Array): RomReport {
  const b = bytes;
  const problems: string[] = [];
  const images: RomImage[] = [];
  let romStart: number | null = null;
  if (b.length < 0x1a || !isSig(b, 0)) {
    const start = findRomStart(b);
    if (b.length === 0) problems.push('the file is empty');
    else if (!isSig(b, 0)) problems.push(`no ROM signature at offset 0 (expected 55 aa, found ${hex(b[0], 2)}${b.length > 1 ? ` ${hex(b[1], 2)}` : ''})`);
    else problems.push(`the file is ${b.length} bytes, shorter than a ROM header`);
    if (start !== null && start > 0) {
      romStart = start;
      problems.push(`a ROM image starts at offset 0x${hex(start, 0)} (${start} bytes of vendor header before it, as in nvflash/GPU-Z dumps)`);
    }
    return { valid: false, complete: false, size: b.length, images, hasX64Efi: false, hasLegacyX86: false, romStart, trailingBytes: 0, problems };
  }
  let off = 0;
  let end = 0;
  let broken = false;
  while (images.length < MAX_IMAGES) {
    if (off + 0x1a > b.length) {
      problems.push(`image ${images.length} at 0x${hex(off, 0)}: header runs past the end of the file (${b.length} bytes)`);
      broken = true;
      break;
    }
    if (!isSig(b, off)) {
      problems.push(`image ${images.length} at 0x${hex(off, 0)}: no ROM signature (expected 55 aa, found ${hex(b[off], 2)} ${hex(b[off + 1], 2)})`);
      broken = true;
      break;
    }
    const pcirPtr = u16(b, off + 0x18);
    const p = off + pcirPtr;
    if (p + 0x18 > b.length) {
      problems.push(`image ${images.length} at 0x${hex(off, 0)}: PCI data structure pointer 0x${hex(pcirPtr, 4)} points past the end of the file`);
      broken = true;
      break;
    }
    if (!isPcir(b, p)) {
      problems.push(`image ${images.length} at 0x${hex(off, 0)}: no PCIR signature at 0x${hex(p, 0)} (found ${[0, 1, 2, 3].map((i) => hex(b[p + i], 2)).join(' ')})`);
      broken = true;
      break;
    }
    if (pcirPtr % 4 !== 0) problems.push(`image ${images.length}: PCI data structure at 0x${hex(p, 0)} is not 4-byte aligned`);
    const structLen = u16(b, p + 0x0a);
    if (structLen < 0x18) problems.push(`image ${images.length}: PCI data structure length ${structLen} is below 24 bytes`);
    const length = u16(b, p + 0x10) * 512;
    const codeTypeId = b[p + 0x14];
    const last = (b[p + 0x15] & 0x80) !== 0;
    const codeType = CODE_TYPES[codeTypeId] ?? 'reserved';
    let efi: RomEfiInfo | null = null;
    if (codeType === 'efi') {
      const machineType = u16(b, off + 0x0a);
      efi = {
        subsystem: u16(b, off + 0x08),
        machineType,
        machine: MACHINES[machineType] ?? `unknown (0x${hex(machineType, 4)})`,
        compressed: u16(b, off + 0x0c) === 1,
        initSize: u16(b, off + 0x02) * 512,
        signatureOk: u32(b, off + 0x04) === 0x0ef1,
      };
      if (!efi.signatureOk) problems.push(`image ${images.length}: EFI code type without the EfiSignature 0x0EF1`);
    }
    let checksumOk: boolean | null = null;
    if (codeType === 'x86' && length > 0 && off + length <= b.length) {
      let sum = 0;
      for (let i = off; i < off + length; i++) sum = (sum + b[i]) & 0xff;
      checksumOk = sum === 0;
    }
    let npds = false;
    for (let q = p + 0x18; q + 4 <= Math.min(b.length, p + 0x80); q++) if (hasAscii(b, q, 'NPDS')) { npds = true; break; }
    images.push({
      offset: off,
      length,
      pcirOffset: p,
      vendor: hex(u16(b, p + 0x04), 4),
      device: hex(u16(b, p + 0x06), 4),
      classCode: hex(b[p + 0x0d] | (b[p + 0x0e] << 8) | (b[p + 0x0f] << 16), 6),
      pcirRevision: b[p + 0x0c],
      codeTypeId,
      codeType,
      last,
      checksumOk,
      efi,
      nvidiaNpds: npds,
    });
    if (length === 0) {
      problems.push(`image ${images.length - 1} at 0x${hex(off, 0)}: image length is 0`);
      end = b.length;
      broken = true;
      break;
    }
    if (off + length > b.length) {
      problems.push(`image ${images.length - 1} at 0x${hex(off, 0)}: claims ${length} bytes but only ${b.length - off} remain (truncated dump)`);
      end = b.length;
      broken = true;
      break;
    }
    end = off + length;
    if (last) break;
    off += length;
  }
  if (images.length === MAX_IMAGES && !images[images.length - 1].last) {
    problems.push(`more than ${MAX_IMAGES} images without a last-image indicator`);
    broken = true;
  }
  const hasX64Efi = images.some((i) => i.efi?.signatureOk && i.efi.machineType === 0x8664 && i.efi.subsystem === 0x0b);
  return {
    valid: images.length > 0 && images[0].length > 0 && images[0].length <= b.length,
    complete: !broken && images.length > 0 && images[images.length - 1].last,
    size: b.length,
    images,
    hasX64Efi,
    hasLegacyX86: images.some((i) => i.codeType === 'x86'),
    romStart,
    trailingBytes: Math.max(0, b.length - end),
    problems,
  };
}

/** One line per image, for the CLI. */
export function describeRom(r: RomReport): string[] {
  return r.images.map((i, n) => {
    const what = i.efi ? `EFI ${i.efi.machine} ${i.efi.subsystem === 0x0b ? 'boot-service driver' : i.efi.subsystem === 0x0c ? 'runtime driver' : `subsystem 0x${hex(i.efi.subsystem, 2)}`}${i.efi.compressed ? ', compressed' : ''}` : i.codeType === 'x86' ? `legacy x86 (PC-AT)${i.checksumOk === false ? ', checksum wrong' : ''}` : i.codeType;
    return `image ${n} @0x${hex(i.offset, 5)}: ${i.vendor}:${i.device} class ${i.classCode}, ${i.length / 1024} KiB, ${what}${i.last ? ', last' : ''}`;
  });
}
