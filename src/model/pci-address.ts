// Canonical PCI addresses. Everything inside vfiokit uses the sysfs form
// DDDD:BB:SS.F with lower-case hex; the domain may be wider than 4 digits
// (Intel VMD hosts use 10000:…), so no regex here assumes a 4-digit domain.

export type PciAddress = string & { readonly __brand: 'PciAddress' };

const FULL = /^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;
const SHORT = /^([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])$/i;

interface PciAddressParts {
  domain: number;
  bus: number;
  slot: number;
  fn: number;
}

/** Parse `0000:01:00.0` or `01:00.0` (domain 0). Returns null when malformed. */
export function parsePciAddress(text: string): PciAddress | null {
  const t = text.trim();
  let m = FULL.exec(t);
  if (m) {
    const domain = m[1].toLowerCase().padStart(4, '0');
    if (parseInt(m[3], 16) > 0x1f) return null;
    return `${domain}:${m[2].toLowerCase()}:${m[3].toLowerCase()}.${m[4]}` as PciAddress;
  }
  m = SHORT.exec(t);
  if (m) {
    if (parseInt(m[2], 16) > 0x1f) return null;
    return `0000:${m[1].toLowerCase()}:${m[2].toLowerCase()}.${m[3]}` as PciAddress;
  }
  return null;
}

export function pciAddressParts(addr: PciAddress): PciAddressParts {
  const [d, b, sf] = addr.split(':');
  const [s, f] = sf.split('.');
  return { domain: parseInt(d, 16), bus: parseInt(b, 16), slot: parseInt(s, 16), fn: parseInt(f, 16) };
}

/** `0000:01:00` — the slot without the function: functions of one device share it. */
export function slotOf(addr: string): string {
  return addr.slice(0, addr.lastIndexOf('.'));
}


/** Short display form: `01:00.0` when the domain is 0. */
export function shortAddress(addr: string): string {
  return addr.startsWith('0000:') ? addr.slice(5) : addr;
}

export function comparePciAddress(a: string, b: string): number {
  const pa = pciAddressParts(a as PciAddress);
  const pb = pciAddressParts(b as PciAddress);
  return pa.domain - pb.domain || pa.bus - pb.bus || pa.slot - pb.slot || pa.fn - pb.fn;
}
