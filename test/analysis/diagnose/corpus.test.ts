// Every real log of the shared corpus (C_dmesg) with the cause its source
// describes (SOURCES.tsv, written by hand from the user reports): the first
// finding must be that cause; informational logs of healthy hosts must give
// no finding above low confidence. The rendered reports are goldens.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { correlate } from '../../../src/analysis/diagnose/correlate.js';
import { diagnoseLines } from '../../../src/analysis/diagnose/engine.js';
import { renderDiagnosis } from '../../../src/render/diagnose.js';
import { CORPUS_DIR } from '../../corpus/fixtures.js';

type Expect = { cause: string; device?: string } | null;

// From SOURCES.tsv's description of each file.
const EXPECTED: Record<string, Expect> = {
  '64kramsystem_1': { cause: 'group_not_viable', device: '0000:01:00.0' },
  asokolsky_1: null,
  asokolsky_2: null,
  bpg_1: { cause: 'dma_map_invalid' },
  bryansteiner_1: { cause: 'reset_failed', device: '0000:01:00.0' },
  chestergillon_1: { cause: 'group_not_viable' },
  chyves_1: { cause: 'rom_unreadable', device: '0000:00:06.0' },
  cloudhypervisor_1: { cause: 'bar_reserved_by_framebuffer', device: '0000:0a:00.0' },
  coderobe_1: { cause: 'reset_failed', device: '0000:01:00.0' },
  colinianking_1: { cause: 'rom_unreadable' },
  cosminmocan_1: { cause: 'bar_reserved_by_framebuffer', device: '0000:05:00.0' },
  dasharo_1: { cause: 'dma_fault', device: '0000:01:00.0' },
  dasharo_2: { cause: 'iommu_firmware_bug' },
  foxlet_1: { cause: 'group_not_viable', device: '0000:00:1d.2' },
  gammaman88_1: { cause: 'iommu_option_unknown' },
  harvester_1: { cause: 'rmrr', device: '0000:04:00.1' },
  harvester_2: { cause: 'rmrr_relaxed' },
  jscinoz_1: { cause: 'ir_xapic_mode' },
  kata_1: { cause: 'reset_failed', device: '0000:01:00.0' },
  kubevirt_1: { cause: 'group_not_viable', device: '0000:01:00.0' },
  mapmanagement_1: null,
  mapmanagement_2: null,
  mapmanagement_3: { cause: 'reset_failed', device: '0000:08:00.0' },
  mapmanagement_4: { cause: 'reset_failed' },
  ndndpdk_1: { cause: 'group_not_viable', device: '0000:44:00.3' },
  patmagauran_1: { cause: 'dma_fault', device: '0000:00:02.0' },
  pcengines_1: { cause: 'dma_fault', device: '0000:05:00.0' },
  sergeyklay_1: null,
  spdk_1: { cause: 'dma_fault' },
  strongtz_1: { cause: 'rom_unreadable', device: '0000:00:02.0' },
  tvk_1: { cause: 'group_not_viable' },
  unattributed_1: { cause: 'bar_reserved_by_framebuffer' },
};

const dir = path.join(CORPUS_DIR, 'C_dmesg');
const present = fs.existsSync(dir);
const GOLDEN = path.resolve(__dirname, '../../fixtures/golden/diagnose');

describe.skipIf(!present && !process.env.CI)('diagnose on the real corpus logs', () => {
  it('the corpus holds exactly the files this test knows', () => {
    const files = fs.readdirSync(dir).map((f) => f.replace(/\.txt$/, '')).sort();
    expect(files).toEqual(Object.keys(EXPECTED).sort());
  });
  for (const [name, want] of Object.entries(EXPECTED)) {
    it(`${name}: ${want ? want.cause : 'no failure'}`, () => {
      const text = fs.readFileSync(path.join(dir, `${name}.txt`), 'utf8');
      const r = diagnoseLines(text.split('\n'), `C_dmesg/${name}.txt`);
      if (want === null) {
        expect(r.findings.filter((f) => f.confidence !== 'low')).toEqual([]);
      } else {
        expect(r.findings[0]?.cause).toBe(want.cause);
        if (want.device) expect(r.findings[0].devices).toContain(want.device);
        // never a confident wrong cause
        for (const f of r.findings.slice(1)) if (f.confidence === 'high') expect(f.cause).toBe(want.cause);
      }
      const rendered = renderDiagnosis(correlate(r, null, { guestMemoryMiB: null, memlockKiB: null }));
      const golden = path.join(GOLDEN, `${name}.txt`);
      if (process.env.UPDATE_GOLDEN || !fs.existsSync(golden)) {
        fs.mkdirSync(GOLDEN, { recursive: true });
        fs.writeFileSync(golden, rendered);
        if (!process.env.UPDATE_GOLDEN) throw new Error(`golden ${golden} was missing and has been written: review it`);
      }
      expect(rendered).toBe(fs.readFileSync(golden, 'utf8'));
    });
  }
});
