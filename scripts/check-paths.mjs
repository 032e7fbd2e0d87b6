// The path rule: every sysfs, procfs and /etc path is named once, in a path
// module (src/host/sysfs-paths.ts, src/model/*-paths.ts). Anywhere else in
// src/, a string or template literal that starts with /sys, /proc or /etc is
// an error: add a named constant to a path module and import it. Sources are
// read with the TypeScript parser, so comments, regular expressions and
// paths quoted in the middle of a message are not literals that start with one.
import ts from 'typescript';

export const PATH_MODULE = /^src\/(host\/sysfs-paths|model\/[a-z0-9-]+-paths)\.ts$/;
const PATH_PREFIX = /^\/(sys|proc|etc)(\/|$)/;

/** Problems ("file:line: …") for the path literals in one source file; `rel` is relative to the repository. */
export function pathLiteralProblems(rel, text) {
  if (PATH_MODULE.test(rel)) return [];
  const sf = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out = [];
  const visit = (node) => {
    let lit;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) lit = node.text;
    else if (ts.isTemplateExpression(node)) lit = node.head.text;
    if (lit !== undefined && PATH_PREFIX.test(lit)) {
      const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      const shown = lit.length > 60 ? `${lit.slice(0, 57)}...` : lit;
      out.push(`${rel}:${line}: path literal ${JSON.stringify(shown)}: name it in a path module (src/host/sysfs-paths.ts, src/model/*-paths.ts) and import the constant`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/**
 * One name per path: a path literal exported under two names (in one path
 * module or in two) is a problem naming both. `files` are [rel, text] pairs;
 * only path modules count.
 */
export function duplicatePathProblems(files) {
  const seen = new Map();
  const out = [];
  for (const [rel, text] of files) {
    if (!PATH_MODULE.test(rel)) continue;
    const sf = ts.createSourceFile(rel, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    for (const st of sf.statements) {
      if (!ts.isVariableStatement(st) || !st.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
      for (const d of st.declarationList.declarations) {
        const init = d.initializer;
        if (!init || !ts.isIdentifier(d.name) || !(ts.isStringLiteral(init) || ts.isNoSubstitutionTemplateLiteral(init)) || !init.text.startsWith('/')) continue;
        const here = `${rel}:${sf.getLineAndCharacterOfPosition(d.getStart(sf)).line + 1} ${d.name.text}`;
        const first = seen.get(init.text);
        if (first) out.push(`${here}: path ${JSON.stringify(init.text)} is already named ${first}; import that one instead`);
        else seen.set(init.text, here);
      }
    }
  }
  return out;
}

/** Plants literals the rule must catch and text it must let pass; returns what went wrong (empty: the rule works). */
export function selfCheck() {
  const planted = [
    "export const a = '/sys/bus/pci/devices';",
    'const b = "/proc/cmdline";',
    'const c = `/etc/${name}.conf`;',
    'f(`/sys`);',
    "const ok1 = `${SYS}/x`; // '/etc/in-a-comment'",
    "const ok2 = /\\/etc\\/libvirt/; const ok3 = 'see /proc/iomem'; const ok4 = '/system'; const ok5 = '/usr/lib/os-release';",
  ].join('\n');
  const got = pathLiteralProblems('src/plan/planted.ts', planted).map((p) => Number(p.split(':')[1]));
  const wrong = [];
  if (got.join(',') !== '1,2,3,4') wrong.push(`the path rule found literals on lines [${got.join(',')}] of the planted sample, expected [1,2,3,4]`);
  if (pathLiteralProblems('src/host/sysfs-paths.ts', planted).length) wrong.push('the path rule flags the path module itself');
  if (pathLiteralProblems('src/model/config-paths.ts', planted).length) wrong.push('the path rule flags src/model/config-paths.ts');
  return wrong;
}
