// Loaded into vfiokit in a lab guest with NODE_OPTIONS=--import: the first
// time the process reads a PCI device's `rom` attribute successfully (the
// kernel refuses reads until "1" was written to it), it writes the marker
// file named by LAB_PAUSE_MARK and blocks for two minutes, so the guest
// script can kill -9 it in the middle of a ROM dump: the attribute enabled,
// the copy not yet written, the disable not yet done. Lab only.

import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const mark = process.env.LAB_PAUSE_MARK;
const isRom = (p: unknown) => typeof p === 'string' && /^\/sys\/(bus\/pci\/devices|devices)\/.*\/rom$/.test(p);
let paused = false;

const orig = fs.readFileSync;
(fs as { readFileSync: unknown }).readFileSync = function (this: unknown, ...args: Parameters<typeof fs.readFileSync>) {
  const out = orig.apply(this, args);
  if (!paused && mark && isRom(args[0]) && out.length > 0) {
    paused = true;
    fs.writeFileSync(mark, `${process.pid} ${String(args[0])} ${out.length} bytes\n`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
  }
  return out;
};
syncBuiltinESMExports();
