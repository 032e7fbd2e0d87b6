// `vfiokit undo [--id TXID] [--yes] [--force] [--json] [--dry-run]`: revert the
// newest applied transaction of any kind, or a named one (refused, with the
// order to undo in, while a later transaction depends on it).

import { chooseUndo, currentBootId, dependents, describeStep, findUnfinished, fromEarlierBoot, isVolatile, listJournals, realRunner, undoChangesPreview, undoFilePreview, undoTransaction, withWriteLock, type JournalDoc, type Runner, type SysfsWriter } from '../../apply/index.js';
import { realSysfsWriter } from '../../apply/sysfs-writer.js';
import { PreconditionError, UsageError } from '../../errors.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import { out, printJson, type CommandContext } from '../context.js';
import { confirm } from '../confirm.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner; writer?: SysfsWriter; answer?: (q: string) => Promise<string> } = {}): Promise<number> {
  assertLinuxRoot(ctx.root);
  const json = Boolean(ctx.values.json);
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: json ? null : (ctx.io.stderr as never) });
  const sysfs = deps.writer ?? (ctx.root.isLive ? realSysfsWriter(ctx.root) : null);
  const log = (l: string) => ctx.io.stderr.write(l + '\n');
  const txid = typeof ctx.values.id === 'string' ? ctx.values.id : undefined;
  const bootNow = currentBootId(ctx.root);
  const otherBoot = (j: JournalDoc) => fromEarlierBoot(j, bootNow);
  const described = (j: JournalDoc) => ({
    txid: j.txid,
    kind: j.kind,
    summary: j.summary,
    restores: [...new Set(j.steps.filter((s) => s.path && s.state === 'done').map((s) => s.path!))],
    reruns: j.steps.filter((s) => s.regenerate && s.argv).map((s) => s.argv!.join(' ')),
    reverses: [...j.steps].reverse().filter((s) => s.state === 'done' && !(s.kind === 'run-command' && !s.regenerate && !s.undoArgv) && !(otherBoot(j) && isVolatile(s))).map(describeStep),
    // Kernel changes of an earlier boot are gone with that boot: the undo skips them.
    void: otherBoot(j) ? j.steps.filter((s) => s.state === 'done' && isVolatile(s)).map(describeStep) : [],
    mustUndoFirst: dependents(listJournals(ctx.root), j, bootNow).map((d) => d.txid),
    rebootRequired: j.kind === 'boot-passthrough',
  });
  const show = (j: JournalDoc) => {
    const d = described(j);
    if (d.void.length) out(ctx, `  (${d.void.length} change(s) to the running kernel were made in an earlier boot and are gone with it: nothing to reverse there)`);
    out(ctx, `Undo transaction ${j.txid} (${j.kind}, applied ${j.updatedAt}):`);
    for (const l of j.summary) out(ctx, `  ${l}`);
    if (d.mustUndoFirst.length) out(ctx, `  (${d.mustUndoFirst.join(', ')} must be undone first)`);
    for (const r of d.reverses) out(ctx, `  reverses: ${r}`);
  };
  const nothing = () => {
    if (json) printJson(ctx, { changed: false, txid: null, kind: null, summary: [], restores: [], reruns: [], rebootRequired: false });
    else out(ctx, 'Nothing to undo: no applied vfiokit transaction in the journal.');
    return 0;
  };
  if (ctx.values['dry-run']) {
    const j = chooseUndo(ctx.root, { txid });
    if (!j) return nothing();
    // Each restored file now and after the undo (as text), for diffs (the Ansible module's --diff).
    const files = undoFilePreview(ctx.root, j).map((f) => ({ path: f.path, current: f.now?.toString('utf8') ?? null, restored: f.restored?.toString('utf8') ?? null, restoredLink: f.link }));
    const since = undoChangesPreview(ctx.root, j, Boolean(ctx.values.force));
    const unfinished = findUnfinished(ctx.root).map((d) => d.txid);
    if (json) printJson(ctx, { changed: true, dryRun: true, ...described(j), files, ...since, unfinished });
    else {
      showUnfinished(ctx, unfinished, 'undo');
      show(j);
      showChangesSince(ctx, since);
      out(ctx, '(--dry-run: nothing was changed)');
    }
    refuseAsUndoWould(since, j.txid);
    return 0;
  }
  if (json && !ctx.values.yes) throw new UsageError('undo --json needs --yes (or --dry-run)', 'add --yes; a JSON consumer cannot answer the confirmation prompt', 'E_USAGE');
  return withWriteLock(ctx.root, runner, { log, sysfs }, async () => {
    const j = chooseUndo(ctx.root, { txid });
    if (!j) return nothing();
    if (!json) show(j);
    if (!(await confirm(ctx, '\nUndo? [y/N] ', deps))) {
      out(ctx, 'Nothing was changed.');
      return 0;
    }
    const r = await undoTransaction({ root: ctx.root, runner, sysfs, txid: j.txid, force: Boolean(ctx.values.force), log, locked: true });
    if (json) {
      printJson(ctx, { changed: true, txid: j.txid, kind: r.kind, restored: r.restored, reran: r.reran, notes: r.notes, overwritten: r.overwritten, rebootRequired: r.kind === 'boot-passthrough' });
      return 0;
    }
    out(ctx, `Undone: ${r.restored.length} thing(s) restored${r.reran.length ? `, reran ${r.reran.join('; ')}` : ''}.`);
    for (const n of r.notes) out(ctx, `  note: ${n}`);
    for (const o of r.overwritten) out(ctx, `  ${o.path} had been edited since apply; your version is kept as ${o.savedAs}`);
    if (r.kind === 'boot-passthrough') out(ctx, 'Reboot to give the devices back to their host drivers.');
    return 0;
  });
}

/** For a dry run: the unfinished transactions the real command recovers before anything else (the dry run does not). */
export function showUnfinished(ctx: CommandContext, txids: string[], command: string): void {
  for (const t of txids) out(ctx, `first: transaction ${t} is unfinished; ${command} recovers it before anything else (\`vfiokit recover\` does only that), which may change what it then undoes`);
}

/** For a dry run: what an undo would leave as it is, refuse over, or restore over (--force). */
export function showChangesSince(ctx: CommandContext, since: ReturnType<typeof undoChangesPreview>): void {
  for (const k of since.kept) out(ctx, `  would leave as it is (changed since; --force restores what the transaction found): ${k}`);
  for (const f of since.forcedOver) out(ctx, `  would restore over a change made since (--force): ${f}`);
}

/** A dry run ends as the undo would: refused (exit 3, each thing changed since with its fix) when the undo would be. */
export function refuseAsUndoWould(since: ReturnType<typeof undoChangesPreview>, txid: string): void {
  if (!since.refused.length) return;
  throw new PreconditionError('E_EDITED_SINCE_APPLY', `the undo would be refused: ${since.refused.length} thing(s) changed since transaction ${txid} was applied; nothing was changed`, since.refused[0].hint, since.refused[0].subject, since.refused);
}
