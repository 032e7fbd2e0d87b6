// docs/snapshot-schema.md describes the snapshot `inspect --json` prints: each
// field of the top level and of kernel, iommu, pci[] and boot has one row,
// and no row names a field the snapshot does not have.

import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { inspect } from '../../src/host/inspect.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { DISTRO_HOSTS } from '../helpers/distros.js';

const doc = fs.readFileSync('docs/snapshot-schema.md', 'utf8');

/** The fields named in the first column of the table under `heading` (`a`, `a`, `b`; `kvm.devKvm` → kvm). */
function rows(heading: string): string[] {
  const start = doc.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(-1);
  const rest = doc.slice(start + heading.length + 2);
  const end = rest.search(/\n## /);
  const table = (end < 0 ? rest : rest.slice(0, end)).split('\n').filter((l) => /^\| `/.test(l));
  return table.flatMap((l) => [...l.split('|')[1].matchAll(/`([A-Za-z]+)(?:[.[][^`]*)?`/g)].map((m) => m[1]));
}

const dir = buildFakeHost(DISTRO_HOSTS['fedora-bls'].host);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const snap = inspect(new (await import('../../src/host/root.js')).HostRoot(dir)) as unknown as Record<string, Record<string, unknown>>;
// Fields present only when there is something to list.
const OPTIONAL: Record<string, string[]> = { boot: ['storageMounts', 'links', 'irregular'] };

describe('docs/snapshot-schema.md', () => {
  for (const [heading, value] of [
    ['## Top level', snap],
    ['## `kernel`', snap.kernel],
    ['## `iommu`', snap.iommu],
    ['## `pci[]` (PciDevice)', (snap.pci as unknown as Record<string, unknown>[])[0]],
    ['## `boot`', snap.boot],
  ] as const) {
    it(`${heading}: one row per field, each row once, no other`, () => {
      const named = rows(heading);
      const dup = named.filter((n, i) => named.indexOf(n) !== i);
      expect(dup, 'fields with more than one row').toEqual([]);
      const section = heading === '## Top level' ? null : heading.replace(/^## `|`.*$|\[\]/g, '');
      const optional = OPTIONAL[section ?? ''] ?? [];
      expect(Object.keys(value).filter((k) => !named.includes(k)), 'fields without a row').toEqual([]);
      expect(named.filter((n) => !(n in value) && !optional.includes(n)), 'rows for no field').toEqual([]);
    });
  }
});
