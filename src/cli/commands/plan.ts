// `vfiokit plan SELECTOR...`: what apply would change, as diffs and commands.

import { listJournals } from '../../apply/journal.js';
import { PreconditionError } from '../../errors.js';
import type { HostRoot } from '../../host/root.js';
import { inspect } from '../../host/inspect.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import type { Plan } from '../../model/plan.js';
import { assembleBootPlan, type BootIntent } from '../../plan/boot-plan.js';
import { renderPlan, renderProblems } from '../../render/plan.js';
import { out, printJson, type CommandContext } from '../context.js';

export function bootIntent(ctx: CommandContext): BootIntent {
  const w = ctx.values.with;
  return {
    selectors: ctx.positionals,
    with: Array.isArray(w) ? w : typeof w === 'string' ? [w] : [],
    allowBootVga: Boolean(ctx.values['allow-boot-vga']),
    allowRootStorage: Boolean(ctx.values['allow-root-storage']),
    allowDefaultNic: Boolean(ctx.values['allow-default-nic']),
    allowChipset: Boolean(ctx.values['allow-chipset']),
  };
}

/** Devices of the applied boot-time transactions: a new plan keeps them (passthrough accumulates). */
export function appliedBootDevices(root: HostRoot): NonNullable<BootIntent['previous']> {
  return listJournals(root)
    .filter((d) => d.kind === 'boot-passthrough' && d.state === 'applied')
    .map((d) => ({ txid: d.txid, devices: Array.isArray(d.intent.devices) ? (d.intent.devices as NonNullable<BootIntent['previous']>[number]['devices']) : [] }));
}

/** Plan from the live snapshot; refusals become a PreconditionError (exit 3) listing every problem. */
export function planOrThrow(ctx: CommandContext): Plan {
  assertLinuxRoot(ctx.root);
  const plan = assembleBootPlan(inspect(ctx.root), { ...bootIntent(ctx), previous: appliedBootDevices(ctx.root) });
  if (plan.problems.length) {
    if (ctx.values.json) printJson(ctx, plan);
    throw new PreconditionError(plan.problems[0].code, `cannot plan passthrough for ${ctx.positionals.join(' ')}; nothing was changed`, undefined, plan.problems[0].subject, plan.problems, plan.warnings);
  }
  return plan;
}

export async function run(ctx: CommandContext): Promise<number> {
  const plan = planOrThrow(ctx);
  if (ctx.values.json) printJson(ctx, plan);
  else out(ctx, renderPlan(plan));
  return 0;
}

export { renderProblems };
