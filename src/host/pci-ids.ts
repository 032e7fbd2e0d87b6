// Names for PCI IDs from the system's pci.ids (looked up under the root).
// Loaded lazily and parsed only for the vendors asked about: a full parse of
// the 1.3 MB file is not needed to name a few dozen devices.

import type { HostRoot } from './root.js';

const PCI_IDS_PATHS = ['/usr/share/hwdata/pci.ids', '/usr/share/misc/pci.ids', '/usr/share/pci.ids'];

interface PciNames {
  source: string | null;
  vendor(vendor: string): string | null;
  device(vendor: string, device: string): string | null;
  className(classCode: string): string | null;
}

/**
 * Names for the given vendors only, without reading or decoding the whole
 * file: pci.ids is read in chunks and searched for the vendors' lines as
 * bytes; only their blocks (vendor line and device lines) are decoded, and
 * reading stops once every vendor's block has ended. Answers exactly as
 * `loadPciNames` for these vendors (first block of a vendor, same line rules).
 * No class names (callers that need them use `loadPciNames`).
 */
export function loadPciNamesFor(root: HostRoot, vendors: Iterable<string>): PciNames {
  const want = new Set([...vendors].map((v) => v.toLowerCase()).filter((v) => /^[0-9a-f]{4}$/.test(v)));
  for (const p of PCI_IDS_PATHS) {
    const text = root.withFile(p, (read) => (want.size ? pciIdsVendorBlocks((buf, pos) => read(buf, 0, buf.length, pos), want) : ''));
    if (text !== undefined) return parsePciIdsLazily(text, p);
  }
  return parsePciIdsLazily('', null);
}

const CHUNK = 256 * 1024;
const NL = 0x0a;
const TAB = 0x09;
const HASH = 0x23;

/**
 * The blocks of the wanted vendors, as text (`read` fills a buffer from a
 * file position, `chunk` bytes at a time): each vendor's first header line
 * ("vvvv  Name") and the device lines after it, up to the first line that
 * is not a device, comment or empty line (the rule parsePciIdsLazily follows).
 */
export function pciIdsVendorBlocks(read: (buf: Buffer, pos: number) => number, want: Set<string>, chunk = CHUNK): string {
  const out: string[] = [];
  const needles = new Map([...want].map((v) => [v, Buffer.from(`\n${v}  `, 'latin1')]));
  let buf = Buffer.allocUnsafe(chunk * 2);
  let carry = 0; // bytes kept from the previous window (an unfinished line)
  let filePos = 0;
  let inBlock = false; // a wanted vendor's block continues into this window
  for (;;) {
    if (carry + chunk > buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, carry);
      buf = bigger;
    }
    const n = read(buf.subarray(carry, carry + chunk), filePos);
    filePos += n;
    const eof = n === 0;
    const len = carry + n;
    // Work on whole lines only; the unfinished last line is carried over (all of it at the end).
    const lastNl = eof ? len : buf.lastIndexOf(NL, len - 1) + 1;
    const win = buf.subarray(0, lastNl);
    // Block lines from `pos`: device (tab), comment and empty lines; returns where the block ended, or -1 at the window's end.
    const collect = (pos: number): number => {
      while (pos < win.length) {
        const c = win[pos];
        let end = win.indexOf(NL, pos);
        if (end < 0) end = win.length;
        if (c === TAB) {
          if (win[pos + 1] !== TAB) out.push(win.toString('latin1', pos, end));
        } else if (c !== HASH && c !== NL && end > pos) return pos;
        pos = end + 1;
      }
      return -1;
    };
    if (inBlock) inBlock = collect(0) < 0;
    // A window starts at a line start: a header there has no newline before it.
    const head = win.toString('latin1', 0, 6);
    const starts: number[] = [];
    for (const [v, needle] of needles) {
      const at = win.indexOf(needle);
      const start = head === `${v}  ` ? 0 : at >= 0 ? at + 1 : -1;
      if (start >= 0) {
        starts.push(start);
        needles.delete(v);
      }
    }
    for (const start of starts.sort((a, b) => a - b)) {
      let end = win.indexOf(NL, start);
      if (end < 0) end = win.length;
      out.push(win.toString('latin1', start, end));
      if (collect(end + 1) < 0) inBlock = true;
    }
    if (eof || (!needles.size && !inBlock)) break;
    carry = len - lastNl;
    buf.copy(buf, 0, lastNl, len);
  }
  return out.join('\n');
}

export function loadPciNames(root: HostRoot): PciNames {
  let text: string | undefined;
  let source: string | null = null;
  for (const p of PCI_IDS_PATHS) {
    text = root.tryReadText(p);
    if (text !== undefined) {
      source = p;
      break;
    }
  }
  return parsePciIdsLazily(text ?? '', source);
}

/** Pure: answers lookups from pci.ids text, indexing one vendor block at a time. */
export function parsePciIdsLazily(text: string, source: string | null): PciNames {
  const vendors = new Map<string, { name: string; devices: Map<string, string> } | null>();
  let classes: Map<string, string> | null = null;

  const vendorBlock = (v: string) => {
    if (vendors.has(v)) return vendors.get(v)!;
    let block: { name: string; devices: Map<string, string> } | null = null;
    const nl = text.startsWith(`${v}  `) ? -1 : text.indexOf(`\n${v}  `);
    if (nl >= 0 || text.startsWith(`${v}  `)) {
      const start = nl + 1;
      let end = text.indexOf('\n', start);
      if (end < 0) end = text.length;
      block = { name: text.slice(start + 6, end).trim(), devices: new Map() };
      let pos = end + 1;
      while (pos < text.length) {
        let lineEnd = text.indexOf('\n', pos);
        if (lineEnd < 0) lineEnd = text.length;
        const line = text.slice(pos, lineEnd);
        pos = lineEnd + 1;
        if (line.startsWith('#') || line === '') continue;
        if (!line.startsWith('\t')) break;
        if (line.startsWith('\t\t')) continue;
        block.devices.set(line.slice(1, 5).toLowerCase(), line.slice(5).trim());
      }
    }
    vendors.set(v, block);
    return block;
  };

  const classTable = () => {
    if (classes) return classes;
    classes = new Map();
    const at = text.indexOf('\nC ');
    if (at >= 0) {
      let base = '';
      for (const line of text.slice(at + 1).split('\n')) {
        if (line.startsWith('C ')) {
          base = line.slice(2, 4).toLowerCase();
          classes.set(base, line.slice(4).trim());
        } else if (line.startsWith('\t') && !line.startsWith('\t\t') && base) {
          classes.set(base + line.slice(1, 3).toLowerCase(), line.slice(3).trim());
        }
      }
    }
    return classes;
  };

  return {
    source,
    vendor: (v) => vendorBlock(v.toLowerCase())?.name ?? null,
    device: (v, d) => vendorBlock(v.toLowerCase())?.devices.get(d.toLowerCase()) ?? null,
    className: (c) => {
      const t = classTable();
      return t.get(c.slice(0, 4).toLowerCase()) ?? t.get(c.slice(0, 2).toLowerCase()) ?? FALLBACK_CLASSES[c.slice(0, 4)] ?? null;
    },
  };
}

/** Class names used when no pci.ids is available (pci_ids.h wording). */
const FALLBACK_CLASSES: Record<string, string> = {
  '0300': 'VGA compatible controller',
  '0302': '3D controller',
  '0380': 'Display controller',
  '0403': 'Audio device',
  '0401': 'Multimedia audio controller',
  '0c03': 'USB controller',
  '0c80': 'Serial bus controller',
  '0600': 'Host bridge',
  '0601': 'ISA bridge',
  '0604': 'PCI bridge',
  '0108': 'Non-Volatile memory controller',
  '0106': 'SATA controller',
  '0200': 'Ethernet controller',
  '0280': 'Network controller',
};
