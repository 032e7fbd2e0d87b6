// `vfiokit recover [--json]`: finish transactions a crash or power cut left
// half done (roll back an interrupted apply, finish an interrupted undo), and
// retry rollbacks and undos that could not finish. Every writing command
// does this first.

import { findUnfinished, recoverInterrupted, realRunner, type Runner, type SysfsWriter } from '../../apply/index.js';
import { realSysfsWriter } from '../../apply/sysfs-writer.js';
import { EXIT } from '../../errors.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner; writer?: SysfsWriter } = {}): Promise<number> {
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr });
  const sysfs = deps.writer ?? (ctx.root.isLive ? realSysfsWriter(ctx.root) : null);
  const reports = await recoverInterrupted(ctx.root, runner, { log: (l) => ctx.io.stderr.write(l + '\n'), sysfs });
  const left = findUnfinished(ctx.root);
  if (ctx.values.json) printJson(ctx, { recovered: reports, unfinished: left.map((d) => ({ txid: d.txid, kind: d.kind, state: d.state })) });
  else if (!reports.length) out(ctx, 'no unfinished transaction: nothing to recover');
  else for (const r of reports) out(ctx, r.message);
  return left.length ? EXIT.ROLLBACK_INCOMPLETE : EXIT.OK;
}
