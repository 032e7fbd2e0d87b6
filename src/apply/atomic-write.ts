// Atomic file replacement: the only way vfiokit writes a configuration file.
// Owns: temp file in the same directory (O_EXCL, so a stale or hostile file
// of the same name is never reused), fsync of the data, rename over the
// target, fsync of the directory so the rename itself survives a power cut.
// Mode and owner of an existing file are kept; a symlink is kept as a link
// and its target is written (grubby's "following symlinks" property).
// Must not: decide what to write, or touch anything but the one target.
//
// Rejected: `write-file-atomic` (async-only chown semantics and no directory
// fsync); fs.copyFile/writeFile in place (a crash leaves a truncated file).
//
// Content strings follow HostRoot's convention: files are read as latin1,
// one char per byte, so `encodeContent(read(x))` is byte-identical to x.
// Characters above U+00FF (new text a planner wrote) are encoded as UTF-8.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { realInRoot } from '../host/root-links.js';

/** Encode a plan content string to bytes (inverse of HostRoot's latin1 read; > U+00FF as UTF-8). */
export function encodeContent(s: string): Buffer {
  let wide = false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) { wide = true; break; }
  if (!wide) return Buffer.from(s, 'latin1');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) {
      if (i > start) parts.push(Buffer.from(s.slice(start, i), 'latin1'));
      let j = i;
      while (j < s.length && s.charCodeAt(j) > 0xff) j++;
      parts.push(Buffer.from(s.slice(i, j), 'utf8'));
      start = j;
      i = j - 1;
    }
  }
  if (start < s.length) parts.push(Buffer.from(s.slice(start), 'latin1'));
  return Buffer.concat(parts);
}

export const sha256 = (b: Uint8Array): string => crypto.createHash('sha256').update(b).digest('hex');

export interface AtomicWriteOptions {
  /** Mode for the file; default: keep the existing file's mode, else 0o644. */
  mode?: number;
  /** Owner; default: keep the existing file's owner, else the process's. */
  uid?: number;
  gid?: number;
  /**
   * The real directory of the root `realPath` lies under: symlinks on the way
   * to the file are resolved inside it (src/host/root-links.ts). Default '/'.
   */
  root?: string;
  /** Test hook: called after the temp file is complete, before the rename. */
  beforeRename?: (tmpPath: string) => void;
}

/** Prefix of temp files, so crash recovery can find leftovers next to a target. */
export const tmpPrefix = (base: string) => `.${base}.vfiokit-`;

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | (fs.constants.O_DIRECTORY ?? 0));
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * Replace the file at `realPath` (a real path, already resolved under the
 * root) with `data`, atomically. Returns the path actually written (the
 * symlink target when `realPath` is a link).
 */
export function writeFileAtomic(realPath: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): string {
  const root = opts.root === undefined || opts.root === '/' ? '/' : path.resolve(opts.root);
  const abs = path.resolve(realPath);
  if (root !== '/' && !abs.startsWith(root + '/')) throw new Error(`${abs} is not under the root ${root}`);
  const target = realInRoot(root, root === '/' ? abs : abs.slice(root.length));
  const dir = path.dirname(target);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(target);
  } catch {
    existing = undefined;
  }
  if (existing && !existing.isFile()) throw Object.assign(new Error(`${target} is not a regular file`), { code: 'EISDIR' });
  const mode = opts.mode ?? (existing ? existing.mode & 0o7777 : 0o644);
  const uid = opts.uid ?? existing?.uid;
  const gid = opts.gid ?? existing?.gid;
  const bytes = typeof data === 'string' ? encodeContent(data) : data;
  const tmp = path.join(dir, `${tmpPrefix(path.basename(target))}${process.pid}-${crypto.randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    try {
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
      if (uid !== undefined && gid !== undefined && (uid !== process.getuid?.() || gid !== process.getgid?.())) fs.fchownSync(fd, uid, gid);
      fs.fchmodSync(fd, mode); // after chown: chown clears setuid/setgid bits
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    opts.beforeRename?.(tmp);
    fs.renameSync(tmp, target);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  fsyncDir(dir);
  return target;
}
