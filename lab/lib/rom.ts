// Option ROMs in the lab: the file QEMU puts in the emulated VGA's ROM BAR,
// a guest helper that says whether the kernel's `rom` attribute can be read
// now, and where two dumps first differ.

/** The file QEMU loads into the VGA device's ROM BAR (its romfile default, vgabios-stdvga.bin from QEMU's data directory; Debian links it to SeaBIOS's). */
export const STDVGA_ROM = '/usr/share/seabios/vgabios-stdvga.bin';

/** Guest shell: `rom_readable NAME` writes NAME.readable (yes/no) and NAME.readerr for the device in $GPU (readable only after "1" was written). */
export const ROM_HELPERS = `
rom_readable() { if cat "/sys/bus/pci/devices/$GPU/rom" >/dev/null 2>"$LAB_OUT/$1.readerr"; then echo yes; else echo no; fi >"$LAB_OUT/$1.readable"; }
`;

/** "offset N", "length A vs B" or "none". */
export function firstDiff(a: Buffer, b: Buffer): string {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return `offset ${i}`;
  return a.length === b.length ? 'none' : `length ${a.length} vs ${b.length}`;
}
