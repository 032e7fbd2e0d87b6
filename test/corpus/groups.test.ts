// The group predictor against real machines: hosts rebuilt from lspci dumps
// (test/fixtures/corpus-hosts, derived from the shared corpus), read back
// through inspect() like a live host, and compared with the groups the
// kernel actually made on that machine.

import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { inspect } from '../../src/host/inspect.js';
import type { HostSnapshot } from '../../src/model/snapshot.js';
import { analyzeGroups, type GroupsReport } from '../../src/analysis/groups.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { FIXTURE_DUMPS, loadFixture, type FixtureName } from './fixtures.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const cache = new Map<FixtureName, { snap: HostSnapshot; report: GroupsReport; kernel: Map<number, string[]> }>();
function load(name: FixtureName) {
  let hit = cache.get(name);
  if (!hit) {
    const fx = loadFixture(name);
    const dir = buildFakeHost(fx.host);
    dirs.push(dir);
    const snap = inspect(dir, { names: false });
    const report = analyzeGroups(snap);
    // The kernel's groups, straight from the fixture data (never from vfiokit).
    const kernel = new Map<number, string[]>();
    for (const d of fx.host.pci) if (d.group !== undefined) kernel.set(d.group, [...(kernel.get(d.group) ?? []), d.addr]);
    hit = { snap, report, kernel };
    cache.set(name, hit);
  }
  return hit;
}
const group = (name: FixtureName, id: number) => {
  const g = load(name).report.groups.find((x) => x.id === id);
  if (!g) throw new Error(`${name}: no group ${id}`);
  return g;
};

describe('corpus hosts: what the fixtures are', () => {
  for (const name of FIXTURE_DUMPS) {
    it(`${name}: inspect reads back the recorded groups exactly`, () => {
      const fx = loadFixture(name);
      const { snap, kernel } = load(name);
      expect(fx.source).toBe(`A_lspci/${name}.txt`);
      expect(snap.pci.length).toBe(fx.host.pci.length);
      const read = new Map(snap.iommu.groups.map((g) => [g.id, [...g.devices].sort()]));
      expect(read).toEqual(new Map([...kernel].map(([id, devs]) => [id, [...devs].sort()])));
      expect(snap.iommu.active).toBe(fx.capture.groups);
    });
  }
});

// Dumps with groups and full capability registers: the replay must reproduce the kernel.
const FULL: FixtureName[] = FIXTURE_DUMPS.filter((n) => {
  const c = loadFixture(n).capture;
  return c.groups && c.capabilities === 'full';
});

describe('group prediction matches the kernel on full captures', () => {
  it('the corpus has full captures to check (linuxhw_1, linuxhw_3)', () => {
    expect(FULL).toEqual(['linuxhw_1', 'linuxhw_3']);
  });
  for (const name of FULL) {
    it(`${name}: predicted partition equals the kernel's`, () => {
      const { report, kernel } = load(name);
      expect(report.prediction.available).toBe(true);
      expect(report.prediction.differences).toEqual([]);
      expect(report.prediction.matchesKernel).toBe(true);
      // The partition is compared, not only the flag.
      const norm = (gs: string[][]) => gs.map((g) => [...g].sort().join(' ')).sort();
      expect(norm(report.prediction.groups)).toEqual(norm([...kernel.values()]));
    });
  }
});

describe('explanations on linuxhw_1 (X570 AORUS ELITE WIFI)', () => {
  it('the RTX 2070 with its audio, USB and UCSI functions is one group of its own functions', () => {
    const g = group('linuxhw_1', 29);
    expect(g.devices).toEqual(['0000:0c:00.0', '0000:0c:00.1', '0000:0c:00.2', '0000:0c:00.3']);
    expect(g.verdict).toBe('gpu-functions-only');
    expect(g.sharesWith).toEqual([]);
  });
  it('chipset downstream ports without ACS take the devices below them into their group', () => {
    const g21 = group('linuxhw_1', 21);
    expect(g21.devices).toEqual(['0000:03:08.0', '0000:09:00.0', '0000:09:00.1', '0000:09:00.3']);
    expect(g21.verdict).toBe('device-functions-only');
    expect(g21.reasons).toContain('switch downstream port 03:08.0 has no ACS');
    const g22 = group('linuxhw_1', 22);
    expect(g22.devices).toEqual(['0000:03:09.0', '0000:0a:00.0']);
    expect(g22.verdict).toBe('isolated');
    expect(g22.reasons).toContain('switch downstream port 03:09.0 has no ACS');
  });
  it('downstream ports with ACS isolate what is below them', () => {
    for (const [port, dev] of [
      [16, 24],
      [17, 25],
      [20, 28],
    ]) {
      expect(group('linuxhw_1', port).devices).toHaveLength(1);
      expect(group('linuxhw_1', dev).devices).toHaveLength(1);
    }
  });
  it('functions whose ACS capability implements nothing count as isolated (features hard-wired on)', () => {
    // 0e:00.x: an ACS capability with every bit clear in both registers.
    for (const id of [31, 32, 33, 34]) expect(group('linuxhw_1', id).devices).toHaveLength(1);
  });
  it('FCH SMBus + LPC and the Data Fabric functions are conventional multifunction devices sharing a group', () => {
    expect(group('linuxhw_1', 12).devices).toEqual(['0000:00:14.0', '0000:00:14.3']);
    expect(group('linuxhw_1', 12).reasons).toEqual([
      'the functions of 00:14 are not isolated from each other (00:14.3 is a conventional PCI device, which cannot isolate peers)',
    ]);
    expect(group('linuxhw_1', 13).devices).toHaveLength(8);
  });
  it('functions the IOMMU does not cover (root complex, the IOMMU itself) have no group and are not predicted', () => {
    const { snap, report } = load('linuxhw_1');
    const none = snap.pci.filter((d) => d.iommuGroup === null).map((d) => d.address);
    expect(none).toEqual(['0000:00:00.0', '0000:00:00.2']);
    expect(report.prediction.groups.flat()).not.toContain('0000:00:00.0');
  });
});

describe('explanations on linuxhw_3 (Legion 5 15ACH6H)', () => {
  it('the RTX 3060 Mobile and its HDMI audio are alone; the GPP root port with ACS has its own group', () => {
    const g = group('linuxhw_3', 11);
    expect(g.devices).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(g.verdict).toBe('gpu-functions-only');
    expect(group('linuxhw_3', 1).devices).toEqual(['0000:00:01.1']);
  });
  it('FCH SMBus and LPC share group 9', () => {
    const g = group('linuxhw_3', 9);
    expect(g.devices).toEqual(['0000:00:14.0', '0000:00:14.3']);
    expect(g.verdict).toBe('device-functions-only');
  });
});

describe('captures without root: prediction unavailable, explained from topology', () => {
  for (const name of ['linuxhw_4', 'linuxhw_5'] as const) {
    it(`${name}: the prediction is reported unavailable with the reason`, () => {
      const { report, snap } = load(name);
      expect(snap.configSpaceReadable).toBe(false);
      expect(report.prediction.available).toBe(false);
      expect(report.prediction.matchesKernel).toBeNull();
      expect(report.prediction.reason).toMatch(/not readable; run as root/);
      expect(snap.warnings.map((w) => w.code)).toContain('W_CONFIG_PARTIAL');
    });
  }
  it('linuxhw_5: the Navi 31 GPU shares group 1 only with its PEG root port and the card-internal switch', () => {
    const g = group('linuxhw_5', 1);
    expect(g.devices).toEqual(['0000:00:01.0', '0000:01:00.0', '0000:02:00.0', '0000:03:00.0', '0000:03:00.1']);
    expect(g.verdict).toBe('gpu-functions-only');
    expect(g.explanation).toContain('bridges stay on the host');
  });
  it('linuxhw_4: the B450 chipset group lumps unrelated endpoints; the explanation says ACS is unknown, not guessed', () => {
    const g = group('linuxhw_4', 15);
    expect(g.devices.length).toBe(8);
    expect(g.verdict).toBe('shares');
    expect(g.reasons.length).toBeGreaterThan(0);
    for (const r of g.reasons) expect(r).toMatch(/ACS of \S+ is unknown \(config space not readable; run as root\)/);
    // The GPU on CPU lanes is alone.
    expect(group('linuxhw_4', 16).verdict).toBe('gpu-functions-only');
  });
});

describe('a capture with the IOMMU off', () => {
  it('linuxhw_2: no groups, prediction unavailable because there is nothing to compare with', () => {
    const { report, snap } = load('linuxhw_2');
    expect(snap.iommu.active).toBe(false);
    expect(report.groups).toEqual([]);
    expect(report.prediction.available).toBe(false);
    expect(report.prediction.reason).toMatch(/IOMMU is not active/);
  });
});
