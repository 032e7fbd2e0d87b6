// Test helper: a fingerprint of a whole directory tree — every entry's type,
// mode, owner and content (or link text) — so "byte-identical" is one expect.
// vfiokit's own state dir (/var/lib/vfiokit: lock and journal) is excluded:
// it is meant to survive an apply/undo.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function treeFingerprint(root: string, exclude: string[] = ['var/lib/vfiokit']): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    const meta = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid}`;
    if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(abs)} ${meta}`;
    else if (st.isDirectory()) {
      if (rel) out[rel] = `dir ${meta}`;
      for (const n of fs.readdirSync(abs).sort()) {
        const r = rel ? `${rel}/${n}` : n;
        if (exclude.includes(r)) continue;
        walk(r);
      }
    } else out[rel] = `file ${crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex')} ${meta}`;
  };
  walk('');
  return out;
}
