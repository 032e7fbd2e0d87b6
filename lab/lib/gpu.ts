// The GPU-like device every lab topology carries (VGA 1234:1111 on bochs-drm
// + HDA 8086:293e on snd_hda_intel, functions 0 and 1 behind a root port),
// and the questions tests ask about it in a guest's listing: which functions,
// on which drivers, and which boot files changed between two checksums.

import { BOOT_DISPLAY_ADDR, UEFI_BOOT_DISPLAY_ADDR } from './qemu.js';
import { parseListing, type GuestListing } from './guest-script.js';

/** The GPU-like device as sysfs spells its vendor:device (for `lab_find`). */
export const GPU_ID = '0x1234:0x1111';
/** Its host drivers, by function suffix. */
export const HOST_DRIVERS: Record<string, string> = { '.0': 'bochs-drm', '.1': 'snd_hda_intel' };

/** The listing `lab_listing NAME` wrote in a boot's /lab/out. */
export function listingOf(r: { read: (name: string) => string | undefined }, name: string): GuestListing {
  return parseListing(r.read(`${name}.groups`) ?? '', r.read(`${name}.devices`) ?? '');
}

/** Addresses of the GPU-like devices' function 0, sorted. */
export function gpus(l: GuestListing): string[] {
  return [...l.devices.entries()].filter(([, d]) => d.vendor === '1234' && d.device === '1111').map(([a]) => a).sort();
}

/** Function 0 and its audio function 1. */
export function functionsOf(gpu: string): string[] {
  return [gpu, gpu.replace(/\.0$/, '.1')];
}

/** The boot display's address in this listing (virtio-vga on BIOS guests, qxl-vga on UEFI guests). */
export function displayAddr(l: GuestListing): string | undefined {
  return [BOOT_DISPLAY_ADDR, UEFI_BOOT_DISPLAY_ADDR].find((a) => l.devices.has(a) && l.devices.get(a)?.vendor !== '1234');
}

export function onHostDrivers(l: GuestListing, gpu: string): boolean {
  return functionsOf(gpu).every((a) => l.devices.get(a)?.driver === HOST_DRIVERS[a.slice(-2)]);
}

export function onVfio(l: GuestListing, gpu: string): boolean {
  return functionsOf(gpu).every((a) => l.devices.get(a)?.driver === 'vfio-pci');
}

/** The driver of each function in a listing, for messages. */
export function driversOf(listing: { devices: Map<string, { driver: string | null }> }, addrs: string[]): string {
  return addrs.map((a) => `${a}=${listing.devices.get(a)?.driver ?? 'none'}`).join(', ');
}

/** Files whose checksums differ between two lab_bootstate outputs. */
export function bootstateDiff(a: string, b: string): string[] {
  const parse = (s: string) => new Map(s.split('\n').filter(Boolean).map((l) => [l.slice(66).trim(), l.slice(0, 64)] as [string, string]));
  const ma = parse(a);
  const mb = parse(b);
  const files = new Set([...ma.keys(), ...mb.keys()]);
  return [...files].filter((f) => ma.get(f) !== mb.get(f)).map((f) => (!ma.has(f) ? `${f} (added)` : !mb.has(f) ? `${f} (removed)` : `${f} (changed)`));
}
