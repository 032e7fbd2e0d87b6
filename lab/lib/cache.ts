// The lab's artifact cache, outside the repository: $VFIOKIT_LAB_CACHE or
// /var/tmp/vfiokit-lab. Every artifact lives in a directory named after a
// hash of its recipe, so a changed recipe builds a new artifact and old ones
// are simply unused (and pruned). A directory is complete when its `.done`
// marker exists; builds happen in a temporary sibling renamed into place.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { log, sha256, sleep } from './util.js';

export function cacheRoot(): string {
  const dir = process.env.VFIOKIT_LAB_CACHE || '/var/tmp/vfiokit-lab';
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface CachedArtifact {
  dir: string;
  key: string;
  /** Built during this run (false: taken from the cache). */
  built: boolean;
}

/** Serialises builders of the same artifact across concurrent lab runs. */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60 * 60_000;
  for (;;) {
    try {
      closeSync(openSync(file, 'wx'));
      writeFileSync(file, String(process.pid));
      break;
    } catch {
      // Stale lock (its owner died)?
      const pid = Number(readFileSync(file, 'utf8') || '0');
      let alive = false;
      try {
        if (pid > 0) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch {
        alive = false;
      }
      if (!alive && pid > 0) {
        rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lab cache: lock ${file} held for an hour by pid ${pid}`);
      await sleep(2000);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}

/**
 * Returns the artifact for `recipe` (any JSON-able value including the text of
 * every script that goes into it), building it with `build(tmpDir)` if needed.
 */
/** The cache key of an artifact: a hash of its kind and recipe. */
export function cacheKey(kind: string, recipe: unknown): string {
  return sha256(kind, JSON.stringify(recipe)).slice(0, 16);
}

export async function cached(kind: string, recipe: unknown, build: (dir: string) => Promise<void>): Promise<CachedArtifact> {
  const key = cacheKey(kind, recipe);
  const root = cacheRoot();
  const dir = path.join(root, `${kind}-${key}`);
  if (existsSync(path.join(dir, '.done'))) return { dir, key, built: false };
  return withLock(path.join(root, `${kind}-${key}.lock`), async () => {
    if (existsSync(path.join(dir, '.done'))) return { dir, key, built: false };
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeFileSync(path.join(tmp, 'recipe.json'), JSON.stringify(recipe, null, 2));
    try {
      await build(tmp);
    } catch (e) {
      if (!process.env.VFIOKIT_LAB_KEEP_FAILED) rmSync(tmp, { recursive: true, force: true });
      else log(`  (failed build kept in ${tmp})`);
      throw e;
    }
    writeFileSync(path.join(tmp, '.done'), new Date().toISOString());
    renameSync(tmp, dir);
    pruneOld(kind, key);
    return { dir, key, built: true };
  });
}

/** Removes artifacts of the same kind built from older recipes. */
function pruneOld(kind: string, keep: string): void {
  const root = cacheRoot();
  for (const name of readdirSync(root)) {
    if (!name.startsWith(`${kind}-`) || name === `${kind}-${keep}` || name.endsWith('.lock')) continue;
    const rest = name.slice(kind.length + 1);
    if (!/^[0-9a-f]{16}(\.tmp-\d+)?$/.test(rest)) continue;
    const full = path.join(root, name);
    // Leave in-progress builds of other processes alone.
    if (rest.includes('.tmp-') && Date.now() - statSync(full).mtimeMs < 3 * 60 * 60_000) continue;
    rmSync(full, { recursive: true, force: true });
  }
}
