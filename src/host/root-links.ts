// Resolving host paths inside a root directory: the one implementation, used
// by HostRoot for every read and by src/apply for every write.
//
// The rules are those of openat2(2) with RESOLVE_IN_ROOT: the root directory
// is "/" for the path and for every symlink met on the way, so
//   - an absolute link target restarts at the root (etc -> /usr/etc stays in it),
//   - ".." at the root stays at the root,
//   - ".." after a symlink goes to the parent of where the link led (the
//     physical parent, as the kernel walks it), and a relative target
//     resolves against the directory holding the link,
//   - more than 40 links in one resolution is ELOOP (the kernel's MAXSYMLINKS).
// A resolved path has no symlink in any component (but the last, when asked
// to keep it), so handing root + path to the OS cannot leave the root — as
// long as the tree does not change in between (no defence against a
// concurrent writer; vfiokit's trees are the host's own or the user's copy).
// Where the kernel's walk would stop with ENOENT or ENOTDIR (a missing
// component, a file used as a directory), the resolution goes on by name: the
// next ".." leaves that name, and every later component is still looked at,
// so the result stays inside the root and free of links (a new file's missing
// parent directories resolve to where they will be created).

import * as fs from 'node:fs';

const MAX_SYMLINK_HOPS = 40;

interface ResolveOptions {
  /** Follow a symlink in the last component too (default). False keeps the link itself (lstat, readlink, unlink, rename). */
  followLast?: boolean;
}

/** The error of a resolution that met more than MAX_SYMLINK_HOPS links, shaped like the OS's. */
function symlinkLoop(hostPath: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ELOOP: too many levels of symbolic links, resolving ${hostPath}`), { code: 'ELOOP', path: hostPath });
}

const split = (p: string) => p.split('/').filter((c) => c !== '' && c !== '.');

/**
 * Continue a resolution: `done` are physical components already resolved
 * (no links among them), `todo` the components still to walk. Returns the
 * resolved components. `base` is the real directory of the root ('' for /).
 */
export function resolveComponents(base: string, done: string[], todo: string[], followLast: boolean, what: string): string[] {
  let hops = 0;
  // A stack, next component last: link targets push their components on top.
  const stack = todo.slice().reverse();
  while (stack.length) {
    const name = stack.pop()!;
    if (name === '..') {
      done.pop();
      continue;
    }
    done.push(name);
    if (!followLast && stack.length === 0) break;
    const real = `${base}/${done.join('/')}`;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(real, { throwIfNoEntry: false });
    } catch {
      st = undefined; // ENOTDIR, EACCES
    }
    if (!st?.isSymbolicLink()) continue;
    if (++hops > MAX_SYMLINK_HOPS) throw symlinkLoop(what);
    const target = fs.readlinkSync(real);
    done.pop();
    if (target.startsWith('/')) done.length = 0;
    const parts = split(target);
    for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]);
  }
  return done;
}

/** Resolve an absolute host path inside the real directory `rootDir`; returns the host path (absolute, no links but maybe the last). */
export function resolveInRoot(rootDir: string, hostPath: string, opts: ResolveOptions = {}): string {
  if (!hostPath.startsWith('/')) throw new Error(`host path must be absolute: ${hostPath}`);
  const base = rootDir === '/' ? '' : rootDir.replace(/\/+$/, '');
  // "link/" and "link/." name what the link leads to, as the kernel takes them.
  const followLast = (opts.followLast ?? true) || hostPath.endsWith('/') || hostPath.endsWith('/.');
  return '/' + resolveComponents(base, [], split(hostPath), followLast, hostPath).join('/');
}

/** As resolveInRoot, but the real path (root directory + resolved host path). */
export function realInRoot(rootDir: string, hostPath: string, opts: ResolveOptions = {}): string {
  const base = rootDir === '/' ? '' : rootDir.replace(/\/+$/, '');
  const resolved = resolveInRoot(rootDir, hostPath, opts);
  return base === '' ? resolved : resolved === '/' ? base : base + resolved;
}
