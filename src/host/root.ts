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
import { PROC, SYS } from './sysfs-paths.js';

const SYS_PREFIX = `${SYS}/`;
const PROC_PREFIX = `${PROC}/`;

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
    if ((hostPath.startsWith(SYS_PREFIX) || hostPath.startsWith(PROC_PREFIX)) && !hostPath.includes('/.') && !hostPath.includes('//')) {
      return this.dir === '/' ? hostPath : this.dir + hostPath;
    }
    const norm = path.posix.normalize(hostPath);
    if (norm.split('/').includes('..')) throw new Error(`host path escapes the root: ${hostPath}`);
    if (this.dir === '/') return norm;
    if (norm.startsWith(SYS_PREFIX) || norm.startsWith(PROC_PREFIX)) return this.dir + norm;
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
    let fd: number;
    try {
      fd = fs.openSync(this.path(hostPath), 'r');
    } catch {
      return undefined;
    }
    try {
      let n = 0;
      // A short read is the end: sysfs returns a whole attribute in one
      // read, and regular files this small do too (saves a read per file).
      while (n < max) {
        const r = fs.readSync(fd, buf, n, max - n, null);
        n += r;
        if (r === 0 || n < max) break;
      }
      this.note(hostPath, 'file');
      return n;
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
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

  tryReadLink(hostPath: string): string | undefined {
    try {
      const l = fs.readlinkSync(this.path(hostPath));
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
    return target.startsWith('/') ? path.posix.normalize(target) : path.posix.resolve(path.posix.dirname(hostPath), target);
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
