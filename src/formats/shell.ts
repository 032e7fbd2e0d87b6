// Static, lossless parser for shell-sourced configuration files (/etc/default/grub,
// dracut.conf.d, mkinitcpio.conf, /etc/default/limine). Never executes anything.
//
// API
//   parseShell(text, file) -> ShellDoc     statements (blank/comment/assign/other), exact text
//   renderShell(doc) -> string              renderShell(parseShell(x)) === x
//   evalWord(word, env) -> {value} | {reason}   static value of a word or why it is dynamic
//   evaluate(doc, env?) -> Map<name, ShellValue> final values after the whole file, in order
//   lastAssignment(doc, name) -> index | -1; dynamicReason(doc, name, fromIndex) -> reason | null
//   replaceStatement(doc, index, raw) / insertStatements(doc, index, raws) / removeStatements(doc, idx[])
//     text-level edits that re-parse the result (the document is always consistent)
//
// A statement is one logical line: physical lines joined by `\`-newline, quotes or an
// open array `NAME=( ... )`. Assignments: `[export ]NAME[+]=word`, `NAME[idx][+]=word`,
// `NAME[+]=( words )`. Words may mix '...', "...", bare text, `$VAR`/`${VAR}` (static) and
// `$(...)`, backticks, `${VAR:-x}`, `$1`... (dynamic). Anything else is an `other` statement,
// passed through; names it mentions (or any name, for `.`/`source`) become dynamic.
// Unterminated quotes, `$(`, `${` or arrays throw FileFormatError(file, line).

import { FileFormatError } from '../errors.js';
import { lineOfOffset, rejectCarriageReturns } from './common.js';

type ShellPart = { kind: 'lit'; text: string } | { kind: 'var'; name: string } | { kind: 'dyn'; text: string };

interface ShellWord {
  /** Offsets within the statement's raw text. */
  start: number;
  end: number;
  raw: string;
  parts: ShellPart[];
  /** double/single: the word is exactly one "..."/'...' string; none: bare text without quotes or backslashes. */
  style: 'double' | 'single' | 'none' | 'empty' | 'mixed';
}

interface ShellAssign {
  name: string;
  /** `NAME[idx]=`: the index with quotes removed, else null. */
  index: string | null;
  append: boolean;
  exported: boolean;
  scalar: ShellWord | null;
  array: { open: number; close: number; items: ShellWord[] } | null;
}

export interface ShellStatement {
  kind: 'blank' | 'comment' | 'assign' | 'other';
  raw: string;
  /** 1-based line of the statement's first character. */
  line: number;
  assign?: ShellAssign;
  /** Offset of a trailing `#` comment in raw, or -1. */
  commentAt: number;
  /** Inside if/for/while/case/{ } (assignments there are conditional). */
  nested: boolean;
  /** `.`/`source`: may change any variable. */
  sources: boolean;
}

export interface ShellDoc {
  file: string;
  statements: ShellStatement[];
  trailingNewline: boolean;
}

export type ShellValue =
  | { kind: 'scalar'; value: string; line: number }
  | { kind: 'array'; items: string[]; line: number }
  | { kind: 'dynamic'; reason: string; line: number };

const OPS = ';&|<>()';
const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*/;
const ASSIGN_RE = /([A-Za-z_][A-Za-z0-9_]*)(\[([^\]\n]*)\])?(\+?)=/y;

// Character classes by code (one table lookup per character instead of string searches).
const C_BLANK = 1; // space, tab
const C_NL = 2;
const C_OP = 4; // ; & | < > ( )
const C_SPECIAL = 8; // \ ' " $ `: starts something inside a bare word
const C_DQ_SPECIAL = 16; // " \ $ `: ends a run inside "..."
const C_NAME_START = 32;
const CLASS = new Uint8Array(128);
for (const c of ' \t') CLASS[c.charCodeAt(0)] |= C_BLANK;
CLASS[10] |= C_NL;
for (const c of OPS) CLASS[c.charCodeAt(0)] |= C_OP;
for (const c of '\\\'"$`') CLASS[c.charCodeAt(0)] |= C_SPECIAL;
for (const c of '"\\$`') CLASS[c.charCodeAt(0)] |= C_DQ_SPECIAL;
for (let k = 0; k < 128; k++) if ((k >= 65 && k <= 90) || (k >= 97 && k <= 122) || k === 95) CLASS[k] |= C_NAME_START;
const cls = (code: number) => (code < 128 ? CLASS[code]! : 0);
/** A bare word ends at a blank, a newline or an operator. */
const WORD_END = C_BLANK | C_NL | C_OP;

// What a word's quoting used (styleOf reads them).
const Q_BACKSLASH = 1;
const Q_SINGLE = 2;
const Q_DOUBLE = 4;
const Q_EXPANSION = 8;

/**
 * A word that is one literal: bare plain text, or one "..." / '...' string
 * with nothing to expand or escape inside. Its one literal part is made when
 * asked for (a document of many such words keeps one object per word instead
 * of three).
 */
class LiteralWord implements ShellWord {
  constructor(
    readonly start: number,
    readonly end: number,
    readonly raw: string,
    readonly style: 'none' | 'double' | 'single',
  ) {}

  get parts(): ShellPart[] {
    const text = this.style === 'none' ? this.raw : this.raw.slice(1, -1);
    return text === '' ? [] : [{ kind: 'lit', text }];
  }
}

/** Adds literal text to a word's parts, merged with a literal before it. */
function pushLit(parts: ShellPart[], s: string): void {
  if (s === '') return;
  const last = parts[parts.length - 1];
  if (last && last.kind === 'lit') last.text += s;
  else parts.push({ kind: 'lit', text: s });
}

class Lexer {
  /** Set by word(): where the word ended and the quoting it used. */
  end = 0;
  quoted = 0;

  constructor(
    readonly text: string,
    readonly file: string,
  ) {}

  fail(pos: number, message: string, hint?: string): never {
    throw new FileFormatError(this.file, lineOfOffset(this.text, pos), message, hint);
  }

  /** Read a word starting at i; stops at unquoted blank, newline or operator. Plain runs are sliced whole. */
  word(i: number): ShellPart[] {
    const t = this.text;
    const n = t.length;
    const parts: ShellPart[] = [];
    let quoted = 0;
    while (i < n) {
      const code = t.charCodeAt(i);
      const k = cls(code);
      if (k & WORD_END) break;
      if (!(k & C_SPECIAL)) {
        let j = i + 1;
        while (j < n && !(cls(t.charCodeAt(j)) & (WORD_END | C_SPECIAL))) j++;
        pushLit(parts, t.slice(i, j));
        i = j;
        continue;
      }
      const c = t[i];
      if (c === '\\') {
        quoted |= Q_BACKSLASH;
        if (t[i + 1] === '\n') {
          i += 2;
          continue;
        }
        if (i + 1 >= n) {
          pushLit(parts, '\\');
          i++;
          continue;
        }
        pushLit(parts, t[i + 1]!);
        i += 2;
      } else if (c === "'") {
        quoted |= Q_SINGLE;
        const j = t.indexOf("'", i + 1);
        if (j < 0) this.fail(i, 'unterminated single quote', "add the closing ' (the file would not be read by the shell either)");
        pushLit(parts, t.slice(i + 1, j));
        i = j + 1;
      } else if (c === '"') {
        quoted |= Q_DOUBLE;
        const open = i;
        i++;
        for (;;) {
          if (i >= n) this.fail(open, 'unterminated double quote', 'add the closing " (the file would not be read by the shell either)');
          if (!(cls(t.charCodeAt(i)) & C_DQ_SPECIAL)) {
            let j = i + 1;
            while (j < n && !(cls(t.charCodeAt(j)) & C_DQ_SPECIAL)) j++;
            pushLit(parts, t.slice(i, j));
            i = j;
            continue;
          }
          const d = t[i];
          if (d === '"') {
            i++;
            break;
          }
          if (d === '\\') {
            const e = t[i + 1];
            if (e === '\n') i += 2;
            else if (e !== undefined && '$`"\\'.includes(e)) {
              pushLit(parts, e);
              i += 2;
            } else {
              pushLit(parts, '\\');
              i++;
            }
          } else if (d === '$') i = this.dollar(i, parts);
          else i = this.backtick(i, parts);
        }
      } else if (c === '$') {
        quoted |= Q_EXPANSION;
        i = this.dollar(i, parts);
      } else {
        i = this.backtick(i, parts);
      }
    }
    this.end = i;
    this.quoted = quoted;
    return parts;
  }

  /** A word as the document keeps it (offsets relative to the statement at `base`). */
  shellWord(i: number, base: number): ShellWord {
    const t = this.text;
    const n = t.length;
    // The common case, a bare word of plain text (HOOKS=(base udev …) items, TIMEOUT=5): no parts kept.
    const ends = (k: number) => k >= n || (cls(t.charCodeAt(k)) & WORD_END) !== 0;
    const q = t.charCodeAt(i);
    if (q === 34 || q === 39) {
      // "..." without " \ $ ` inside, or '...': then the word must end.
      let j = i + 1;
      if (q === 34) while (j < n && !(cls(t.charCodeAt(j)) & C_DQ_SPECIAL)) j++;
      else j = t.indexOf("'", j);
      if (j >= 0 && j < n && t.charCodeAt(j) === q && ends(j + 1)) return new LiteralWord(i - base, j + 1 - base, t.slice(i, j + 1), q === 34 ? 'double' : 'single');
    } else {
      let j = i;
      while (j < n && !(cls(t.charCodeAt(j)) & (WORD_END | C_SPECIAL))) j++;
      if (j > i && ends(j)) return new LiteralWord(i - base, j - base, t.slice(i, j), 'none');
    }
    const parts = this.word(i);
    const end = this.end;
    const raw = t.slice(i, end);
    return { start: i - base, end: end - base, raw, parts, style: styleOf(raw, this.quoted) };
  }

  dollar(i: number, parts: ShellPart[]): number {
    const t = this.text;
    const next = t[i + 1];
    if (next === '{') {
      const j = t.indexOf('}', i + 2);
      if (j < 0) this.fail(i, 'unterminated ${ expansion', 'add the closing }');
      const inner = t.slice(i + 2, j);
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner)) parts.push({ kind: 'var', name: inner });
      else parts.push({ kind: 'dyn', text: t.slice(i, j + 1) });
      return j + 1;
    }
    if (next === '(') {
      let depth = 0;
      let j = i + 1;
      for (; j < t.length; j++) {
        const c = t[j];
        if (c === '\\') j++;
        else if (c === "'") {
          const k = t.indexOf("'", j + 1);
          if (k < 0) break;
          j = k;
        } else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) break;
      }
      if (j >= t.length) this.fail(i, 'unterminated $( command substitution', 'add the closing )');
      parts.push({ kind: 'dyn', text: t.slice(i, j + 1) });
      return j + 1;
    }
    const m = NAME_RE.exec(t.slice(i + 1, i + 200));
    if (m) {
      parts.push({ kind: 'var', name: m[0] });
      return i + 1 + m[0].length;
    }
    if (next !== undefined && /[0-9@*#?$!-]/.test(next)) {
      parts.push({ kind: 'dyn', text: '$' + next });
      return i + 2;
    }
    pushLit(parts, '$');
    return i + 1;
  }

  backtick(i: number, parts: ShellPart[]): number {
    const t = this.text;
    let j = i + 1;
    while (j < t.length && t[j] !== '`') j += t[j] === '\\' ? 2 : 1;
    if (j >= t.length) this.fail(i, 'unterminated ` command substitution', 'add the closing `');
    parts.push({ kind: 'dyn', text: t.slice(i, j + 1) });
    return j + 1;
  }
}

function styleOf(raw: string, quoted: number): ShellWord['style'] {
  if (raw === '') return 'empty';
  if (quoted & Q_BACKSLASH) return 'mixed';
  if (!(quoted & (Q_SINGLE | Q_DOUBLE))) return 'none';
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') && quoted & Q_DOUBLE && !(quoted & Q_SINGLE)) {
    // exactly one "..." string: no unescaped quote inside
    if (!/(^|[^\\])(\\\\)*"/.test(raw.slice(1, -1))) return 'double';
  }
  if (raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'") && !raw.slice(1, -1).includes("'")) return 'single';
  return 'mixed';
}

const OPEN_KW = new Set(['if', 'for', 'while', 'until', 'case', '{']);
const CLOSE_KW = new Set(['fi', 'done', 'esac', '}']);

export function parseShell(text: string, file: string): ShellDoc {
  rejectCarriageReturns(text, file);
  const trailingNewline = text.endsWith('\n');
  const body = trailingNewline ? text.slice(0, -1) : text;
  const statements: ShellStatement[] = [];
  if (text === '') return { file, statements, trailingNewline: false };
  const lx = new Lexer(body, file);
  const n = body.length;
  let pos = 0;
  let depth = 0;
  // Line numbers are counted incrementally (one pass over the text, not one per statement).
  let lineNo = 1;
  let lineScanned = 0;
  for (;;) {
    const start = pos;
    for (; lineScanned < start; lineScanned++) if (body.charCodeAt(lineScanned) === 10) lineNo++;
    let i = pos;
    /** The statement's words, raw (an assignment counts as one). */
    const words: string[] = [];
    let commentAt = -1;
    let sawOp = false;
    let assign: ShellAssign | undefined;
    let assignOk = true;
    let firstWordIsExport = false;
    while (i < n) {
      const code = body.charCodeAt(i);
      if (code === 10) break;
      const k = cls(code);
      if (k & C_BLANK) {
        i++;
        continue;
      }
      if (code === 92 && body.charCodeAt(i + 1) === 10) {
        i += 2;
        continue;
      }
      if (code === 35) {
        commentAt = i - start;
        const nl = body.indexOf('\n', i);
        i = nl < 0 ? n : nl;
        break;
      }
      if (k & C_OP) {
        const c = body[i];
        // a lone trailing `;` after an assignment is fine
        if (!(c === ';' && assign && !sawOp)) assignOk = false;
        sawOp = true;
        i++;
        continue;
      }
      // a word; maybe an assignment
      const isCommandPos = words.length === 0 || (words.length === 1 && firstWordIsExport && !assign);
      let m: RegExpExecArray | null = null;
      if (isCommandPos && !assign && k & C_NAME_START) {
        ASSIGN_RE.lastIndex = i;
        m = ASSIGN_RE.exec(body);
      }
      if (m) {
        const exported = words.length === 1;
        const vstart = i + m[0].length;
        const a: ShellAssign = {
          name: m[1],
          index: m[2] !== undefined ? (/["']/.test(m[3]!) ? m[3]!.replace(/["']/g, '') : m[3]!) : null,
          append: m[4] === '+',
          exported,
          scalar: null,
          array: null,
        };
        if (body[vstart] === '(') {
          const items: ShellWord[] = [];
          let j = vstart + 1;
          for (;;) {
            if (j >= n) lx.fail(vstart, `unterminated array ${m[1]}=( (missing ")")`, 'add the closing )');
            const dc = body.charCodeAt(j);
            const dk = cls(dc);
            if (dk & (C_BLANK | C_NL)) j++;
            else if (dc === 92 && body.charCodeAt(j + 1) === 10) j += 2;
            else if (dc === 35) {
              const nl = body.indexOf('\n', j);
              j = nl < 0 ? n : nl;
            } else if (dc === 41) break;
            else if (dk & C_OP) lx.fail(j, `unexpected ${JSON.stringify(body[j])} inside array ${m[1]}=( ... )`, 'quote the item or remove the character');
            else {
              const w = lx.shellWord(j, start);
              items.push(w);
              j = w.end + start;
            }
          }
          a.array = { open: vstart - start, close: j - start, items };
          i = j + 1;
        } else {
          a.scalar = lx.shellWord(vstart, start);
          i = a.scalar.end + start;
        }
        assign = a;
        words.push(''); // an assignment: never a keyword or `.`/`source`
        continue;
      }
      lx.word(i);
      const wordEnd = lx.end;
      const raw = body.slice(i, wordEnd);
      if (words.length === 0 && raw === 'export') firstWordIsExport = true;
      else assignOk = false;
      words.push(raw);
      i = wordEnd;
    }
    const raw = body.slice(start, i);
    const line = lineNo;
    let kind: ShellStatement['kind'];
    if (words.length === 0 && !sawOp) kind = commentAt >= 0 ? 'comment' : 'blank';
    else if (assign && assignOk) kind = 'assign';
    else kind = 'other';
    let opens = 0;
    let closes = 0;
    if (kind !== 'assign')
      for (const w of words) {
        if (OPEN_KW.has(w)) opens++;
        else if (CLOSE_KW.has(w)) closes++;
      }
    const nested = depth > 0 || (opens > 0 && kind === 'other');
    depth = Math.max(0, depth + opens - closes);
    statements.push({
      kind,
      raw,
      line,
      assign: kind === 'assign' ? assign : undefined,
      commentAt,
      nested,
      sources: kind === 'other' && (words[0] === '.' || words[0] === 'source'),
    });
    if (i >= n) break;
    pos = i + 1; // skip the newline
  }
  return { file, statements, trailingNewline };
}

export function renderShell(doc: ShellDoc): string {
  if (doc.statements.length === 0) return '';
  return doc.statements.map((s) => s.raw).join('\n') + (doc.trailingNewline ? '\n' : '');
}

export function evalWord(word: ShellWord, env: ReadonlyMap<string, ShellValue>): { value: string } | { reason: string } {
  let value = '';
  for (const p of word.parts) {
    if (p.kind === 'lit') value += p.text;
    else if (p.kind === 'dyn') return { reason: `uses ${p.text}, which vfiokit does not evaluate` };
    else {
      const v = env.get(p.name);
      if (!v) continue; // unset: expands to nothing
      if (v.kind === 'dynamic') return { reason: `refers to $${p.name}, which is not static (${v.reason})` };
      value += v.kind === 'scalar' ? v.value : v.items[0] ?? '';
    }
  }
  return { value };
}

function varKey(a: ShellAssign): string {
  return a.index === null ? a.name : `${a.name}[${a.index}]`;
}

function mentions(raw: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_])${name}([^A-Za-z0-9_]|$)`).test(raw);
}

/** Final variable values after running the file statically; `env` seeds earlier files. */
export function evaluate(doc: ShellDoc, env: ReadonlyMap<string, ShellValue> = new Map()): Map<string, ShellValue> {
  const vars = new Map(env);
  for (const s of doc.statements) {
    if (s.kind === 'other') {
      if (s.sources) {
        for (const k of vars.keys()) vars.set(k, { kind: 'dynamic', reason: `line ${s.line} sources another file`, line: s.line });
        vars.set('*', { kind: 'dynamic', reason: `line ${s.line} sources another file`, line: s.line });
        continue;
      }
      const dyn: ShellValue = { kind: 'dynamic', reason: `line ${s.line} is not a plain assignment but mentions it`, line: s.line };
      for (const m of s.raw.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
        const name = m[0];
        for (const k of [...vars.keys()]) if (k === name || k.startsWith(name + '[')) vars.set(k, dyn);
        // a configuration-style name the line may set without a static assignment before it
        if (/^[A-Z][A-Z0-9_]*$/.test(name) && !vars.has(name)) vars.set(name, dyn);
      }
      continue;
    }
    if (s.kind !== 'assign' || !s.assign) continue;
    const a = s.assign;
    const key = varKey(a);
    if (s.nested) {
      vars.set(key, { kind: 'dynamic', reason: `line ${s.line} assigns it inside a conditional or loop`, line: s.line });
      continue;
    }
    const prev = vars.get(key);
    if (a.append && prev?.kind === 'dynamic') continue;
    if (a.array) {
      const items: string[] = [];
      let dyn: string | null = null;
      for (const w of a.array.items) {
        const r = evalWord(w, vars);
        if ('reason' in r) {
          dyn = r.reason;
          break;
        }
        items.push(r.value);
      }
      if (dyn !== null) vars.set(key, { kind: 'dynamic', reason: `line ${s.line} ${dyn}`, line: s.line });
      else if (a.append && prev && prev.kind !== 'dynamic')
        vars.set(key, { kind: 'array', items: [...(prev.kind === 'array' ? prev.items : [prev.value]), ...items], line: s.line });
      else vars.set(key, { kind: 'array', items, line: s.line });
      continue;
    }
    const r = a.scalar ? evalWord(a.scalar, vars) : { value: '' };
    if ('reason' in r) vars.set(key, { kind: 'dynamic', reason: `line ${s.line} ${r.reason}`, line: s.line });
    else if (a.append && prev?.kind === 'array') vars.set(key, { kind: 'array', items: [prev.items[0] + r.value, ...prev.items.slice(1)], line: s.line });
    else if (a.append && prev?.kind === 'scalar') vars.set(key, { kind: 'scalar', value: prev.value + r.value, line: s.line });
    else vars.set(key, { kind: 'scalar', value: r.value, line: s.line });
  }
  vars.delete('*');
  return vars;
}

/** Why the value of name cannot be edited statically from statement `from` on, or null. */
export function dynamicReason(doc: ShellDoc, name: string, from: number): string | null {
  for (let i = Math.max(0, from); i < doc.statements.length; i++) {
    const s = doc.statements[i];
    if (s.kind === 'other' && (s.sources || mentions(s.raw, name))) return `line ${s.line} (${s.raw.trim().slice(0, 60)}) may change ${name}`;
    if (s.kind === 'assign' && s.assign?.name === name && s.nested) return `line ${s.line} assigns ${name} inside a conditional or loop`;
  }
  return null;
}

export function replaceStatement(doc: ShellDoc, index: number, raw: string): ShellDoc {
  const raws = doc.statements.map((s) => s.raw);
  raws[index] = raw;
  return reparse(doc, raws, doc.trailingNewline);
}

export function insertStatements(doc: ShellDoc, index: number, raws: readonly string[]): ShellDoc {
  const all = doc.statements.map((s) => s.raw);
  const wasEmpty = all.length === 0;
  all.splice(index, 0, ...raws);
  return reparse(doc, all, wasEmpty ? true : doc.trailingNewline);
}

export function removeStatements(doc: ShellDoc, indexes: readonly number[]): ShellDoc {
  const drop = new Set(indexes);
  return reparse(
    doc,
    doc.statements.filter((_, i) => !drop.has(i)).map((s) => s.raw),
    doc.trailingNewline,
  );
}

function reparse(doc: ShellDoc, raws: string[], trailingNewline: boolean): ShellDoc {
  if (raws.length === 0) return { file: doc.file, statements: [], trailingNewline: false };
  return parseShell(raws.join('\n') + (trailingNewline ? '\n' : ''), doc.file);
}

/** Quote a value for a shell "..." string. */
export function doubleQuoteEscape(s: string): string {
  return s.replace(/[\\"$`]/g, (c) => '\\' + c);
}

/** True when the statement ends with the exact vfiokit marker comment. */
export function endsWithMark(raw: string): boolean {
  return /\s# vfiokit$/.test(raw);
}
