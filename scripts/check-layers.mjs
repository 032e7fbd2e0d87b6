#!/usr/bin/env node
// Layering rules from ARCHITECTURE.md, checked on the source text:
//  - pure layers (model, plan, formats, vm, render) import no node: modules;
//  - only src/cli/main.ts may end the process.
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const PURE = ['src/model', 'src/plan', 'src/formats', 'src/vm', 'src/render'];
const problems = [];
const walk = (dir) =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
for (const file of walk(path.join(root, 'src'))) {
  const rel = path.relative(root, file);
  const text = fs.readFileSync(file, 'utf8');
  text.split('\n').forEach((line, i) => {
    if (PURE.some((p) => rel.startsWith(p + '/')) && /(from\s+['"]node:|require\(['"]node:|import\(['"]node:)/.test(line))
      problems.push(`${rel}:${i + 1}: pure layer imports a node: module (move the I/O to src/host, src/apply or the command)`);
    if (rel !== 'src/cli/main.ts' && /\bprocess\.exit\s*\(/.test(line)) problems.push(`${rel}:${i + 1}: only src/cli/main.ts may call process.exit`);
  });
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('layers ok');
