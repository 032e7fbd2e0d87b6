// `npm run lab` — runs vfiokit as root inside QEMU guests with an emulated
// IOMMU and checks what it reads and what it changes against the guest kernel.
//
//   npm run lab                      every test
//   npm run lab -- --only 1,2        scenarios 1 and 2 (or single tests: --only 1.amd,2.grub-dracut)
//   npm run lab -- --list            the tests, without running anything
//   npm run lab -- --jobs 1          guests at a time (default: VFIOKIT_LAB_JOBS or 2)
//
// Results: a table at the end, lab-results/results.json, serial logs of every
// boot under lab-results/<test>/. Exit 1 if any test failed (skips are not failures).

import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { runTestRetryingSilence, type TestDef } from './lib/harness.js';
import { machineSummary } from './lib/declare.js';
import { cacheRoot } from './lib/cache.js';
import { imageStats } from './lib/images.js';
import { fmtDuration, log, repoRoot } from './lib/util.js';
import { ALL_TESTS } from './scenarios/index.js';
import { longestFirst, selectTests, summaryTable } from './lib/select.js';

async function pool<T, R>(items: T[], jobs: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  return out;
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: process.argv.slice(2),
      options: { only: { type: 'string' }, list: { type: 'boolean' }, jobs: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`lab: ${(e as Error).message}\nUsage: npm run lab -- [--only 1,2|1.amd,...] [--list] [--jobs N]\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write('Usage: npm run lab -- [--only 1,2|1.amd,...] [--list] [--jobs N]\nEnvironment: VFIOKIT_LAB_CACHE (image cache dir), VFIOKIT_LAB_JOBS, VFIOKIT_LAB_ACCEL (tcg|kvm), VFIOKIT_LAB_KERNEL, VFIOKIT_LAB_MIRROR (Debian mirror), VFIOKIT_LAB_KEEP_FAILED=1 (keep a failed image build); see lab/README.md\n');
    return 0;
  }
  let tests: TestDef[];
  try {
    tests = selectTests(ALL_TESTS, args.only);
  } catch (e) {
    process.stderr.write(`lab: ${(e as Error).message}\n`);
    return 2;
  }
  if (args.list) {
    for (const t of tests) process.stdout.write(`${t.id.padEnd(24)} ${t.title}${t.needs.length ? `  [needs: vfiokit ${t.needs.join(', ')}]` : ''}${machineSummary(t)}\n`);
    return 0;
  }
  if (process.getuid?.() !== 0) log('lab: warning: not running as root; building images and 9p shares need root');
  const jobs = Number(args.jobs ?? process.env.VFIOKIT_LAB_JOBS ?? Math.min(2, os.cpus().length));
  if (!Number.isInteger(jobs) || jobs < 1) {
    process.stderr.write('lab: --jobs must be a positive integer\n');
    return 2;
  }
  const resultsDir = path.join(repoRoot(), 'lab-results');
  mkdirSync(resultsDir, { recursive: true });
  const t0 = Date.now();
  log(`lab: ${tests.length} tests (${tests.map((t) => t.id).join(', ')}), ${jobs} at a time (each test declares its guest's vCPUs and memory); cache ${cacheRoot()}; results ${resultsDir}`);
  // Longest first (the table keeps the listed order).
  const byId = new Map((await pool(longestFirst(tests), jobs, async (def) => {
    const r = await runTestRetryingSilence(def, resultsDir);
    log(`${r.status.toUpperCase()} ${r.id} (${fmtDuration(r.durationMs)}) ${r.title}${r.reason ? ` — ${r.reason}` : ''}`);
    return r;
  })).map((r) => [r.id, r]));
  const results = tests.map((t) => byId.get(t.id)!);
  const totalMs = Date.now() - t0;
  const counts = { pass: 0, fail: 0, skip: 0 };
  for (const r of results) counts[r.status]++;
  log('\n' + summaryTable(results));
  for (const [name, st] of Object.entries(imageStats)) log(`image ${name}: ${st.built ? `built in ${fmtDuration(st.buildMs ?? 0)} (cold)` : 'from the cache'} — ${st.dir}`);
  log(`\nlab: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped in ${fmtDuration(totalMs)}`);
  writeFileSync(
    path.join(resultsDir, 'results.json'),
    JSON.stringify(
      {
        startedAt: new Date(t0).toISOString(),
        durationMs: totalMs,
        host: { cpus: os.cpus().length, accel: process.env.VFIOKIT_LAB_ACCEL || 'tcg', jobs },
        cache: cacheRoot(),
        images: imageStats,
        counts,
        tests: results,
      },
      null,
      2,
    ) + '\n',
  );
  log(`lab: results in ${path.join(resultsDir, 'results.json')}`);
  return counts.fail ? 1 : 0;
}

process.exitCode = await main();
