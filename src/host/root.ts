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

/** Reused read buffer for small sysfs files: text is decoded out of it, and `withSmall` callers must not keep it. */
const SCRATCH = Buffer.allocUnsafe(4096);

/** How a path was touched: read as a file, listed, read as a link, or only checked for (executables, device nodes). */
export type Touched = 'file' | 'dir' | 'link' | 'marker';

export class HostRoot {
  readonly dir: string;
  private recorder: Map<string, Touched> | null = null;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
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
   * Resolve an absolute host path to the real path under the root. Under a
   * root other than `/`, symlinks with absolute targets outside sysfs and
   * procfs (e.g. /etc/os-release → /usr/lib/os-release) are resolved inside
   * the root, so a captured tree never reads the live host. Sysfs links are
   * relative, as the kernel makes them, and are left to the OS (hot path).
   */
  path(hostPath: string): string {
    if (!hostPath.startsWith('/')) throw new Error(`host path must be absolute: ${hostPath}`);
    // Hot path: sysfs/procfs paths built by vfiokit itself need no normalising.
    if ((hostPath.startsWith('/sys/') || hostPath.startsWith('/proc/')) && !hostPath.includes('/.') && !hostPath.includes('//')) {
      return this.dir === '/' ? hostPath : this.dir + hostPath;
    }
    const norm = path.posix.normalize(hostPath);
    if (norm.split('/').includes('..')) throw new Error(`host path escapes the root: ${hostPath}`);
    if (this.dir === '/') return norm;
    if (norm.startsWith('/sys/') || norm.startsWith('/proc/')) return this.dir + norm;
    return this.dir + this.resolveInRoot(norm);
  }

  /** Follow symlinks component by component in host path space (at most 40 hops). */
  private resolveInRoot(hostPath: string): string {
    let parts = hostPath.split('/').filter(Boolean);
    let done: string[] = [];
    let hops = 0;
    while (parts.length) {
      const next = parts.shift()!;
      const candidate = [...done, next];
      let target: string | null = null;
      try {
        if (fs.lstatSync(this.dir + '/' + candidate.join('/')).isSymbolicLink()) target = fs.readlinkSync(this.dir + '/' + candidate.join('/'));
      } catch {
        // Absent: the rest of the path cannot contain links.
        return '/' + [...candidate, ...parts].join('/');
      }
      if (target === null) {
        done = candidate;
        continue;
      }
      if (++hops > 40) return '/' + [...candidate, ...parts].join('/');
      const resolved = path.posix.normalize(target.startsWith('/') ? target : `/${done.join('/')}/${target}`);
      parts = [...resolved.split('/').filter((p) => p && p !== '..'), ...parts];
      done = [];
    }
    return '/' + done.join('/');
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
    const ok = fs.lstatSync(this.path(hostPath), { throwIfNoEntry: false }) !== undefined;
    if (ok) this.note(hostPath, 'marker');
    return ok;
  }

  /**
   * Whether a file exists, following links: for attribute files that are
   * never links. Cheaper than `has` (an access check, no Stats object); a
   * dangling link counts as absent. Recorded as a marker.
   */
  hasFile(hostPath: string): boolean {
    const ok = fs.existsSync(this.path(hostPath));
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
    try {
      fd = fs.openSync(this.path(hostPath), 'r');
    } catch {
      return undefined;
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
    const parentReal = this.dir === '/' ? path.posix.dirname(norm) : this.resolveInRoot(path.posix.dirname(norm));
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
      } else link = this.resolveInRoot(norm);
      this.note(hostPath, 'link');
    }
    const st = fs.statSync(this.path(hostPath), { throwIfNoEntry: false });
    if (!st) return { type: 'dangling', link };
    return { type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other', link };
  }

  /** The real path of a host path with its directories resolved but not its last component (to read a symlink itself). */
  linkPath(hostPath: string): string {
    const norm = path.posix.normalize(hostPath);
    if (norm.split('/').includes('..')) throw new Error(`host path escapes the root: ${hostPath}`);
    if (this.dir === '/') return norm;
    if (norm.startsWith('/sys/') || norm.startsWith('/proc/')) return this.dir + norm;
    return this.dir + path.posix.join(this.resolveInRoot(path.posix.dirname(norm)), path.posix.basename(norm));
  }

  tryReadLink(hostPath: string): string | undefined {
    try {
      // readlink reads the last component itself: only the directories above it are resolved inside the root.
      const p = hostPath.length > 1 && !this.isLive ? path.join(this.path(path.posix.dirname(hostPath)), path.posix.basename(hostPath)) : this.path(hostPath);
      const l = fs.readlinkSync(p);
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
      fs.lstatSync(this.path(hostPath));
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
