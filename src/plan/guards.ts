// The host-critical guards every plan that takes devices from the host applies
// (boot-time passthrough, runtime bind, libvirt hooks): the root file system's
// disks and the default route's network cards stay with the host, and when
// vfiokit could not follow those chains to a PCI device, a plan that takes a
// storage, network or USB/Thunderbolt controller says so.
// The other mounts count too: a boot-time plan may not take the disk of a
// mount the next boot waits for (/boot, the ESP, swap, any /etc/fstab entry
// without nofail/noauto: systemd drops to emergency mode when a required
// mount's device never appears, and kernel updates stop reaching /boot); a
// runtime bind may not take the disk of anything mounted or swapped on now.

import type { Problem } from '../errors.js';
import { shortAddress } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice, StorageMount } from '../model/snapshot.js';

/** Classes that can hold a disk (mass storage; USB, Thunderbolt controllers) or a network link (network, wireless; USB, Thunderbolt). */
const MAY_HOLD_DISK = /^(01|0c03|0c0a)/;
const MAY_HOLD_NIC = /^(02|0d|0c03|0c0a)/;

interface GuardOptions {
  allowRootStorage?: boolean;
  allowDefaultNic?: boolean;
  /** How the refusal's hint names the override flags (boot plans have them; runtime bind does not). */
  overrides?: boolean;
  /** When the devices leave the host: at the next boot (boot-time plans) or now (runtime bind, handoff). Default: now. */
  at?: 'boot' | 'now';
}

/** The mounts on a device that a plan taking it `at` boot or now would break. */
function mountsOn(s: HostSnapshot, address: string, at: 'boot' | 'now'): StorageMount[] {
  return (s.boot.storageMounts ?? []).filter((m) => m.addresses.includes(address) && (at === 'boot' ? m.atBoot : m.mounted));
}

const chainOf = (m: StorageMount, address: string) => m.chains.filter((c) => c.endsWith(address)).join('; ') || m.source;

/** Refusals for the mounts besides `/` on the devices taken: needed at the next boot (at 'boot'), or mounted now (at 'now'). */
export function storageMountProblems(s: HostSnapshot, devices: PciDevice[], at: 'boot' | 'now'): Problem[] {
  const out: Problem[] = [];
  for (const d of devices) {
    const a = shortAddress(d.address);
    for (const m of mountsOn(s, d.address, at)) {
      const what = m.swap ? `the swap area ${m.source}` : m.target;
      const chain = chainOf(m, d.address);
      if (at === 'now')
        out.push({
          code: 'E_MOUNTED_STORAGE',
          subject: d.address,
          message: `${a} holds ${what} (${chain}), which is ${m.swap ? 'swapped on' : 'mounted'} now; taking the controller from its driver pulls the disk from under it`,
          hint: `${m.swap ? `turn it off first (\`swapoff ${m.source}\`)` : `unmount it first (\`umount ${m.target}\`)`}, or choose another device`,
        });
      else
        out.push({
          code: 'E_BOOT_MOUNT_STORAGE',
          subject: d.address,
          message: m.boot
            ? `${a} holds ${m.target} (${chain}); with the controller on vfio-pci the next boot cannot mount ${m.target} (systemd stops in emergency mode when a required mount's device never appears) and kernel updates no longer reach it`
            : m.swap
              ? `${a} holds ${what} (${chain}), which /etc/fstab turns on at every boot; with the controller on vfio-pci its device never appears, the boot waits for it and swap.target fails`
              : `${a} holds ${m.target} (${chain}), which /etc/fstab mounts at every boot; with the controller on vfio-pci its device never appears and systemd stops the boot in emergency mode`,
          hint: m.boot
            ? `move ${m.target} to a disk on another controller, or choose another device`
            : m.swap
              ? `add \`nofail\` to the options of the swap line of ${m.source} in /etc/fstab (or remove the line), or choose another device`
              : `add \`nofail\` to the options of ${m.target} in /etc/fstab (the host then boots without it), move the mount to a disk on another controller, or choose another device`,
        });
    }
  }
  return out;
}

/** What a boot-time plan leaves behind without refusing: mounts in use now that the next boot does not need. */
function storageMountWarnings(s: HostSnapshot, devices: PciDevice[]): string[] {
  const out: string[] = [];
  for (const d of devices)
    for (const m of mountsOn(s, d.address, 'now'))
      if (!m.atBoot) out.push(`${shortAddress(d.address)} holds ${m.swap ? `the swap area ${m.source}` : m.target} (${chainOf(m, d.address)}), ${m.swap ? 'swapped on' : 'mounted'} now but not needed at boot: after the next boot it is not there`);
  return out;
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
  out.push(...storageMountProblems(s, devices, o.at ?? 'now'));
  return out;
}

/** The chains vfiokit could not follow, when a device that could be on them is taken. */
export function hostCriticalWarnings(s: HostSnapshot, devices: PciDevice[], at: 'boot' | 'now' = 'now'): string[] {
  const g = s.boot.guardWarnings;
  if (!g) return [];
  const out: string[] = at === 'boot' ? storageMountWarnings(s, devices) : [];
  if (devices.some((d) => MAY_HOLD_DISK.test(d.class))) out.push(...g.rootStorage, ...(g.storageMounts ?? []));
  if (devices.some((d) => MAY_HOLD_NIC.test(d.class))) out.push(...g.defaultRouteNics);
  return out;
}
