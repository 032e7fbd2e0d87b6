// `vfiokit undo [--yes] [--force]`: revert the last applied transaction.

import { latestJournal, realRunner, undoLatest, type Runner } from '../../apply/index.js';
import { UsageError } from '../../errors.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import { out, printJson, type CommandContext } from '../context.js';
import { confirm } from '../confirm.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner; answer?: (q: string) => Promise<string> } = {}): Promise<number> {
  assertLinuxRoot(ctx.root);
  const j = latestJournal(ctx.root, (d) => d.state === 'applied');
  const json = Boolean(ctx.values.json);
  if (!j) {
    if (json) printJson(ctx, { changed: false, txid: null, kind: null, summary: [], restores: [], reruns: [], rebootRequired: false });
    else out(ctx, 'Nothing to undo: no applied vfiokit transaction in the journal.');
    return 0;
  }
  const restores = [...new Set(j.steps.filter((s) => s.path).map((s) => s.path!))];
  const reruns = j.steps.filter((s) => s.regenerate && s.argv).map((s) => s.argv!.join(' '));
  if (ctx.values['dry-run']) {
    if (json) printJson(ctx, { changed: true, dryRun: true, txid: j.txid, kind: j.kind, summary: j.summary, restores, reruns, rebootRequired: j.kind === 'boot-passthrough' });
    else out(ctx, [`Would undo transaction ${j.txid} (${j.kind}):`, ...j.summary.map((l) => `  ${l}`), `restores: ${restores.join(', ') || 'nothing'}`, `then runs: ${reruns.join('; ') || 'nothing'}`].join('\n'));
    return 0;
  }
  if (json && !ctx.values.yes) throw new UsageError('undo --json needs --yes (or --dry-run)', 'add --yes; a JSON consumer cannot answer the confirmation prompt', 'E_USAGE');
  if (json) {
    const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: null });
    const r = await undoLatest({ root: ctx.root, runner, force: Boolean(ctx.values.force), log: (l) => ctx.io.stderr.write(l + '\n') });
    printJson(ctx, { changed: true, txid: j.txid, kind: r.kind, restored: r.restored, reran: r.reran, overwritten: r.overwritten, rebootRequired: r.kind === 'boot-passthrough' });
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
