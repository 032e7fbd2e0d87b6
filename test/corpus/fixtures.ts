// Corpus host fixtures: compact FakeHost descriptions derived from real lspci
// dumps in the shared corpus by test/helpers/lspci-import.ts. The tests run
// from these JSON files so they work on a clean clone without the corpus;
// lspci-import.test.ts re-derives them from the corpus when it is present and
// fails if they drifted (UPDATE_CORPUS_FIXTURES=1 rewrites them).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FakeHost } from '../helpers/fake-host.js';
import type { LspciImport } from '../helpers/lspci-import.js';

export const FIXTURE_DIR = path.resolve(__dirname, '../fixtures/corpus-hosts');
export const CORPUS_DIR = process.env.VFIOKIT_CORPUS ?? '/work/shared/corpus';

/** Dumps converted to fixtures (the others are refused by the importer or are single-device fragments). */
export const FIXTURE_DUMPS = ['linuxhw_1', 'linuxhw_2', 'linuxhw_3', 'linuxhw_4', 'linuxhw_5'] as const;
export type FixtureName = (typeof FIXTURE_DUMPS)[number];

export interface CorpusFixture {
  /** The corpus file the host was derived from (relative to the corpus root). */
  source: string;
  capture: { capabilities: LspciImport['capabilities']; ids: boolean; groups: boolean };
  notes: string[];
  host: FakeHost;
}

export function toFixture(r: LspciImport): CorpusFixture {
  if (!r.host) throw new Error(`${r.source} cannot be converted: ${r.problems.join('; ')}`);
  return { source: r.source, capture: { capabilities: r.capabilities, ids: r.ids, groups: r.groups }, notes: r.notes, host: r.host };
}

/** One device per line keeps the JSON compact and diffs readable. */
export function renderFixture(f: CorpusFixture): string {
  const { pci, ...rest } = f.host;
  const head = JSON.stringify({ source: f.source, capture: f.capture, notes: f.notes, host: rest }, null, 2);
  const rows = pci.map((d) => `      ${JSON.stringify(d)}`).join(',\n');
  return `${head.slice(0, head.lastIndexOf('}', head.length - 2)).replace(/\s*$/, '')},\n    "pci": [\n${rows}\n    ]\n  }\n}\n`;
}

export function loadFixture(name: FixtureName): CorpusFixture {
  return JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, `${name}.json`), 'utf8')) as CorpusFixture;
}
