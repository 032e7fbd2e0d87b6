#!/usr/bin/env node
// Thin shim, CommonJS (bin/package.json) so that starting it costs no ES
// module loader: `--version` answers from package.json and loads nothing
// else. Commands load dist/cli/main.js, bundled by `npm run build` as
// CommonJS with one lazy chunk per command (scripts/bundle.mjs), compiled
// through V8's code cache where the build made one for this Node
// (bin/code-cache.js). Source maps are applied when a stack is printed
// (VFIOKIT_DEBUG=1), so it names src/ lines; Node's compile cache is used
// where Node has it (22.1 and later).
'use strict';

const argv = process.argv.slice(2);
if (argv[0] === '--version' || argv[0] === '-V') {
  process.stdout.write(`vfiokit ${require('../package.json').version}\n`);
} else {
  const codeCache = require('./code-cache.js');
  // Before any of vfiokit's code is loaded.
  const short = codeCache.setV8Flags(argv);
  if (process.env.VFIOKIT_DEBUG) process.setSourceMapsEnabled(true);
  if (codeCache.useCache(short, process.env)) {
    const cache = codeCache.install();
    // For tests and the bench: whether V8 took the cache.
    if (process.env.VFIOKIT_CODE_CACHE === 'stats') process.on('exit', () => process.stderr.write(`code cache: ${JSON.stringify(cache.stats())}\n`));
  } else require('node:module').enableCompileCache?.();
  require('../dist/cli/main.js')
    .main(argv)
    .then((code) => {
      process.exitCode = code;
    });
}
