// Kernel command line: lossless tokeniser and key-aware argument edits.
//
// Used directly for a bare command line (/proc/cmdline, /etc/kernel/cmdline) and, through the
// token-level functions, by every format that embeds one (GRUB values, BLS `options`,
// rEFInd strings, Limine `cmdline:`, kernelstub lists).
//
// API
//   parse(text, file?) -> KernelCmdline        tokens of args and whitespace, exact
//   render(doc) -> string                       render(parse(x)) === x
//   kernelArgs(doc) -> KernelArg[]              args before `--` (the kernel's)
//   initArgs(doc) -> string[]                   args after `--` (passed to init, never edited)
//   addKernelArgs(doc, args) -> KernelCmdline   idempotent; see "Edit rules"
//   removeKernelArgs(doc, specs) -> KernelCmdline
//   Token level (for embedding formats):
//   tokenize(text, file, firstLine?, mode?) -> CmdlineToken[]
//   renderTokens(tokens) -> string
//   addArgTokens(lists, args, encode?) -> lists  (several lists = one command line, e.g. repeated
//   removeArgTokens(lists, specs) -> lists        BLS `options` lines; appends go to the last list)
//   parseArg(raw) -> { key, value }; sameKey(a, b); validateArgs(args)
//
// Edit rules
//   * `key=value`: an arg replaces that key's value. If every existing occurrence already has
//     the value nothing changes; otherwise the first occurrence is rewritten in place and later
//     duplicates of the key are removed. Keys compare with '-' == '_' (as the kernel does).
//   * bare flag (`quiet`): added when absent.
//   * keys that are legitimately repeated (rd.driver.pre, console, video, ...) are added when
//     that exact arg is absent and never collapse other occurrences.
//   * new args go after the last kernel arg, before a `--` separator; args after `--` belong to
//     init and are never matched, replaced or removed.
//   * removal spec `key` removes every occurrence of key; `key=value` only that exact value.
//     Removing an arg takes one adjoining whitespace run with it; other spacing is kept.
//   * An unterminated quote throws FileFormatError(file, line).

import { FileFormatError } from '../errors.js';
import { badArgument, rejectCarriageReturns } from './common.js';

export interface CmdlineToken {
  kind: 'space' | 'arg';
  text: string;
}

export interface KernelCmdline {
  file: string;
  tokens: CmdlineToken[];
}

export interface KernelArg {
  key: string;
  value: string | null;
  raw: string;
}

/**
 * How quotes are written around the command line text:
 *  kernel       - plain command line; `"` groups (the kernel's own rule)
 *  shell-double - inner text of a shell "..." string: `\"` is a kernel quote, `\x` an escape,
 *                 `'...'` groups (grub.cfg quoting)
 *  shell-single - inner text of a shell '...' string: `"` groups, backslash is literal
 */
export type QuoteMode = 'kernel' | 'shell-double' | 'shell-single';

const SPACE = /[ \t\n]/;

/** Keys that may legitimately appear several times with different values. */
const REPEATABLE = new Set(
  ['rd.driver.pre', 'rd.driver.post', 'rd.driver.blacklist', 'modprobe.blacklist', 'console', 'video', 'initcall_blacklist', 'rd.luks.uuid', 'rd.lvm.lv', 'rd.md.uuid', 'ip'].map(
    normKey,
  ),
);

function normKey(key: string): string {
  return key.replace(/-/g, '_');
}

export function sameKey(a: string, b: string): boolean {
  return normKey(a) === normKey(b);
}

export function tokenize(text: string, file: string, firstLine = 1, mode: QuoteMode = 'kernel'): CmdlineToken[] {
  const tokens: CmdlineToken[] = [];
  const n = text.length;
  let i = 0;
  // in a shell "..." string a backslash-newline is a line continuation: whitespace here
  const spaceAt = (k: number): number => (SPACE.test(text[k]) ? 1 : mode === 'shell-double' && text[k] === '\\' && text[k + 1] === '\n' ? 2 : 0);
  while (i < n) {
    if (spaceAt(i) > 0) {
      let j = i;
      while (j < n && spaceAt(j) > 0) j += spaceAt(j);
      tokens.push({ kind: 'space', text: text.slice(i, j) });
      i = j;
      continue;
    }
    let j = i;
    let dq = false;
    let sq = false;
    let openAt = -1;
    while (j < n) {
      const c = text[j];
      if (!dq && !sq && spaceAt(j) > 0) break;
      if (mode === 'shell-double' && c === '\\' && j + 1 < n) {
        if (text[j + 1] === '"' && !sq) {
          dq = !dq;
          openAt = j;
        }
        j += 2;
        continue;
      }
      if (mode !== 'shell-double' && c === '"' && !sq) {
        dq = !dq;
        openAt = j;
      } else if (mode !== 'kernel' && c === "'" && !dq) {
        sq = !sq;
        openAt = j;
      }
      j++;
    }
    if (dq || sq) {
      let line = firstLine;
      for (let k = 0; k < openAt; k++) if (text[k] === '\n') line++;
      throw new FileFormatError(
        file,
        line,
        `unterminated ${dq ? 'double' : 'single'} quote in kernel command line argument ${JSON.stringify(text.slice(i, Math.min(n, i + 40)))}`,
        'close the quote or remove it; vfiokit does not guess where an argument ends',
      );
    }
    tokens.push({ kind: 'arg', text: text.slice(i, j) });
    i = j;
  }
  return tokens;
}

export function renderTokens(tokens: readonly CmdlineToken[]): string {
  let s = '';
  for (const t of tokens) s += t.text;
  return s;
}

function unquote(v: string): string {
  if (v.length >= 4 && v.startsWith('\\"') && v.endsWith('\\"')) return v.slice(2, -2);
  if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) return v.slice(1, -1);
  return v;
}

/** Split one raw argument into key and value (value null for a bare flag). */
export function parseArg(raw: string): { key: string; value: string | null } {
  // the kernel also accepts a wholly quoted argument: "key=value with spaces"
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) raw = raw.slice(1, -1);
  else if (raw.length >= 4 && raw.startsWith('\\"') && raw.endsWith('\\"')) raw = raw.slice(2, -2);
  const eq = raw.indexOf('=');
  if (eq < 0) return { key: raw.replace(/["'\\]/g, ''), value: null };
  return { key: raw.slice(0, eq).replace(/["'\\]/g, ''), value: unquote(raw.slice(eq + 1)) };
}

/** Args given by the caller must be single, well-formed kernel arguments. */
export function validateArgs(args: readonly string[]): void {
  for (const a of args) {
    if (a === '' || a === '--') throw badArgument(`not a kernel argument: ${JSON.stringify(a)}`);
    if (/[\n\r]/.test(a)) throw badArgument(`kernel argument contains a newline: ${JSON.stringify(a)}`);
    let toks: CmdlineToken[];
    try {
      toks = tokenize(a, '<argument>');
    } catch {
      throw badArgument(`kernel argument has an unterminated quote: ${JSON.stringify(a)}`);
    }
    if (toks.length !== 1 || toks[0].kind !== 'arg') throw badArgument(`not a single kernel argument: ${JSON.stringify(a)}`);
  }
}

function separatorIndex(tokens: readonly CmdlineToken[]): number {
  const i = tokens.findIndex((t) => t.kind === 'arg' && t.text === '--');
  return i < 0 ? tokens.length : i;
}

function removeAt(tokens: CmdlineToken[], i: number): void {
  const argBefore = tokens.slice(0, i).some((t) => t.kind === 'arg');
  const argAfter = tokens.slice(i + 1).some((t) => t.kind === 'arg');
  if (i > 0 && tokens[i - 1].kind === 'space' && argBefore) tokens.splice(i - 1, 2);
  else if (tokens[i + 1]?.kind === 'space' && argAfter) tokens.splice(i, 2);
  else tokens.splice(i, 1);
}

function insertArg(tokens: CmdlineToken[], text: string): void {
  const sep = separatorIndex(tokens);
  let last = -1;
  for (let i = 0; i < sep; i++) if (tokens[i].kind === 'arg') last = i;
  const arg: CmdlineToken = { kind: 'arg', text };
  if (last >= 0) tokens.splice(last + 1, 0, { kind: 'space', text: ' ' }, arg);
  else if (sep < tokens.length) tokens.splice(sep, 0, arg, { kind: 'space', text: ' ' });
  else tokens.splice(0, 0, arg);
}

function sameValue(a: string | null, b: string | null): boolean {
  return a === b;
}

/**
 * Add args to a command line split over several token lists (one list for most formats).
 * `encode` turns an argument into the text stored in the container (shell escaping etc.).
 */
export function addArgTokens(
  lists: readonly (readonly CmdlineToken[])[],
  args: readonly string[],
  encode: (arg: string) => string = (a) => a,
): CmdlineToken[][] {
  if (lists.length === 0) throw badArgument('addArgTokens needs at least one token list');
  validateArgs(args);
  const out = lists.map((l) => l.map((t) => ({ ...t })));
  for (const a of args) {
    const want = parseArg(a);
    const occ: { list: CmdlineToken[]; tok: CmdlineToken; value: string | null; raw: string }[] = [];
    for (const list of out) {
      const sep = separatorIndex(list);
      for (let i = 0; i < sep; i++) {
        const t = list[i];
        if (t.kind !== 'arg') continue;
        const got = parseArg(t.text);
        if (sameKey(got.key, want.key)) occ.push({ list, tok: t, value: got.value, raw: t.text });
      }
    }
    if (REPEATABLE.has(normKey(want.key))) {
      if (!occ.some((o) => sameValue(o.value, want.value))) insertArg(out[out.length - 1], encode(a));
      continue;
    }
    if (occ.length === 0) {
      insertArg(out[out.length - 1], encode(a));
      continue;
    }
    if (occ.every((o) => sameValue(o.value, want.value))) continue;
    occ[0].tok.text = encode(a);
    for (const o of occ.slice(1)) removeAt(o.list, o.list.indexOf(o.tok));
  }
  return out;
}

/** Remove args (`key` = any value, `key=value` = that value only) before `--`. */
export function removeArgTokens(lists: readonly (readonly CmdlineToken[])[], specs: readonly string[]): CmdlineToken[][] {
  const wanted = specs.map((s) => {
    if (s === '' || /\s/.test(s)) throw badArgument(`not a kernel argument to remove: ${JSON.stringify(s)}`);
    return parseArg(s);
  });
  return lists.map((l) => {
    const list = l.map((t) => ({ ...t }));
    const doomed = list.slice(0, separatorIndex(list)).filter((t) => {
      if (t.kind !== 'arg') return false;
      const got = parseArg(t.text);
      return wanted.some((w) => sameKey(w.key, got.key) && (w.value === null || w.value === got.value));
    });
    for (const t of doomed.reverse()) removeAt(list, list.indexOf(t));
    return list;
  });
}

export function argsOf(tokens: readonly CmdlineToken[]): KernelArg[] {
  const sep = separatorIndex(tokens);
  return tokens
    .slice(0, sep)
    .filter((t) => t.kind === 'arg')
    .map((t) => ({ ...parseArg(t.text), raw: t.text }));
}

// ---- document level -------------------------------------------------------------------------

export function parse(text: string, file = 'kernel command line'): KernelCmdline {
  rejectCarriageReturns(text, file);
  return { file, tokens: tokenize(text, file) };
}

export function render(doc: KernelCmdline): string {
  return renderTokens(doc.tokens);
}

export function kernelArgs(doc: KernelCmdline): KernelArg[] {
  return argsOf(doc.tokens);
}

export function initArgs(doc: KernelCmdline): string[] {
  const sep = separatorIndex(doc.tokens);
  return doc.tokens.slice(sep + 1).filter((t) => t.kind === 'arg').map((t) => t.text);
}

export function addKernelArgs(doc: KernelCmdline, args: readonly string[]): KernelCmdline {
  return { file: doc.file, tokens: addArgTokens([doc.tokens], args)[0] };
}

export function removeKernelArgs(doc: KernelCmdline, specs: readonly string[]): KernelCmdline {
  return { file: doc.file, tokens: removeArgTokens([doc.tokens], specs)[0] };
}
