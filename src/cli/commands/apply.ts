// `vfiokit apply SELECTOR... [--yes]`: the plan, shown, confirmed, applied as
// one transaction (lock, journal, atomic writes, rollback on failure).

import { applyPlan, realRunner, type Runner } from '../../apply/index.js';
import { renderPlan } from '../../render/plan.js';
import { out, type CommandContext } from '../context.js';
import { confirm } from '../confirm.js';
import { planOrThrow } from './plan.js';

export interface ApplyDeps {
  runner?: Runner;
  answer?: (q: string) => Promise<string>;
}

export async function run(ctx: CommandContext, deps: ApplyDeps = {}): Promise<number> {
  const plan = planOrThrow(ctx);
  out(ctx, renderPlan(plan));
  if (!plan.steps.length) return 0;
  if (!(await confirm(ctx, '\nApply these changes? [y/N] ', deps))) {
    out(ctx, 'Nothing was changed.');
    return 0;
  }
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr as never });
  const res = await applyPlan(plan, { root: ctx.root, runner, log: (l) => ctx.io.stderr.write(l + '\n') });
  for (const r of res.recovered) ctx.io.stderr.write(`recovered interrupted transaction ${(r as { txid?: string }).txid ?? ''}\n`);
  out(ctx, `\nApplied as transaction ${res.txid}: ${res.touched.length} file(s) changed, ${res.commands.length} command(s) run.`);
  out(ctx, 'Reboot, then run `vfiokit status` to verify. `vfiokit undo` reverts it.');
  return 0;
}
