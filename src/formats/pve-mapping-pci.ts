// Proxmox VE PCI resource mappings (/etc/pve/mapping/pci.cfg), lossless.
// Section-config layout: a bare mapping ID at the start of a line, then
// indented properties (`description TEXT`, `mdev 0|1`, repeated
// `map node=…,path=…,id=vvvv:dddd[,subsystem-id=…][,iommugroup=N]`).
// Blank lines separate sections; `#` lines are comments. Every line is kept
// as read, so an unchanged document renders byte-identical.

import { FileFormatError } from '../errors.js';
import { PVE_MAPPING_PCI } from '../model/config-paths.js';

interface PveMapEntry {
  /** key=value pairs in file order (node, path, id, subsystem-id, iommugroup, description). */
  fields: [string, string][];
}

interface PveProperty {
  key: string;
  value: string;
  /** The line as read (indent + key + separator + value), used when unchanged. */
  raw: string;
}

interface PveSection {
  id: string;
  /** The header line as read. */
  raw: string;
  properties: PveProperty[];
}

type PveLine = { kind: 'other'; raw: string } | { kind: 'section'; section: PveSection };

interface PveMappingDoc {
  items: PveLine[];
  /** The text ends with a newline. */
  finalNewline: boolean;
}

/** Mapping IDs as Proxmox accepts them (pve-configid: a letter, then letters, digits, `-`, `_`). */
export const PVE_ID = /^[a-z][a-z0-9_-]+$/i;
const PROP_KEY = /^[a-z][a-z0-9_-]*$/i;

export function parsePveMappingPci(text: string, file = PVE_MAPPING_PCI): PveMappingDoc {
  const finalNewline = text.endsWith('\n');
  const lines = text.length ? (finalNewline ? text.slice(0, -1) : text).split('\n') : [];
  const items: PveLine[] = [];
  let current: PveSection | null = null;
  lines.forEach((raw, i) => {
    if (raw.trim() === '' || /^\s*#/.test(raw)) {
      if (raw.trim() === '') current = null;
      items.push({ kind: 'other', raw });
      return;
    }
    if (/^\s/.test(raw)) {
      if (!current) throw new FileFormatError(file, i + 1, `property '${raw.trim()}' outside a mapping`, 'indented lines belong under a mapping ID line; add the ID line above it or remove the indentation');
      const m = /^\s+(\S+)(?:\s+(.*))?$/.exec(raw)!;
      if (!PROP_KEY.test(m[1])) throw new FileFormatError(file, i + 1, `'${m[1]}' is not a property name`, 'properties are `description`, `mdev` or `map node=…,path=…,id=…`');
      current.properties.push({ key: m[1], value: m[2] ?? '', raw });
      return;
    }
    const id = raw.trimEnd();
    if (!PVE_ID.test(id)) throw new FileFormatError(file, i + 1, `'${id}' is not a mapping ID`, 'a mapping ID starts with a letter and holds letters, digits, - and _ (properties are indented)');
    current = { id, raw, properties: [] };
    items.push({ kind: 'section', section: current });
  });
  return { items, finalNewline };
}

export function renderPveMappingPci(doc: PveMappingDoc): string {
  const out: string[] = [];
  for (const it of doc.items) {
    if (it.kind === 'other') out.push(it.raw);
    else {
      out.push(it.section.raw);
      for (const p of it.section.properties) out.push(p.raw);
    }
  }
  return out.length ? out.join('\n') + (doc.finalNewline ? '\n' : '') : '';
}

export function sections(doc: PveMappingDoc): PveSection[] {
  return doc.items.flatMap((i) => (i.kind === 'section' ? [i.section] : []));
}

/** Parse a `map` property string (`node=a,path=0000:01:00,id=10de:1f08`). */
export function parseMapValue(value: string, file = PVE_MAPPING_PCI, line = 0): PveMapEntry {
  const fields: [string, string][] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new FileFormatError(file, line, `map entry part '${part}' is not key=value`, 'write map entries as node=NODE,path=BDF,id=VVVV:DDDD');
    fields.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  return { fields };
}

export function renderMapValue(e: PveMapEntry): string {
  return e.fields.map(([k, v]) => `${k}=${v}`).join(',');
}

/** A new section as Proxmox writes it: the ID, then tab-indented properties. */
export function newSection(id: string, props: { key: string; value: string }[]): PveSection {
  return { id, raw: id, properties: props.map((p) => ({ ...p, raw: `\t${p.key} ${p.value}`.trimEnd() })) };
}

/** Documents built from scratch: sections separated by one blank line. */
export function documentOf(secs: PveSection[]): PveMappingDoc {
  const items: PveLine[] = [];
  secs.forEach((s, i) => {
    if (i) items.push({ kind: 'other', raw: '' });
    items.push({ kind: 'section', section: s });
  });
  return { items, finalNewline: true };
}
