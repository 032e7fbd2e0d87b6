// Pure parser for PCI configuration space bytes (the sysfs `config` file).
// Offsets and capability walks follow include/uapi/linux/pci_regs.h and the
// kernel's PCI_FIND_NEXT_CAP / PCI_FIND_NEXT_EXT_CAP loops (TTL 48 and 480).
// Non-root readers get only 64 bytes: then `full` is false and capability
// fields are null ("unknown"), never guessed.

export type PcieType =
  | 'endpoint'
  | 'legacy-endpoint'
  | 'root-port'
  | 'upstream-port'
  | 'downstream-port'
  | 'pcie-to-pci-bridge'
  | 'pci-to-pcie-bridge'
  | 'rc-integrated-endpoint'
  | 'rc-event-collector';

const PCIE_TYPES: Record<number, PcieType> = {
  0x0: 'endpoint',
  0x1: 'legacy-endpoint',
  0x4: 'root-port',
  0x5: 'upstream-port',
  0x6: 'downstream-port',
  0x7: 'pcie-to-pci-bridge',
  0x8: 'pci-to-pcie-bridge',
  0x9: 'rc-integrated-endpoint',
  0xa: 'rc-event-collector',
};

export const PCIE_TYPE_CODES: Record<PcieType, number> = Object.fromEntries(
  Object.entries(PCIE_TYPES).map(([k, v]) => [v, Number(k)]),
) as Record<PcieType, number>;

/** ACS bits (same positions in the capability and control registers). */
export const ACS = { SV: 0x01, TB: 0x02, RR: 0x04, CR: 0x08, UF: 0x10, EC: 0x20, DT: 0x40 } as const;
/** What the kernel requires for isolation (REQ_ACS_FLAGS in drivers/iommu/iommu.c). */
export const ACS_REQUIRED = ACS.SV | ACS.RR | ACS.CR | ACS.UF;

interface ConfigHeader {
  vendor: number;
  device: number;
  revision: number;
  classCode: number;
  headerType: number; // bits 6:0
  multifunctionBit: boolean; // header type bit 7
  subsystemVendor: number | null;
  subsystemDevice: number | null;
  secondaryBus: number | null; // type 1 headers
}

interface ConfigCapabilities {
  /** PCI Express capability present (the device is PCIe). */
  pcie: boolean;
  pcieType: PcieType | null;
  /** Function-level reset via PCIe DevCap bit 28 or the AF capability. */
  flr: boolean;
  acs: { cap: number; ctrl: number } | null;
  /** Standard capability IDs in list order. */
  capIds: number[];
  /** Extended capability IDs in list order. */
  extCapIds: number[];
  /** Offset of the device serial number capability (redacted in snapshots). */
  serialNumberOffset: number | null;
  /** PCIe link from Link Capabilities/Status (same source as sysfs *_link_*). */
  link: { speed: string | null; width: number; maxSpeed: string | null; maxWidth: number } | null;
}

/** Link speed encodings (PCI_EXP_LNKSTA_CLS / LNKCAP_SLS) as sysfs prints them. */
const LINK_SPEEDS: Record<number, string> = {
  1: '2.5 GT/s PCIe',
  2: '5.0 GT/s PCIe',
  3: '8.0 GT/s PCIe',
  4: '16.0 GT/s PCIe',
  5: '32.0 GT/s PCIe',
  6: '64.0 GT/s PCIe',
};

interface ParsedConfig {
  header: ConfigHeader;
  /** null when only the unprivileged 64-byte prefix was readable. */
  caps: ConfigCapabilities | null;
  size: number;
}

const u8 = (b: Uint8Array, o: number) => (o < b.length ? b[o] : 0xff);
const u16 = (b: Uint8Array, o: number) => u8(b, o) | (u8(b, o + 1) << 8);
const u32 = (b: Uint8Array, o: number) => (u16(b, o) | (u16(b, o + 2) << 16)) >>> 0;

export function parseConfigSpace(bytes: Uint8Array): ParsedConfig | null {
  if (bytes.length < 64) return null;
  const headerTypeRaw = u8(bytes, 0x0e);
  const headerType = headerTypeRaw & 0x7f;
  const header: ConfigHeader = {
    vendor: u16(bytes, 0x00),
    device: u16(bytes, 0x02),
    revision: u8(bytes, 0x08),
    classCode: u8(bytes, 0x09) | (u8(bytes, 0x0a) << 8) | (u8(bytes, 0x0b) << 16),
    headerType,
    multifunctionBit: (headerTypeRaw & 0x80) !== 0,
    subsystemVendor: headerType === 0 ? u16(bytes, 0x2c) : null,
    subsystemDevice: headerType === 0 ? u16(bytes, 0x2e) : null,
    secondaryBus: headerType === 1 ? u8(bytes, 0x19) : null,
  };
  // Capabilities live past 0x40: unknowable from the unprivileged prefix.
  if (bytes.length <= 64) return { header, caps: null, size: bytes.length };
  return { header, caps: parseCapabilities(bytes), size: bytes.length };
}

function parseCapabilities(b: Uint8Array): ConfigCapabilities {
  const caps: ConfigCapabilities = {
    pcie: false,
    pcieType: null,
    flr: false,
    acs: null,
    capIds: [],
    extCapIds: [],
    serialNumberOffset: null,
    link: null,
  };
  const status = u16(b, 0x06);
  if (status & 0x10) {
    let pos = u8(b, 0x34);
    let ttl = 48;
    while (ttl-- > 0 && pos >= 0x40) {
      pos &= ~3;
      const id = u8(b, pos);
      if (id === 0xff) break;
      caps.capIds.push(id);
      if (id === 0x10) {
        caps.pcie = true;
        const flags = u16(b, pos + 2);
        caps.pcieType = PCIE_TYPES[(flags >> 4) & 0xf] ?? null;
        if (u32(b, pos + 4) & 0x10000000) caps.flr = true;
        const lnkcap = u32(b, pos + 0x0c);
        const lnksta = u16(b, pos + 0x12);
        if (lnkcap & 0xf) {
          caps.link = {
            speed: LINK_SPEEDS[lnksta & 0xf] ?? null,
            width: (lnksta >> 4) & 0x3f,
            maxSpeed: LINK_SPEEDS[lnkcap & 0xf] ?? null,
            maxWidth: (lnkcap >> 4) & 0x3f,
          };
        }
      } else if (id === 0x13) {
        if (u8(b, pos + 3) & 0x02) caps.flr = true;
      }
      pos = u8(b, pos + 1);
    }
  }
  if (caps.pcie && b.length > 0x100) {
    let pos = 0x100;
    let ttl = (4096 - 256) / 8;
    while (ttl-- > 0) {
      const hdr = u32(b, pos);
      if (hdr === 0 || hdr === 0xffffffff) break;
      const id = hdr & 0xffff;
      caps.extCapIds.push(id);
      if (id === 0x0d) caps.acs = { cap: u16(b, pos + 4), ctrl: u16(b, pos + 6) };
      if (id === 0x03) caps.serialNumberOffset = pos;
      const next = (hdr >>> 20) & 0xffc;
      if (next < 0x100) break;
      pos = next;
    }
  }
  return caps;
}

/** The kernel's pci_acs_flags_enabled(): missing features count as hard-wired on, except EC. */
export function acsFlagsEnabled(acs: { cap: number; ctrl: number } | null, flags = ACS_REQUIRED): boolean {
  if (!acs) return false;
  const need = flags & (acs.cap | ACS.EC);
  return (acs.ctrl & need) === need;
}

/** Names of required ACS features that are not enabled (for explanations). */
export function acsMissing(acs: { cap: number; ctrl: number }, flags = ACS_REQUIRED): string[] {
  const need = flags & (acs.cap | ACS.EC);
  const names: string[] = [];
  for (const [name, bit] of Object.entries(ACS)) {
    if (need & bit && !(acs.ctrl & bit)) names.push(name);
  }
  return names;
}
