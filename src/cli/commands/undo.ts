// `vfiokit undo [--id TXID] [--yes] [--force] [--dry-run]`: revert the newest
// applied transaction of any kind, or a named one (refused, with the order to
// undo in, while a later transaction depends on it).

import { chooseUndo, dependents, listJournals, realRunner, undoTransaction, withWriteLock, currentBootId, describeStep, type Runner, type SysfsWriter } from '../../apply/index.js';
import { realSysfsWriter } from '../../apply/sysfs-writer.js';
import { out, type CommandContext } from '../context.js';
import { confirm } from '../confirm.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner; writer?: SysfsWriter; answer?: (q: string) => Promise<string> } = {}): Promise<number> {
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr as never });
  const sysfs = deps.writer ?? (ctx.root.isLive ? realSysfsWriter(ctx.root) : null);
  const log = (l: string) => ctx.io.stderr.write(l + '\n');
  const txid = typeof ctx.values.id === 'string' ? ctx.values.id : undefined;
  const show = () => {
    const j = chooseUndo(ctx.root, { txid });
    if (!j) return null;
    out(ctx, `Undo transaction ${j.txid} (${j.kind}, applied ${j.updatedAt}):`);
    for (const l of j.summary) out(ctx, `  ${l}`);
    const later = dependents(listJournals(ctx.root), j, currentBootId(ctx.root));
    if (later.length) out(ctx, `  (${later.map((d) => d.txid).join(', ')} must be undone first)`);
    for (const s of [...j.steps].reverse()) if (s.state === 'done' && !(s.kind === 'run-command' && !s.regenerate && !s.undoArgv)) out(ctx, `  reverses: ${describeStep(s)}`);
    return j;
  };
  if (ctx.values['dry-run']) {
    if (!show()) out(ctx, 'Nothing to undo: no applied vfiokit transaction in the journal.');
    else out(ctx, '(--dry-run: nothing was changed)');
    return 0;
  }
  return withWriteLock(ctx.root, runner, { log, sysfs }, async () => {
    const j = show();
    if (!j) {
      out(ctx, 'Nothing to undo: no applied vfiokit transaction in the journal.');
      return 0;
    }
    if (!(await confirm(ctx, '\nUndo? [y/N] ', deps))) {
      out(ctx, 'Nothing was changed.');
      return 0;
    }
    const r = await undoTransaction({ root: ctx.root, runner, sysfs, txid: j.txid, force: Boolean(ctx.values.force), log, locked: true });
    out(ctx, `Undone: ${r.restored.length} thing(s) restored${r.reran.length ? `, reran ${r.reran.join('; ')}` : ''}.`);
    for (const n of r.notes) out(ctx, `  note: ${n}`);
    for (const o of r.overwritten) out(ctx, `  ${o.path} had been edited since apply; your version is kept as ${o.savedAs}`);
    if (r.kind === 'boot-passthrough') out(ctx, 'Reboot to give the devices back to their host drivers.');
    return 0;
  });
}
