// rEFInd refind_linux.conf (next to the kernels, usually /boot/refind_linux.conf): each line is
// a menu label and the kernel options, two double-quoted strings.
//
// API
//   parse(text, file?) -> RefindDoc               lossless
//   render(doc) -> string                          render(parse(x)) === x
//   entries(doc) -> { label, options, line, rescue }[]
//   addKernelArgs(doc, args) -> doc                to every normal entry; idempotent
//                                                  (kernel-cmdline.ts edit rules)
//   removeKernelArgs(doc, specs) -> doc            from every normal entry
//
// Entries whose label marks a single-user / minimal / fallback / recovery boot (mkrlconf writes
// "Boot to single-user mode" and "Boot with minimal options") are left alone, so a menu entry
// without passthrough remains. `#` starts a comment outside quotes. A line that is not two
// strings (quoted or bare words), or an unterminated quote, throws FileFormatError(file, line).

import { FileFormatError } from '../errors.js';
import { isRescueLabel, joinLines, rejectCarriageReturns, splitLines } from './common.js';
import { addArgTokens, argsOf, type CmdlineToken, type KernelArg, removeArgTokens, renderTokens, tokenize, validateArgs } from './kernel-cmdline.js';

export const PATH = '/boot/refind_linux.conf';

interface RefindLine {
  kind: 'blank' | 'comment' | 'entry';
  raw: string;
  line: number;
  label?: string;
  /** Offsets of the options string in raw (inside the quotes when quoted). */
  optStart?: number;
  optEnd?: number;
  quoted?: boolean;
}

interface RefindDoc {
  file: string;
  lines: RefindLine[];
  trailingNewline: boolean;
}

function lexLine(raw: string, file: string, line: number): RefindLine {
  const toks: { start: number; end: number; quoted: boolean }[] = [];
  let i = 0;
  let comment = false;
  while (i < raw.length) {
    const c = raw[i];
    if (c === ' ' || c === '\t') i++;
    else if (c === '#') {
      comment = true;
      break;
    } else if (c === '"') {
      const j = raw.indexOf('"', i + 1);
      if (j < 0) throw new FileFormatError(file, line, 'unterminated double quote', 'close the quoted string; rEFInd does not support escaped quotes');
      toks.push({ start: i + 1, end: j, quoted: true });
      i = j + 1;
      if (i < raw.length && !/[ \t#]/.test(raw[i])) throw new FileFormatError(file, line, `text directly after a closing quote: ${JSON.stringify(raw.slice(i, i + 20))}`, 'separate the strings with a space');
    } else {
      let j = i;
      while (j < raw.length && !/[ \t"#]/.test(raw[j])) j++;
      toks.push({ start: i, end: j, quoted: false });
      i = j;
    }
  }
  if (toks.length === 0) return { kind: comment ? 'comment' : 'blank', raw, line };
  if (toks.length !== 2)
    throw new FileFormatError(file, line, `expected two strings ("label" "options"), found ${toks.length}`, 'write each entry as "Menu label" "kernel options"');
  return { kind: 'entry', raw, line, label: raw.slice(toks[0].start, toks[0].end), optStart: toks[1].start, optEnd: toks[1].end, quoted: toks[1].quoted };
}

export function parse(text: string, file = PATH): RefindDoc {
  rejectCarriageReturns(text, file);
  const { lines, trailingNewline } = splitLines(text);
  return { file, lines: lines.map((raw, i) => lexLine(raw, file, i + 1)), trailingNewline };
}

export function render(doc: RefindDoc): string {
  return joinLines(
    doc.lines.map((l) => l.raw),
    doc.trailingNewline,
  );
}

export function entries(doc: RefindDoc): { label: string; options: KernelArg[]; line: number; rescue: boolean }[] {
  return doc.lines
    .filter((l) => l.kind === 'entry')
    .map((l) => ({
      label: l.label!,
      options: argsOf(tokenize(l.raw.slice(l.optStart, l.optEnd), doc.file, l.line)),
      line: l.line,
      rescue: isRescueLabel(l.label!),
    }));
}

function editEntries(doc: RefindDoc, edit: (lists: CmdlineToken[][]) => CmdlineToken[][]): RefindDoc {
  let changed = false;
  const raws = doc.lines.map((l) => {
    if (l.kind !== 'entry' || isRescueLabel(l.label!)) return l.raw;
    const before = l.raw.slice(l.optStart, l.optEnd);
    const after = renderTokens(edit([tokenize(before, doc.file, l.line)])[0]);
    if (after === before) return l.raw;
    changed = true;
    const value = l.quoted || /\s/.test(after) || after === '' ? `"${after}"` : after;
    const s = l.quoted ? l.optStart! - 1 : l.optStart!;
    const e = l.quoted ? l.optEnd! + 1 : l.optEnd!;
    return l.raw.slice(0, s) + value + l.raw.slice(e);
  });
  return changed ? parse(joinLines(raws, doc.trailingNewline), doc.file) : doc;
}

export function addKernelArgs(doc: RefindDoc, args: readonly string[]): RefindDoc {
  validateArgs(args);
  for (const a of args) if (a.includes('"')) throw new FileFormatError(doc.file, 1, `argument ${a} contains a double quote, which refind_linux.conf cannot hold`, 'use an argument without quotes');
  return editEntries(doc, (lists) => addArgTokens(lists, args));
}

export function removeKernelArgs(doc: RefindDoc, specs: readonly string[]): RefindDoc {
  return editEntries(doc, (lists) => removeArgTokens(lists, specs));
}
