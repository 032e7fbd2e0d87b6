// mkinitcpio: /etc/mkinitcpio.conf and /etc/mkinitcpio.conf.d/*.conf (bash, sourced in order).
//
// API
//   parse(text, file?) -> MkinitcpioDoc           lossless (shell.ts), never executed
//   render(doc) -> string                          render(parse(x)) === x
//   report(doc, env?) -> MkinitcpioReport          MODULES / HOOKS / FILES, syntax, whether
//                                                  `modconf` is in HOOKS, GPU drivers in MODULES
//   chooseTarget(main, dropIns?) -> { target: 'main' | 'drop-in' | 'unsupported', reason }
//   prependModules(doc, modules) -> doc            edit MODULES in this file: modules not already
//                                                  listed before every GPU driver are put first
//   appendFiles(doc, paths) -> doc                 edit FILES in this file: append missing paths
//   removeOwned(doc, names?) -> doc                undo vfiokit's marked edits (all, or of names)
//   renderDropIn({ modules, files? }) -> string    /etc/mkinitcpio.conf.d/90-vfiokit.conf (owned)
//
// mkinitcpio loads MODULES in order, so vfio modules must come before a GPU driver in MODULES;
// a drop-in can only append (`MODULES+=(...)`), hence the main file is edited when MODULES lists
// a GPU driver (or uses the old string syntax `MODULES="..."`, which `+=(...)` would turn into a
// single array element). Edited statements get a trailing marker comment
// `# vfiokit: prepend a b` / `# vfiokit: append /x` naming exactly what was inserted, so
// removeOwned restores the statement byte for byte; a statement vfiokit created ends in
// `# vfiokit` and is removed whole. Both edits remove their own previous edit first
// (idempotent). A list that is not static, or a marker that no longer matches its list,
// throws FileFormatError(file, line).

import { FileFormatError } from '../errors.js';
import { badArgument, checkModuleNames, isGpuDriver, MARK, normModule, ownedHeader } from './common.js';
import {
  dynamicReason,
  endsWithMark,
  evalWord,
  evaluate,
  insertStatements,
  parseShell,
  removeStatements,
  renderShell,
  replaceStatement,
  type ShellDoc,
  type ShellStatement,
  type ShellValue,
} from './shell.js';
import { MKINITCPIO_CONF, MKINITCPIO_DROP_IN } from '../model/config-paths.js';

export const MAIN_PATH = MKINITCPIO_CONF;
export const DROP_IN_PATH = MKINITCPIO_DROP_IN;
export type MkinitcpioDoc = ShellDoc;

export function parse(text: string, file = MAIN_PATH): MkinitcpioDoc {
  return parseShell(text, file);
}

export function render(doc: MkinitcpioDoc): string {
  return renderShell(doc);
}

interface MkinitcpioReport {
  modules: string[] | null;
  hooks: string[] | null;
  files: string[] | null;
  /** Syntax of the last plain `MODULES=` in this file. */
  modulesSyntax: 'array' | 'string' | 'absent';
  /** null when HOOKS is unknown (not static or absent). */
  modconf: boolean | null;
  /** GPU drivers listed in MODULES (in order). */
  gpuDrivers: string[];
  /** Variables vfiokit could not evaluate. */
  dynamic: { name: string; reason: string; line: number }[];
}

function listOf(v: ShellValue | undefined): string[] | null {
  if (!v || v.kind === 'dynamic') return null;
  return v.kind === 'array' ? v.items.flatMap((x) => x.split(/\s+/)).filter((x) => x !== '') : v.value.split(/\s+/).filter((x) => x !== '');
}

function lastPlain(doc: MkinitcpioDoc, name: string): number {
  for (let i = doc.statements.length - 1; i >= 0; i--) {
    const a = doc.statements[i].assign;
    if (a && a.name === name && a.index === null && !a.append) return i;
  }
  return -1;
}

export function report(doc: MkinitcpioDoc, env?: ReadonlyMap<string, ShellValue>): MkinitcpioReport {
  const vals = evaluate(doc, env);
  const dynamic: MkinitcpioReport['dynamic'] = [];
  for (const name of ['MODULES', 'HOOKS', 'FILES']) {
    const v = vals.get(name);
    if (v?.kind === 'dynamic') dynamic.push({ name, reason: v.reason, line: v.line });
  }
  const modules = listOf(vals.get('MODULES'));
  const hooks = listOf(vals.get('HOOKS'));
  const idx = lastPlain(doc, 'MODULES');
  return {
    modules,
    hooks,
    files: listOf(vals.get('FILES')),
    modulesSyntax: idx < 0 ? 'absent' : doc.statements[idx].assign!.array ? 'array' : 'string',
    modconf: hooks ? hooks.includes('modconf') : null,
    gpuDrivers: (modules ?? []).filter(isGpuDriver),
    dynamic,
  };
}

export function chooseTarget(
  main: MkinitcpioDoc,
  dropIns: readonly MkinitcpioDoc[] = [],
): { target: 'main' | 'drop-in' | 'unsupported'; reason: string } {
  let env = evaluate(main);
  const r = report(main);
  if (r.dynamic.some((d) => d.name === 'MODULES')) return { target: 'unsupported', reason: `MODULES in ${main.file} is not static` };
  for (const d of dropIns) env = evaluate(d, env);
  const all = listOf(env.get('MODULES'));
  if (all === null) return { target: 'unsupported', reason: 'MODULES is not static once the drop-ins are applied' };
  const gpu = all.filter(isGpuDriver);
  const reassigning = dropIns.find((d) => lastPlain(d, 'MODULES') >= 0);
  if (gpu.length > 0 && reassigning)
    return { target: 'unsupported', reason: `${reassigning.file} replaces MODULES and it lists ${gpu.join(', ')}; vfio modules must be added there, before them` };
  if (r.modulesSyntax === 'string') return { target: 'main', reason: `${main.file} uses the string syntax MODULES="..."; a drop-in MODULES+=(...) would merge it into one array element` };
  if (gpu.length > 0) return { target: 'main', reason: `MODULES lists ${gpu.join(', ')}; vfio modules must be loaded before it, and a drop-in can only append` };
  return { target: 'drop-in', reason: 'MODULES lists no GPU driver, so appending from a drop-in keeps the order right' };
}

// ---- list edits on one statement ------------------------------------------------------------

interface ListView {
  items: { start: number; end: number; value: string }[];
  /** Where the first item goes when the list is empty. */
  emptyAt: number;
}

function refuse(doc: MkinitcpioDoc, s: ShellStatement, name: string, why: string): never {
  throw new FileFormatError(doc.file, s.line, `${name} is not a list vfiokit can edit: ${why}`, `edit ${name} in ${doc.file} by hand`);
}

function listView(doc: MkinitcpioDoc, s: ShellStatement, name: string): ListView {
  const a = s.assign!;
  if (a.array) {
    const items = a.array.items.map((w) => {
      const r = evalWord(w, new Map());
      if ('reason' in r || w.parts.some((p) => p.kind !== 'lit')) refuse(doc, s, name, `item ${w.raw} is not a plain word`);
      return { start: w.start, end: w.end, value: (r as { value: string }).value };
    });
    return { items, emptyAt: a.array.open + 1 };
  }
  const w = a.scalar!;
  if (w.style !== 'double' && w.style !== 'single') refuse(doc, s, name, `the value ${w.raw || '(empty)'} is not a quoted list`);
  if (w.parts.some((p) => p.kind !== 'lit')) refuse(doc, s, name, `the value ${w.raw} contains expansions`);
  const inner = w.raw.slice(1, -1);
  const items = [...inner.matchAll(/\S+/g)].map((m) => ({ start: w.start + 1 + m.index!, end: w.start + 1 + m.index! + m[0].length, value: m[0] }));
  return { items, emptyAt: w.start + 1 };
}

const MARKER_RE = / # vfiokit: (prepend|append) ([^#\n]*)$/;

function stripMarker(doc: MkinitcpioDoc, s: ShellStatement, name: string): string {
  const m = MARKER_RE.exec(s.raw);
  if (!m) return s.raw;
  const raw = s.raw.slice(0, m.index);
  const names = m[2].trim().split(/\s+/);
  const view = listView(doc, { ...parseShell(raw, doc.file).statements[0], line: s.line }, name);
  const k = names.length;
  const n = view.items.length;
  const mismatch = () =>
    new FileFormatError(
      doc.file,
      s.line,
      `the vfiokit marker says "${m[1]} ${names.join(' ')}" but ${name} no longer has those items there`,
      `fix ${name} by hand (remove the items vfiokit added and the "# vfiokit:" comment) or run \`vfiokit undo\``,
    );
  if (n < k) throw mismatch();
  const got = (m[1] === 'prepend' ? view.items.slice(0, k) : view.items.slice(n - k)).map((i) => i.value);
  if (got.join(' ') !== names.join(' ')) throw mismatch();
  let from: number;
  let to: number;
  if (m[1] === 'prepend') {
    from = view.items[0].start;
    to = n > k ? view.items[k].start : view.items[k - 1].end;
  } else {
    from = n > k ? view.items[n - k - 1].end : view.items[0].start;
    to = view.items[n - 1].end;
  }
  return raw.slice(0, from) + raw.slice(to);
}

/** Undo vfiokit's marked edits (of the given variables, default all). */
export function removeOwned(doc: MkinitcpioDoc, names?: readonly string[]): MkinitcpioDoc {
  let d = doc;
  for (let i = d.statements.length - 1; i >= 0; i--) {
    const s = d.statements[i];
    const name = s.assign?.name;
    if (!name || (names && !names.includes(name))) continue;
    if (endsWithMark(s.raw)) d = removeStatements(d, [i]);
    else if (MARKER_RE.test(s.raw)) d = replaceStatement(d, i, stripMarker(d, s, name));
  }
  return d;
}

function editList(
  doc: MkinitcpioDoc,
  name: string,
  values: readonly string[],
  where: 'prepend' | 'append',
  norm: (v: string) => string,
  isEarly: (before: string[]) => Set<string>,
): MkinitcpioDoc {
  const d = removeOwned(doc, [name]);
  const idx = lastPlain(d, name);
  if (idx < 0) {
    const firstMention = d.statements.findIndex((s) => s.assign?.name === name || (s.kind === 'other' && s.raw.includes(name)));
    const at = firstMention < 0 ? d.statements.length : firstMention;
    return insertStatements(d, at, [`${name}=(${values.join(' ')}) ${MARK}`]);
  }
  const s = d.statements[idx];
  if (s.nested) refuse(d, s, name, 'it is assigned inside a conditional or loop');
  const why = dynamicReason(d, name, idx + 1);
  if (why) refuse(d, s, name, why);
  const view = listView(d, s, name);
  const present = isEarly(view.items.map((i) => i.value));
  const missing = values.filter((v, i) => !present.has(norm(v)) && values.findIndex((w) => norm(w) === norm(v)) === i);
  if (missing.length === 0) return d;
  const text = missing.join(' ');
  let raw: string;
  if (view.items.length === 0) raw = s.raw.slice(0, view.emptyAt) + text + s.raw.slice(view.emptyAt);
  else if (where === 'prepend') raw = s.raw.slice(0, view.items[0].start) + text + ' ' + s.raw.slice(view.items[0].start);
  else {
    const end = view.items[view.items.length - 1].end;
    raw = s.raw.slice(0, end) + ' ' + text + s.raw.slice(end);
  }
  return replaceStatement(d, idx, `${raw} # vfiokit: ${where} ${text}`);
}

/** Put modules first in this file's MODULES unless they already come before every GPU driver. */
export function prependModules(doc: MkinitcpioDoc, modules: readonly string[]): MkinitcpioDoc {
  checkModuleNames(modules);
  return editList(doc, 'MODULES', modules, 'prepend', normModule, (items) => {
    const gpu = items.findIndex(isGpuDriver);
    return new Set((gpu < 0 ? items : items.slice(0, gpu)).map(normModule));
  });
}

function checkPaths(paths: readonly string[]): void {
  for (const p of paths) if (!/^\/[A-Za-z0-9_./-]+$/.test(p)) throw badArgument(`bad FILES path: ${JSON.stringify(p)}`);
}

/** Append paths missing from this file's FILES (e.g. the vfio-pci install-hook script). */
export function appendFiles(doc: MkinitcpioDoc, paths: readonly string[]): MkinitcpioDoc {
  checkPaths(paths);
  return editList(doc, 'FILES', paths, 'append', (p) => p, (items) => new Set(items));
}

export function renderDropIn(intent: { modules: string[]; files?: string[] }): string {
  if (intent.modules.length === 0 && (intent.files ?? []).length === 0) throw badArgument('renderDropIn needs modules or files');
  checkModuleNames(intent.modules);
  const lines = ownedHeader('VFIO modules in the initramfs (mkinitcpio)');
  if (intent.modules.length > 0) lines.push(`MODULES+=(${intent.modules.join(' ')})`);
  if (intent.files && intent.files.length > 0) {
    checkPaths(intent.files);
    lines.push(`FILES+=(${intent.files.join(' ')})`);
  }
  return lines.join('\n') + '\n';
}
