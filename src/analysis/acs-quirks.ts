// Device-specific answers the kernel gives before (or instead of) looking at
// config space, replayed from data:
//
//   - ACS quirks: drivers/pci/quirks.c pci_dev_acs_enabled[], consulted by
//     pci_dev_specific_acs_enabled() at the top of pci_acs_enabled(). The table
//     below keeps the kernel's entries and order; the first quirk that answers
//     (returns >= 0 in the kernel) decides, the others fall through (-ENOTTY).
//   - DMA alias quirks: DECLARE_PCI_FIXUP_HEADER hooks in quirks.c that call
//     pci_add_dma_alias() (quirk_dma_func0_alias, quirk_dma_func1_alias,
//     quirk_fixed_dma_alias, quirk_mic_x200_dma_alias, quirk_pex_vca_alias) or
//     set PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT (quirk_bridge_cavm_thrx2_pcie_root).
//
// None of this is visible in sysfs, so it is matched on vendor/device IDs here.
// What a quirk decides from state vfiokit cannot see is an assumption, named
// in the answer: the Intel PCH quirks assume the kernel's enable step worked
// (it needs the chipset RCBA); the AMD southbridge quirk needs the ACPI IVRS
// table, i.e. an AMD IOMMU. Aliases added at run time from firmware or device
// registers (AMD IVRS alias entries, Switchtec NTB) are not knowable at all.

import { ACS, ACS_REQUIRED } from '../model/config-space.js';
import type { PciDevice } from '../model/snapshot.js';

export interface QuirkContext {
  /** The active IOMMU's vendor; the AMD southbridge quirk needs an AMD IOMMU (ACPI IVRS). */
  iommuVendor: 'intel' | 'amd' | null;
}

interface QuirkAnswer {
  isolated: boolean;
  quirk: string;
}

type QuirkKind =
  | 'amd-sb'
  | 'mf-endpoint'
  | 'rciep'
  | 'qcom-rp'
  | 'intel-pch'
  | 'intel-spt'
  | 'cavium'
  | 'xgene'
  | 'brcm'
  | 'loongson'
  | 'al'
  | 'zhaoxin-ports'
  | 'nxp-rp'
  | 'wangxun';

const ANY = -1;
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** pci_dev_acs_enabled[] in kernel order: [vendor, device or ANY, quirk]. */
const ACS_TABLE: [number, number, QuirkKind][] = [
  ...[0x4385, 0x439c, 0x4383, 0x439d, 0x4384, 0x4399].map((d): [number, number, QuirkKind] => [0x1002, d, 'amd-sb']),
  [0x1022, 0x780f, 'amd-sb'],
  [0x1022, 0x7809, 'amd-sb'],
  ...[0x0903, 0x0923, 0x0a03].map((d): [number, number, QuirkKind] => [0x1924, d, 'mf-endpoint']), // Solarflare
  ...[
    // 82598/82599/X520
    0x10c6, 0x10db, 0x10dd, 0x10e1, 0x10f1, 0x10f7, 0x10f8, 0x10f9, 0x10fa, 0x10fb, 0x10fc, 0x1507, 0x1514, 0x151c, 0x1529, 0x152a, 0x154d, 0x154f,
    0x1551, 0x1558,
    0x1509, 0x150e, 0x150f, 0x1510, 0x1511, 0x1516, 0x1527, // 82580
    0x10c9, 0x10e6, 0x10e7, 0x10e8, 0x150a, 0x150d, 0x1518, 0x1526, // 82576
    0x10a7, 0x10a9, 0x10d6, // 82575
    0x1521, 0x1522, 0x1523, 0x1524, // I350
    0x105e, 0x105f, 0x1060, 0x10d9, // 82571
    0x15b7, 0x15b8, // I219
  ].map((d): [number, number, QuirkKind] => [0x8086, d, 'mf-endpoint']),
  [0x8086, ANY, 'rciep'],
  ...[0x0400, 0x0401, 0x0115, 0x0111, 0x0120].map((d): [number, number, QuirkKind] => [0x17cb, d, 'qcom-rp']), // QCOM
  [0x1dbf, 0x0401, 'qcom-rp'], // HXT SD4800
  [0x8086, ANY, 'intel-pch'],
  [0x8086, ANY, 'intel-spt'],
  [0x19a2, 0x0710, 'mf-endpoint'], // Emulex BE3-R
  [0x10df, 0x0720, 'mf-endpoint'], // Emulex Skyhawk-R
  [0x177d, ANY, 'cavium'],
  ...[0xa026, 0xa059, 0xa060].map((d): [number, number, QuirkKind] => [0x177d, d, 'mf-endpoint']),
  [0x10e8, 0xe004, 'xgene'], // APM X-Gene
  ...range(0xe005, 0xe00c).map((d): [number, number, QuirkKind] => [0x1def, d, 'xgene']), // Ampere
  ...[0x16d7, 0x1750, 0x1751, 0x1752, 0x1760, 0x1761, 0x1762, 0x1763].map((d): [number, number, QuirkKind] => [0x14e4, d, 'mf-endpoint']),
  [0x14e4, 0xd714, 'brcm'],
  ...[0x3c09, 0x3c19, 0x3c29, 0x7a09, 0x7a19, 0x7a29, 0x7a39, 0x7a49, 0x7a59, 0x7a69].map((d): [number, number, QuirkKind] => [0x0014, d, 'loongson']),
  [0x1c36, 0x0031, 'al'], // Amazon Annapurna Labs
  ...[0x3038, 0x3104, 0x9083].map((d): [number, number, QuirkKind] => [0x1d17, d, 'mf-endpoint']), // Zhaoxin
  ...[
    0x8d81, 0x8da1, 0x8d83, 0x8d80, 0x8da0, 0x8d82, 0x8d90, 0x8db0, 0x8d92, 0x8d91, 0x8db1, 0x8d93, 0x8d89, 0x8da9, 0x8d8b, 0x8d88, 0x8da8, 0x8d8a,
    0x8d98, 0x8db8, 0x8d9a, 0x8d99, 0x8db9, 0x8d9b,
  ].map((d): [number, number, QuirkKind] => [0x1957, d, 'nxp-rp']),
  [0x1d17, ANY, 'zhaoxin-ports'],
  [0x8088, ANY, 'wangxun'],
];

/** pci_quirk_intel_pch_acs_ids[]: PCH root ports with ACS-like controls but no ACS capability. */
const INTEL_PCH_ROOT_PORTS = new Set([
  ...range(0x3b42, 0x3b51), // Ibex Peak
  ...range(0x1c10, 0x1c1f), // Cougar Point
  ...range(0x1e10, 0x1e1f), // Panther Point
  ...range(0x8c10, 0x8c1f), // Lynx Point-H
  ...range(0x9c10, 0x9c1b), // Lynx Point-LP
  ...range(0x9c90, 0x9c9b), // Wildcat Point
  0x1d10, 0x1d12, 0x1d14, 0x1d16, 0x1d18, 0x1d1a, 0x1d1c, 0x1d1e, // Patsburg (X79)
  ...range(0x8d10, 0x8d1e), // Wellsburg (X99)
  0x8c90, 0x8c92, 0x8c94, 0x8c96, 0x8c98, 0x8c9a, 0x8c9c, 0x8c9e, // 9 series
]);

/** pci_quirk_intel_spt_pch_acs_match(): ACS control register at +8 instead of +6. */
const INTEL_SPT_ROOT_PORTS = new Set([
  ...range(0xa110, 0xa11f), ...range(0xa167, 0xa16a), // Sunrise Point
  ...range(0xa290, 0xa29f), ...range(0xa2e7, 0xa2ee), // Union Point
  ...range(0x9d10, 0x9d1b), // 7th/8th gen mobile
]);

const WANGXUN_NICS = new Set([...range(0x0100, 0x010f), 0x1001, 0x2001, 0x5010, 0x5025, 0x5040, 0x5110, 0x5125, 0x5140]);
const ZHAOXIN_PORTS = new Set([...range(0x0710, 0x071e), 0x0721, ...range(0x0723, 0x0752)]);
const CAVIUM_ROOT_PORTS = new Set([...range(0xa000, 0xa7ff), 0xaf84, 0xb884]);

/** pci_acs_ctrl_enabled(REQ_ACS_FLAGS, provided): all required controls provided. */
const provides = (mask: number) => (ACS_REQUIRED & mask) === ACS_REQUIRED;
const SV_RR_CR_UF = ACS.SV | ACS.RR | ACS.CR | ACS.UF;

type Decider = (d: PciDevice, dev: number, ctx: QuirkContext) => QuirkAnswer | undefined;

const isPort = (d: PciDevice, ...types: string[]) => d.caps?.pcie === true && types.includes(d.caps.pcieType ?? '');

const DECIDERS: Record<QuirkKind, Decider> = {
  // pci_quirk_amd_sb_acs(): multifunction SB devices on the root bus with an
  // AMD IOMMU (IVRS) redirect all peer traffic: RR|CR provided, and SV/UF are
  // filtered out for multifunction devices, so the required set is met.
  'amd-sb': (d, _dev, ctx) => {
    if (!d.multifunction || d.parent !== null || ctx.iommuVendor !== 'amd') return undefined;
    const flags = ACS_REQUIRED & (ACS.RR | ACS.CR | ACS.EC | ACS.DT);
    return { isolated: (flags & (ACS.RR | ACS.CR)) === flags, quirk: 'AMD southbridge ACS quirk (pci_quirk_amd_sb_acs)' };
  },
  // pci_quirk_mf_endpoint_acs(): verified by the vendor not to do peer-to-peer.
  'mf-endpoint': () => ({ isolated: provides(SV_RR_CR_UF | ACS.TB | ACS.DT), quirk: 'multifunction endpoint ACS quirk (pci_quirk_mf_endpoint_acs)' }),
  // pci_quirk_rciep_acs(): Intel RC integrated endpoints allow p2p only on translated addresses.
  rciep: (d) => (isPort(d, 'rc-integrated-endpoint') ? { isolated: provides(SV_RR_CR_UF), quirk: 'Intel RC integrated endpoint ACS quirk (pci_quirk_rciep_acs)' } : undefined),
  'qcom-rp': () => ({ isolated: provides(SV_RR_CR_UF), quirk: 'QCOM/HXT root port ACS quirk (pci_quirk_qcom_rp_acs)' }),
  // pci_quirk_intel_pch_acs(): enabled when pci_quirk_enable_intel_pch_acs()
  // succeeded at boot (it needs the chipset RCBA; assumed, as on working systems).
  'intel-pch': (d, dev) =>
    isPort(d, 'root-port') && INTEL_PCH_ROOT_PORTS.has(dev)
      ? { isolated: provides(SV_RR_CR_UF), quirk: 'Intel PCH root port ACS quirk (pci_quirk_intel_pch_acs; assumes the boot-time enable step succeeded)' }
      : undefined,
  // pci_quirk_intel_spt_pch_acs(): the real control register is the dword at
  // ACS+8, which the kernel sets to the capability's SV|RR|CR|UF at boot
  // (pci_quirk_enable_intel_spt_pch_acs), so an ACS capability means isolated.
  'intel-spt': (d, dev) => {
    if (!isPort(d, 'root-port') || !INTEL_SPT_ROOT_PORTS.has(dev) || !d.caps?.acs) return undefined;
    return { isolated: true, quirk: 'Intel Sunrise/Union Point ACS quirk (pci_quirk_intel_spt_pch_acs; control register at ACS+8, enabled at boot)' };
  },
  cavium: (d, dev) => (isPort(d, 'root-port') && CAVIUM_ROOT_PORTS.has(dev) ? { isolated: provides(SV_RR_CR_UF), quirk: 'Cavium root port ACS quirk (pci_quirk_cavium_acs)' } : undefined),
  xgene: () => ({ isolated: provides(SV_RR_CR_UF), quirk: 'X-Gene/Ampere root port ACS quirk (pci_quirk_xgene_acs)' }),
  brcm: () => ({ isolated: provides(SV_RR_CR_UF), quirk: 'Broadcom iProc root port ACS quirk (pci_quirk_brcm_acs)' }),
  loongson: () => ({ isolated: provides(SV_RR_CR_UF), quirk: 'Loongson root port ACS quirk (pci_quirk_loongson_acs)' }),
  al: (d) => (isPort(d, 'root-port') ? { isolated: (ACS_REQUIRED & ~SV_RR_CR_UF) === 0, quirk: 'Amazon Annapurna Labs root port ACS quirk (pci_quirk_al_acs)' } : undefined),
  // pci_quirk_zhaoxin_pcie_ports_acs(): ports outside the listed IDs answer "not isolated".
  'zhaoxin-ports': (d, dev) => {
    if (!isPort(d, 'root-port', 'downstream-port')) return undefined;
    return { isolated: ZHAOXIN_PORTS.has(dev) && provides(SV_RR_CR_UF), quirk: 'Zhaoxin port ACS quirk (pci_quirk_zhaoxin_pcie_ports_acs)' };
  },
  'nxp-rp': () => ({ isolated: provides(SV_RR_CR_UF), quirk: 'NXP root port ACS quirk (pci_quirk_nxp_rp_acs)' }),
  // pci_quirk_wangxun_nic_acs(): any other Wangxun device answers "not isolated".
  wangxun: (_d, dev) => ({ isolated: WANGXUN_NICS.has(dev) && provides(SV_RR_CR_UF), quirk: 'Wangxun NIC ACS quirk (pci_quirk_wangxun_nic_acs)' }),
};

/** pci_dev_specific_acs_enabled(): the first table entry that answers decides; undefined = no quirk applies. */
export function acsQuirk(d: PciDevice, ctx: QuirkContext = { iommuVendor: null }): QuirkAnswer | undefined {
  const vendor = parseInt(d.vendor, 16);
  const dev = parseInt(d.device, 16);
  for (const [v, id, kind] of ACS_TABLE) {
    if (v !== vendor || (id !== ANY && id !== dev)) continue;
    const answer = DECIDERS[kind](d, dev, ctx);
    if (answer) return answer;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// DMA alias quirks (pci_add_dma_alias callers in drivers/pci/quirks.c)

type AliasRule =
  | { kind: 'func0' } // quirk_dma_func0_alias: functions != 0 also use function 0's requester ID
  | { kind: 'func1' } // quirk_dma_func1_alias: functions != 1 also use function 1's
  | { kind: 'fixed'; subsys: string; devfns: number[] } // quirk_fixed_dma_alias (fixed_dma_alias_tbl)
  | { kind: 'devfns'; devfns: number[] }; // quirk_mic_x200_dma_alias, quirk_pex_vca_alias

const devfn = (slot: number, fn: number) => (slot << 3) | fn;

const ALIAS_QUIRK_NAMES: Record<AliasRule['kind'], string> = {
  func0: 'quirk_dma_func0_alias',
  func1: 'quirk_dma_func1_alias',
  fixed: 'quirk_fixed_dma_alias',
  devfns: 'quirk_mic_x200_dma_alias / quirk_pex_vca_alias',
};

const ALIAS_TABLE: [number, number, AliasRule][] = [
  [0x1180, 0xe832, { kind: 'func0' }], // Ricoh
  [0x1180, 0xe476, { kind: 'func0' }],
  [0x6766, 0x3d40, { kind: 'func0' }], // Glenfly
  [0x6766, 0x3d41, { kind: 'func0' }],
  ...[0x9120, 0x9123, 0x9125, 0x9128, 0x9130, 0x9170, 0x9172, 0x917a, 0x9182, 0x9183, 0x91a0, 0x9215, 0x9220, 0x9230, 0x9235].map(
    (d): [number, number, AliasRule] => [0x1b4b, d, { kind: 'func1' }], // Marvell 88SE9xxx SATA
  ),
  [0x1103, 0x0642, { kind: 'func1' }], // HighPoint (TTI)
  [0x1103, 0x0645, { kind: 'func1' }],
  [0x197b, 0x2392, { kind: 'func1' }], // JMicron JMB388 ESD
  [0x1c28, 0x0122, { kind: 'func1' }], // Lite-On Plextor M6E
  [0x9005, 0x0285, { kind: 'fixed', subsys: '9005:02bb', devfns: [devfn(1, 0)] }], // Adaptec 3405
  [0x9005, 0x0285, { kind: 'fixed', subsys: '9005:02bc', devfns: [devfn(1, 0)] }], // Adaptec 3805
  [0x8086, 0x2260, { kind: 'devfns', devfns: [devfn(0x10, 0), devfn(0x11, 0), devfn(0x12, 3)] }], // MIC x200 NTB
  [0x8086, 0x2264, { kind: 'devfns', devfns: [devfn(0x10, 0), devfn(0x11, 0), devfn(0x12, 3)] }],
  ...[0x2954, 0x2955, 0x2956, 0x2958, 0x2959, 0x295a].map((d): [number, number, AliasRule] => [
    0x8086,
    d,
    { kind: 'devfns', devfns: range(0, 0x1f).flatMap((s) => range(0, 4).map((f) => devfn(s, f))) }, // Intel VCA
  ]),
];

/** Bridges where translation happens (PCI_DEV_FLAGS_BRIDGE_XLATE_ROOT): the alias walk stops there. */
const XLATE_ROOT_BRIDGES: [number, number][] = [
  [0x14e4, 0x9000], // Broadcom Vulcan / Cavium ThunderX2
  [0x14e4, 0x9084],
];

/** The devfns (on the device's own bus) its dma_alias_mask holds, with the quirk's name. */
export function dmaAliases(d: PciDevice): { devfns: number[]; quirk: string } | null {
  const vendor = parseInt(d.vendor, 16);
  const dev = parseInt(d.device, 16);
  const fn = parseInt(d.address.slice(-1), 10);
  const slot = parseInt(d.address.slice(-4, -2), 16);
  const out = new Set<number>();
  let name = '';
  for (const [v, id, rule] of ALIAS_TABLE) {
    if (v !== vendor || id !== dev) continue;
    let add: number[] = [];
    if (rule.kind === 'func0' && fn !== 0) add = [devfn(slot, 0)];
    else if (rule.kind === 'func1' && fn !== 1) add = [devfn(slot, 1)];
    else if (rule.kind === 'fixed' && `${d.subsystemVendor}:${d.subsystemDevice}` === rule.subsys) add = rule.devfns;
    else if (rule.kind === 'devfns') add = rule.devfns;
    for (const x of add) out.add(x);
    if (add.length) name = ALIAS_QUIRK_NAMES[rule.kind];
  }
  return out.size ? { devfns: [...out], quirk: name } : null;
}

export function isXlateRoot(d: PciDevice): boolean {
  const vendor = parseInt(d.vendor, 16);
  const dev = parseInt(d.device, 16);
  return XLATE_ROOT_BRIDGES.some(([v, id]) => v === vendor && id === dev);
}
