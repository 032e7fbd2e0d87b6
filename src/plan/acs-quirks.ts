// Device-specific ACS answers the kernel gives before looking at config space
// (pci_dev_acs_enabled[] in drivers/pci/quirks.c). Quirk state is invisible in
// sysfs, so the predictor embeds the entries that matter on common hardware.
// Returns true/false when a quirk decides, undefined when none applies.

import type { PciDevice } from '../model/snapshot.js';

const range = (lo: number, hi: number, step = 1) => {
  const out: number[] = [];
  for (let i = lo; i <= hi; i += step) out.push(i);
  return out;
};

/** Intel PCH root ports whose ACS the kernel enables through a chipset register (pci_quirk_intel_pch_acs). */
const INTEL_PCH_ROOT_PORTS = new Set([
  ...range(0x3b42, 0x3b51), // Ibex Peak
  ...range(0x1c10, 0x1c1f), // Cougar Point
  ...range(0x1e10, 0x1e1f), // Panther Point
  ...range(0x8c10, 0x8c1f), // Lynx Point-H
  ...range(0x9c10, 0x9c1f), // Lynx Point-LP
  ...range(0x9c90, 0x9c9f), // Wildcat Point
  ...range(0x1d10, 0x1d1e, 2), // Patsburg (X79)
  ...range(0x8d10, 0x8d1e, 2), // Wellsburg (X99)
  ...range(0x8c90, 0x8c9e, 2), // 9-series
]);

/** Sunrise/Union Point and 7th/8th-gen mobile root ports with a non-standard ACS control register (pci_quirk_intel_spt_pch_acs). */
const INTEL_SPT_ROOT_PORTS = new Set([
  ...range(0xa110, 0xa11f),
  ...range(0xa167, 0xa16a),
  ...range(0xa290, 0xa29f),
  ...range(0xa2e7, 0xa2ee),
  ...range(0x9d10, 0x9d1b),
]);

/** Multifunction endpoints known not to do peer-to-peer (pci_quirk_mf_endpoint_acs), by vendor. */
const MF_ENDPOINTS: Record<string, Set<number>> = {
  '8086': new Set([
    0x10a7, 0x10a9, 0x10d6, // 82575
    0x10c9, 0x10e6, 0x10e7, 0x10e8, 0x150a, 0x150d, 0x1518, 0x1526, // 82576
    0x10a6, 0x10c6, 0x10c7, 0x10c8, 0x10db, 0x10dd, 0x10e1, 0x10ec, 0x10f1, 0x10f4, 0x1508, 0x150b, // 82598
    0x10f7, 0x10f8, 0x10f9, 0x10fb, 0x10fc, 0x1507, 0x1514, 0x151c, 0x1529, 0x152a, 0x154d, 0x154f, 0x1551, 0x1558, // 82599
    0x150e, 0x150f, 0x1510, 0x1511, 0x1516, 0x1527, // 82580
    0x1521, 0x1522, 0x1523, 0x1524, // I350
    0x1528, // X540
    0x15ab, 0x15ac, 0x15ad, 0x15ae, 0x1560, 0x1563, // X550
  ]),
  '1924': new Set([0x0903, 0x0923, 0x0a03, 0x0b03]), // Solarflare
  '19a2': new Set([0x0710]), // Emulex BE3-R
  '10df': new Set([0x0720]), // Emulex Skyhawk-R
};

export interface QuirkAnswer {
  isolated: boolean;
  quirk: string;
}

export function acsQuirk(d: PciDevice): QuirkAnswer | undefined {
  const dev = parseInt(d.device, 16);
  const type = d.caps?.pcieType ?? null;
  if (d.vendor === '8086') {
    if (type === 'root-port' && INTEL_PCH_ROOT_PORTS.has(dev)) return { isolated: true, quirk: 'Intel PCH root port ACS quirk' };
    if (type === 'root-port' && INTEL_SPT_ROOT_PORTS.has(dev)) return { isolated: d.caps?.acs != null, quirk: 'Intel Sunrise/Union Point ACS quirk' };
    if (type === 'rc-integrated-endpoint') return { isolated: true, quirk: 'Intel RC integrated endpoint quirk' };
  }
  if (MF_ENDPOINTS[d.vendor]?.has(dev)) return { isolated: true, quirk: 'multifunction endpoint ACS quirk' };
  if ((d.vendor === '1002' && [0x4385, 0x439c, 0x4383, 0x439d, 0x4384, 0x4399].includes(dev)) || (d.vendor === '1022' && [0x780f, 0x7809].includes(dev))) {
    return { isolated: false, quirk: 'AMD southbridge ACS quirk (redirect only)' };
  }
  return undefined;
}
