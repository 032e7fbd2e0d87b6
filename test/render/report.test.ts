import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { assembleCheck } from '../../src/analysis/check.js';
import { analyzeGroups } from '../../src/analysis/groups.js';
import { assembleStatus } from '../../src/analysis/status.js';
import { resolveSelection } from '../../src/plan/select.js';
import { HostRoot } from '../../src/host/root.js';
import { inspect } from '../../src/host/inspect.js';
import { loadPciNames } from '../../src/host/pci-ids.js';
import type { HostSnapshot } from '../../src/model/snapshot.js';
import { renderReportHtml, reportData, type ReportData, type ReportInput } from '../../src/render/report-html.js';
import { buildFakeHost, makeTempDir } from '../helpers/fake-host.js';
import { expectGolden, stableRoot } from '../helpers/golden.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';
import { runCli } from '../helpers/run-cli.js';

const roots: string[] = [];
afterAll(async () => {
  if (process.env.KEEP_TMP !== '1') await Promise.all([...roots].map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
const snapshots = new Map<string, { root: string; snap: HostSnapshot }>();
function host(name: string): { root: string; snap: HostSnapshot } {
  if (!snapshots.has(name)) {
    const root = buildFakeHost(FIXTURE_HOSTS[name]);
    roots.push(root);
    snapshots.set(name, { root, snap: inspect(new HostRoot(root)) });
  }
  return snapshots.get(name)!;
}

function input(snap: HostSnapshot): ReportInput {
  const groups = analyzeGroups(snap);
  const names = loadPciNames(new HostRoot(snap.root));
  const classNames = Object.fromEntries(snap.pci.map((d) => [d.class, names.className(d.class)]).filter((e): e is [string, string] => e[1] !== null));
  return { snapshot: snap, groups, check: assembleCheck(snap, groups), status: assembleStatus(snap, null), transactions: [], interrupted: [], classNames, generatedAt: '2026-01-01T00:00:00Z' };
}

/** The page's data part, parsed back from the HTML text. */
function embedded(html: string): ReportData {
  const m = /<script type="application\/json" id="vfiokit-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]) as ReportData;
}

describe.each(Object.keys(FIXTURE_HOSTS))('report of fixture host %s', (name) => {
  it('embeds its data part (golden) and names every device and group', () => {
    const { root, snap } = host(name);
    const html = renderReportHtml(input(snap));
    const data = embedded(html);
    expectGolden(`report/${name}.json`, stableRoot(JSON.stringify(data, null, 2), root));
    // Every function of the snapshot appears once in the table and once in the SVG.
    for (const d of snap.pci) {
      const count = (re: string) => html.match(new RegExp(re, 'g'))?.length ?? 0;
      expect(count(`<tr class="dev[^"]*" data-address="${d.address}"`)).toBe(1);
      expect(count(`<g class="node dev[^>]* data-address="${d.address}"`)).toBe(1);
    }
    for (const g of snap.iommu.groups) expect(html).toContain(`data-group="${g.id}"`);
    // No network: nothing is fetched from anywhere.
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:|\/\/)/);
    expect(html).toContain(`default-src 'none'`);
  });
});

describe('report data', () => {
  it('marks what the host needs and adds the matching --allow flags to the commands', () => {
    const { snap } = host('desktop-nvidia');
    const s: HostSnapshot = { ...snap, boot: { ...snap.boot, rootStorage: ['0000:02:00.0'], defaultRouteNics: ['0000:00:1f.6'], framebuffers: [{ address: '0000:00:02.0', owner: 'efifb' }] } };
    const data = reportData(input(s));
    const dev = (a: string) => data.devices.find((d) => d.address === a)!;
    expect(dev('0000:02:00.0').hostNeeds).toEqual(['root filesystem disk']);
    expect(dev('0000:00:1f.6').hostNeeds).toEqual(['default-route network card']);
    expect(dev('0000:00:02.0').hostNeeds).toEqual(['boot display', 'firmware framebuffer (efifb)']);
    expect(dev('0000:01:00.0').hostNeeds).toEqual([]);
    const cand = (a: string) => data.candidates.find((c) => c.address === a)!;
    expect(cand('0000:02:00.0').commands[0]).toBe('vfiokit plan 02:00.0 --allow-root-storage');
    // 00:1f.6 shares its slot with the ISA/LPC bridge and SMBus: chipset functions are never suggested
    expect(cand('0000:00:1f.6').commands).toEqual([]);
    expect(cand('0000:00:1f.6').note).toMatch(/00:1f\.0 \(an ISA\/LPC bridge\), 00:1f\.4 \(an SMBus controller\), part of the host's chipset/);
    expect(cand('0000:00:1f.6').takesAlong).toEqual(['0000:00:1f.0', '0000:00:1f.3', '0000:00:1f.4']);
    expect(cand('0000:01:00.0').commands).toEqual(['vfiokit plan 01:00.0', 'sudo vfiokit apply 01:00.0', 'vfiokit vm xml win11 --device 01:00.0 > win11.xml']);
    // GPUs first in "what can I pass"; a GPU's own audio/USB functions are not separate candidates.
    expect(data.candidates.slice(0, 2).map((c) => c.address)).toEqual(['0000:00:02.0', '0000:01:00.0']);
    expect(data.candidates.map((c) => c.address)).not.toContain('0000:01:00.1');
    expect(cand('0000:01:00.0').takesAlong).toEqual(['0000:01:00.1', '0000:01:00.2', '0000:01:00.3']);
  });

  it.each(Object.keys(FIXTURE_HOSTS))('%s: every suggested plan command is one the planner accepts as it stands', (name) => {
    const { snap } = host(name);
    for (const c of reportData(input(snap)).candidates) {
      for (const cmd of c.commands.filter((x) => x.startsWith('vfiokit plan '))) {
        const args = cmd.split(' ').slice(2);
        const withs = args.flatMap((a, i) => (args[i - 1] === '--with' ? [a] : []));
        const sel = resolveSelection(snap, [args[0]], { with: withs, allowBootVga: args.includes('--allow-boot-vga') });
        expect(sel.problems, cmd).toEqual([]);
      }
    }
  });

  it('tones follow the group verdicts: own functions, shares, no IOMMU', () => {
    const tone = (name: string, addr: string) => reportData(input(host(name).snap)).devices.find((d) => d.address === addr)!.tone;
    expect(tone('desktop-nvidia', '0000:01:00.0')).toBe('own');
    expect(tone('desktop-nvidia', '0000:02:00.0')).toBe('isolated');
    expect(tone('amd-no-acs', '0000:02:00.0')).toBe('shares');
    expect(tone('iommu-off', '0000:01:00.0')).toBe('none');
    const off = reportData(input(host('iommu-off').snap));
    expect(off.candidates.every((c) => c.commands.length === 0 && c.note?.includes('IOMMU is not active'))).toBe(true);
  });

  it('transactions and status appear on the page', () => {
    const { snap } = host('twin-gpus');
    const intent = { selectors: ['0b:00.0'], devices: [{ address: '0000:0b:00.0', vendor: '10de', device: '2204', iommuGroup: 4, hostDriver: 'nvidia' }], strategy: 'address' as const, kernelArgs: [], bootloader: 'grub' as never, initramfs: 'initramfs-tools' as never };
    const inp = { ...input(snap), status: assembleStatus(snap, { txid: 'tx-1', intent, appliedAt: '2020-01-01T00:00:00Z' }), transactions: [{ txid: 'tx-1', kind: 'boot-passthrough', state: 'applied', createdAt: '2020-01-01T00:00:00Z', updatedAt: '2020-01-01T00:00:00Z', summary: ['bind 0b:00.0 to vfio-pci'] }], interrupted: ['tx-2'] };
    const html = renderReportHtml(inp);
    expect(html).toContain('Transaction tx-1 is not in effect');
    expect(html).toContain('bind 0b:00.0 to vfio-pci');
    expect(html).toContain('Interrupted transaction tx-2: run <code>sudo vfiokit recover</code>');
  });

  it('property: any device name survives the page (escaped in HTML, intact in the data part)', () => {
    const { snap } = host('laptop-3d-controller');
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 20 }), (name, driver) => {
        const s: HostSnapshot = { ...snap, pci: snap.pci.map((d, i) => (i === 2 ? { ...d, deviceName: name, vendorName: null, driver } : d)) };
        const inp = input(s);
        const html = renderReportHtml(inp);
        expect(embedded(html)).toEqual(JSON.parse(JSON.stringify(reportData(inp))));
        // Exactly the page's own two scripts; a name cannot open or close one.
        expect(html.match(/<script\b/g)!.length).toBe(2);
        expect(html.match(/<\/script>/g)!.length).toBe(2);
        expect(html.match(/<\/title>/g)!.length).toBe(html.match(/<title\b/g)!.length);
      }),
      { numRuns: 150 },
    );
  });
});

describe('vfiokit report command', () => {
  it('-o writes the page; --dry-run and --json write nothing; bad output paths are named', async () => {
    const { root } = host('desktop-nvidia');
    const dir = makeTempDir('vfiokit-report-');
    roots.push(dir);
    const file = path.join(dir, 'host.html');
    const dry = await runCli(['report', '--root', root, '-o', file, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain(`would write ${file}`);
    expect(fs.existsSync(file)).toBe(false);
    const r = await runCli(['report', '--root', root, '-o', file]);
    expect(r.code).toBe(0);
    const html = fs.readFileSync(file, 'utf8');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(embedded(html).devices.length).toBe(FIXTURE_HOSTS['desktop-nvidia'].pci.length);
    expect(fs.readdirSync(dir)).toEqual(['host.html']);
    const json = await runCli(['report', '--root', root, '--json']);
    expect(json.code).toBe(0);
    const data = JSON.parse(json.stdout) as ReportData;
    expect({ ...data, generatedAt: '' }).toEqual({ ...embedded(html), generatedAt: '' });
    // pci.ids class names (the fallback table here) reach the page.
    expect(data.devices.find((d) => d.address === '0000:01:00.0')!.className).toBe('VGA compatible controller');
    const bad = await runCli(['report', '--root', root, '-o', path.join(dir, 'missing', 'x.html')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`cannot write ${path.join(dir, 'missing', 'x.html')}: the directory does not exist`);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const both = await runCli(['report', '--root', root, '--json', '-o', file]);
    expect(both.code).toBe(2);
    expect(fs.readdirSync(dir)).toEqual(['host.html']);
  });

  it('--open hands the written page to xdg-open, or says where it is when there is none', async () => {
    const { root } = host('twin-gpus');
    const dir = makeTempDir('vfiokit-report-open-');
    roots.push(dir);
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    const seen = path.join(dir, 'opened');
    fs.writeFileSync(path.join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${seen}'\n`, { mode: 0o755 });
    const file = path.join(dir, 'r.html');
    const r = await runCli(['report', '--root', root, '-o', file, '--open'], { PATH: `${bin}:/usr/bin:/bin` });
    expect(r.code).toBe(0);
    await expect.poll(() => (fs.existsSync(seen) ? fs.readFileSync(seen, 'utf8') : ''), { timeout: 10_000 }).toBe(file);
    const none = await runCli(['report', '--root', root, '-o', file, '--open'], { PATH: path.join(dir, 'empty') });
    expect(none.code).toBe(0);
    expect(none.stderr).toContain(`xdg-open not found; open ${file} in a browser`);
  });
});
