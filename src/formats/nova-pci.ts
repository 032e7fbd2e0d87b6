// Nova's PCI options as they appear in nova.conf: `device_spec = {JSON}` and
// `alias = {JSON}` lines (MultiStr: one option per line, repeated) in the
// `[pci]` section. Parsed to the JSON objects, to check what vfiokit renders.

import { FileFormatError } from '../errors.js';

interface NovaPciOptions {
  deviceSpec: Record<string, unknown>[];
  alias: Record<string, unknown>[];
}

export function parseNovaPci(text: string, file = 'nova.conf'): NovaPciOptions {
  const res: NovaPciOptions = { deviceSpec: [], alias: [] };
  let section = '';
  text.split('\n').forEach((line, i) => {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';')) return;
    const sec = /^\[([^\]]+)\]$/.exec(t);
    if (sec) {
      section = sec[1];
      return;
    }
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(t);
    if (!m) throw new FileFormatError(file, i + 1, `'${t}' is not an option line`, 'write options as name = value');
    if (section !== 'pci' || (m[1] !== 'device_spec' && m[1] !== 'alias')) return;
    let v: unknown;
    try {
      v = JSON.parse(m[2]);
    } catch {
      throw new FileFormatError(file, i + 1, `[pci] ${m[1]} is not JSON`, 'Nova expects a JSON object (or a list of objects) as the value');
    }
    const list = Array.isArray(v) ? v : [v];
    for (const o of list) {
      if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new FileFormatError(file, i + 1, `[pci] ${m[1]} holds a value that is not a JSON object`, 'each entry is an object such as {"vendor_id": "10de", "product_id": "1eb8"}');
      (m[1] === 'alias' ? res.alias : res.deviceSpec).push(o as Record<string, unknown>);
    }
  });
  return res;
}
