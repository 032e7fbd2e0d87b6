#!/usr/bin/env node
// Thin shim: the CLI is bundled by `npm run build` into dist/cli/main.js, with
// one lazy chunk per command (scripts/bundle.mjs). Source maps are applied
// when a stack is printed (VFIOKIT_DEBUG=1), so it names src/ lines; Node's
// compile cache is used where Node has it (22.1 and later).
import * as module from 'node:module';

if (process.env.VFIOKIT_DEBUG) process.setSourceMapsEnabled(true);
module.enableCompileCache?.();
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
