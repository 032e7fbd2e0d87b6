#!/usr/bin/env node
// Thin shim, CommonJS (bin/package.json) so that starting it costs no ES
// module loader: `--version` answers from package.json and loads nothing
// else. Commands load dist/cli/main.js, bundled by `npm run build` as
// CommonJS with one lazy chunk per command (scripts/bundle.mjs). Source maps are applied when
// a stack is printed (VFIOKIT_DEBUG=1), so it names src/ lines; Node's
// compile cache is used where Node has it (22.1 and later).
'use strict';

const argv = process.argv.slice(2);
/** Commands whose work is bounded by the host's size: run without the optimizing compiler. */
const SHORT_COMMANDS = new Set(['inspect', 'check', 'groups', 'status', 'plan', 'history', 'apply', 'undo', 'recover', 'bind', 'unbind', 'vm', 'rom', 'hooks', 'handoff', 'isolate', 'hugepages']);
if (argv[0] === '--version' || argv[0] === '-V') {
  process.stdout.write(`vfiokit ${require('../package.json').version}\n`);
} else {
  // A read of the host runs once and briefly: optimizing compiles cost more
  // than they save (a quarter of the CPU of reading 4096 PCI functions). Not
  // for commands whose input has no bound (diagnose streams logs of any size,
  // report and snapshot walk whole trees, export many hosts): there the
  // optimizing compiler is worth 6x (bench/README.md). A young generation kept
  // at its initial size keeps the peak RSS down at no measurable cost in time.
  // Both are set before any of vfiokit's code is loaded.
  const v8 = require('node:v8');
  if (SHORT_COMMANDS.has(argv.find((a) => !a.startsWith('-')) ?? '')) v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  if (process.env.VFIOKIT_DEBUG) process.setSourceMapsEnabled(true);
  require('node:module').enableCompileCache?.();
  require('../dist/cli/main.js')
    .main(argv)
    .then((code) => {
      process.exitCode = code;
    });
}
