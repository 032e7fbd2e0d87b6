// Kernel rules the replay must follow beyond what linuxhw_1/linuxhw_3
// exercise: device quirks from drivers/pci/quirks.c and the probe-coverage
// rule of pci_device_group(). Kernel groups are data: from a real listing
// where one exists (B_groups/skeen_1), otherwise what the cited kernel
// function does for that topology.

import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { inspect } from '../../src/host/inspect.js';
import type { PciDevice } from '../../src/model/snapshot.js';
import { acsQuirk, dmaAliases } from '../../src/analysis/acs-quirks.js';
import { analyzeGroups } from '../../src/analysis/groups.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function analyze(host: FakeHost) {
  const dir = buildFakeHost(host);
  dirs.push(dir);
  return analyzeGroups(inspect(dir, { names: false }));
}

function dev(p: Partial<PciDevice> & { address: string; vendor: string; device: string }): PciDevice {
  return {
    subsystemVendor: null,
    subsystemDevice: null,
    class: '020000',
    revision: null,
    vendorName: null,
    deviceName: null,
    driver: null,
    driverOverride: null,
    iommuGroup: null,
    bootVga: false,
    numaNode: null,
    localCpus: null,
    resetMethods: null,
    hasRom: false,
    link: null,
    sriov: null,
    physfn: null,
    parent: null,
    upstream: [],
    hostBridge: 'pci0000:00',
    isBridge: false,
    secondaryBus: null,
    multifunction: false,
    caps: { pcie: true, pcieType: 'endpoint', flr: false, acs: null },
    ...p,
  };
}

describe('AMD southbridge ACS quirk (pci_quirk_amd_sb_acs) against B_groups/skeen_1 (990FX/SB950)', () => {
  // The root-bus southbridge functions of the listing with the groups it
  // records. The SB7x0-SB9x0 functions are internal conventional PCI devices
  // (no PCIe capability): without the quirk, every multifunction slot would be
  // one group. The listing shows 00:14.x split one per group (quirked IDs
  // 4385/4383/439d/4384/4399) while 00:12.x, 00:13.x, 00:16.x (4397/4396, not
  // quirked) stay together.
  const sb = (addr: string, id: string, cls: number, group: number) => ({ addr, id, class: cls, pcie: null, group });
  const host: FakeHost = {
    iommu: 'amd',
    cpu: { vendor: 'amd' },
    pci: [
      sb('00:11.0', '1002:4391', 0x010601, 5),
      sb('00:12.0', '1002:4397', 0x0c0310, 6),
      sb('00:12.2', '1002:4396', 0x0c0320, 6),
      sb('00:13.0', '1002:4397', 0x0c0310, 7),
      sb('00:13.2', '1002:4396', 0x0c0320, 7),
      sb('00:14.0', '1002:4385', 0x0c0500, 8),
      sb('00:14.2', '1002:4383', 0x040300, 9),
      sb('00:14.3', '1002:439d', 0x060100, 10),
      sb('00:14.4', '1002:4384', 0x060401, 11),
      sb('00:14.5', '1002:4399', 0x0c0310, 12),
      sb('00:16.0', '1002:4397', 0x0c0310, 14),
      sb('00:16.2', '1002:4396', 0x0c0320, 14),
    ],
  };
  it('predicts the recorded partition', () => {
    const r = analyze(host);
    expect(r.prediction.differences).toEqual([]);
    expect(r.prediction.matchesKernel).toBe(true);
  });
  it('explains the SB functions that stay together, and the quirk decides only with an AMD IOMMU on the root bus', () => {
    const r = analyze(host);
    expect(r.groups.find((g) => g.id === 6)!.reasons.join(' ')).toMatch(/functions of 00:12 are not isolated/);
    const smbus = dev({ address: '0000:00:14.0', vendor: '1002', device: '4385', multifunction: true, caps: { pcie: false, pcieType: null, flr: false, acs: null } });
    expect(acsQuirk(smbus, { iommuVendor: 'amd' })).toMatchObject({ isolated: true });
    expect(acsQuirk(smbus, { iommuVendor: 'intel' })).toBeUndefined();
    expect(acsQuirk({ ...smbus, multifunction: false }, { iommuVendor: 'amd' })).toBeUndefined();
    expect(acsQuirk({ ...smbus, parent: '0000:00:04.0' }, { iommuVendor: 'amd' })).toBeUndefined();
  });
});

describe('ACS quirk table follows pci_dev_acs_enabled[]', () => {
  const rp = (vendor: string, device: string, acs: { cap: number; ctrl: number } | null = null) =>
    dev({ address: '0000:00:1c.0', vendor, device, class: '060400', isBridge: true, caps: { pcie: true, pcieType: 'root-port', flr: false, acs } });
  it('Intel PCH root ports: exactly the kernel list (Wellsburg 8d10-8d1e all, Lynx Point-LP up to 9c1b)', () => {
    expect(acsQuirk(rp('8086', '8d11'))).toMatchObject({ isolated: true });
    expect(acsQuirk(rp('8086', '8d1e'))).toMatchObject({ isolated: true });
    expect(acsQuirk(rp('8086', '9c1b'))).toMatchObject({ isolated: true });
    expect(acsQuirk(rp('8086', '9c1c'))).toBeUndefined();
    expect(acsQuirk(rp('8086', '1d11'))).toBeUndefined(); // Patsburg: even IDs only
  });
  it('PCH quirks apply to root ports only; Sunrise Point needs its (misplaced) ACS capability', () => {
    expect(acsQuirk({ ...rp('8086', '8c10'), caps: { pcie: true, pcieType: 'downstream-port', flr: false, acs: null } })).toBeUndefined();
    expect(acsQuirk(rp('8086', 'a110'))).toBeUndefined();
    expect(acsQuirk(rp('8086', 'a110', { cap: 0x1f, ctrl: 0 }))).toMatchObject({ isolated: true });
  });
  it('multifunction endpoint quirk: I219 15b7/15b8 are listed, X540 1528 is not', () => {
    const nic = (device: string) => dev({ address: '0000:00:1f.6', vendor: '8086', device, multifunction: true });
    expect(acsQuirk(nic('15b8'))).toMatchObject({ isolated: true });
    expect(acsQuirk(nic('1528'))).toBeUndefined();
  });
  it('Intel RC integrated endpoints are isolated; other Intel endpoints fall through', () => {
    expect(acsQuirk(dev({ address: '0000:00:02.0', vendor: '8086', device: '3e92', caps: { pcie: true, pcieType: 'rc-integrated-endpoint', flr: false, acs: null } }))).toMatchObject({ isolated: true });
    expect(acsQuirk(dev({ address: '0000:00:14.0', vendor: '8086', device: 'a36d', caps: { pcie: false, pcieType: null, flr: false, acs: null } }))).toBeUndefined();
  });
  it('Wangxun and Zhaoxin quirks answer "not isolated" for IDs outside their lists', () => {
    expect(acsQuirk(dev({ address: '0000:01:00.0', vendor: '8088', device: '1001' }))).toMatchObject({ isolated: true });
    expect(acsQuirk(dev({ address: '0000:01:00.0', vendor: '8088', device: '0001' }))).toMatchObject({ isolated: false });
    const zx = (device: string) => ({ ...rp('1d17', device, { cap: 0x1f, ctrl: 0x1f }) });
    expect(acsQuirk(zx('0720'))).toMatchObject({ isolated: false });
    expect(acsQuirk(zx('0721'))).toMatchObject({ isolated: true });
  });
});

describe('DMA alias quirks (step C, get_pci_alias_group)', () => {
  it('the alias masks follow quirk_dma_func0_alias / quirk_dma_func1_alias', () => {
    expect(dmaAliases(dev({ address: '0000:05:00.3', vendor: '1180', device: 'e832' }))).toEqual({ devfns: [0], quirk: 'quirk_dma_func0_alias' });
    expect(dmaAliases(dev({ address: '0000:05:00.0', vendor: '1180', device: 'e832' }))).toBeNull();
    expect(dmaAliases(dev({ address: '0000:03:00.0', vendor: '1b4b', device: '9230' }))).toEqual({ devfns: [1], quirk: 'quirk_dma_func1_alias' });
  });
  it('functions that each enable ACS still share a group when one DMAs with the other\'s requester ID', () => {
    // Ricoh card reader 05:00.0 + FireWire 05:00.3 (e832 uses function 0's ID),
    // both with ACS enabled so step D alone would split them; behind a root
    // port with ACS. pci_device_group() for 05:00.3: get_pci_alias_group finds
    // 05:00.0 through pci_devs_are_dma_aliases() and returns its group.
    const r = analyze({
      iommu: 'intel',
      pci: [
        { addr: '00:1c.0', id: '8086:a110', class: 0x060400, pcie: 'root-port', acs: 'full', group: 0 },
        { addr: '05:00.0', id: '1180:e822', class: 0x080500, parent: '00:1c.0', acs: 'full', group: 1 },
        { addr: '05:00.3', id: '1180:e832', class: 0x0c0010, parent: '00:1c.0', acs: 'full', group: 1 },
      ],
    });
    expect(r.prediction.differences).toEqual([]);
    expect(r.prediction.matchesKernel).toBe(true);
    expect(r.groups.find((g) => g.id === 1)!.reasons.join(' ')).toMatch(/05:00.3 uses another function's requester ID for DMA \(kernel DMA alias quirk quirk_dma_func0_alias\)/);
  });
});

describe('only functions the IOMMU probes hold groups', () => {
  it('devices below a bridge the IOMMU does not cover get separate groups, as pci_device_group() finds no group on the bridge', () => {
    // 00:14.4 (a conventional bridge, no group) with two conventional devices
    // below: each walks up to 00:14.4 (step A), finds no group there, and
    // allocates its own (step E).
    const r = analyze({
      iommu: 'amd',
      cpu: { vendor: 'amd' },
      pci: [
        { addr: '00:14.4', id: '1022:780f', class: 0x060401, pcie: null },
        { addr: '01:05.0', id: '1106:3044', class: 0x0c0010, parent: '00:14.4', pcie: null, group: 0 },
        { addr: '01:06.0', id: '1106:3044', class: 0x0c0010, parent: '00:14.4', pcie: null, group: 1 },
      ],
    });
    expect(r.prediction.groups).toEqual([['0000:01:05.0'], ['0000:01:06.0']]);
    expect(r.prediction.matchesKernel).toBe(true);
  });
});

describe('the same Haswell machine with and without the ACS override (B_groups/swannmr_2, swannmr_1)', () => {
  // PEG root ports 00:01.0 (x16) and 00:01.1 (x8) are one multifunction
  // device without ACS. The listings do not show the tree; the GPU on bus 01
  // below the x16 port and the Wi-Fi card on bus 02 below the x8 port is the
  // usual numbering and is assumed here.
  const peg = (groups: [number, number, number, number]): FakeHost['pci'] => [
    { addr: '00:01.0', id: '8086:0c01', class: 0x060400, pcie: 'root-port', group: groups[0] },
    { addr: '00:01.1', id: '8086:0c05', class: 0x060400, pcie: 'root-port', group: groups[1] },
    { addr: '01:00.0', id: '1002:6811', class: 0x030000, parent: '00:01.0', pcie: 'legacy-endpoint', group: groups[2] },
    { addr: '01:00.1', id: '1002:aab0', class: 0x040300, parent: '00:01.0', group: groups[2] },
    { addr: '02:00.0', id: '168c:002e', class: 0x028000, parent: '00:01.1', group: groups[3] },
  ];
  it('stock 4.14 LTS kernel (swannmr_2): one group for both PEG ports, the GPU and the Wi-Fi card, as predicted', () => {
    const r = analyze({ iommu: 'intel', pci: peg([1, 1, 1, 1]), cmdline: 'BOOT_IMAGE=/vmlinuz-linux-lts root=/dev/sda2 rw intel_iommu=on' });
    expect(r.prediction.matchesKernel).toBe(true);
    const g = r.groups.find((x) => x.id === 1)!;
    expect(g.verdict).toBe('shares');
    expect(g.sharesWith).toEqual(['0000:02:00.0']);
    expect(g.explanation).toMatch(/functions of 00:01 are not isolated from each other \(root port 00:01\.1 has no ACS\)/);
    expect(g.reasons).toContain('root port 00:01.0 has no ACS');
  });
  it('override kernel (swannmr_1): split groups; the mismatch is reported and blamed on the override on the command line', () => {
    // The listing says the kernel had the ACS override; the exact option is
    // not recorded, `downstream,multifunction` is assumed.
    const r = analyze({ iommu: 'intel', pci: peg([1, 2, 16, 17]), cmdline: 'BOOT_IMAGE=/vmlinuz-linux-vfio root=/dev/sda2 rw intel_iommu=on pcie_acs_override=downstream,multifunction' });
    expect(r.prediction.available).toBe(true);
    expect(r.prediction.matchesKernel).toBe(false);
    expect(r.prediction.differences.length).toBeGreaterThan(0);
    expect(r.prediction.reason).toMatch(/pcie_acs_override=downstream,multifunction: the out-of-tree ACS override patch/);
  });
  it('without anything on the command line the mismatch reason lists what sysfs cannot show', () => {
    const r = analyze({ iommu: 'intel', pci: peg([1, 2, 16, 17]) });
    expect(r.prediction.matchesKernel).toBe(false);
    expect(r.prediction.reason).toMatch(/IVRS alias entries/);
  });
});
