// The mount table format of fstab(5), which /proc/mounts and /proc/self/mounts
// share: one entry per line, fields separated by blanks (spaces or tabs):
//   spec  file  vfstype  mntops  freq  passno
// The last three may be left out (options default to "defaults", the numbers
// to 0). Lines whose first non-blank character is '#' and blank lines are not
// entries. Space, tab, newline and backslash inside a field are written as
// octal escapes (\040, \011, \012, \134) — the kernel writes them so in
// /proc/mounts and /proc/swaps, and libmount reads them so in /etc/fstab.
// A line with fewer than three fields is not an entry and is reported (mount
// and systemd-fstab-generator skip it the same way).
//
// Read only: vfiokit never edits fstab. The document still renders back byte
// for byte (every line keeps its raw text), as every format module does.

interface MountEntry {
  /** The device: /dev/…, UUID=…, LABEL=…, PARTUUID=…, PARTLABEL=…, a network source, or a pseudo name (tmpfs). Unescaped. */
  spec: string;
  /** The mount point ("none" or "swap" for swap areas). Unescaped. */
  file: string;
  vfstype: string;
  /** Options, split on commas ("defaults" when left out). */
  options: string[];
  freq: number;
  passno: number;
  /** 1-based line number. */
  line: number;
}

interface FstabLine {
  /** The line's text without its '\n' (a '\r' of a CRLF file stays here). */
  raw: string;
  entry: MountEntry | null;
  /** Why a line that is neither blank nor a comment is not an entry. */
  error: string | null;
}

interface FstabDocument {
  lines: FstabLine[];
}

/** Octal escapes of the mount table (\ooo), as libmount's unmangle and the kernel's mangle. */
export function unescapeMountField(s: string): string {
  return s.indexOf('\\') < 0 ? s : s.replace(/\\([0-3][0-7]{2})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function parseLine(raw: string, line: number): FstabLine {
  const text = raw.trim();
  if (text === '' || text.startsWith('#')) return { raw, entry: null, error: null };
  const f = text.split(/[ \t]+/);
  if (f.length < 3) return { raw, entry: null, error: `line ${line}: "${text}" has ${f.length} field${f.length === 1 ? '' : 's'}; an entry needs at least a device, a mount point and a file system type` };
  const num = (i: number): number | null => (f[i] === undefined ? 0 : /^\d+$/.test(f[i]!) ? Number(f[i]) : null);
  const freq = num(4);
  const passno = num(5);
  if (freq === null || passno === null) return { raw, entry: null, error: `line ${line}: the dump and pass fields of "${text}" must be numbers` };
  return {
    raw,
    error: null,
    entry: { spec: unescapeMountField(f[0]!), file: unescapeMountField(f[1]!), vfstype: unescapeMountField(f[2]!), options: unescapeMountField(f[3] ?? 'defaults').split(','), freq, passno, line },
  };
}

export function parseFstab(text: string): FstabDocument {
  return { lines: text.split('\n').map((raw, i) => parseLine(raw, i + 1)) };
}

export function renderFstab(doc: FstabDocument): string {
  return doc.lines.map((l) => l.raw).join('\n');
}

/** The entries of a mount table, in order. */
export function mountEntries(text: string): MountEntry[] {
  return parseFstab(text).lines.flatMap((l) => (l.entry ? [l.entry] : []));
}

/** Whether an entry carries an option (by name: `x-systemd.device-timeout=5` has `x-systemd.device-timeout`). */
export function hasMountOption(e: MountEntry, name: string): boolean {
  return e.options.some((o) => o === name || o.startsWith(`${name}=`));
}

/**
 * /proc/swaps: a header line, then "Filename Type Size Used Priority" per
 * active swap area; the file name is escaped as in the mount table.
 */
export function parseProcSwaps(text: string): { filename: string; type: string }[] {
  return text
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/[ \t]+/))
    .filter((f) => f.length >= 2 && f[0] !== '')
    .map((f) => ({ filename: unescapeMountField(f[0]!), type: f[1]! }));
}
