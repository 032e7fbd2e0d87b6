// Shared pieces of the pure file-format layer (src/formats/*): line splitting that
// keeps the trailing-newline state, the vfiokit ownership markers, module-name
// normalisation and the list of GPU drivers that must load after vfio-pci.
//
// API
//   splitLines(text) -> { lines, trailingNewline }; joinLines(lines, trailingNewline) -> text
//     joinLines(...splitLines(x)) === x for every string x.
//   rejectCarriageReturns(text, file)   throws FileFormatError at the first CR (LF files only)
//   lineOfOffset(text, offset)          1-based line number of a character offset
//   MARK ('# vfiokit')                  trailing marker on lines vfiokit added
//   BLOCK_BEGIN / BLOCK_END             marker lines around a block vfiokit owns
//   ownedHeader(what)                   header lines of a file vfiokit owns
//   isOwnedText(text)                   true when text starts with that header
//   normModule(name)                    'vfio-pci' -> 'vfio_pci' (modprobe treats - and _ alike)
//   GPU_DRIVERS, isGpuDriver(name)      drivers that compete with vfio-pci for a GPU
//   isRescueLabel(label)                boot-entry labels that must keep booting without passthrough
//   badArgument(message)                VfioError for invalid input from the caller (not the file)

import { FileFormatError, VfioError } from '../errors.js';
import { KERNEL_CMDLINE_FILE } from '../model/config-paths.js';

export interface Lines {
  lines: string[];
  trailingNewline: boolean;
}

/** Split on LF. '' -> no lines; 'a\n' -> ['a'] + trailingNewline. */
export function splitLines(text: string): Lines {
  if (text === '') return { lines: [], trailingNewline: false };
  const trailingNewline = text.endsWith('\n');
  const body = trailingNewline ? text.slice(0, -1) : text;
  return { lines: body.split('\n'), trailingNewline };
}

export function joinLines(lines: readonly string[], trailingNewline: boolean): string {
  if (lines.length === 0) return '';
  return lines.join('\n') + (trailingNewline ? '\n' : '');
}

export function lineOfOffset(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** vfiokit files are LF-only; a CR means a DOS-edited file that tools may misread. */
export function rejectCarriageReturns(text: string, file: string): void {
  const i = text.indexOf('\r');
  if (i < 0) return;
  // A CR that ends a line is a DOS line ending; a lone CR, or one in a file with NUL bytes, is binary data.
  const nul = text.indexOf('\0');
  if (text[i + 1] !== '\n' || nul >= 0) {
    const at = nul >= 0 && nul < i ? nul : i;
    throw new FileFormatError(
      file,
      lineOfOffset(text, at),
      `binary data (byte 0x${text.charCodeAt(at).toString(16).padStart(2, '0').toUpperCase()}) in a text configuration file`,
      `check what was written over ${file}: restore it from a backup or reinstall the package that owns it, then retry`,
    );
  }
  throw new FileFormatError(
    file,
    lineOfOffset(text, i),
    'carriage return (CRLF line ending) found; expected LF line endings',
    `convert the file to LF line endings (e.g. \`dos2unix ${file}\`) and retry`,
  );
}

/** Trailing marker on a line vfiokit added to a file it does not own. */
export const MARK = '# vfiokit';
export const BLOCK_BEGIN = '# vfiokit begin: managed by vfiokit, remove with `vfiokit undo`';
export const BLOCK_END = '# vfiokit end';
const HEADER_FIRST = '# Managed by vfiokit';
/** First words of the one-line header of smaller files vfiokit writes (hooks, drop-ins). */
const WRITTEN_FIRST = '# Written by vfiokit';

/** Header of a file vfiokit owns entirely (drop-ins, owned configs). */
export function ownedHeader(what: string, comment = '#'): string[] {
  return [`${comment} Managed by vfiokit: ${what}.`, `${comment} Do not edit; remove it with \`vfiokit undo\`.`];
}

export function isOwnedText(text: string): boolean {
  const body = text.startsWith('#!/bin/sh\n') ? text.slice('#!/bin/sh\n'.length) : text;
  return body.startsWith(HEADER_FIRST) || body.startsWith(WRITTEN_FIRST);
}

/** Module names: modprobe and the kernel treat '-' and '_' as the same character. */
export function normModule(name: string): string {
  return name.replace(/-/g, '_');
}

/** Host GPU drivers (normalised names) that vfio-pci must be loaded before. */
export const GPU_DRIVERS: readonly string[] = [
  'amdgpu',
  'radeon',
  'nouveau',
  'nvidia',
  'nvidia_drm',
  'nvidia_modeset',
  'nvidia_uvm',
  'i915',
  'xe',
];

export function isGpuDriver(name: string): boolean {
  return GPU_DRIVERS.includes(normModule(name));
}

/** Labels of entries meant to boot a minimal/rescue system: vfiokit leaves them alone. */
export function isRescueLabel(label: string): boolean {
  return /(^|[^a-z])(single|single-user|minimal|fallback|recovery|rescue|emergency|safe mode)([^a-z]|$)/i.test(label);
}

/** An argument passed by the caller is invalid (a bug or bad intent, not a bad file). */
export function badArgument(message: string): VfioError {
  return new VfioError('E_FORMAT_ARGUMENT', message);
}

/** Valid kernel module name (as written in config files; '-' or '_'). */
function isModuleName(name: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(name);
}

export function checkModuleNames(names: readonly string[]): void {
  for (const n of names) if (!isModuleName(n)) throw badArgument(`not a kernel module name: ${JSON.stringify(n)}`);
}

/**
 * Largest configuration file vfiokit will parse, by kind: real ones are a few KB, so
 * anything this large is not a configuration file (a log or image written over it).
 */
export function sizeLimitFor(hostPath: string): number {
  if (hostPath === KERNEL_CMDLINE_FILE || hostPath.endsWith('/cmdline')) return 64 * 1024;
  if (hostPath.includes('/loader/entries/')) return 1024 * 1024;
  return 4 * 1024 * 1024;
}
