// Limine >= 8: limine.conf, and the limine-entry-tool inputs /etc/default/limine and
// /etc/limine-entry-tool.d/*.conf (bash, `KERNEL_CMDLINE[default]+="..."`).
//
// API — limine.conf
//   parse(text, file?) -> LimineDoc                lossless
//   render(doc) -> string                           render(parse(x)) === x
//   entries(doc) -> { title, depth, line, protocol, cmdline, rescue }[]
//   addKernelArgs(doc, args) -> doc                 every normal Linux entry; idempotent
//   removeKernelArgs(doc, specs) -> doc             (kernel-cmdline.ts edit rules)
// API — /etc/default/limine and drop-ins
//   parseDefaults(text, file?) -> LimineDefaultsDoc  lossless (shell.ts)
//   renderDefaults(doc) -> string
//   defaultsKernelArgs(doc, index?, env?) -> KernelArg[] | { reason, line }
//   ensureDefaultsArgs(doc, args, index?) -> doc     removes vfiokit's line, then appends
//                                                   `KERNEL_CMDLINE[default]+=" args" # vfiokit`
//   removeDefaultsOwned(doc) -> doc
//   renderDefaultsDropIn(args, index?) -> string     /etc/limine-entry-tool.d/90-vfiokit.conf
//
// limine.conf: `/Title` starts an entry (`//` a sub-entry, `/+` expanded by default), options are
// `key: value` (no quoting; keys case-insensitive), `${NAME}=value` defines a macro, `#` starts
// a comment line. A normal Linux entry has `protocol: linux` and a title that does not mark a
// fallback/recovery/single-user boot (those are left alone). Its `cmdline:` (or
// `kernel_cmdline:`) lines are edited; an entry without one gets a `cmdline:` line after its last
// option, preceded by a `# vfiokit` marker line (both removed when the last arg is removed).
// Any other line throws FileFormatError(file, line).

import { FileFormatError } from '../errors.js';
import { badArgument, isRescueLabel, joinLines, MARK, ownedHeader, rejectCarriageReturns, splitLines } from './common.js';
import { addArgTokens, argsOf, type CmdlineToken, type KernelArg, removeArgTokens, renderTokens, tokenize, validateArgs } from './kernel-cmdline.js';
import { doubleQuoteEscape, endsWithMark, evaluate, insertStatements, parseShell, removeStatements, renderShell, type ShellDoc, type ShellValue } from './shell.js';
import { LIMINE_DEFAULTS, LIMINE_DROP_IN } from '../model/config-paths.js';

const CONF_PATH = '/boot/limine.conf';
export const DEFAULTS_PATH = LIMINE_DEFAULTS;
export const DROP_IN_PATH = LIMINE_DROP_IN;

interface LimineLine {
  kind: 'blank' | 'comment' | 'entry' | 'option' | 'macro';
  raw: string;
  line: number;
  depth?: number;
  title?: string;
  key?: string;
  valueAt?: number;
}

export interface LimineDoc {
  file: string;
  lines: LimineLine[];
  trailingNewline: boolean;
}

export function parse(text: string, file = CONF_PATH): LimineDoc {
  rejectCarriageReturns(text, file);
  const { lines: phys, trailingNewline } = splitLines(text);
  const lines = phys.map((raw, i): LimineLine => {
    const line = i + 1;
    const t = raw.trimStart();
    if (t.trim() === '') return { kind: 'blank', raw, line };
    if (t.startsWith('#')) return { kind: 'comment', raw, line };
    const e = /^(\/+)\+?(.*)$/.exec(t);
    if (e) return { kind: 'entry', raw, line, depth: e[1].length, title: e[2].trim() };
    if (/^\$\{[A-Za-z0-9_]+\}=/.test(t)) return { kind: 'macro', raw, line };
    const o = /^([A-Za-z_][A-Za-z0-9_]*)[ \t]*:[ \t]*/.exec(t);
    if (o) return { kind: 'option', raw, line, key: o[1].toLowerCase(), valueAt: raw.length - t.length + o[0].length };
    throw new FileFormatError(
      file,
      line,
      `expected "key: value", "/Entry title", "\${MACRO}=value" or a # comment, found ${JSON.stringify(raw.slice(0, 60))}`,
      'this looks like Limine <= 7 syntax (limine.cfg) or a typo; vfiokit edits Limine >= 8 limine.conf only',
    );
  });
  return { file, lines, trailingNewline };
}

export function render(doc: LimineDoc): string {
  return joinLines(
    doc.lines.map((l) => l.raw),
    doc.trailingNewline,
  );
}

interface EntryView {
  title: string;
  depth: number;
  line: number;
  /** Index of the entry line and of its option lines in doc.lines. */
  index: number;
  options: number[];
  protocol: string | null;
}

function entryViews(doc: LimineDoc): EntryView[] {
  const out: EntryView[] = [];
  let cur: EntryView | null = null;
  doc.lines.forEach((l, i) => {
    if (l.kind === 'entry') {
      cur = { title: l.title!, depth: l.depth!, line: l.line, index: i, options: [], protocol: null };
      out.push(cur);
    } else if (l.kind === 'option' && cur) {
      cur.options.push(i);
      if (l.key === 'protocol') cur.protocol = l.raw.slice(l.valueAt).trim().toLowerCase();
    }
  });
  return out;
}

const CMDLINE_KEYS = ['cmdline', 'kernel_cmdline'];

export function entries(doc: LimineDoc): { title: string; depth: number; line: number; protocol: string | null; cmdline: KernelArg[]; rescue: boolean }[] {
  return entryViews(doc).map((e) => ({
    title: e.title,
    depth: e.depth,
    line: e.line,
    protocol: e.protocol,
    cmdline: e.options
      .map((i) => doc.lines[i])
      .filter((l) => CMDLINE_KEYS.includes(l.key!))
      .flatMap((l) => argsOf(tokenize(l.raw.slice(l.valueAt), doc.file, l.line))),
    rescue: isRescueLabel(e.title),
  }));
}

function editEntries(doc: LimineDoc, edit: (lists: CmdlineToken[][]) => CmdlineToken[][], adding: boolean): LimineDoc {
  const raws = doc.lines.map((l) => l.raw);
  const inserts: { at: number; lines: string[] }[] = [];
  const drop = new Set<number>();
  for (const e of entryViews(doc)) {
    if (e.protocol !== 'linux' || isRescueLabel(e.title)) continue;
    const cmd = e.options.filter((i) => CMDLINE_KEYS.includes(doc.lines[i].key!));
    if (cmd.length === 0) {
      if (!adding) continue;
      const last = e.options.length > 0 ? e.options[e.options.length - 1] : e.index;
      const ref = e.options.length > 0 ? doc.lines[e.options[0]].raw : raws[e.index];
      const indent = /^[ \t]*/.exec(ref)![0];
      const value = renderTokens(edit([[]])[0]);
      inserts.push({ at: last + 1, lines: [indent + MARK, `${indent}cmdline: ${value}`] });
      continue;
    }
    const lists = cmd.map((i) => tokenize(raws[i].slice(doc.lines[i].valueAt), doc.file, doc.lines[i].line));
    const out = edit(lists);
    cmd.forEach((i, k) => {
      const value = renderTokens(out[k]);
      raws[i] = raws[i].slice(0, doc.lines[i].valueAt) + value;
      if (!adding && value.trim() === '' && i > 0 && raws[i - 1].trim() === MARK) drop.add(i - 1).add(i);
    });
  }
  // adding only inserts lines, removing only drops them: indexes stay valid either way
  for (const ins of inserts.sort((a, b) => b.at - a.at)) raws.splice(ins.at, 0, ...ins.lines);
  const kept = raws.filter((_, i) => !drop.has(i));
  const text = joinLines(kept, kept.length === 0 ? false : doc.trailingNewline);
  return text === render(doc) ? doc : parse(text, doc.file);
}

export function addKernelArgs(doc: LimineDoc, args: readonly string[]): LimineDoc {
  validateArgs(args);
  if (args.length === 0) return doc;
  return editEntries(doc, (lists) => addArgTokens(lists, args), true);
}

export function removeKernelArgs(doc: LimineDoc, specs: readonly string[]): LimineDoc {
  return editEntries(doc, (lists) => removeArgTokens(lists, specs), false);
}

// ---- /etc/default/limine, /etc/limine-entry-tool.d/*.conf ------------------------------------

type LimineDefaultsDoc = ShellDoc;

export function parseDefaults(text: string, file = DEFAULTS_PATH): LimineDefaultsDoc {
  return parseShell(text, file);
}

export function renderDefaults(doc: LimineDefaultsDoc): string {
  return renderShell(doc);
}

export function defaultsKernelArgs(
  doc: LimineDefaultsDoc,
  index = 'default',
  env?: ReadonlyMap<string, ShellValue>,
): KernelArg[] | { reason: string; line: number } {
  const v = evaluate(doc, env).get(`KERNEL_CMDLINE[${index}]`);
  if (!v) return [];
  if (v.kind === 'dynamic') return { reason: v.reason, line: v.line };
  return argsOf(tokenize(v.kind === 'scalar' ? v.value : v.items.join(' '), doc.file, v.line, 'shell-single'));
}

function checkIndex(index: string): void {
  if (!/^[A-Za-z0-9_.-]+$/.test(index)) throw badArgument(`bad KERNEL_CMDLINE index: ${JSON.stringify(index)}`);
}

export function removeDefaultsOwned(doc: LimineDefaultsDoc): LimineDefaultsDoc {
  const owned = doc.statements.map((s, i) => (s.assign?.name === 'KERNEL_CMDLINE' && endsWithMark(s.raw) ? i : -1)).filter((i) => i >= 0);
  return owned.length === 0 ? doc : removeStatements(doc, owned);
}

export function ensureDefaultsArgs(doc: LimineDefaultsDoc, args: readonly string[], index = 'default'): LimineDefaultsDoc {
  checkIndex(index);
  validateArgs(args);
  const base = removeDefaultsOwned(doc);
  if (args.length === 0) return base;
  return insertStatements(base, base.statements.length, [`KERNEL_CMDLINE[${index}]+=" ${args.map(doubleQuoteEscape).join(' ')}" ${MARK}`]);
}

export function renderDefaultsDropIn(args: readonly string[], index = 'default'): string {
  checkIndex(index);
  if (args.length === 0) throw badArgument('renderDefaultsDropIn needs at least one kernel argument');
  validateArgs(args);
  return [
    ...ownedHeader('kernel arguments for VFIO passthrough (limine-entry-tool)'),
    `KERNEL_CMDLINE[${index}]+=" ${args.map(doubleQuoteEscape).join(' ')}"`,
    '',
  ].join('\n');
}
