// HostRoot: the one place where host paths are resolved. Every read of the
// host (sysfs, procfs, /etc, /boot, /usr/share) goes through an instance, so
// `--root DIR` reads a live machine, an extracted snapshot or a test tree with
// the same code. Paths given to it are absolute host paths ("/sys/bus/pci");
// it refuses paths that would escape the root.
//
// Readers come in two flavours (after libvirt's ConfigOpen/ConfigOpenTry):
// `read*` throws, `tryRead*` returns undefined when the file is absent or
// unreadable. A HostRoot can record every path it touched; `vfiokit snapshot`
// uses that record to archive exactly what vfiokit reads.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveComponents, resolveInRoot } from './root-links.js';
import { PROC, SYS } from './sysfs-paths.js';

const SYS_PREFIX = `${SYS}/`;
const PROC_PREFIX = `${PROC}/`;
const DRIVER_LINK = /\/driver(\/|$)/;
function isLinkAt(real: string): boolean {
  try {
    return fs.lstatSync(real, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
  } catch {
    return false; // ENOTDIR, EACCES: no link there we can see
  }
}

/** Reused read buffer for small sysfs files: text is decoded out of it, and `withSmall` callers must not keep it. */
const SCRATCH = Buffer.allocUnsafe(4096);

/** How a path was touched: read as a file, listed, read as a link, or only checked for (executables, device nodes). */
export type Touched = 'file' | 'dir' | 'link' | 'marker';

export class HostRoot {
  readonly dir: string;
  /** The root's real directory as a prefix of real paths ('' for the live root). */
  private readonly base: string;
  private recorder: Map<string, Touched> | null = null;
  private readonly dirs = new Map<string, string>();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.base = this.dir === '/' ? '' : this.dir;
  }

  get isLive(): boolean {
    return this.dir === '/';
  }

  /** Start recording every host path touched (for `vfiokit snapshot`). */
  record(): Map<string, Touched> {
    this.recorder = new Map();
    return this.recorder;
  }

  /**
   * Run `fn` without recording what it touches (scans of /proc/<pid>/fd would
   * otherwise put every process's open files into a snapshot); the caller
   * records what it keeps with `keep`.
   */
  quietly<T>(fn: () => T): T {
    const rec = this.recorder;
    this.recorder = null;
    try {
      return fn();
    } finally {
      this.recorder = rec;
    }
  }

  /** Record a path read while `quietly` (so a snapshot keeps it). */
  keep(hostPath: string, kind: Touched): void {
    this.note(hostPath, kind);
  }

  /**
   * The real path of an absolute host path, every symlink followed inside the
   * root (src/host/root-links.ts): under --root an absolute link target is a
   * host path, and no link — in any component, sysfs included — leads out of
   * the root. On the live root the path is the OS's to resolve.
   */
  path(hostPath: string): string {
    if (!hostPath.startsWith('/')) throw new Error(`host path must be absolute: ${hostPath}`);
    if (this.isLive) return hostPath;
    const r = this.resolve(hostPath, true);
    return r === '/' ? this.base : this.base + r;
  }

  /** As `path`, but a symlink in the last component is kept (for lstat, readlink). */
  linkPath(hostPath: string): string {
    if (!hostPath.startsWith('/')) throw new Error(`host path must be absolute: ${hostPath}`);
    if (this.isLive) return hostPath;
    const r = this.resolve(hostPath, false);
    return r === '/' ? this.base : this.base + r;
  }

  private resolve(hostPath: string, followLast: boolean): string {
    // Sysfs and procfs (the hot path: thousands of attributes under few
    // directories): the directory is resolved once, then only the last
    // component is looked at.
    if ((hostPath.startsWith(SYS_PREFIX) || hostPath.startsWith(PROC_PREFIX)) && !hostPath.includes('/.') && !hostPath.includes('//') && !hostPath.endsWith('/')) {
      const i = hostPath.lastIndexOf('/');
      const name = hostPath.slice(i + 1);
      const dir = this.resolvedDir(hostPath.slice(0, i));
      const p = dir === '/' ? `/${name}` : `${dir}/${name}`;
      if (!followLast || !isLinkAt(this.base + p)) return p;
      return '/' + resolveComponents(this.base, dir === '/' ? [] : dir.slice(1).split('/'), [name], true, hostPath).join('/');
    }
    return resolveInRoot(this.dir, hostPath, { followLast });
  }

  /**
   * A sysfs/procfs directory resolved inside the root, remembered while it
   * exists. Sysfs directories do not turn into links or change targets while
   * vfiokit runs, except a device's `driver` link, which is never cached.
   */
  private resolvedDir(dir: string): string {
    const known = this.dirs.get(dir);
    if (known !== undefined) return known;
    // `dir` is clean (no "", "." or ".." components: see resolve).
    const i = dir.lastIndexOf('/');
    const name = dir.slice(i + 1);
    const parent = i === 0 ? '/' : this.resolvedDir(dir.slice(0, i));
    let r = parent === '/' ? `/${name}` : `${parent}/${name}`;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(this.base + r, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) {
      r = '/' + resolveComponents(this.base, parent === '/' ? [] : parent.slice(1).split('/'), [name], true, dir).join('/');
      try {
        st = fs.statSync(this.base + r, { throwIfNoEntry: false });
      } catch {
        st = undefined;
      }
    }
    if (st?.isDirectory() && !DRIVER_LINK.test(dir)) this.dirs.set(dir, r);
    return r;
  }

  private note(hostPath: string, kind: Touched): void {
    if (!this.recorder) return;
    const was = this.recorder.get(hostPath);
    // A later read says more than an existence check.
    if (was === undefined || (was === 'marker' && kind !== 'marker')) this.recorder.set(hostPath, kind);
  }

  /**
   * Whether a path exists (without following a final symlink), with no
   * exception on absence: the cheap existence check for optional sysfs
   * attributes. Recorded as a marker so snapshots keep the entry.
   */
  has(hostPath: string): boolean {
    let ok: boolean;
    try {
      ok = fs.lstatSync(this.linkPath(hostPath), { throwIfNoEntry: false }) !== undefined;
    } catch {
      ok = false;
    }
    if (ok) this.note(hostPath, 'marker');
    return ok;
  }

  /**
   * Whether a file exists, following links: for attribute files that are
   * never links. Cheaper than `has` (an access check, no Stats object); a
   * dangling link counts as absent. Recorded as a marker.
   */
  hasFile(hostPath: string): boolean {
    let ok: boolean;
    try {
      // Under --root, one lstat of the last component answers for anything
      // but a link (which is resolved inside the root); live, an access check.
      const st = this.isLive ? undefined : fs.lstatSync(this.linkPath(hostPath), { throwIfNoEntry: false });
      ok = this.isLive ? fs.existsSync(hostPath) : st === undefined ? false : st.isSymbolicLink() ? fs.existsSync(this.path(hostPath)) : true;
    } catch {
      ok = false; // a link loop under --root (ELOOP from the resolver), as existsSync takes one on the live root
    }
    if (ok) this.note(hostPath, 'marker');
    return ok;
  }

  tryReadText(hostPath: string): string | undefined {
    try {
      const s = fs.readFileSync(this.path(hostPath), 'latin1');
      this.note(hostPath, 'file');
      return s;
    } catch {
      return undefined;
    }
  }

  /**
   * Read at most `max` bytes with open/read/close and no stat: sysfs
   * attributes are small and report a size of 4096 anyway. The hot path of
   * reading thousands of PCI functions. Returns the byte count, with the
   * bytes in `buf`; undefined when absent or unreadable.
   */
  private readInto(hostPath: string, buf: Buffer, max: number): number | undefined {
    return this.withFile(hostPath, (read) => {
      let n = 0;
      // A short read is the end: sysfs returns a whole attribute in one
      // read, and regular files this small do too (saves a read per file).
      while (n < max) {
        const r = read(buf, n, max - n, null);
        n += r;
        if (r === 0 || n < max) break;
      }
      return n;
    });
  }

  /**
   * Open for reading. Under --root the last component is opened with
   * O_NOFOLLOW first (a regular sysfs attribute costs no extra lookup) and
   * only a symlink is resolved inside the root.
   */
  private openRead(hostPath: string): number {
    if (this.isLive) return fs.openSync(hostPath, 'r');
    try {
      return fs.openSync(this.linkPath(hostPath), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOOP') throw e;
      return fs.openSync(this.path(hostPath), 'r');
    }
  }

  /** A small file (at most 4096 bytes: one sysfs page) as latin1 text; undefined when absent. */
  tryReadSmallText(hostPath: string): string | undefined {
    const n = this.readInto(hostPath, SCRATCH, SCRATCH.length);
    return n === undefined ? undefined : SCRATCH.toString('latin1', 0, n);
  }

  /**
   * Hand at most 4096 bytes of a small file to `use` without copying them
   * (the view is only valid during the call). For parsing config space.
   */
  withSmall<T>(hostPath: string, use: (bytes: Buffer) => T): { value: T; size: number } | undefined {
    const n = this.readInto(hostPath, SCRATCH, SCRATCH.length);
    return n === undefined ? undefined : { value: use(SCRATCH.subarray(0, n)), size: n };
  }

  /**
   * Read a file piecewise: `use` gets a reader (like fs.readSync: bytes into
   * buf at offset, from a file position or the current one; 0 at the end) and
   * may stop early. Undefined when the file cannot be opened or read.
   */
  withFile<T>(hostPath: string, use: (read: (buf: Buffer, offset: number, length: number, pos: number | null) => number) => T): T | undefined {
    let fd: number;
    // An absent optional file is the common case: its exception is taken
    // without a stack trace (which would cost more than the open itself).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      fd = this.openRead(hostPath);
    } catch {
      return undefined;
    } finally {
      Error.stackTraceLimit = limit;
    }
    try {
      const v = use((buf, offset, length, pos) => fs.readSync(fd, buf, offset, length, pos));
      this.note(hostPath, 'file');
      return v;
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }

  readText(hostPath: string): string {
    const s = this.tryReadText(hostPath);
    if (s === undefined) throw new Error(`cannot read ${hostPath} under ${this.dir}`);
    return s;
  }

  /** First line of a sysfs attribute, trimmed; undefined when absent. */
  tryReadAttr(hostPath: string): string | undefined {
    const s = this.tryReadSmallText(hostPath);
    if (s === undefined) return undefined;
    const nl = s.indexOf('\n');
    return (nl >= 0 ? s.slice(0, nl) : s).trim();
  }

  tryReadBytes(hostPath: string): Uint8Array | undefined {
    try {
      const b = fs.readFileSync(this.path(hostPath));
      this.note(hostPath, 'file');
      return b;
    } catch {
      return undefined;
    }
  }

  /** Content with mode and owner (for files a plan may rewrite); undefined when absent. */
  tryReadFileState(hostPath: string): { content: string; mode: number; uid: number; gid: number } | undefined {
    try {
      const real = this.path(hostPath);
      const st = fs.statSync(real);
      if (!st.isFile()) return undefined;
      // Bytes, not text: latin1 keeps one char per byte, so any encoding (or none)
      // round-trips through plan → encodeContent exactly.
      const content = fs.readFileSync(real, 'latin1');
      this.note(hostPath, 'file');
      return { content, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    } catch {
      return undefined;
    }
  }

  /**
   * What is at a path, without reading it: its type after following links, and
   * — when the last component is a symlink — the host path it resolves to
   * (inside the root). A link whose target is missing is 'dangling'.
   */
  entry(hostPath: string): { type: 'file' | 'dir' | 'other' | 'absent' | 'dangling'; link: string | null } {
    const norm = path.posix.normalize(hostPath);
    const parentReal = this.dir === '/' ? path.posix.dirname(norm) : resolveInRoot(this.dir, path.posix.dirname(norm));
    const own = this.linkPath(hostPath);
    const lst = fs.lstatSync(own, { throwIfNoEntry: false });
    if (!lst) return { type: 'absent', link: null };
    let link: string | null = null;
    if (lst.isSymbolicLink()) {
      if (this.dir === '/') {
        try {
          link = fs.realpathSync(norm);
        } catch {
          return { type: 'dangling', link: path.posix.resolve(parentReal, fs.readlinkSync(own)) };
        }
      } else {
        try {
          link = resolveInRoot(this.dir, norm);
        } catch {
          // A link loop (ELOOP): dangling, as realpath makes it on the live root.
          return { type: 'dangling', link: path.posix.resolve(parentReal, fs.readlinkSync(own)) };
        }
      }
      this.note(hostPath, 'link');
    }
    const st = fs.statSync(this.path(hostPath), { throwIfNoEntry: false });
    if (!st) return { type: 'dangling', link };
    return { type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other', link };
  }

  tryReadLink(hostPath: string): string | undefined {
    try {
      // readlink reads the last component itself: only the directories above it are resolved inside the root.
      const l = fs.readlinkSync(this.linkPath(hostPath));
      this.note(hostPath, 'link');
      return l;
    } catch {
      return undefined;
    }
  }

  /**
   * Resolve a symlink to an absolute host path, in host path space (so a
   * relative sysfs link resolves inside the root). Absolute targets are taken
   * as host paths. Returns undefined for a missing link.
   */
  tryResolveLink(hostPath: string): string | undefined {
    const target = this.tryReadLink(hostPath);
    if (target === undefined) return undefined;
    if (target.startsWith('/')) return path.posix.normalize(target);
    return joinRelative(hostPath, target) ?? path.posix.resolve(path.posix.dirname(hostPath), target);
  }

  tryList(hostPath: string): string[] | undefined {
    try {
      const entries = fs.readdirSync(this.path(hostPath));
      this.note(hostPath, 'dir');
      return entries;
    } catch {
      return undefined;
    }
  }

  exists(hostPath: string): boolean {
    try {
      fs.lstatSync(this.linkPath(hostPath));
      return true;
    } catch {
      return false;
    }
  }

  /** Existence check that is also recorded (for marker files like /dev/kvm). */
  probe(hostPath: string): boolean {
    const ok = this.exists(hostPath);
    if (ok) this.note(hostPath, 'marker');
    return ok;
  }

  isDir(hostPath: string): boolean {
    try {
      return fs.statSync(this.path(hostPath)).isDirectory();
    } catch {
      return false;
    }
  }

  /** First existing executable among candidate host paths, or null. */
  findExecutable(candidates: string[]): string | null {
    for (const c of candidates) {
      try {
        const st = fs.statSync(this.path(c));
        if (st.isFile() && st.mode & 0o111) {
          this.note(c, 'marker');
          return c;
        }
      } catch {
        /* next */
      }
    }
    return null;
  }
}

/**
 * The target of a relative link at `linkPath`, for the plain form sysfs uses
 * ("../../../devices/pci0000:00/…": leading `..` components, then names), in
 * a few string operations instead of path.resolve (the hot path of reading
 * thousands of device links). Null for any other form (the caller resolves it
 * in full).
 */
export function joinRelative(linkPath: string, target: string): string | null {
  if (target.startsWith('/') || linkPath.includes('//') || linkPath.includes('/.') || linkPath.endsWith('/') || target.includes('/./') || target.includes('//') || target.endsWith('/') || target.endsWith('/.') || target.endsWith('/..')) return null;
  let end = linkPath.lastIndexOf('/');
  let i = 0;
  while (target.startsWith('../', i)) {
    if (end <= 0) return null;
    end = linkPath.lastIndexOf('/', end - 1);
    i += 3;
  }
  const rest = target.slice(i);
  if (rest === '' || rest === '.' || rest === '..' || rest.startsWith('./') || rest.includes('/../')) return null;
  return `${linkPath.slice(0, end)}/${rest}`;
}

/**
 * Why `dir` cannot be a host root, or null. A root must look like a Linux root (or an
 * extracted `vfiokit snapshot`, which keeps both trees): a directory holding /proc and /sys.
 */
export function rootProblem(dir: string): string | null {
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    return `${abs} does not exist`;
  }
  if (!st.isDirectory()) return `${abs} is not a directory`;
  const missing = ['proc', 'sys'].filter((d) => !fs.statSync(path.join(abs, d), { throwIfNoEntry: false })?.isDirectory());
  if (missing.length) return `${abs} has no ${missing.map((m) => '/' + m).join(' or ')}, so it is neither a Linux root nor an extracted vfiokit snapshot`;
  return null;
}
