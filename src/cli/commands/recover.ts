// `vfiokit recover [--json]`: finish transactions a crash or power cut left
// half done (roll back an interrupted apply, finish an interrupted undo), and
// retry rollbacks and undos that could not finish. Every writing command
// does this first. --dry-run says what it would do, from the journals alone.

import { describeStep, findUnfinished, recoverInterrupted, recoveryOf, realRunner, scanJournals, UNFINISHED, type Runner, type SysfsWriter } from '../../apply/index.js';
import { corruptJournalError } from '../../apply/journal.js';
import { realSysfsWriter } from '../../apply/sysfs-writer.js';
import { EXIT } from '../../errors.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner; writer?: SysfsWriter } = {}): Promise<number> {
  if (ctx.values['dry-run']) return dryRun(ctx);
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr });
  const sysfs = deps.writer ?? (ctx.root.isLive ? realSysfsWriter(ctx.root) : null);
  const reports = await recoverInterrupted(ctx.root, runner, { log: (l) => ctx.io.stderr.write(l + '\n'), sysfs });
  const left = findUnfinished(ctx.root);
  if (ctx.values.json) printJson(ctx, { recovered: reports, unfinished: left.map((d) => ({ txid: d.txid, kind: d.kind, state: d.state })) });
  else if (!reports.length) out(ctx, 'no unfinished transaction: nothing to recover');
  else for (const r of reports) out(ctx, r.message);
  return left.length ? EXIT.ROLLBACK_INCOMPLETE : EXIT.OK;
}

/** What `recover` would do, newest first, changing nothing (an unreadable journal is refused as recover refuses it). */
function dryRun(ctx: CommandContext): number {
  const { docs, corrupt } = scanJournals(ctx.root);
  if (corrupt.length) throw corruptJournalError(corrupt, ctx.root);
  const left = docs.filter((d) => UNFINISHED.includes(d.state)).reverse().map((d) => {
    const r = recoveryOf(d);
    return { txid: d.txid, kind: d.kind, state: d.state, action: r.undoing ? 'finish the undo' : 'roll back', reverses: r.steps.map((i) => describeStep(d.steps[i])), reruns: r.regenerate.map((i) => describeStep(d.steps[i])) };
  });
  if (ctx.values.json) printJson(ctx, { dryRun: true, unfinished: left });
  else if (!left.length) out(ctx, 'no unfinished transaction: nothing to recover');
  else {
    for (const t of left) {
      out(ctx, `would ${t.action} transaction ${t.txid} (${t.kind}, left ${t.state}):`);
      for (const r of t.reverses) out(ctx, `  reverses: ${r}`);
      for (const r of t.reruns) out(ctx, `  reruns: ${r}`);
    }
    out(ctx, '(--dry-run: nothing was changed)');
  }
  return EXIT.OK;
}
