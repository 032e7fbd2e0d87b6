// `vfiokit plan SELECTOR...`: what apply would change, as diffs and commands.

import { PreconditionError, UsageError } from '../../errors.js';
import { parseCpuList } from '../../formats/cpu-list.js';
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
    ...(typeof ctx.values.isolate === 'string' ? { isolate: isolateList(ctx.values.isolate), allowSmtSplit: Boolean(ctx.values['allow-smt-split']) } : {}),
  };
}

function isolateList(text: string): number[] {
  const cpus = parseCpuList(text);
  if (cpus === null || !text.trim()) throw new UsageError(`--isolate ${JSON.stringify(text)} is not a CPU list (the kernel's format: numbers and ranges separated by commas)`, 'e.g. --isolate 2-7 (the VM CPUs)', 'E_BAD_CPU_LIST');
  return cpus;
}

/** Plan from the live snapshot; refusals become a PreconditionError (exit 3) listing every problem. */
export function planOrThrow(ctx: CommandContext): Plan {
  assertLinuxRoot(ctx.root);
  const plan = assembleBootPlan(inspect(ctx.root), bootIntent(ctx));
  if (plan.problems.length) {
    if (ctx.values.json) printJson(ctx, plan);
    throw new PreconditionError(plan.problems[0].code, `cannot plan ${ctx.positionals.length ? `passthrough for ${ctx.positionals.join(' ')}` : 'boot-time isolation'}; nothing was changed`, undefined, plan.problems[0].subject, plan.problems);
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
