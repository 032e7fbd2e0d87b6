#!/usr/bin/env node
// Bundles the CLI for start-up speed, as CommonJS: dist/cli/main.js holds the shell (argv,
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
// esbuild splits chunks only for ES modules: the bundle is made as ES modules
// here, then each file is turned into CommonJS in dist/cli (below).
const esmdir = path.join(root, 'dist/cli-esm');
fs.rmSync(outdir, { recursive: true, force: true });
fs.rmSync(esmdir, { recursive: true, force: true });

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
  outdir: esmdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Paths in the maps relative to the map file, so they name src/… lines.
  sourcesContent: false,
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
  metafile: false,
});

// The same files as CommonJS: Node 20 loads an ES module through its ES
// loader, which itself loads fs/promises, streams and readline (~6 ms of CPU
// per run that a CommonJS program does not pay). Imports between chunks
// become require() calls, the lazy import() of each command's chunk too.
// esbuild reads the first pass's source maps, so the maps still name src/ lines.
const files = ['main.js', ...fs.readdirSync(path.join(esmdir, 'chunks')).filter((f) => f.endsWith('.js')).map((f) => `chunks/${f}`)];
await esbuild.build({
  absWorkingDir: root,
  entryPoints: files.map((f) => ({ in: path.join(esmdir, f), out: f.replace(/\.js$/, '') })),
  outdir,
  bundle: false,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  supported: { 'dynamic-import': false },
  // import.meta.url (finding bin/vfiokit.js from the code) as CommonJS has it.
  define: { 'import.meta.url': '__vfiokitUrl' },
  banner: { js: "const __vfiokitUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
});
fs.writeFileSync(path.join(outdir, 'package.json'), '{ "type": "commonjs" }\n');
fs.rmSync(esmdir, { recursive: true, force: true });
