#!/usr/bin/env node
// Bundles the CLI for start-up speed: dist/cli/main.js holds the shell (argv,
// help, --version, exit codes) and every command's code is a lazy chunk under
// dist/cli/chunks/ (the registry's dynamic imports become chunk imports), so
// a command loads a handful of files instead of dozens of modules from
// dist/src and node_modules. Source maps sit next to each file; bin/vfiokit.js
// turns them on when a stack is printed (VFIOKIT_DEBUG=1), so stack traces name
// source lines. Run by `npm run build` after tsc (which still builds dist/src
// for the bench, the lab and the tests).
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const outdir = path.join(root, 'dist/cli');
fs.rmSync(outdir, { recursive: true, force: true });

await esbuild.build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Paths in the maps relative to the map file, so they name src/… lines.
  sourcesContent: false,
  chunkNames: 'chunks/[name]-[hash]',
  // Dependencies written as CommonJS call require() for Node's modules.
  banner: { js: "import { createRequire as __vfiokitRequire } from 'node:module'; const require = __vfiokitRequire(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  metafile: false,
});
