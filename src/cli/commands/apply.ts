// `vfiokit apply SELECTOR... [--yes] [--json] [--dry-run]`: under the lock,
// after finishing whatever a crash left unfinished, the plan over a fresh
// snapshot — shown, confirmed, applied as one transaction (journaled, atomic,
// rolled back on failure).

import { applyPlan, realRunner, withWriteLock, type Runner } from '../../apply/index.js';
import { UsageError } from '../../errors.js';
import { renderPlan } from '../../render/plan.js';
import { out, printJson, type CommandContext } from '../context.js';
import { confirm } from '../confirm.js';
import { planOrThrow } from './plan.js';

interface ApplyDeps {
  runner?: Runner;
  answer?: (q: string) => Promise<string>;
}

export async function run(ctx: CommandContext, deps: ApplyDeps = {}): Promise<number> {
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const plan = planOrThrow(ctx);
    if (json) printJson(ctx, plan);
    else out(ctx, `${renderPlan(plan)}\n(--dry-run: nothing was changed)`);
    return 0;
  }
  if (json && !ctx.values.yes) throw new UsageError('apply --json needs --yes', 'add --yes (a JSON consumer cannot answer the confirmation prompt); run `vfiokit plan --json` to see the plan first', 'E_USAGE');
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr as never });
  const log = (l: string) => ctx.io.stderr.write(l + '\n');
  return withWriteLock(ctx.root, runner, { log }, async () => {
    const plan = planOrThrow(ctx);
    if (!json) out(ctx, renderPlan(plan));
    if (!plan.steps.length) {
      if (json) printJson(ctx, { changed: false, txid: null, touched: [], commands: [], rebootRequired: false, warnings: plan.warnings });
      return 0;
    }
    if (!(await confirm(ctx, '\nApply these changes? [y/N] ', deps))) {
      out(ctx, 'Nothing was changed.');
      return 0;
    }
    const res = await applyPlan(plan, { root: ctx.root, runner, log, locked: true });
    if (json) {
      // Boot-time changes take effect at the next boot.
      printJson(ctx, { changed: true, txid: res.txid, touched: res.touched, commands: res.commands, rebootRequired: plan.kind === 'boot-passthrough', warnings: plan.warnings });
      return 0;
    }
    out(ctx, `\nApplied as transaction ${res.txid}: ${res.touched.length} file(s) changed, ${res.commands.length} command(s) run.`);
    out(ctx, `Reboot, then run \`vfiokit status\` to verify. \`vfiokit undo --id ${res.txid}\` reverts it.`);
    return 0;
  });
}
