// Synthetic hosts for the benchmarks: root ports with ACS, each with two
// multifunction endpoints (a GPU function and seven audio functions) behind it.

import type { FakePci } from '../test/helpers/fake-host.js';

export function synthetic(n: number): FakePci[] {
  const pci: FakePci[] = [];
  let group = 0;
  const hex2 = (x: number) => x.toString(16).padStart(2, '0');
  for (let port = 0; pci.length < n; port++) {
    const slot = 1 + Math.floor(port / 8);
    const fn = port % 8;
    const portAddr = `00:${hex2(slot)}.${fn}`;
    const bus = port + 1;
    pci.push({ addr: portAddr, id: '8086:1901', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: group++ });
    const g = group++;
    for (let s = 0; s < 2 && pci.length < n; s++) {
      for (let f = 0; f < 8 && pci.length < n; f++) {
        const gpu = f === 0;
        pci.push({
          addr: `${hex2(bus)}:${hex2(s)}.${f}`,
          id: gpu ? '10de:2204' : '10de:1aef',
          class: gpu ? 0x030000 : 0x040300,
          parent: portAddr,
          driver: gpu ? 'nvidia' : 'snd_hda_intel',
          group: g,
        });
      }
    }
  }
  return pci;
}
