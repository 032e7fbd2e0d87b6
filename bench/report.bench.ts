// `npm run bench:report`: how fast `vfiokit report` makes its page and how fast
// a browser opens it, on a synthetic 4096-function host.
//   generation: analyses + reportData + renderReportHtml (pure, in process),
//     against JSON.stringify of the same snapshot as the yardstick;
//   open: the system Chromium loading the page from file:// until its script has
//     run and a frame is painted, against a page of one line of text.
// Targets: generation < 1 s, open < 3 s (median of 5).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assembleCheck } from '../src/analysis/check.js';
import { analyzeGroups } from '../src/analysis/groups.js';
import { assembleStatus } from '../src/analysis/status.js';
import { inspect } from '../src/host/inspect.js';
import { HostRoot } from '../src/host/root.js';
import { renderReportHtml } from '../src/render/report-html.js';
import { findChromium, launchChromium } from '../test/helpers/chromium.js';
import { buildFakeHost } from '../test/helpers/fake-host.js';
import { synthetic } from './synthetic.js';

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bin/vfiokit.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function timeMs<T>(f: () => T, runs: number): { ms: number; value: T } {
  const times: number[] = [];
  let value!: T;
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    value = f();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms: median(times), value };
}

async function main(): Promise<void> {
  const N = 4096;
  const RUNS = 5;
  console.log(`vfiokit report benchmark (node ${process.version}), synthetic host of ${N} PCI functions, median of ${RUNS}`);
  const t0 = Date.now();
  const root = buildFakeHost({ iommu: 'intel', pci: synthetic(N) });
  console.log(`fake host built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const snap = inspect(new HostRoot(root));
    if (snap.pci.length !== N) throw new Error(`inspect saw ${snap.pci.length} functions, expected ${N}`);
    const gen = timeMs(() => {
      const groups = analyzeGroups(snap);
      return renderReportHtml({ snapshot: snap, groups, check: assembleCheck(snap, groups), status: assembleStatus(snap, null), transactions: [], interrupted: [], classNames: {}, generatedAt: new Date().toISOString() });
    }, RUNS);
    const yard = timeMs(() => JSON.stringify(snap, null, 2), RUNS);
    const html = gen.value;
    console.log('');
    console.log('what                                   time (ms)  yardstick (ms)  target');
    console.log(`generate the page (${(html.length / 1e6).toFixed(1)} MB)            ${gen.ms.toFixed(0).padStart(9)}  ${yard.ms.toFixed(0).padStart(14)}  < 1000 ms ${gen.ms < 1000 ? 'OK' : 'OVER TARGET'}   (yardstick: JSON.stringify of the snapshot, ${(yard.value.length / 1e6).toFixed(1)} MB)`);

    // The whole command, as a user runs it (reading the tree included), against `vfiokit inspect --json`.
    const out = path.join(os.tmpdir(), `vfiokit-report-bench-${process.pid}.html`);
    const proc = (argv: string[]) =>
      timeMs(() => {
        const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
        if (r.status !== 0) throw new Error(`vfiokit ${argv.join(' ')} failed: ${r.stderr.slice(0, 400)}`);
        return r.status;
      }, 3).ms;
    const whole = proc(['report', '--root', root, '-o', out]);
    const insp = proc(['inspect', '--json', '--root', root]);
    fs.rmSync(out, { force: true });
    console.log(`vfiokit report -o (whole process)      ${whole.toFixed(0).padStart(9)}  ${insp.toFixed(0).padStart(14)}  (info)    (yardstick: vfiokit inspect --json, whole process)`);

    const exe = findChromium();
    if (!exe) {
      console.log('open in a browser: SKIPPED (no /usr/bin/chromium; apt-get install chromium)');
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-report-bench-'));
    const page4096 = path.join(dir, 'report.html');
    const tiny = path.join(dir, 'tiny.html');
    fs.writeFileSync(page4096, html);
    fs.writeFileSync(tiny, '<!DOCTYPE html><title>t</title><p id="count">one line</p>');
    const session = await launchChromium(exe);
    try {
      const open = async (file: string): Promise<number> => {
        const page = await session.context.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        const start = Date.now();
        await page.goto(`file://${file}`, { waitUntil: 'load', timeout: 60_000 });
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
        const ms = Date.now() - start;
        if (file === page4096) {
          const rows = await page.locator('#devices tbody tr').count();
          if (rows !== N || errors.length) throw new Error(`page shows ${rows} rows, errors: ${errors.join('; ')}`);
        }
        await page.close();
        return ms;
      };
      await open(tiny); // warm the browser
      const openTimes: number[] = [];
      const tinyTimes: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        openTimes.push(await open(page4096));
        tinyTimes.push(await open(tiny));
      }
      // Searching: the time from typing an ID to the filtered table.
      const page = await session.context.newPage();
      await page.goto(`file://${page4096}`);
      const searchTimes: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const q = i % 2 ? '10de:2204' : '';
        searchTimes.push(
          await page.evaluate((text) => {
            const input = document.getElementById('search') as HTMLInputElement;
            const t = performance.now();
            input.value = text;
            input.dispatchEvent(new Event('input'));
            return new Promise<number>((r) => requestAnimationFrame(() => r(performance.now() - t)));
          }, q || 'x'),
        );
      }
      await page.close();
      const o = median(openTimes);
      console.log(`open in Chromium (file://, painted)     ${o.toFixed(0).padStart(9)}  ${median(tinyTimes).toFixed(0).padStart(14)}  < 3000 ms ${o < 3000 ? 'OK' : 'OVER TARGET'}   (yardstick: a one-line page)`);
      console.log(`search 4096 rows (to next frame)       ${median(searchTimes).toFixed(0).padStart(9)}  ${'-'.padStart(14)}`);
    } finally {
      await session.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
