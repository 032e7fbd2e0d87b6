// `vfiokit recover [--json]`: finish transactions a crash or power cut left
// half done (roll back an interrupted apply, finish an interrupted undo).
// apply, undo and status also do this first.

import { recoverInterrupted, realRunner, type Runner } from '../../apply/index.js';
import { EXIT } from '../../errors.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext, deps: { runner?: Runner } = {}): Promise<number> {
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr });
  const reports = await recoverInterrupted(ctx.root, runner, { log: (l) => ctx.io.stderr.write(l + '\n') });
  if (ctx.values.json) printJson(ctx, { recovered: reports });
  else if (!reports.length) out(ctx, 'no interrupted transaction: nothing to recover');
  else for (const r of reports) out(ctx, r.message);
  const incomplete = reports.some((r) => r.failures.length);
  return incomplete ? EXIT.ROLLBACK_INCOMPLETE : EXIT.OK;
}
