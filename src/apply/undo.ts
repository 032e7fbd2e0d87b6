// undoLatest: reverse the newest applied transaction (a stack: undo again to
// reverse the one before). Only files nobody edited since are restored: every
// file the transaction wrote must still hash to what it wrote (a removed file
// must still be absent), else refuse and list them — unless `force`, which
// keeps a copy of each edited file in the journal before restoring.
// Order: lock → recover interrupted → check → journal "undoing" → restore files
// newest step first (bytes, mode, owner; files that did not exist are deleted,
// directories created for them removed when empty) → re-run the transaction's
// regenerate commands → journal "undone".

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplyError, PreconditionError, type Problem } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { Journal, latestJournal } from './journal.js';
import { acquireLock, type LockOptions } from './lock.js';
import { assertRecovered, recoverLocked, type RecoveryReport } from './recover.js';
import type { Runner } from './runner.js';
import { asRoot } from './state-dir.js';
import { readCurrent, resolveHostPath, summarizeRollback, unwind } from './file-steps.js';
import { sha256 } from './atomic-write.js';

export interface UndoOptions {
  root: HostRoot | string;
  runner: Runner;
  /** Restore even files edited since the apply (a copy of each edit is kept in the journal). */
  force?: boolean;
  /** Must name the newest applied transaction when given. */
  txid?: string;
  clock?: () => Date;
  log?: (line: string) => void;
  lock?: LockOptions;
}

export interface UndoResult {
  /** The transaction undone; null when there was nothing to undo. */
  txid: string | null;
  kind: string | null;
  restored: string[];
  reran: string[];
  /** Edited files overwritten because of `force`, with where the edit was saved. */
  overwritten: { path: string; savedAs: string }[];
  recovered: RecoveryReport[];
}

export async function undoLatest(opts: UndoOptions): Promise<UndoResult> {
  const root = asRoot(opts.root);
  const log = opts.log ?? (() => {});
  const lock = acquireLock(root, { onStale: log, ...opts.lock });
  try {
    const recovered = await recoverLocked(root, opts.runner, { clock: opts.clock, log });
    assertRecovered(recovered);
    const latest = latestJournal(root, (d) => d.state === 'applied');
    if (opts.txid && latest?.txid !== opts.txid) {
      throw new PreconditionError(
        'E_NOT_LATEST',
        latest ? `transaction ${opts.txid} is not the newest applied one (${latest.txid} is)` : `transaction ${opts.txid} is not applied (nothing is)`,
        'undo transactions newest first: run `vfiokit undo` without an id',
        opts.txid,
      );
    }
    if (!latest) return { txid: null, kind: null, restored: [], reran: [], overwritten: [], recovered };
    const j = Journal.open(root, latest.txid, opts.clock);

    // Check: the last step touching each file must still describe it.
    const last = new Map<string, number>();
    for (const s of j.doc.steps) if (s.kind !== 'run-command' && s.backup && s.state === 'done') last.set(s.backup.target, s.index);
    const edited: Problem[] = [];
    const editedIdx: number[] = [];
    for (const [target, i] of last) {
      const s = j.doc.steps[i];
      const b = s.backup!;
      let nowSha: string | null;
      if (b.link !== null) {
        nowSha = (() => {
          try {
            fs.lstatSync(resolveHostPath(root, target, false));
            return 'present';
          } catch {
            return null;
          }
        })();
      } else {
        const cur = readCurrent(resolveHostPath(root, target));
        nowSha = cur ? sha256(cur) : null;
      }
      if (nowSha !== (s.after?.sha256 ?? null)) {
        edited.push({
          code: 'E_EDITED_SINCE_APPLY',
          subject: target,
          message: `${target} ${s.after?.sha256 === null ? 'was removed by the transaction but exists again' : nowSha === null ? 'was deleted' : 'was edited'} since transaction ${j.doc.txid}`,
          hint: 'merge your edit by hand, or undo with --force (your version is kept in the journal)',
        });
        editedIdx.push(i);
      }
    }
    if (edited.length && !opts.force) {
      throw new PreconditionError('E_EDITED_SINCE_APPLY', `${edited.length} file(s) changed since transaction ${j.doc.txid} was applied; nothing was undone`, 'undo with --force to restore the originals anyway (edits are saved in the journal)', edited[0].subject, edited);
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

    j.setState('undoing', `undo started${overwritten.length ? ` (forced over edits to ${overwritten.map((o) => o.path).join(', ')})` : ''}`);
    const fileSteps = j.doc.steps.filter((s) => s.kind !== 'run-command' && s.state === 'done').map((s) => s.index).reverse();
    const regenerate = j.doc.steps.filter((s) => s.kind === 'run-command' && s.regenerate).map((s) => s.index);
    for (const s of j.doc.steps) if (s.kind === 'run-command' && !s.regenerate) s.state = 'undone';
    const rep = await unwind(root, j, { fileSteps, regenerate, markAs: 'undone', runner: opts.runner, log });
    if (rep.failures.length) {
      j.setState('undo-failed', summarizeRollback(rep));
      throw new ApplyError(
        [`undo of transaction ${j.doc.txid} is incomplete: ${rep.failures.join('; ')}`, `done: ${summarizeRollback(rep)}`, `journal: ${j.doc.txid}`].join('\n'),
        j.doc.txid,
        'undo',
        rep,
        undefined,
        `finish by hand: the original files are in ${j.dir}`,
        'E_UNDO_INCOMPLETE',
      );
    }
    for (const i of regenerate) j.doc.steps[i].state = 'undone';
    j.setState('undone', summarizeRollback(rep));
    return { txid: j.doc.txid, kind: j.doc.kind, restored: rep.restored, reran: rep.reran, overwritten, recovered };
  } finally {
    lock.release();
  }
}
