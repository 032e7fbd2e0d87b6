// undo: reverse an applied transaction of any kind — the newest by default,
// or a named one. Transactions form a stack per resource: a later applied
// transaction that touches the same file, device, attribute, module or domain
// must be undone first (refused with the order). Only what nobody changed
// since is restored: every file the transaction wrote must still hash to what
// it wrote, every device must still be on the driver it was moved to —
// unless `force`, which keeps a copy of each edited file in the journal.
// Order: lock → recover → check → journal "undoing" → undo steps newest first
// (kernel changes of an earlier boot are void and skipped) → re-run the
// transaction's regenerate commands → journal "undone".

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplyError, PreconditionError, type Problem } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { sha256 } from './atomic-write.js';
import { currentBootId } from './executor.js';
import { readCurrent, resolveHostPath } from './file-steps.js';
import { fromEarlierBoot, Journal, listJournals, type JournalDoc, type JournalStep } from './journal.js';
import { acquireLock, type LockOptions } from './lock.js';
import { assertRecovered, recoverLocked, type RecoveryReport } from './recover.js';
import type { Runner } from './runner.js';
import { asRoot } from './state-dir.js';
import { editedSince, isVolatile, resourcesOf, summarizeRollback, unwind } from './steps.js';
import type { SysfsWriter } from './sysfs-writer.js';
import type { KernelContext } from './kernel-steps.js';

export interface UndoOptions {
  root: HostRoot | string;
  runner: Runner;
  sysfs?: SysfsWriter | null;
  /** Restore even files edited since the apply (a copy of each edit is kept in the journal). */
  force?: boolean;
  /** The transaction to undo (default: the newest applied one). */
  txid?: string;
  /** Only transactions of these kinds are candidates for "the newest" (e.g. unbind undoes runtime binds). */
  kinds?: string[];
  clock?: () => Date;
  log?: (line: string) => void;
  lock?: LockOptions;
  /** The caller holds the lock and has recovered (withWriteLock). */
  locked?: boolean;
}

export interface UndoResult {
  /** The transaction undone; null when there was nothing to undo. */
  txid: string | null;
  kind: string | null;
  restored: string[];
  reran: string[];
  notes: string[];
  /** Edited files overwritten because of `force`, with where the edit was saved. */
  overwritten: { path: string; savedAs: string }[];
  recovered: RecoveryReport[];
  /** Runtime values changed since the transaction, left as they are (without `force`). */
  kept?: string[];
}

/** Resources a transaction still holds now (kernel changes of an earlier boot hold nothing). */
function liveResources(d: JournalDoc, bootNow: string | null): Set<string> {
  const otherBoot = fromEarlierBoot(d, bootNow);
  return new Set(d.steps.filter((s) => s.state === 'done' && !(otherBoot && isVolatile(s))).flatMap(resourcesOf));
}

/** The later applied transactions that depend on `target` (share something it changed), newest first. */
export function dependents(all: JournalDoc[], target: JournalDoc, bootNow: string | null): JournalDoc[] {
  const mine = liveResources(target, bootNow);
  return all
    .filter((d) => d.state === 'applied' && d.seq > target.seq)
    .filter((d) => [...liveResources(d, bootNow)].some((r) => mine.has(r)))
    .sort((a, b) => b.seq - a.seq);
}

export interface UndoFilePreview {
  path: string;
  /** The file's bytes now (null: absent or not a regular file). */
  now: Buffer | null;
  /** The bytes undo puts back (null: undo removes the file, or restores a symbolic link). */
  restored: Buffer | null;
  /** The symbolic link undo restores, when the file was one. */
  link: string | null;
}

/** Each file the undo of `doc` restores, as it is now and as undo leaves it (the backup of the first step that touched it). Read only. */
export function undoFilePreview(root: HostRoot, doc: JournalDoc): UndoFilePreview[] {
  const j = Journal.open(root, doc.txid);
  const first = new Map<string, NonNullable<JournalDoc['steps'][number]['backup']>>();
  for (const s of doc.steps) if (s.backup && s.state === 'done' && !first.has(s.backup.target)) first.set(s.backup.target, s.backup);
  return [...first].map(([target, b]) => ({
    path: target,
    now: readCurrent(resolveHostPath(root, target)),
    restored: b.existed && b.file && b.link === null ? j.readBackup(b.file) : null,
    link: b.link,
  }));
}

/** Pick the transaction to undo; null when nothing is applied. Read only. */
export function chooseUndo(root: HostRoot, opts: { txid?: string; kinds?: string[] }): JournalDoc | null {
  const all = listJournals(root);
  if (opts.txid) {
    const d = all.find((x) => x.txid === opts.txid);
    if (!d) throw new PreconditionError('E_NO_TRANSACTION', `there is no transaction ${opts.txid}${root.isLive ? '' : ` under ${root.dir}`}`, 'see `vfiokit history` for the transaction ids', opts.txid);
    if (d.state !== 'applied') throw new PreconditionError('E_NOT_APPLIED', `transaction ${d.txid} (${d.kind}) is ${d.state}, not applied: there is nothing of it to undo`, 'see `vfiokit history`', d.txid);
    return d;
  }
  const applied = all.filter((d) => d.state === 'applied' && (!opts.kinds || opts.kinds.includes(d.kind)));
  return applied.length ? applied[applied.length - 1] : null;
}

export async function undoTransaction(opts: UndoOptions): Promise<UndoResult> {
  const root = asRoot(opts.root);
  const log = opts.log ?? (() => {});
  const lock = opts.locked ? null : acquireLock(root, { onStale: log, ...opts.lock });
  try {
    const recovered = opts.locked ? [] : await recoverLocked(root, opts.runner, { clock: opts.clock, log, sysfs: opts.sysfs });
    if (!opts.locked) assertRecovered(root, recovered);
    const target = chooseUndo(root, opts);
    if (!target) return { txid: null, kind: null, restored: [], reran: [], notes: [], overwritten: [], recovered };
    const bootNow = currentBootId(root);
    const later = dependents(listJournals(root), target, bootNow);
    if (later.length) {
      throw new PreconditionError(
        'E_UNDO_ORDER',
        `transaction ${target.txid} (${target.kind}) cannot be undone before ${later.map((d) => `${d.txid} (${d.kind})`).join(', ')}, which changed the same ${later.length > 1 ? 'things' : 'things after it'}; nothing was undone`,
        `undo in this order: ${[...later.map((d) => `vfiokit undo --id ${d.txid}`), `vfiokit undo --id ${target.txid}`].join('; then ')}`,
        target.txid,
      );
    }
    const j = Journal.open(root, target.txid, opts.clock);
    const otherBoot = fromEarlierBoot(j.doc, bootNow);
    const ctx = { root, runner: opts.runner, sysfs: opts.sysfs ?? null, log, txDir: j.dir };
    const hasKernel = j.doc.steps.some((s) => s.state === 'done' && (s.kind === 'write-attr' || s.kind === 'bind-driver' || s.kind === 'copy-attr'));
    if (hasKernel && !otherBoot && !ctx.sysfs) {
      throw new PreconditionError('E_NOT_LIVE', `transaction ${j.doc.txid} changed the running kernel, but --root ${root.dir} has no kernel behind it; nothing was undone`, 'run the undo on the host itself');
    }

    const { edited, editedIdx, forcedOver, kept } = changesSince(ctx, j.doc, otherBoot, Boolean(opts.force));
    if (edited.length && !opts.force) {
      throw new PreconditionError('E_EDITED_SINCE_APPLY', `${edited.length} thing(s) changed since transaction ${j.doc.txid} was applied; nothing was undone`, 'undo with --force to restore the originals anyway (edited files are saved in the journal)', edited[0].subject, edited);
    }
    const overwritten: UndoResult['overwritten'] = [];
    for (const i of editedIdx) {
      const target = j.doc.steps[i].backup!.target;
      const cur = readCurrent(resolveHostPath(root, target));
      if (!cur) continue;
      const name = `edited-${i}`;
      fs.writeFileSync(path.join(j.dir, name), cur, { mode: 0o600 });
      overwritten.push({ path: target, savedAs: path.join(j.dir, name) });
    }

    const forced = [...overwritten.map((o) => o.path), ...forcedOver];
    j.setState('undoing', `undo started${forced.length ? ` (forced over changes since: ${forced.join('; ')})` : ''}`);
    // A kept value: no step that touched it is undone (an earlier one would restore over it too).
    const keptResources = new Set(kept.flatMap((k) => k.resources));
    const isKept = (s: JournalStep) => resourcesOf(s).some((r) => keptResources.has(r));
    for (const s of j.doc.steps) if ((s.state === 'done' || s.state === 'started') && isKept(s)) s.state = 'undone';
    const steps = j.doc.steps.filter((s) => (s.state === 'done' || s.state === 'started') && !(s.kind === 'run-command' && (s.regenerate || !s.undoArgv?.length))).map((s) => s.index).reverse();
    const regenerate = j.doc.steps.filter((s) => s.kind === 'run-command' && s.regenerate).map((s) => s.index);
    for (const s of j.doc.steps) if (s.kind === 'run-command' && !s.regenerate && !s.undoArgv?.length) s.state = 'undone';
    const rep = await unwind(ctx, j, { steps, regenerate, markAs: 'undone', skipVolatile: otherBoot });
    if (rep.failures.length) {
      j.setState('undo-failed', summarizeRollback(rep));
      throw new ApplyError(
        [`undo of transaction ${j.doc.txid} is incomplete: ${rep.failures.join('; ')}`, `done: ${summarizeRollback(rep)}`, `journal: ${j.doc.txid}`].join('\n'),
        j.doc.txid,
        'undo',
        rep,
        undefined,
        `fix the cause, then run \`vfiokit recover\` (it finishes the undo); the original files are in ${j.dir}`,
        'E_UNDO_INCOMPLETE',
      );
    }
    const keptNotes = kept.map((k) => `left as it is (changed since transaction ${j.doc.txid}; --force restores what the transaction found): ${k.what}`);
    j.setState('undone', `${summarizeRollback(rep)}${kept.length ? `; ${kept.length} value(s) changed since left as they are` : ''}`);
    return { txid: j.doc.txid, kind: j.doc.kind, restored: rep.restored, reran: rep.reran, notes: [...keptNotes, ...forcedOver.map((e) => `restored over a change made since (--force): ${e}`), ...(rep.notes ?? [])], overwritten, recovered, kept: kept.map((k) => k.what) };
  } finally {
    lock?.release();
  }
}

/** What changed since a transaction, found before undoing it: the check phase of undoTransaction. */
interface ChangesSince {
  /** Files edited, and kernel values changed since that refuse the undo (without `force`). */
  edited: Problem[];
  /** Steps whose file was edited (their edits are saved when forced). */
  editedIdx: number[];
  /** Kernel values changed since, restored over with `force`. */
  forcedOver: string[];
  /** Runtime values changed since that are left as they are (without `force`). */
  kept: { index: number; resources: string[]; what: string }[];
}

function changesSince(ctx: KernelContext, doc: JournalDoc, otherBoot: boolean, force: boolean): ChangesSince {
  // Check: the last step touching each file must still describe it; devices still where the transaction put them.
  const last = new Map<string, number>();
  for (const s of doc.steps) if (s.backup && s.state === 'done') last.set(s.backup.target, s.index);
  const edited: Problem[] = [];
  const editedIdx: number[] = [];
  /** Kernel values changed since (attributes, unit properties, drivers): with --force they are restored over, and said so. */
  const forcedOver: string[] = [];
  /**
   * Runtime values (attributes, unit properties) someone changed since: theirs now. Without
   * --force they are left as they are and said so, and everything else is undone — a host
   * with irqbalance, or an AllowedCPUs set by hand, still gets the rest of its values back.
   */
  const kept: { index: number; resources: string[]; what: string }[] = [];
  for (const [target, i] of last) {
    const s = doc.steps[i];
    const b = s.backup!;
    let nowSha: string | null;
    if (b.link !== null) {
      nowSha = (() => {
        try {
          fs.lstatSync(resolveHostPath(ctx.root, target, false));
          return 'present';
        } catch {
          return null;
        }
      })();
    } else {
      const cur = readCurrent(resolveHostPath(ctx.root, target));
      nowSha = cur ? sha256(cur) : null;
    }
    if (nowSha !== (s.after?.sha256 ?? null)) {
      edited.push({
        code: 'E_EDITED_SINCE_APPLY',
        subject: target,
        message: `${target} ${s.after?.sha256 === null ? 'was removed by the transaction but exists again' : nowSha === null ? 'was deleted' : 'was edited'} since transaction ${doc.txid}`,
        hint: 'merge your edit by hand, or undo with --force (your version is kept in the journal)',
      });
      editedIdx.push(i);
    }
  }
  if (!otherBoot) {
    // Only the last step touching a device or attribute says what should be there now.
    const lastOf = new Map<string, number>();
    for (const s of doc.steps) if (s.state === 'done') for (const r of resourcesOf(s)) lastOf.set(r, s.index);
    for (const s of doc.steps) {
      if (s.state !== 'done' || !resourcesOf(s).some((r) => lastOf.get(r) === s.index)) continue;
      const e = editedSince(ctx, s);
      if (e && !force && (s.kind === 'write-attr' || s.kind === 'unit-property')) {
        kept.push({ index: s.index, resources: resourcesOf(s), what: e });
        continue;
      }
      if (e) {
        edited.push({ code: 'E_EDITED_SINCE_APPLY', subject: s.path ?? s.kind, message: `${e} since transaction ${doc.txid}`, hint: 'put it back by hand, or undo with --force to restore what the transaction found' });
        forcedOver.push(e);
      }
    }
  }
  return { edited, editedIdx, forcedOver, kept };
}

/**
 * What `undo` of `doc` would do about things changed since, without doing it
 * (for --dry-run): the runtime values it would leave as they are, and what
 * would refuse it (edited files, devices moved since) unless forced.
 */
export function undoChangesPreview(root: HostRoot, doc: JournalDoc, force = false): { kept: string[]; refused: Problem[]; forcedOver: string[] } {
  const otherBoot = fromEarlierBoot(doc, currentBootId(root));
  const ctx: KernelContext = { root, runner: { run: () => Promise.reject(new Error('an undo preview runs no command')) }, sysfs: null, log: () => {}, txDir: '' };
  const c = changesSince(ctx, doc, otherBoot, force);
  return { kept: c.kept.map((k) => k.what), refused: force ? [] : c.edited, forcedOver: force ? [...c.editedIdx.map((i) => doc.steps[i].backup!.target), ...c.forcedOver] : [] };
}

/** The newest applied transaction (kept name). */
export async function undoLatest(opts: UndoOptions): Promise<UndoResult> {
  return undoTransaction(opts);
}
