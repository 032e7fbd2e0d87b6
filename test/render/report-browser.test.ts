// The report page in a real browser (system Chromium): for every fixture host,
// no console errors, no request beyond the file itself, every device and
// group in the DOM, region colours by verdict, search by ID, details on click,
// the "only what I can pass" filter and the theme toggle. A screenshot per
// fixture goes to test-results/report-<host>.png.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleCheck } from '../../src/analysis/check.js';
import { analyzeGroups } from '../../src/analysis/groups.js';
import { assembleStatus } from '../../src/analysis/status.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { renderReportHtml } from '../../src/render/report-html.js';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import { buildFakeHost, makeTempDir } from '../helpers/fake-host.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';

const RESULTS = path.resolve(__dirname, '../../test-results');
const exe = findChromium();
if (!exe && process.env.CI === '1') throw new Error('chromium is not installed (apt-get install chromium); the browser tests must run under CI');
if (!exe) console.warn('report-browser tests SKIPPED: no chromium at /usr/bin/chromium (apt-get install chromium); under CI=1 this fails');

// Light-theme colours of the group regions, written down here (the stylesheet's
// values): green isolated, blue own functions, orange shares, grey none.
const LIGHT_FILL = { isolated: 'rgb(214, 240, 217)', own: 'rgb(216, 230, 251)', shares: 'rgb(253, 224, 194)', none: 'rgb(228, 228, 228)' } as const;
const TONE_OF = { isolated: 'isolated', 'gpu-functions-only': 'own', 'device-functions-only': 'own', shares: 'shares', 'no-iommu': 'none' } as const;
// A few groups whose verdict a person reads off the fixture topology.
const KNOWN: Record<string, Record<number, keyof typeof LIGHT_FILL>> = {
  'desktop-nvidia': { 1: 'own', 7: 'isolated' },
  'amd-no-acs': { 1: 'shares' },
  'server-switch-sriov': { 5: 'isolated', 11: 'isolated' },
  'laptop-3d-controller': { 1: 'own' },
  'twin-gpus': { 3: 'own', 4: 'own' },
};

let session: Awaited<ReturnType<typeof launchChromium>> | null = null;
const tmp: string[] = [];
beforeAll(async () => {
  if (exe) session = await launchChromium(exe);
  fs.mkdirSync(RESULTS, { recursive: true });
}, 60_000);
afterAll(async () => {
  await session?.close();
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

describe.skipIf(!exe).each(Object.keys(FIXTURE_HOSTS))('report of %s in Chromium', (name) => {
  it('renders without errors, shows every device and group, searches and shows details', async () => {
    const root = buildFakeHost(FIXTURE_HOSTS[name]);
    tmp.push(root);
    const snap = inspect(new HostRoot(root));
    const groups = analyzeGroups(snap);
    const html = renderReportHtml({ snapshot: snap, groups, check: assembleCheck(snap, groups), status: assembleStatus(snap, null), transactions: [], interrupted: [], classNames: {}, generatedAt: '2026-01-01T00:00:00Z' });
    const dir = makeTempDir('vfiokit-report-page-');
    tmp.push(dir);
    const file = path.join(dir, `${name}.html`);
    fs.writeFileSync(file, html);
    const url = `file://${file}`;

    const page = await session!.context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`console ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('request', (r) => r.url() !== url && problems.push(`request: ${r.url()}`));
    await page.goto(url);
    await page.waitForLoadState('load');

    // Every function in the table and the SVG; every group as a region.
    for (const d of snap.pci) {
      expect(await page.locator(`#devices tr[data-address="${d.address}"]`).count(), d.address).toBe(1);
      expect(await page.locator(`#topology g.node[data-address="${d.address}"]`).count(), d.address).toBe(1);
      expect(await page.locator(`#topology g.node[data-address="${d.address}"] > title`).textContent()).toContain(d.address.slice(5));
    }
    for (const g of groups.groups) {
      const regions = page.locator(`#topology g.region[data-group="${g.id}"] > rect`);
      expect(await regions.count(), `group ${g.id}`).toBeGreaterThan(0);
      const fills = await regions.evaluateAll((els) => els.map((e) => getComputedStyle(e).fill));
      for (const f of fills) expect(f, `group ${g.id} (${g.verdict})`).toBe(LIGHT_FILL[TONE_OF[g.verdict]]);
    }
    for (const [gid, tone] of Object.entries(KNOWN[name] ?? {}))
      expect(await page.locator(`#topology g.region[data-group="${gid}"] > rect`).first().evaluate((e) => getComputedStyle(e).fill)).toBe(LIGHT_FILL[tone]);
    // Devices without a group (no IOMMU) are grey in the table.
    for (const d of snap.pci.filter((x) => x.iommuGroup === null))
      expect(await page.locator(`#devices tr[data-address="${d.address}"] .swatch`).evaluate((e) => getComputedStyle(e).backgroundColor)).toBe(LIGHT_FILL.none);

    // Search by vendor:device finds exactly the devices with that ID.
    const target = snap.pci.find((d) => !d.isBridge && d.class.startsWith('03')) ?? snap.pci[snap.pci.length - 1];
    const id = `${target.vendor}:${target.device}`;
    await page.fill('#search', id);
    const visible = await page.locator('#devices tbody tr:not(.hidden)').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-address')));
    expect(visible.sort()).toEqual(snap.pci.filter((d) => `${d.vendor}:${d.device}` === id).map((d) => d.address).sort());
    expect(await page.textContent('#count')).toBe(`${visible.length} of ${snap.pci.length} functions`);
    expect(await page.locator(`#topology g.node.match[data-address="${target.address}"]`).count()).toBe(1);

    // Clicking the device in the drawing shows its details.
    await page.click(`#topology g.node[data-address="${target.address}"]`);
    await expect.poll(() => page.isVisible('#details')).toBe(true);
    const details = (await page.textContent('#details-body')) ?? '';
    expect(details).toContain(target.address);
    expect(details).toContain(`driver${target.driver ?? 'none'}`);
    expect(details).toContain(`IOMMU group${target.iommuGroup === null ? 'none' : target.iommuGroup}`);
    await page.keyboard.press('Escape');
    expect(await page.isVisible('#details')).toBe(false);
    await page.fill('#search', '');

    // "Only what I can pass": bridges and host bridges disappear, GPUs stay.
    await page.check('#only-candidates');
    const shown = await page.locator('#devices tbody tr:not(.hidden)').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-address')));
    for (const d of snap.pci) {
      if (d.isBridge || d.class.startsWith('0600')) expect(shown, d.address).not.toContain(d.address);
      if (d.class.startsWith('03')) expect(shown, d.address).toContain(d.address);
    }
    await page.uncheck('#only-candidates');

    await page.screenshot({ path: path.join(RESULTS, `report-${name}.png`), fullPage: true });

    // Theme toggle: auto → dark changes the page background; print media keeps a white page.
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(await bg()).toBe('rgb(255, 255, 255)');
    await page.click('#theme');
    expect(await page.getAttribute('html', 'data-theme')).toBe('dark');
    expect(await bg()).toBe('rgb(20, 23, 27)');
    await page.emulateMedia({ media: 'print' });
    expect(await bg()).toBe('rgb(255, 255, 255)');
    expect(await page.isVisible('#search')).toBe(false);
    // Everything is laid out for paper (no section left to lazy rendering).
    expect(await page.evaluate(() => [...document.querySelectorAll('main > section')].map((e) => getComputedStyle(e).contentVisibility))).toEqual(expect.arrayContaining(['visible']));
    expect(await page.evaluate(() => [...document.querySelectorAll('main > section')].every((e) => getComputedStyle(e).contentVisibility === 'visible'))).toBe(true);
    await page.emulateMedia({ media: 'screen' });
    await page.click('#theme');
    await page.click('#theme');
    expect(await page.getAttribute('html', 'data-theme')).toBeNull();

    await page.close();
    expect(problems).toEqual([]);
  });
});

describe.skipIf(!exe)('report in a dark desktop', () => {
  it('follows prefers-color-scheme: dark', async () => {
    const dark = await launchChromium(exe!, 'dark');
    try {
      const root = buildFakeHost(FIXTURE_HOSTS['desktop-nvidia']);
      tmp.push(root);
      const snap = inspect(new HostRoot(root));
      const groups = analyzeGroups(snap);
      const file = path.join(root, 'report.html');
      fs.writeFileSync(file, renderReportHtml({ snapshot: snap, groups, check: assembleCheck(snap, groups), status: assembleStatus(snap, null), transactions: [], interrupted: [], classNames: {}, generatedAt: '2026-01-01T00:00:00Z' }));
      const page = await dark.context.newPage();
      await page.goto(`file://${file}`);
      expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(20, 23, 27)');
      // Regions keep their verdict colours in the dark palette (shares ≠ isolated ≠ own).
      const fill = (g: number) => page.locator(`#topology g.region[data-group="${g}"] > rect`).first().evaluate((e) => getComputedStyle(e).fill);
      expect(await fill(1)).toBe('rgb(28, 47, 77)');
      expect(await fill(7)).toBe('rgb(31, 61, 36)');
      await page.screenshot({ path: path.join(RESULTS, 'report-desktop-nvidia-dark.png'), fullPage: false });
    } finally {
      await dark.close();
    }
  });
});
