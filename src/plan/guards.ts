// The host-critical guards every plan that takes devices from the host applies
// (boot-time passthrough, runtime bind, libvirt hooks): the root file system's
// disks and the default route's network cards stay with the host, and when
// vfiokit could not follow those chains to a PCI device, a plan that takes a
// storage, network or USB/Thunderbolt controller says so.

import type { Problem } from '../errors.js';
import { shortAddress } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';

/** Classes that can hold a disk (mass storage; USB, Thunderbolt controllers) or a network link (network, wireless; USB, Thunderbolt). */
const MAY_HOLD_DISK = /^(01|0c03|0c0a)/;
const MAY_HOLD_NIC = /^(02|0d|0c03|0c0a)/;

export interface GuardOptions {
  allowRootStorage?: boolean;
  allowDefaultNic?: boolean;
  /** How the refusal's hint names the override flags (boot plans have them; runtime bind does not). */
  overrides?: boolean;
}

export function hostCriticalProblems(s: HostSnapshot, devices: PciDevice[], o: GuardOptions = {}): Problem[] {
  const out: Problem[] = [];
  for (const d of devices) {
    if (s.boot.rootStorage.includes(d.address) && !o.allowRootStorage)
      out.push({
        code: 'E_ROOT_STORAGE',
        subject: d.address,
        message: `${shortAddress(d.address)} holds the root filesystem's disk; binding it to vfio-pci would leave the host without its root filesystem`,
        hint: o.overrides ? 'choose another device, or pass --allow-root-storage if the root filesystem really lives elsewhere at boot' : 'choose another device',
      });
    if (s.boot.defaultRouteNics.includes(d.address) && !o.allowDefaultNic)
      out.push({
        code: 'E_DEFAULT_ROUTE_NIC',
        subject: d.address,
        message: `${shortAddress(d.address)} is the network card carrying the default route; the host would lose its network`,
        hint: o.overrides ? 'choose another device, or pass --allow-default-nic when the host has another way in' : 'choose another device, or give the host another network path first',
      });
  }
  return out;
}

/** The chains vfiokit could not follow, when a device that could be on them is taken. */
export function hostCriticalWarnings(s: HostSnapshot, devices: PciDevice[]): string[] {
  const g = s.boot.guardWarnings;
  if (!g) return [];
  const out: string[] = [];
  if (devices.some((d) => MAY_HOLD_DISK.test(d.class))) out.push(...g.rootStorage);
  if (devices.some((d) => MAY_HOLD_NIC.test(d.class))) out.push(...g.defaultRouteNics);
  return out;
}
