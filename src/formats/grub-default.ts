// /etc/default/grub and /etc/default/grub.d/*.cfg (POSIX shell sourced by grub-mkconfig).
//
// API
//   parse(text, file?) -> GrubDefaultDoc          static, lossless (see shell.ts)
//   render(doc) -> string                          render(parse(x)) === x
//   values(doc, env?) -> Map<name, ShellValue>     static values; env = values of earlier files
//   kernelArgs(doc, key?, env?) -> KernelArg[] | { reason, line }
//                                                  args of GRUB_CMDLINE_LINUX_DEFAULT (or key)
//   bootArgs(doc, env?) -> { normal, recovery } | { reason, line }
//                                                  normal = LINUX + LINUX_DEFAULT, recovery = LINUX
//   addKernelArgs(doc, args, { key? }) -> doc      idempotent (kernel-cmdline.ts edit rules)
//   removeKernelArgs(doc, specs, { key? }) -> doc
//   renderDropIn(args, { key? }) -> string         vfiokit-owned /etc/default/grub.d/99-vfiokit.cfg
//
// Editing targets the last assignment of the key (GRUB_CMDLINE_LINUX_DEFAULT by default: normal
// entries only; recovery entries get GRUB_CMDLINE_LINUX alone) and keeps its quote style:
// "..." stays double-quoted (new args escaped), '...' single-quoted, a bare value gets double
// quotes once it holds more than one word. Every other line is untouched. If the key's value is
// not static (command substitution, conditional, mixed quoting, changed by a non-assignment
// line or a sourced file) the edit is refused with FileFormatError(file:line) whose hint points
// to the drop-in. When the key is absent an assignment marked `# vfiokit` is appended; removing
// the last arg from such a line removes the line.

import { FileFormatError } from '../errors.js';
import { badArgument, MARK, ownedHeader } from './common.js';
import {
  addArgTokens,
  argsOf,
  type CmdlineToken,
  type KernelArg,
  type QuoteMode,
  removeArgTokens,
  renderTokens,
  tokenize,
  validateArgs,
} from './kernel-cmdline.js';
import {
  doubleQuoteEscape,
  endsWithMark,
  evaluate,
  insertStatements,
  parseShell,
  removeStatements,
  renderShell,
  replaceStatement,
  type ShellDoc,
  type ShellValue,
} from './shell.js';
import { GRUB_DEFAULT, GRUB_DROP_IN } from '../model/config-paths.js';

export type GrubDefaultDoc = ShellDoc;
type GrubCmdlineKey = 'GRUB_CMDLINE_LINUX_DEFAULT' | 'GRUB_CMDLINE_LINUX';

export const MAIN_PATH = GRUB_DEFAULT;
export const DROP_IN_PATH = GRUB_DROP_IN;
const DEFAULT_KEY: GrubCmdlineKey = 'GRUB_CMDLINE_LINUX_DEFAULT';

export function parse(text: string, file = MAIN_PATH): GrubDefaultDoc {
  return parseShell(text, file);
}

export function render(doc: GrubDefaultDoc): string {
  return renderShell(doc);
}

export function values(doc: GrubDefaultDoc, env?: ReadonlyMap<string, ShellValue>): Map<string, ShellValue> {
  return evaluate(doc, env);
}

export function kernelArgs(
  doc: GrubDefaultDoc,
  key: GrubCmdlineKey = DEFAULT_KEY,
  env?: ReadonlyMap<string, ShellValue>,
): KernelArg[] | { reason: string; line: number } {
  const v = evaluate(doc, env).get(key);
  if (!v) return [];
  if (v.kind === 'dynamic') return { reason: v.reason, line: v.line };
  const text = v.kind === 'scalar' ? v.value : v.items.join(' ');
  return argsOf(tokenize(text, doc.file, v.line, 'shell-single'));
}

export function bootArgs(
  doc: GrubDefaultDoc,
  env?: ReadonlyMap<string, ShellValue>,
): { normal: KernelArg[]; recovery: KernelArg[] } | { reason: string; line: number } {
  const linux = kernelArgs(doc, 'GRUB_CMDLINE_LINUX', env);
  if (!Array.isArray(linux)) return linux;
  const def = kernelArgs(doc, 'GRUB_CMDLINE_LINUX_DEFAULT', env);
  if (!Array.isArray(def)) return def;
  return { normal: [...linux, ...def], recovery: linux };
}

interface Target {
  index: number;
  line: number;
  raw: string;
  start: number;
  end: number;
  inner: string;
  style: 'double' | 'single' | 'none' | 'empty';
}

function refuse(doc: GrubDefaultDoc, line: number, key: string, why: string): never {
  throw new FileFormatError(
    doc.file,
    line,
    `${key} is not a static value vfiokit can edit: ${why}`,
    `put the arguments in a drop-in such as ${DROP_IN_PATH} (if your distribution sources /etc/default/grub.d), or edit ${doc.file} by hand`,
  );
}

function target(doc: GrubDefaultDoc, index: number, key: string): Target {
  const s = doc.statements[index];
  const a = s.assign!;
  if (a.array || !a.scalar) refuse(doc, s.line, key, 'it is assigned an array');
  const w = a.scalar;
  if (w.style === 'mixed') refuse(doc, s.line, key, `its value ${w.raw.slice(0, 60)} mixes quoting styles or uses backslashes`);
  const other = w.parts.find((p) => p.kind === 'var' && p.name !== key);
  if (other && other.kind === 'var') refuse(doc, s.line, key, `its value uses $${other.name}; vfiokit edits only text written in ${key} itself`);
  const inner = w.style === 'double' || w.style === 'single' ? w.raw.slice(1, -1) : w.raw;
  return { index, line: s.line, raw: s.raw, start: w.start, end: w.end, inner, style: w.style };
}

/**
 * The assignments that make up the key's final value, oldest first: the last assignment, and
 * before it every earlier one it continues (`KEY+=...` or a value that uses $KEY).
 */
function findChain(doc: GrubDefaultDoc, key: GrubCmdlineKey): Target[] {
  const v = evaluate(doc).get(key);
  if (v?.kind === 'dynamic') refuse(doc, v.line, key, v.reason);
  const chain: Target[] = [];
  for (let i = doc.statements.length - 1; i >= 0; i--) {
    const a = doc.statements[i].assign;
    if (!a || a.name !== key || a.index !== null) continue;
    chain.unshift(target(doc, i, key));
    const continues = a.append || (a.scalar?.parts.some((p) => p.kind === 'var' && p.name === key) ?? false);
    if (!continues) break;
  }
  return chain;
}

function edit(
  doc: GrubDefaultDoc,
  key: GrubCmdlineKey,
  fn: (lists: CmdlineToken[][], encode: (a: string) => string) => CmdlineToken[][],
  args: readonly string[],
  adding: boolean,
): GrubDefaultDoc {
  const chain = findChain(doc, key);
  if (chain.length === 0) {
    if (!adding || args.length === 0) return doc;
    const raw = `${key}="${args.map(doubleQuoteEscape).join(' ')}" ${MARK}`;
    return insertStatements(doc, doc.statements.length, [raw]);
  }
  const last = chain[chain.length - 1];
  // new args are written into the last assignment, so they are encoded for its quoting
  const encode = (a: string): string => {
    if (last.style === 'single') {
      if (a.includes("'")) refuse(doc, last.line, key, `the value is single-quoted and ${a} contains a single quote`);
      return a;
    }
    return doubleQuoteEscape(a);
  };
  const modeOf = (t: Target): QuoteMode => (t.style === 'double' ? 'shell-double' : t.style === 'single' ? 'shell-single' : 'kernel');
  const lists = chain.map((t) => tokenize(t.inner, doc.file, t.line, modeOf(t)));
  const out = fn(lists, encode).map(renderTokens);
  let d = doc;
  const drop: number[] = [];
  for (let k = chain.length - 1; k >= 0; k--) {
    const t = chain[k];
    const inner = out[k];
    if (inner === t.inner) continue;
    if (!adding && endsWithMark(t.raw) && inner.trim() === '') {
      drop.push(t.index);
      continue;
    }
    let word: string;
    if (t.style === 'double') word = `"${inner}"`;
    else if (t.style === 'single') word = `'${inner}'`;
    else if (t.style === 'empty' || /[^A-Za-z0-9_.,:=/+@%$-]/.test(inner)) word = inner === '' ? '' : `"${inner}"`;
    else word = inner;
    d = replaceStatement(d, t.index, t.raw.slice(0, t.start) + word + t.raw.slice(t.end));
  }
  return drop.length > 0 ? removeStatements(d, drop) : d;
}

export function addKernelArgs(doc: GrubDefaultDoc, args: readonly string[], opts: { key?: GrubCmdlineKey } = {}): GrubDefaultDoc {
  validateArgs(args);
  return edit(doc, opts.key ?? DEFAULT_KEY, (lists, encode) => addArgTokens(lists, args, encode), args, true);
}

export function removeKernelArgs(doc: GrubDefaultDoc, specs: readonly string[], opts: { key?: GrubCmdlineKey } = {}): GrubDefaultDoc {
  return edit(doc, opts.key ?? DEFAULT_KEY, (lists) => removeArgTokens(lists, specs), specs, false);
}

/** Content of the vfiokit-owned drop-in that appends args to the key. */
export function renderDropIn(args: readonly string[], opts: { key?: GrubCmdlineKey } = {}): string {
  if (args.length === 0) throw badArgument('renderDropIn needs at least one kernel argument');
  validateArgs(args);
  const key = opts.key ?? DEFAULT_KEY;
  return [
    ...ownedHeader(`kernel arguments for VFIO passthrough (${key})`),
    `${key}="$${key} ${args.map(doubleQuoteEscape).join(' ')}"`,
    '',
  ].join('\n');
}
