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

// Node's own modules are taken with require(), not import: an ES import of a
// builtin builds its whole namespace, which runs every lazy getter on it
// (`import * as fs from 'node:fs'` loads fs/promises and with it streams and
// readline, ~20 ms of compiling Node's internals per run). Through require()
// and esbuild's lazy re-export, only what is used is loaded.
const builtinsByRequire = {
  name: 'builtins-by-require',
  setup(build) {
    build.onResolve({ filter: /^node:/ }, (args) => (args.namespace === 'builtin' ? { path: args.path, external: true } : { path: args.path, namespace: 'builtin' }));
    build.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

await esbuild.build({
  plugins: [builtinsByRequire],
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
