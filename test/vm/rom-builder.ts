// Builds PCI option ROM images byte by byte from the layout in the reference
// (§6.1), independently of the parser under test.

export interface RomImageSpec {
  codeType: number;
  vendor: number;
  device: number;
  /** Image size in 512-byte blocks. */
  blocks: number;
  last: boolean;
  /** EFI images: machine type and subsystem. */
  machine?: number;
  subsystem?: number;
  /** Write a bad checksum into a legacy image. */
  badChecksum?: boolean;
  /** EFI compression type word (+0x0C). */
  compression?: number;
  /** 24-bit class code (default 0x030000). */
  classCode?: number;
  /** PCIR revision (default 3). */
  pcirRevision?: number;
  /** PCI FW 3.0 device list (written after PCIR, pointer at PCIR+8). */
  deviceList?: number[];
  /** Add an NVIDIA NPDE extension after PCIR with this size in 512-byte units and last flag. */
  npde?: { blocks: number; last: boolean };
}

export function buildRomImage(s: RomImageSpec): Uint8Array {
  const b = new Uint8Array(s.blocks * 512);
  b[0] = 0x55;
  b[1] = 0xaa;
  const efi = s.codeType === 3;
  const pcir = efi ? 0x1c : 0x40;
  if (efi) {
    b[2] = s.blocks & 0xff;
    b[3] = s.blocks >> 8;
    b[4] = 0xf1;
    b[5] = 0x0e;
    b[8] = s.subsystem ?? 0x0b;
    b[0x0a] = (s.machine ?? 0x8664) & 0xff;
    b[0x0b] = (s.machine ?? 0x8664) >> 8;
    b[0x16] = 0x60;
  } else {
    b[2] = s.blocks & 0xff;
    b[3] = 0xeb;
    b.set([...'VIDEO'].map((c) => c.charCodeAt(0)), 0x0e);
  }
  b[0x18] = pcir;
  b.set([0x50, 0x43, 0x49, 0x52], pcir);
  b[pcir + 4] = s.vendor & 0xff;
  b[pcir + 5] = s.vendor >> 8;
  b[pcir + 6] = s.device & 0xff;
  b[pcir + 7] = s.device >> 8;
  b[pcir + 0x0a] = 0x18;
  b[pcir + 0x0c] = s.pcirRevision ?? 3;
  const cls = s.classCode ?? 0x030000;
  b[pcir + 0x0d] = cls & 0xff;
  b[pcir + 0x0e] = (cls >> 8) & 0xff;
  b[pcir + 0x0f] = (cls >> 16) & 0xff;
  if (efi) {
    b[0x0c] = (s.compression ?? 0) & 0xff;
    b[0x0d] = (s.compression ?? 0) >> 8;
  }
  // After PCIR (24 bytes) on the next 16-byte boundary: NPDE (16 bytes), then the device list.
  let tail = (pcir + 0x18 + 0x0f) & ~0x0f;
  if (s.npde) {
    b.set([0x4e, 0x50, 0x44, 0x45], tail);
    b[tail + 8] = s.npde.blocks & 0xff;
    b[tail + 9] = s.npde.blocks >> 8;
    b[tail + 0x0a] = s.npde.last ? 0x80 : 0;
    tail += 0x10;
  }
  if (s.deviceList?.length) {
    const rel = tail - pcir;
    b[pcir + 8] = rel & 0xff;
    b[pcir + 9] = rel >> 8;
    s.deviceList.forEach((d, k) => {
      b[tail + 2 * k] = d & 0xff;
      b[tail + 2 * k + 1] = d >> 8;
    });
  }
  b[pcir + 0x10] = s.blocks & 0xff;
  b[pcir + 0x11] = s.blocks >> 8;
  b[pcir + 0x14] = s.codeType;
  b[pcir + 0x15] = s.last ? 0x80 : 0;
  if (s.codeType === 0) {
    let sum = 0;
    for (let i = 0; i < b.length - 1; i++) sum = (sum + b[i]) & 0xff;
    b[b.length - 1] = (256 - sum + (s.badChecksum ? 1 : 0)) & 0xff;
  }
  return b;
}

export function buildRom(images: RomImageSpec[], prefix: Uint8Array = new Uint8Array(0), suffix: Uint8Array = new Uint8Array(0)): Uint8Array {
  const parts = [prefix, ...images.map(buildRomImage), suffix];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A typical modern GPU ROM: legacy x86 VBIOS then an x64 UEFI GOP driver. */
export const gpuRom = (vendor = 0x10de, device = 0x2204) =>
  buildRom([
    { codeType: 0, vendor, device, blocks: 4, last: false },
    { codeType: 3, vendor, device, blocks: 3, last: true },
  ]);
