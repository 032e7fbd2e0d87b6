// Names for PCI IDs from the system's pci.ids (looked up under the root).
// Loaded lazily and parsed only for the vendors asked about: a full parse of
// the 1.3 MB file is not needed to name a few dozen devices.

import type { HostRoot } from './root.js';

export const PCI_IDS_PATHS = ['/usr/share/hwdata/pci.ids', '/usr/share/misc/pci.ids', '/usr/share/pci.ids'];

export interface PciNames {
  source: string | null;
  vendor(vendor: string): string | null;
  device(vendor: string, device: string): string | null;
  className(classCode: string): string | null;
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
    const at = text.startsWith(`${v}  `) ? 0 : text.indexOf(`\n${v}  `);
    if (at >= 0) {
      const start = at === 0 ? 0 : at + 1;
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
