// Partition tables written straight into a disk image file (no loop devices,
// no fdisk): an MBR with one Linux partition for BIOS/GRUB guests, and a GPT
// with an EFI system partition and a Linux root for UEFI guests.

import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';

const SECTOR = 512;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface PartitionSpec {
  /** First sector (LBA). */
  start: number;
  /** Number of sectors. */
  sectors: number;
  /** GPT: type GUID; MBR: type byte (0x83 Linux, 0xef EFI). */
  gptType?: string;
  mbrType?: number;
  /** GPT: unique partition GUID. */
  guid?: string;
  name?: string;
  bootable?: boolean;
}

/** A GUID in its on-disk (mixed-endian) byte order. */
export function guidBytes(guid: string): Buffer {
  const h = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) throw new Error(`bad GUID ${guid}`);
  const b = Buffer.from(h, 'hex');
  const out = Buffer.alloc(16);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  b.copy(out, 8, 8, 16);
  return out;
}

function mbrEntry(p: { start: number; sectors: number; type: number; bootable?: boolean }): Buffer {
  const e = Buffer.alloc(16);
  e[0] = p.bootable ? 0x80 : 0;
  // CHS fields: "beyond 1024 cylinders" markers; LBA is what everyone reads.
  e.writeUIntLE(0xfffffe, 1, 3);
  e[4] = p.type;
  e.writeUIntLE(0xfffffe, 5, 3);
  e.writeUInt32LE(p.start, 8);
  e.writeUInt32LE(Math.min(p.sectors, 0xffffffff), 12);
  return e;
}

/** The first sector of a disk: an MBR with up to four partitions (boot code left zero). */
export function buildMbr(parts: { start: number; sectors: number; type: number; bootable?: boolean }[], diskSignature = 0x7666696f): Buffer {
  const s = Buffer.alloc(SECTOR);
  s.writeUInt32LE(diskSignature, 440);
  parts.slice(0, 4).forEach((p, i) => mbrEntry(p).copy(s, 446 + 16 * i));
  s[510] = 0x55;
  s[511] = 0xaa;
  return s;
}

export interface GptLayout {
  /** Protective MBR, primary header, entries (LBA 0–33). */
  head: Buffer;
  /** Backup entries + backup header (the last 33 sectors). */
  tail: Buffer;
  tailOffset: number;
}

/** A GPT for a disk of `totalSectors` with 128 entries of 128 bytes. */
export function buildGpt(totalSectors: number, diskGuid: string, parts: PartitionSpec[]): GptLayout {
  const entries = Buffer.alloc(128 * 128);
  parts.forEach((p, i) => {
    const e = entries.subarray(i * 128, (i + 1) * 128);
    guidBytes(p.gptType!).copy(e, 0);
    guidBytes(p.guid!).copy(e, 16);
    e.writeBigUInt64LE(BigInt(p.start), 32);
    e.writeBigUInt64LE(BigInt(p.start + p.sectors - 1), 40);
    e.writeBigUInt64LE(0n, 48);
    Buffer.from(p.name ?? '', 'utf16le').subarray(0, 72).copy(e, 56);
  });
  const entriesCrc = crc32(entries);
  const lastLba = totalSectors - 1;
  const header = (current: number, backup: number, entriesLba: number) => {
    const h = Buffer.alloc(SECTOR);
    h.write('EFI PART', 0, 'ascii');
    h.writeUInt32LE(0x00010000, 8);
    h.writeUInt32LE(92, 12);
    h.writeBigUInt64LE(BigInt(current), 24);
    h.writeBigUInt64LE(BigInt(backup), 32);
    h.writeBigUInt64LE(34n, 40);
    h.writeBigUInt64LE(BigInt(lastLba - 33), 48);
    guidBytes(diskGuid).copy(h, 56);
    h.writeBigUInt64LE(BigInt(entriesLba), 72);
    h.writeUInt32LE(128, 80);
    h.writeUInt32LE(128, 84);
    h.writeUInt32LE(entriesCrc, 88);
    h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
    return h;
  };
  const pmbr = buildMbr([{ start: 1, sectors: Math.min(totalSectors - 1, 0xffffffff), type: 0xee }], 0);
  const head = Buffer.concat([pmbr, header(1, lastLba, 2), entries]);
  const tail = Buffer.concat([entries, header(lastLba, 1, lastLba - 32)]);
  return { head, tail, tailOffset: (lastLba - 32) * SECTOR };
}

/** Creates a sparse image of `bytes` and writes the table into it. */
export function writeTable(file: string, bytes: number, table: { head: Buffer; tail?: Buffer; tailOffset?: number }): void {
  const fd = openSync(file, 'w');
  try {
    ftruncateSync(fd, bytes);
    writeSync(fd, table.head, 0, table.head.length, 0);
    if (table.tail && table.tailOffset !== undefined) writeSync(fd, table.tail, 0, table.tail.length, table.tailOffset);
  } finally {
    closeSync(fd);
  }
}

export const GPT_ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
export const GPT_LINUX = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
export const SECTOR_SIZE = SECTOR;
