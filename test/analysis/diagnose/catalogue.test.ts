import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOGUE } from '../../../src/analysis/diagnose/catalogue.js';
import { RULES } from '../../../src/analysis/diagnose/rules.js';

const doc = fs.readFileSync(path.resolve(__dirname, '../../../docs/diagnose.md'), 'utf8');
const rows = new Map(
  doc
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => [/^\| `([a-z0-9_]+)`/.exec(l)![1], l]),
);

describe('docs/diagnose.md documents the catalogue', () => {
  it('one row per cause, no other', () => expect([...rows.keys()].sort()).toEqual(CATALOGUE.map((c) => c.id).sort()));
  for (const c of CATALOGUE)
    it(c.id, () => {
      const row = rows.get(c.id)!;
      expect(row).toContain(c.meaning.replace(/\|/g, '\\|'));
      expect(row).toContain(c.fix.replace(/\|/g, '\\|'));
      for (const r of RULES.filter((x) => x.cause === c.id)) {
        expect(row).toContain(`\`${r.id}\``);
        // where the message comes from: the project and its source file
        expect(r.source.length).toBeGreaterThan(10);
        expect(row).toContain(r.source.replace(/\|/g, '\\|'));
      }
    });
  it('the causes the issue names all exist, and every rule names one', () => {
    const ids = new Set(CATALOGUE.map((c) => c.id));
    for (const id of ['iommu_off', 'no_interrupt_remapping', 'group_not_viable', 'bar_reserved_by_framebuffer', 'rom_unreadable', 'memlock', 'dma_entry_limit', 'device_busy', 'reset_failed', 'rmrr', 'vfio_permission', 'vfio_virqfd_missing', 'x_vga_unsupported', 'code43', 'msi_intx', 'dma_fault', 'detach_hang', 'hook_failed', 'noiommu'])
      expect(ids.has(id as never)).toBe(true);
    for (const r of RULES) expect(ids.has(r.cause)).toBe(true);
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  });
});
