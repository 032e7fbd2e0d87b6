// The floor for `inspect` on Node: a bare script making the system calls
// `vfiokit inspect` makes for the PCI functions and IOMMU groups of a root
// (the same files, opened the same way), keeping nothing and building no
// objects. Timed by inspect.bench.ts next to vfiokit and lspci: what it takes
// is what any Node program reading those files pays (Node's start, one JS→C++
// call per system call), so `floor / lspci` is the best ratio vfiokit could
// reach with these reads.
//
//   node dist/bench/floor.js ROOT    prints the number of functions read

import * as fs from 'node:fs';
import * as v8 from 'node:v8';

// The V8 settings bin/vfiokit.js runs commands with, so that the floor is the
// same runtime doing only the reads.
v8.setFlagsFromString('--no-opt');
v8.setFlagsFromString('--semi-space-growth-factor=1');

const root = process.argv[2];
if (!root) throw new Error('usage: node dist/bench/floor.js ROOT');
const NOFOLLOW = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW;
const buf = Buffer.allocUnsafe(4096);
Error.stackTraceLimit = 0;

/** open/read/close of a small file; -1 when absent. */
function read(p: string): number {
  let fd: number;
  try {
    fd = fs.openSync(p, NOFOLLOW);
  } catch {
    return -1;
  }
  const n = fs.readSync(fd, buf, 0, 4096, null);
  fs.closeSync(fd);
  return n;
}

const sys = `${root}/sys`;
// Driver bindings: one listing per driver directory.
for (const d of fs.readdirSync(`${sys}/bus/pci/drivers`)) fs.readdirSync(`${sys}/bus/pci/drivers/${d}`);
let n = 0;
for (const name of fs.readdirSync(`${sys}/bus/pci/devices`)) {
  // The bus link (relative, "../../../devices/…") names the device directory.
  const dir = `${sys}/${fs.readlinkSync(`${sys}/bus/pci/devices/${name}`).slice(9)}`;
  fs.lstatSync(dir, { throwIfNoEntry: false });
  if (read(`${dir}/config`) < 64) continue;
  const bridge = (buf[0x0e] & 0x7f) === 1;
  const vga = buf[0x0b] === 0x03 && buf[0x0a] === 0x00;
  if (!bridge) read(`${dir}/driver_override`);
  if (fs.lstatSync(`${dir}/reset_method`, { throwIfNoEntry: false })) read(`${dir}/reset_method`);
  if (vga) read(`${dir}/boot_vga`);
  fs.lstatSync(`${dir}/rom`, { throwIfNoEntry: false });
  n++;
}
// IOMMU groups: each group's directory, devices listing, reserved regions and type.
const groups = `${sys}/kernel/iommu_groups`;
for (const g of fs.readdirSync(groups)) {
  fs.lstatSync(`${groups}/${g}`, { throwIfNoEntry: false });
  fs.lstatSync(`${groups}/${g}/name`, { throwIfNoEntry: false });
  fs.lstatSync(`${groups}/${g}/devices`, { throwIfNoEntry: false });
  fs.readdirSync(`${groups}/${g}/devices`);
  read(`${groups}/${g}/reserved_regions`);
  read(`${groups}/${g}/type`);
}
process.stdout.write(`${n}\n`);
