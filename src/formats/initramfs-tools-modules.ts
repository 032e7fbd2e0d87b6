// /etc/initramfs-tools/modules (Debian, Ubuntu, Proxmox, Pop!_OS): one module per line,
// optional arguments after the name, loaded in the listed order. The same line syntax is used
// by /etc/initramfs-tools/modules.d/*, /etc/modules and modules-load.d files.
//
// API
//   parse(text, file?) -> InitramfsModulesDoc   lossless
//   render(doc) -> string                        render(parse(x)) === x
//   modules(doc) -> { name, args, line, owned }[]
//   ensureModules(doc, names) -> doc             removes vfiokit's block, then inserts a marked
//                                                block with the names that are not already listed
//                                                before every GPU driver; idempotent
//   removeOwned(doc) -> doc                      removes vfiokit's block
//   lint(doc) -> { line, message }[]             modprobe.d syntax used as a module line, ...
//
// Comments start with `#` in column 1 (initramfs-tools filters `^[^#]`). The vfiokit block is
// BLOCK_BEGIN ... BLOCK_END; it goes before the first module line (so vfio-pci loads before a
// GPU driver listed in the file), or at the end when the file lists no module. A module line
// whose name is not a module name, or an unbalanced block marker, throws FileFormatError.

import { FileFormatError } from '../errors.js';
import { BLOCK_BEGIN, BLOCK_END, checkModuleNames, isGpuDriver, joinLines, normModule, rejectCarriageReturns, splitLines } from './common.js';
import { INITRAMFS_TOOLS_MODULES } from '../model/config-paths.js';

export const PATH = INITRAMFS_TOOLS_MODULES;

interface ModulesLine {
  kind: 'blank' | 'comment' | 'module' | 'begin' | 'end';
  raw: string;
  line: number;
  name?: string;
  args?: string;
  owned: boolean;
}

interface InitramfsModulesDoc {
  file: string;
  lines: ModulesLine[];
  trailingNewline: boolean;
}

const MODULE_LINE = /^[ \t]*([A-Za-z0-9_.-]+)(?:[ \t]+(.*))?$/;

export function parse(text: string, file = PATH): InitramfsModulesDoc {
  rejectCarriageReturns(text, file);
  const { lines: phys, trailingNewline } = splitLines(text);
  let open = 0;
  const lines = phys.map((raw, i): ModulesLine => {
    const line = i + 1;
    if (raw === BLOCK_BEGIN) {
      if (open) throw new FileFormatError(file, line, 'nested vfiokit begin marker', `remove the duplicate marker; vfiokit blocks end with "${BLOCK_END}"`);
      open = line;
      return { kind: 'begin', raw, line, owned: true };
    }
    if (raw === BLOCK_END) {
      if (!open) throw new FileFormatError(file, line, 'vfiokit end marker without a begin marker', 'remove the stray marker line');
      open = 0;
      return { kind: 'end', raw, line, owned: true };
    }
    if (raw.trim() === '') return { kind: 'blank', raw, line, owned: open > 0 };
    if (raw.startsWith('#')) return { kind: 'comment', raw, line, owned: open > 0 };
    const m = MODULE_LINE.exec(raw);
    if (!m)
      throw new FileFormatError(
        file,
        line,
        `expected "module_name [args...]" or a comment starting in column 1, found ${JSON.stringify(raw.slice(0, 60))}`,
        'module names use letters, digits, "_" and "-"; comments need "#" as the first character',
      );
    return { kind: 'module', raw, line, name: m[1], args: (m[2] ?? '').trim(), owned: open > 0 };
  });
  if (open) throw new FileFormatError(file, open, 'vfiokit begin marker without an end marker', `add "${BLOCK_END}" after the block or remove the block`);
  return { file, lines, trailingNewline };
}

export function render(doc: InitramfsModulesDoc): string {
  return joinLines(
    doc.lines.map((l) => l.raw),
    doc.trailingNewline,
  );
}

export function modules(doc: InitramfsModulesDoc): { name: string; args: string; line: number; owned: boolean }[] {
  return doc.lines.filter((l) => l.kind === 'module').map((l) => ({ name: l.name!, args: l.args!, line: l.line, owned: l.owned }));
}

function rebuild(doc: InitramfsModulesDoc, raws: string[], trailingNewline: boolean): InitramfsModulesDoc {
  return parse(joinLines(raws, raws.length === 0 ? false : trailingNewline), doc.file);
}

export function removeOwned(doc: InitramfsModulesDoc): InitramfsModulesDoc {
  if (!doc.lines.some((l) => l.owned)) return doc;
  return rebuild(
    doc,
    doc.lines.filter((l) => !l.owned).map((l) => l.raw),
    doc.trailingNewline,
  );
}

export function ensureModules(doc: InitramfsModulesDoc, names: readonly string[]): InitramfsModulesDoc {
  checkModuleNames(names);
  const base = removeOwned(doc);
  const listed = base.lines.filter((l) => l.kind === 'module');
  const gpu = listed.findIndex((l) => isGpuDriver(l.name!));
  const early = new Set((gpu < 0 ? listed : listed.slice(0, gpu)).map((l) => normModule(l.name!)));
  const missing = names.filter((n, i) => !early.has(normModule(n)) && names.findIndex((m) => normModule(m) === normModule(n)) === i);
  if (missing.length === 0) return base;
  const raws = base.lines.map((l) => l.raw);
  const firstModule = base.lines.findIndex((l) => l.kind === 'module');
  const at = firstModule < 0 ? raws.length : firstModule;
  raws.splice(at, 0, BLOCK_BEGIN, ...missing, BLOCK_END);
  return rebuild(base, raws, base.lines.length === 0 ? true : base.trailingNewline);
}

export function lint(doc: InitramfsModulesDoc): { line: number; message: string }[] {
  const out: { line: number; message: string }[] = [];
  for (const l of doc.lines) {
    if (l.kind !== 'module') continue;
    if (['softdep', 'options', 'blacklist', 'alias', 'install', 'remove'].includes(l.name!))
      out.push({ line: l.line, message: `"${l.name} ${l.args}" is modprobe.d syntax; here it is read as a module named "${l.name}"` });
    if (/%[A-Z_]+%/.test(l.args!)) out.push({ line: l.line, message: `arguments contain an unfilled template placeholder: ${l.args}` });
  }
  return out;
}
