// /etc/kernelstub/configuration (Pop!_OS): JSON written by kernelstub (Python json, indent 2).
//
// API
//   parse(text, file?) -> KernelstubDoc           keeps the original text; validates the shape
//   render(doc) -> string                          the original text until an edit changes the
//                                                  value; then the value re-serialised in the
//                                                  file's own style (indent and trailing newline
//                                                  as found, Python separators, ASCII escapes)
//   kernelOptions(doc) -> string[]                 user.kernel_options
//   addKernelArgs(doc, args) -> doc                idempotent (kernel-cmdline.ts edit rules)
//   removeKernelArgs(doc, specs) -> doc
//
// Invalid JSON, or a `user` object whose kernel_options is not a list of strings, throws
// FileFormatError(file, line). An edit that changes nothing returns the same document (same
// text).

import { FileFormatError } from '../errors.js';
import { lineOfOffset, rejectCarriageReturns } from './common.js';
import { addArgTokens, type CmdlineToken, removeArgTokens, validateArgs } from './kernel-cmdline.js';
import { KERNELSTUB_CONFIG } from '../model/config-paths.js';

export const PATH = KERNELSTUB_CONFIG;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

interface KernelstubDoc {
  file: string;
  text: string;
  value: { [k: string]: Json };
  style: { indent: string; trailingNewline: boolean };
}

function keyLine(text: string, key: string): number {
  const i = text.indexOf(`"${key}"`);
  return i < 0 ? 1 : lineOfOffset(text, i);
}

/** Strict JSON (RFC 8259) reader that reports where the text stops being JSON. */
function readJson(text: string, file: string): Json {
  let i = 0;
  const fail = (what: string): never => {
    const line = lineOfOffset(text, i);
    const col = i - text.lastIndexOf('\n', i - 1);
    const found = i >= text.length ? 'end of file' : JSON.stringify(text[i]);
    throw new FileFormatError(file, line, `invalid JSON at column ${col}: expected ${what}, found ${found}`, 'repair the file (kernelstub writes plain JSON, no trailing commas or comments)');
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = (): Json => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj: { [k: string]: Json } = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a "key"');
        const k = string();
        ws();
        if (text[i] !== ':') fail('":"');
        i++;
        obj[k] = value();
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return obj;
        } else fail('"," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: Json[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return arr;
        } else fail('"," or "]"');
      }
    }
    if (c === '"') return string();
    for (const [lit, v] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return v;
      }
    }
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 64));
    if (m && m[0] !== '') {
      i += m[0].length;
      return Number(m[0]);
    }
    return fail('a value');
  };
  const string = (): string => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(i));
    if (!m) fail('a valid "string"');
    i += m![0].length;
    return JSON.parse(m![0]) as string;
  };
  const v = value();
  ws();
  if (i < text.length) fail('end of file');
  return v;
}

export function parse(text: string, file = PATH): KernelstubDoc {
  rejectCarriageReturns(text, file);
  const value = readJson(text, file);
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new FileFormatError(file, 1, 'expected a JSON object with "default" and "user" sections', 'restore the file with kernelstub');
  const user = value.user;
  if (user !== undefined) {
    if (user === null || typeof user !== 'object' || Array.isArray(user)) throw new FileFormatError(file, keyLine(text, 'user'), '"user" must be an object', 'restore the file with kernelstub');
    const ko = user.kernel_options;
    if (ko !== undefined && (!Array.isArray(ko) || ko.some((x) => typeof x !== 'string')))
      throw new FileFormatError(file, keyLine(text, 'kernel_options'), '"user.kernel_options" must be a list of strings', 'restore the file with kernelstub');
  }
  const indent = /^\{\n([ \t]+)"/.exec(text)?.[1] ?? '';
  return { file, text, value, style: { indent, trailingNewline: text.endsWith('\n') } };
}

export function render(doc: KernelstubDoc): string {
  return doc.text;
}

function str(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

/** Python json.dumps(indent=...) layout; compact Python layout when indent is ''. */
function serialise(v: Json, indent: string, depth: number): string {
  if (v === null || typeof v === 'boolean' || typeof v === 'number') return JSON.stringify(v);
  if (typeof v === 'string') return str(v);
  const entries: string[] = Array.isArray(v) ? v.map((x) => serialise(x, indent, depth + 1)) : Object.entries(v).map(([k, x]) => `${str(k)}: ${serialise(x, indent, depth + 1)}`);
  const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
  if (entries.length === 0) return open + close;
  if (indent === '') return open + entries.join(', ') + close;
  const pad = indent.repeat(depth + 1);
  return `${open}\n${entries.map((e) => pad + e).join(',\n')}\n${indent.repeat(depth)}${close}`;
}

function kernelOptions(doc: KernelstubDoc): string[] {
  const user = doc.value.user as { kernel_options?: string[] } | undefined;
  return [...(user?.kernel_options ?? [])];
}

function withOptions(doc: KernelstubDoc, edit: (lists: CmdlineToken[][]) => CmdlineToken[][]): KernelstubDoc {
  const before = kernelOptions(doc);
  const tokens: CmdlineToken[] = [];
  before.forEach((o, i) => {
    if (i > 0) tokens.push({ kind: 'space', text: ' ' });
    tokens.push({ kind: 'arg', text: o });
  });
  const after = edit([tokens])[0].filter((t) => t.kind === 'arg').map((t) => t.text);
  if (after.length === before.length && after.every((o, i) => o === before[i])) return doc;
  const user = { ...((doc.value.user as { [k: string]: Json } | undefined) ?? {}), kernel_options: after };
  const value = { ...doc.value, user };
  const text = serialise(value, doc.style.indent, 0) + (doc.style.trailingNewline ? '\n' : '');
  return { ...doc, text, value };
}

export function addKernelArgs(doc: KernelstubDoc, args: readonly string[]): KernelstubDoc {
  validateArgs(args);
  return withOptions(doc, (lists) => addArgTokens(lists, args));
}

export function removeKernelArgs(doc: KernelstubDoc, specs: readonly string[]): KernelstubDoc {
  return withOptions(doc, (lists) => removeArgTokens(lists, specs));
}
