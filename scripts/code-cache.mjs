#!/usr/bin/env node
// Makes V8's code cache for the bundled CLI (read by bin/code-cache.js): runs
// the short commands once, in one process under the V8 settings they run
// with, on fixture hosts (temporary directories, never this machine's /),
// then writes each compiled file's cache, with the functions those runs
// compiled in it. Run by `npm run build` after scripts/bundle.mjs; needs
// tsc's dist/test/helpers for the fixture hosts. The bench times other
// fixtures than these.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(import.meta.url);
const codeCache = require(path.join(root, 'bin/code-cache.js'));
// The settings of a short command, before any of dist/cli is compiled.
codeCache.setV8Flags(['plan']);
fs.rmSync(codeCache.CACHE_DIR, { recursive: true, force: true });

const { buildFakeHost } = await import(path.join(root, 'dist/test/helpers/fake-host.js'));
const { FIXTURE_HOSTS } = await import(path.join(root, 'dist/test/helpers/hosts.js'));
const { DISTRO_HOSTS } = await import(path.join(root, 'dist/test/helpers/distros.js'));

const cache = codeCache.install({ write: true });
const { main } = require(path.join(root, 'dist/cli/main.js'));
const sink = { write: () => true };
const io = { stdout: sink, stderr: sink, env: {} };
const roots = [];
try {
  const host = buildFakeHost(FIXTURE_HOSTS['twin-gpus']);
  roots.push(host);
  const runs = [['inspect', '--json'], ['inspect'], ['check'], ['groups'], ['status'], ['history']].map((a) => [...a, '--root', host]);
  for (const name of ['fedora-bls', 'arch-sdboot']) {
    const d = DISTRO_HOSTS[name];
    const r = buildFakeHost(d.host);
    roots.push(r);
    runs.push(['plan', ...d.select, '--root', r]);
  }
  runs.push(['plan', '--help']);
  for (const argv of runs) await main(argv, io);
  console.log(`code cache: ${cache.save()} files in ${path.relative(root, codeCache.CACHE_DIR)}`);
} finally {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
}
