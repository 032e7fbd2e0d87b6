#!/usr/bin/env node
// Layering rules from ARCHITECTURE.md, checked on the source text:
//  - pure layers (model, formats, analysis, plan, vm, render) import no node: modules;
//  - each layer imports only the layers below it (ALLOWED);
//  - only src/cli/main.ts may end the process;
//  - sysfs/procfs/etc paths are named only in the path modules (check-paths.mjs);
//  - the commands that read a host (LIGHT) load no XML parser: no static import chain
//    from them reaches @xmldom/xmldom (it costs plan ~11 ms of CPU to load; bench/README.md).
// Usage: node scripts/check-layers.mjs [REPO_DIR]   (default: this repository)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { duplicatePathProblems, pathLiteralProblems, selfCheck } from './check-paths.mjs';

const root = process.argv[2] ? path.resolve(process.argv[2]) : path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const PURE = ['src/model', 'src/formats', 'src/analysis', 'src/plan', 'src/vm', 'src/render'];
// layer → the layers it may import (besides itself and src/errors.ts).
const ALLOWED = {
  model: [],
  formats: ['model'],
  analysis: ['model', 'formats'],
  plan: ['model', 'formats', 'analysis', 'vm'],
  vm: ['model', 'formats', 'analysis', 'plan'],
  render: ['model', 'formats', 'analysis', 'plan', 'vm'],
  host: ['model', 'formats', 'analysis'],
  apply: ['model', 'formats', 'host'],
  cli: null, // the top: anything
};
const problems = selfCheck();
const walk = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
const sources = [];
for (const file of walk(path.join(root, 'src'))) {
  const rel = path.relative(root, file);
  const text = fs.readFileSync(file, 'utf8');
  sources.push([rel, text]);
  problems.push(...pathLiteralProblems(rel, text));
  text.split('\n').forEach((line, i) => {
    if (PURE.some((p) => rel.startsWith(p + '/')) && /(from\s+['"]node:|require\(['"]node:|import\(['"]node:)/.test(line))
      problems.push(`${rel}:${i + 1}: pure layer imports a node: module (move the I/O to src/host, src/apply or the command)`);
    const layer = rel.split('/')[1];
    const allowed = ALLOWED[layer];
    const imp = /(?:from\s+|import\()['"](\.{1,2}\/[^'"]+)['"]/.exec(line);
    if (imp && allowed !== null && rel.split('/').length > 2) {
      const target = path.relative(path.join(root, 'src'), path.resolve(path.dirname(file), imp[1])).split(path.sep);
      const to = target.length > 1 ? target[0] : null; // null: src/errors.ts and other top-level files
      if (allowed === undefined) problems.push(`${rel}: layer '${layer}' is not in ALLOWED (scripts/check-layers.mjs); add it`);
      else if (to !== null && to !== layer && !allowed.includes(to)) problems.push(`${rel}:${i + 1}: '${layer}' may not import '${to}' (allowed: ${allowed.join(', ') || 'nothing'}); move the shared piece down a layer`);
    }
    if (rel !== 'src/cli/main.ts' && /\bprocess\.exit\s*\(/.test(line)) problems.push(`${rel}:${i + 1}: only src/cli/main.ts may call process.exit`);
  });
}
problems.push(...duplicatePathProblems(sources));

// Static imports (not `import type`, not import()) between source files, and of packages.
const LIGHT = ['inspect', 'check', 'groups', 'status', 'plan'].map((c) => `src/cli/commands/${c}.ts`);
const HEAVY = ['@xmldom/xmldom'];
const edges = new Map();
for (const [rel, text] of sources) {
  const to = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+['"]([^'"]+)['"]/gms)) {
    const spec = m[1];
    if (spec.startsWith('.')) to.push(path.relative(root, path.resolve(root, path.dirname(rel), spec)).replace(/\.js$/, '.ts'));
    else to.push(spec);
  }
  edges.set(rel, to);
}
for (const entry of LIGHT) {
  const prev = new Map([[entry, null]]);
  const queue = [entry];
  while (queue.length) {
    const f = queue.shift();
    for (const t of edges.get(f) ?? []) if (!prev.has(t)) { prev.set(t, f); queue.push(t); }
  }
  for (const h of HEAVY) {
    if (!prev.has(h)) continue;
    const chain = [];
    for (let x = h; x; x = prev.get(x)) chain.unshift(x);
    problems.push(`${entry} loads ${h} through ${chain.join(' → ')}; keep the XML parts in modules only the commands that need them import (as src/plan/domain-hugepages.ts)`);
  }
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('layers ok, paths ok');
