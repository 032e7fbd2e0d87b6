// Loaded into vfiokit in a lab guest with NODE_OPTIONS=--import: the first
// time the process opens or reads a PCI device's `rom` attribute, it writes
// the marker file named by LAB_PAUSE_MARK and then blocks for two minutes, so
// the guest script can kill -9 it in the middle of a ROM dump (after the
// attribute was enabled, before the copy and the disable). Lab only.

import * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const mark = process.env.LAB_PAUSE_MARK;
const isRom = (p: unknown) => typeof p === 'string' && /^\/sys\/(bus\/pci\/devices|devices)\/.*\/rom$/.test(p);
let paused = false;

function pause(p: unknown): void {
  if (paused || !mark || !isRom(p)) return;
  paused = true;
  fs.writeFileSync(mark, `${process.pid} ${String(p)}\n`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
}

type AnyFn = (...args: unknown[]) => unknown;
const target = fs as unknown as Record<string, AnyFn>;
for (const name of ['openSync', 'readFileSync', 'createReadStream', 'open', 'readFile']) {
  const orig = target[name];
  target[name] = function (this: unknown, ...args: unknown[]) {
    pause(args[0]);
    return orig.apply(this, args);
  };
}
const promises = fs.promises as unknown as Record<string, AnyFn>;
for (const name of ['open', 'readFile']) {
  const orig = promises[name];
  promises[name] = function (this: unknown, ...args: unknown[]) {
    pause(args[0]);
    return orig.apply(this, args);
  };
}
syncBuiltinESMExports();
