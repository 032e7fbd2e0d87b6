// Test selection (--only) and the summary table.

import type { TestDef, TestResult } from './harness.js';
import { fmtDuration } from './util.js';

export function selectTests(all: TestDef[], only: string | undefined): TestDef[] {
  if (!only) return all;
  const wanted = only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const picked = all.filter((t) => wanted.some((w) => t.id === w || t.id.startsWith(`${w}.`)));
  const unknown = wanted.filter((w) => !all.some((t) => t.id === w || t.id.startsWith(`${w}.`)));
  if (unknown.length) throw new Error(`unknown test or scenario: ${unknown.join(', ')} (see --list)`);
  return picked;
}

/** The order tests start in: longest first (by measured cost), so parallel jobs end together. */
export function longestFirst(tests: TestDef[]): TestDef[] {
  return [...tests].sort((a, b) => b.cost - a.cost);
}

export function summaryTable(results: TestResult[]): string {
  const rows = results.map((r) => [r.status.toUpperCase(), r.id, fmtDuration(r.durationMs), r.title + (r.reason ? ` — ${r.reason}` : '')]);
  const w0 = 6;
  const w1 = Math.max(4, ...rows.map((r) => r[1]!.length));
  const w2 = Math.max(8, ...rows.map((r) => r[2]!.length));
  const line = (r: string[]) => `${r[0]!.padEnd(w0)} ${r[1]!.padEnd(w1)} ${r[2]!.padStart(w2)}  ${r[3]}`;
  return [line(['RESULT', 'TEST', 'DURATION', 'WHAT']), line(['-'.repeat(w0), '-'.repeat(w1), '-'.repeat(w2), '-'.repeat(4)]), ...rows.map(line)].join('\n');
}

