// Boot Loader Specification type #1 entries (/boot/loader/entries/*.conf, $ESP/loader/entries)
// and /etc/kernel/cmdline (kernel-install, proxmox-boot-tool: the command line on one line).
//
// API
//   parse(text, file?) -> BlsEntryDoc              lossless
//   render(doc) -> string                           render(parse(x)) === x
//   field(doc, key) -> string | null                first value of a key (title, linux, ...)
//   kernelArgs(doc) -> KernelArg[]                  all `options` lines, concatenated
//   addKernelArgs(doc, args) -> doc                 idempotent (kernel-cmdline.ts edit rules
//                                                   across all `options` lines; new args go to
//                                                   the last one)
//   removeKernelArgs(doc, specs) -> doc
//   parseCmdlineFile(text, file?) / renderCmdlineFile(doc)
//     /etc/kernel/cmdline: a kernel-cmdline.ts document; more than one non-empty line throws
//     (edit it with kernel-cmdline's addKernelArgs/removeKernelArgs)
//
// Lines are `key<blanks>value` (space or tab, kept as found), `#` comments or blank. An entry
// without an `options` line gets one (after the last key line, with the entry's separator),
// preceded by a `# vfiokit` marker line; removing every arg from it removes both lines.

import { FileFormatError } from '../errors.js';
import { joinLines, MARK, rejectCarriageReturns, splitLines } from './common.js';
import * as cmdline from './kernel-cmdline.js';
import { addArgTokens, argsOf, type CmdlineToken, type KernelArg, removeArgTokens, renderTokens, tokenize, validateArgs } from './kernel-cmdline.js';
import { KERNEL_CMDLINE_FILE } from '../model/config-paths.js';

interface BlsLine {
  kind: 'blank' | 'comment' | 'field';
  raw: string;
  line: number;
  key?: string;
  /** Offset in raw where the value starts. */
  valueAt?: number;
}

export interface BlsEntryDoc {
  file: string;
  lines: BlsLine[];
  trailingNewline: boolean;
}

export function parse(text: string, file = '/boot/loader/entries/entry.conf'): BlsEntryDoc {
  rejectCarriageReturns(text, file);
  const { lines: phys, trailingNewline } = splitLines(text);
  const lines = phys.map((raw, i): BlsLine => {
    const line = i + 1;
    if (raw.trim() === '') return { kind: 'blank', raw, line };
    if (/^\s*#/.test(raw)) return { kind: 'comment', raw, line };
    const m = /^(\s*)([A-Za-z0-9_.-]+)([ \t]*)/.exec(raw);
    if (!m || (m[3] === '' && m[0].length < raw.length))
      throw new FileFormatError(file, line, `expected "key value" (e.g. "options root=..."), found ${JSON.stringify(raw.slice(0, 60))}`, 'Boot Loader Spec keys are words made of letters, digits, "_", "-" and "."');
    return { kind: 'field', raw, line, key: m[2], valueAt: m[0].length };
  });
  return { file, lines, trailingNewline };
}

export function render(doc: BlsEntryDoc): string {
  return joinLines(
    doc.lines.map((l) => l.raw),
    doc.trailingNewline,
  );
}

export function field(doc: BlsEntryDoc, key: string): string | null {
  const l = doc.lines.find((x) => x.key === key);
  return l ? l.raw.slice(l.valueAt).trimEnd() : null;
}

function optionLines(doc: BlsEntryDoc): BlsLine[] {
  return doc.lines.filter((l) => l.key === 'options');
}

export function kernelArgs(doc: BlsEntryDoc): KernelArg[] {
  return optionLines(doc).flatMap((l) => argsOf(tokenize(l.raw.slice(l.valueAt), doc.file, l.line)));
}

function withOptions(doc: BlsEntryDoc, edit: (lists: CmdlineToken[][]) => CmdlineToken[][], adding: boolean): BlsEntryDoc {
  const raws = doc.lines.map((l) => l.raw);
  const opts = optionLines(doc);
  let created = -1;
  if (opts.length === 0) {
    if (!adding) return doc;
    const fields = doc.lines.filter((l) => l.kind === 'field');
    const sep = fields.length > 0 ? /^\s*\S+([ \t]+)/.exec(fields[0].raw)?.[1] ?? ' ' : ' ';
    const after = fields.length > 0 ? fields[fields.length - 1].line : raws.length;
    raws.splice(after, 0, MARK, `options${sep}`);
    created = after + 1;
  }
  const targets = opts.length > 0 ? opts.map((l) => ({ index: l.line - 1, valueAt: l.valueAt! })) : [{ index: created, valueAt: raws[created].length }];
  const lists = targets.map((t) => tokenize(raws[t.index].slice(t.valueAt), doc.file, t.index + 1));
  const out = edit(lists);
  const drop: number[] = [];
  targets.forEach((t, k) => {
    const value = renderTokens(out[k]);
    raws[t.index] = raws[t.index].slice(0, t.valueAt) + value;
    if (!adding && value.trim() === '' && t.index > 0 && raws[t.index - 1] === MARK) drop.push(t.index - 1, t.index);
  });
  const kept = raws.filter((_, i) => !drop.includes(i));
  const text = joinLines(kept, kept.length === 0 ? false : doc.lines.length === 0 ? true : doc.trailingNewline);
  if (text === render(doc)) return doc;
  return parse(text, doc.file);
}

export function addKernelArgs(doc: BlsEntryDoc, args: readonly string[]): BlsEntryDoc {
  validateArgs(args);
  if (args.length === 0) return doc;
  return withOptions(doc, (lists) => addArgTokens(lists, args), true);
}

export function removeKernelArgs(doc: BlsEntryDoc, specs: readonly string[]): BlsEntryDoc {
  return withOptions(doc, (lists) => removeArgTokens(lists, specs), false);
}

// ---- /etc/kernel/cmdline --------------------------------------------------------------------

export const KERNEL_CMDLINE_PATH = KERNEL_CMDLINE_FILE;

export function parseCmdlineFile(text: string, file = KERNEL_CMDLINE_PATH): cmdline.KernelCmdline {
  const { lines } = splitLines(text);
  const nonEmpty = lines.map((l, i) => ({ l, i })).filter((x) => x.l.trim() !== '');
  if (nonEmpty.length > 1)
    throw new FileFormatError(file, nonEmpty[1].i + 1, 'expected the whole kernel command line on one line', 'join the lines into one (proxmox-boot-tool and kernel-install read a single line)');
  return cmdline.parse(text, file);
}

export function renderCmdlineFile(doc: cmdline.KernelCmdline): string {
  return cmdline.render(doc);
}
