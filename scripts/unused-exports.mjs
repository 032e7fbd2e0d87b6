#!/usr/bin/env node
// Lists exports of src/ that no other file in the repository names (src, test,
// bench, lab, scripts): candidates for dead code or for dropping `export`.
// A name used only inside its own module is reported too (the export is the
// unused part). Reads sources with the TypeScript parser; word matching for uses.
// Usage: node scripts/unused-exports.mjs (exits 1 when it finds any; part of `npm run lint`)
import ts from 'typescript';
import fs from 'node:fs';
import path from 'node:path';
const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? (e.name === 'node_modules' || e.name === 'dist' ? [] : walk(path.join(d, e.name))) : /\.(ts|mjs)$/.test(e.name) ? [path.join(d, e.name)] : []);
const files = ['src', 'test', 'bench', 'lab', 'scripts'].flatMap((d) => walk(d));
const exported = [];
const used = new Map();
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  const sf = ts.createSourceFile(f, text, ts.ScriptTarget.Latest, true);
  for (const st of sf.statements) {
    const mods = ts.canHaveModifiers(st) ? ts.getModifiers(st) : undefined;
    if (f.startsWith('src/') && mods?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) {
      const names = ts.isVariableStatement(st) ? st.declarationList.declarations.map((d) => d.name.getText(sf)) : st.name ? [st.name.getText(sf)] : [];
      for (const n of names) exported.push([f, n]);
    }
  }
  // every identifier occurrence per file
  const ids = text.match(/[A-Za-z_$][\w$]*/g) ?? [];
  for (const id of new Set(ids)) { if (!used.has(id)) used.set(id, new Set()); used.get(id).add(f); }
}
let unused = 0;
for (const [f, n] of exported) {
  const where = [...(used.get(n) ?? [])].filter((x) => x !== f);
  if (where.length === 0) { console.log(`${f}: ${n}`); unused++; }
}
if (unused > 0) {
  console.error(`${unused} export(s) no other file uses: drop the export, or the code if nothing uses it`);
  process.exit(1);
}
