// What a passed device is, apart from where it sits: recorded in each
// boot-time transaction so `status` and `plan` can tell when the address now
// holds another device or the device moved (PCI addresses are positions,
// not identities: a new card, a BIOS update or a moved M.2 drive renumbers
// buses).

import { slotOf } from './pci-address.js';
import type { PciDevice } from './snapshot.js';

export interface DeviceIdentity {
  /** vendor:device, hex. */
  id: string;
  /** subsystem vendor:device (null when the kernel shows none). */
  subsystem: string | null;
  /** 24-bit class code, hex. */
  class: string;
  /** domain:bus:device of the function's slot. */
  slot: string;
  /** The bridges from the root bus down to it, root first, each as address [vendor:device]. */
  bridges: string[];
}

export function identityOf(d: PciDevice, all: PciDevice[]): DeviceIdentity {
  const byAddr = new Map(all.map((x) => [x.address, x]));
  return {
    id: `${d.vendor}:${d.device}`,
    subsystem: d.subsystemVendor && d.subsystemDevice ? `${d.subsystemVendor}:${d.subsystemDevice}` : null,
    class: d.class,
    slot: slotOf(d.address),
    bridges: d.upstream.map((b) => `${b} [${byAddr.get(b) ? `${byAddr.get(b)!.vendor}:${byAddr.get(b)!.device}` : '?'}]`),
  };
}

/** The same kind of device: IDs, subsystem and class (the address and bridges are where it is, not what it is). */
export function sameDevice(a: DeviceIdentity, b: DeviceIdentity): boolean {
  return a.id === b.id && a.subsystem === b.subsystem && a.class === b.class;
}
