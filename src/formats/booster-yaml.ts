// /etc/booster.yaml (booster initramfs generator): line-level handling of the top-level
// `modules_force_load:` key (a comma-separated string). Everything else passes through.
//
// API
//   parse(text, file?) -> BoosterDoc              lossless; validates top-level keys
//   render(doc) -> string                          render(parse(x)) === x
//   forceLoad(doc) -> string[]                     modules_force_load entries ([] when absent)
//   ensureForceLoad(doc, modules) -> doc           removes vfiokit's edit, then puts the missing
//                                                  modules first (marked); idempotent
//   removeOwned(doc) -> doc
//
// An edited line gets a trailing `# vfiokit: prepend a,b` comment naming exactly what was put
// in front, so removeOwned restores the line byte for byte; a line vfiokit appended ends in
// `# vfiokit` and is removed whole. Duplicate top-level keys, tab indentation, a
// modules_force_load value that is not a one-line string (block, list, escapes), or a marker
// that no longer matches throw FileFormatError(file, line).

import { FileFormatError } from '../errors.js';
import { checkModuleNames, joinLines, MARK, normModule, rejectCarriageReturns, splitLines } from './common.js';
import { BOOSTER_YAML } from '../model/config-paths.js';

export const PATH = BOOSTER_YAML;
const KEY = 'modules_force_load';

interface BoosterLine {
  raw: string;
  line: number;
  /** Top-level mapping key on this line, if any. */
  key: string | null;
}

export interface BoosterDoc {
  file: string;
  lines: BoosterLine[];
  trailingNewline: boolean;
}

export function parse(text: string, file = PATH): BoosterDoc {
  rejectCarriageReturns(text, file);
  const { lines: phys, trailingNewline } = splitLines(text);
  const seen = new Map<string, number>();
  const lines = phys.map((raw, i): BoosterLine => {
    const line = i + 1;
    if (/^\t/.test(raw)) throw new FileFormatError(file, line, 'tab used for indentation; YAML allows only spaces', 'indent with spaces');
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)\s*:(\s|$)/.exec(raw);
    const key = m ? m[1] : null;
    if (key !== null) {
      const prev = seen.get(key);
      if (prev) throw new FileFormatError(file, line, `duplicate key "${key}" (first on line ${prev})`, 'keep one of the two lines');
      seen.set(key, line);
    }
    return { raw, line, key };
  });
  return { file, lines, trailingNewline };
}

export function render(doc: BoosterDoc): string {
  return joinLines(
    doc.lines.map((l) => l.raw),
    doc.trailingNewline,
  );
}

interface ValueView {
  index: number;
  /** Offsets of the comma list inside raw (without quotes). */
  start: number;
  end: number;
  text: string;
}

function valueView(doc: BoosterDoc): ValueView | null {
  const index = doc.lines.findIndex((l) => l.key === KEY);
  if (index < 0) return null;
  const l = doc.lines[index];
  const fail = (why: string): never => {
    throw new FileFormatError(doc.file, l.line, `${KEY} ${why}`, `write it as "${KEY}: mod1,mod2" on one line`);
  };
  const colon = l.raw.indexOf(':');
  let i = colon + 1;
  while (l.raw[i] === ' ') i++;
  // value ends at ` #` (YAML comment) or end of line
  const hash = l.raw.slice(i).search(/(^|\s)#/);
  let end = hash < 0 ? l.raw.length : i + hash;
  while (end > i && /\s/.test(l.raw[end - 1])) end--;
  let start = i;
  const v = l.raw.slice(start, end);
  if (v === '') {
    const next = doc.lines[index + 1];
    if (next && /^\s+\S/.test(next.raw) && !/^\s+#/.test(next.raw)) fail('is a multi-line value; booster expects a comma-separated string');
    fail('is empty; vfiokit does not guess where to add modules');
  }
  if (v.startsWith('"') || v.startsWith("'")) {
    const q = v[0];
    if (v.length < 2 || !v.endsWith(q) || v.slice(1, -1).includes(q) || v.includes('\\')) fail(`has a quoted value vfiokit cannot edit: ${v}`);
    start++;
    end--;
  } else if (/^[[{|>&*!-]/.test(v)) fail(`is not a plain comma-separated string: ${v}`);
  return { index, start, end, text: l.raw.slice(start, end) };
}

function items(text: string): string[] {
  return text
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

export function forceLoad(doc: BoosterDoc): string[] {
  const v = valueView(doc);
  return v ? items(v.text) : [];
}

const MARKER_RE = / # vfiokit: prepend ([^#\s]+)$/;

export function removeOwned(doc: BoosterDoc): BoosterDoc {
  const raws = doc.lines.map((l) => l.raw);
  const idx = doc.lines.findIndex((l) => l.key === KEY);
  if (idx < 0) return doc;
  const raw = raws[idx];
  if (/\s# vfiokit$/.test(raw)) {
    raws.splice(idx, 1);
    return parse(joinLines(raws, raws.length === 0 ? false : doc.trailingNewline), doc.file);
  }
  const m = MARKER_RE.exec(raw);
  if (!m) return doc;
  const stripped = raw.slice(0, m.index);
  const tmp = parse(stripped, doc.file);
  const v = valueView({ ...tmp, lines: [{ ...tmp.lines[0], line: doc.lines[idx].line }] })!;
  const prefix = m[1];
  const rest = v.text.slice(prefix.length);
  if (!v.text.startsWith(prefix) || !(rest === '' || rest.startsWith(',')))
    throw new FileFormatError(doc.file, doc.lines[idx].line, `the vfiokit marker says it put "${prefix}" first, but ${KEY} no longer starts with it`, `fix the line by hand or run \`vfiokit undo\``);
  raws[idx] = stripped.slice(0, v.start) + rest.replace(/^,/, '') + stripped.slice(v.end);
  return parse(joinLines(raws, doc.trailingNewline), doc.file);
}

export function ensureForceLoad(doc: BoosterDoc, modules: readonly string[]): BoosterDoc {
  checkModuleNames(modules);
  const base = removeOwned(doc);
  const v = valueView(base);
  const have = new Set((v ? items(v.text) : []).map(normModule));
  const missing = modules.filter((m, i) => !have.has(normModule(m)) && modules.findIndex((x) => normModule(x) === normModule(m)) === i);
  if (missing.length === 0) return base;
  const raws = base.lines.map((l) => l.raw);
  const text = missing.join(',');
  if (!v) {
    raws.push(`${KEY}: ${text} ${MARK}`);
    return parse(joinLines(raws, base.lines.length === 0 ? true : base.trailingNewline), base.file);
  }
  const raw = raws[v.index];
  raws[v.index] = `${raw.slice(0, v.start)}${text},${raw.slice(v.start)} # vfiokit: prepend ${text}`;
  return parse(joinLines(raws, base.trailingNewline), base.file);
}
