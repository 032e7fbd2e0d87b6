// V8's code cache for the bundled CLI: Node 20 has no module.enableCompileCache
// (22.1+), so bin/vfiokit.js compiles dist/cli's files itself, through
// vm.Script with the cached data that `npm run build` made for them
// (scripts/code-cache.mjs), and V8 skips parsing and compiling what the cache
// holds. The data is only good for the same Node, CPU architecture, V8 flags
// and source text: anything else and V8 rejects it and compiles as usual, so
// a stale or foreign cache costs a file read, never a wrong result. Each Node
// version has its own directory. Not used when VFIOKIT_DEBUG is set (Node
// applies source maps only to what it compiles itself) or when
// VFIOKIT_CODE_CACHE=off.
'use strict';

const Module = require('node:module');
const fs = require('node:fs');
const path = require('node:path');

const CLI = path.join(__dirname, '..', 'dist', 'cli') + path.sep;
/** The cache for this Node and architecture: dist/cli/code-cache/<version>-<arch>/. */
const CACHE_DIR = path.join(CLI, 'code-cache', `${process.version}-${process.arch}`);

/** Commands whose work is bounded by the host's size: run without the optimizing compiler. */
const SHORT_COMMANDS = new Set(['inspect', 'check', 'groups', 'status', 'plan', 'history', 'apply', 'undo', 'recover', 'bind', 'unbind', 'vm', 'rom', 'hooks', 'handoff', 'isolate', 'hugepages']);

/**
 * The V8 settings a command runs with, set before any of vfiokit's code is
 * compiled (the code cache is made under the settings of the short commands,
 * and V8 accepts it only under the same ones).
 * A read of the host runs once and briefly: optimizing compiles cost more
 * than they save (a quarter of the CPU of reading 4096 PCI functions). Not
 * for commands whose input has no bound (diagnose streams logs of any size,
 * report and snapshot walk whole trees, export many hosts): there the
 * optimizing compiler is worth 6x (bench/README.md). A young generation kept
 * at its initial size keeps the peak RSS down at no measurable cost in time.
 * Returns whether the command is a short one.
 */
function setV8Flags(argv) {
  const v8 = require('node:v8');
  const short = SHORT_COMMANDS.has(argv.find((a) => !a.startsWith('-')) ?? '');
  if (short) v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  return short;
}

const cacheFile = (filename) => path.join(CACHE_DIR, filename.slice(CLI.length).replace(/[\\/]/g, '_') + '.v8');

/**
 * Compile dist/cli's files through the code cache from now on. `write`: keep
 * every script compiled, for save() to write their cache (after the work
 * they did, so the functions that work compiled are in it too).
 * stats(): how many files used the cache, and how many V8 rejected.
 */
function install({ write = false } = {}) {
  const vm = require('node:vm');
  const compiled = [];
  const stats = { accepted: 0, rejected: 0, missing: 0 };
  const original = Module.prototype._compile;
  Module.prototype._compile = function (content, filename) {
    if (!filename.startsWith(CLI)) return original.call(this, content, filename);
    let cachedData;
    if (!write) {
      try {
        cachedData = fs.readFileSync(cacheFile(filename));
      } catch {
        stats.missing++;
      }
    }
    const script = new vm.Script(Module.wrap(content), { filename, cachedData });
    if (cachedData) stats[script.cachedDataRejected ? 'rejected' : 'accepted']++;
    if (write) compiled.push([script, filename]);
    const mod = this;
    const req = (id) => mod.require(id);
    req.resolve = (request, options) => Module._resolveFilename(request, mod, false, options);
    req.cache = Module._cache;
    req.main = process.mainModule;
    return script.runInThisContext().call(mod.exports, mod.exports, req, mod, filename, path.dirname(filename));
  };
  return {
    stats: () => ({ ...stats }),
    save() {
      fs.mkdirSync(CACHE_DIR, { recursive: true });
      for (const [script, filename] of compiled) fs.writeFileSync(cacheFile(filename), script.createCachedData());
      return compiled.length;
    },
  };
}

/** Whether this run should read the cache: a short command, a cache for this Node, no debugging. */
function useCache(short, env) {
  return short && !env.VFIOKIT_DEBUG && env.VFIOKIT_CODE_CACHE !== 'off' && fs.existsSync(CACHE_DIR);
}

module.exports = { CACHE_DIR, install, setV8Flags, useCache };
