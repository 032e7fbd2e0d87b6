// `vfiokit undo [--yes] [--force]`: revert the last applied transaction.

import { latestJournal, realRunner, undoLatest, type Runner } from '../../apply/index.js';
import { out, type CommandContext } from '../context.js';
import { confirm } from '../confirm.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner; answer?: (q: string) => Promise<string> } = {}): Promise<number> {
  const j = latestJournal(ctx.root, (d) => d.state === 'applied');
  if (!j) {
    out(ctx, 'Nothing to undo: no applied vfiokit transaction in the journal.');
    return 0;
  }
  out(ctx, `Undo transaction ${j.txid} (${j.kind}, applied ${j.updatedAt}):`);
  for (const l of j.summary) out(ctx, `  ${l}`);
  const files = j.steps.filter((s) => s.path).map((s) => s.path!);
  const cmds = j.steps.filter((s) => s.regenerate && s.argv).map((s) => s.argv!.join(' '));
  if (files.length) out(ctx, `restores: ${[...new Set(files)].join(', ')}`);
  if (cmds.length) out(ctx, `then runs: ${cmds.join('; ')}`);
  if (!(await confirm(ctx, '\nUndo? [y/N] ', deps))) {
    out(ctx, 'Nothing was changed.');
    return 0;
  }
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr as never });
  const r = await undoLatest({ root: ctx.root, runner, force: Boolean(ctx.values.force), log: (l) => ctx.io.stderr.write(l + '\n') });
  out(ctx, `Undone: ${r.restored.length} file(s) restored${r.reran.length ? `, reran ${r.reran.join('; ')}` : ''}.`);
  for (const o of r.overwritten) out(ctx, `  ${o.path} had been edited since apply; your version is kept as ${o.savedAs}`);
  if (r.kind === 'boot-passthrough') out(ctx, 'Reboot to give the devices back to their host drivers.');
  return 0;
}
