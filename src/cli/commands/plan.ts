// `vfiokit plan SELECTOR...`: what apply would change, as diffs and commands.

import { listJournals } from '../../apply/journal.js';
import { detectDrift } from '../../analysis/drift.js';
import { latestJournal, scanJournals } from '../../apply/index.js';
import { PreconditionError, UsageError } from '../../errors.js';
import { parseCpuList } from '../../formats/cpu-list.js';
import { PAGE_2M_KB, parsePageSize } from '../../plan/hugepages-plan.js';
import { parseMemorySize } from '../../vm/memory.js';
import type { HostRoot } from '../../host/root.js';
import { inspect } from '../../host/inspect.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import type { BootTransactionIntent, Plan } from '../../model/plan.js';
import type { HostSnapshot } from '../../model/snapshot.js';
import { assembleBootPlan, type BootIntent } from '../../plan/boot-plan.js';
import { renderPlan, renderProblems } from '../../render/plan.js';
import { out, printJson, type CommandContext } from '../context.js';

function bootIntent(ctx: CommandContext): BootIntent {
  const w = ctx.values.with;
  return {
    selectors: ctx.positionals,
    with: Array.isArray(w) ? w : typeof w === 'string' ? [w] : [],
    allowBootVga: Boolean(ctx.values['allow-boot-vga']),
    allowRootStorage: Boolean(ctx.values['allow-root-storage']),
    allowDefaultNic: Boolean(ctx.values['allow-default-nic']),
    allowChipset: Boolean(ctx.values['allow-chipset']),
    ...(typeof ctx.values.isolate === 'string' ? { isolate: isolateList(ctx.values.isolate), allowSmtSplit: Boolean(ctx.values['allow-smt-split']) } : {}),
    ...(typeof ctx.values.hugepages === 'string' ? { hugepages: hugepagesArg(ctx.values.hugepages) } : {}),
  };
}

/** Devices of the applied boot-time transactions: a new plan keeps them (passthrough accumulates). */
function appliedBootDevices(root: HostRoot): NonNullable<BootIntent['previous']> {
  return listJournals(root)
    .filter((d) => d.kind === 'boot-passthrough' && d.state === 'applied')
    .map((d) => ({ txid: d.txid, devices: Array.isArray(d.intent.devices) ? (d.intent.devices as NonNullable<BootIntent['previous']>[number]['devices']) : [], kernelArgs: Array.isArray(d.intent.kernelArgs) ? (d.intent.kernelArgs as string[]) : [] }));
}

/** `--hugepages SIZE[:PAGE]` (SIZE as for `vm --memory`, PAGE 2M or 1G; default 2M). */
function hugepagesArg(text: string): { sizeKb: number; pageKb: number } {
  const [size, page, ...rest] = text.split(':');
  const pageKb = page === undefined ? PAGE_2M_KB : parsePageSize(page);
  if (rest.length || pageKb === null) throw new UsageError(`--hugepages ${JSON.stringify(text)} is not SIZE[:PAGE]`, 'e.g. --hugepages 8G (2 MiB pages) or --hugepages 8G:1G', 'E_BAD_HUGEPAGES');
  return { sizeKb: parseMemorySize(size, '--hugepages'), pageKb };
}

function isolateList(text: string): number[] {
  const cpus = parseCpuList(text);
  if (cpus === null || !text.trim()) throw new UsageError(`--isolate ${JSON.stringify(text)} is not a CPU list (the kernel's format: numbers and ranges separated by commas)`, 'e.g. --isolate 2-7 (the VM CPUs)', 'E_BAD_CPU_LIST');
  return cpus;
}

/** Plan from the live snapshot; refusals become a PreconditionError (exit 3) listing every problem. */
export function planOrThrow(ctx: CommandContext): Plan {
  assertLinuxRoot(ctx.root);
  const snap = inspect(ctx.root);
  const plan = assembleBootPlan(snap, { ...bootIntent(ctx), previous: appliedBootDevices(ctx.root) });
  plan.warnings.push(...driftWarnings(ctx, snap));
  if (plan.problems.length) {
    if (ctx.values.json) printJson(ctx, plan);
    throw new PreconditionError(plan.problems[0].code, `cannot plan ${ctx.positionals.length ? `passthrough for ${ctx.positionals.join(' ')}` : 'boot-time isolation or huge pages'}; nothing was changed`, undefined, plan.problems[0].subject, plan.problems, plan.warnings);
  }
  return plan;
}

/** Hardware drift since the applied boot-time transaction, as plan warnings (what it means at the next boot, and the fix). */
function driftWarnings(ctx: CommandContext, snap: HostSnapshot): string[] {
  if (scanJournals(ctx.root).corrupt.length) return [];
  const j = latestJournal(ctx.root, (d) => d.kind === 'boot-passthrough' && d.state === 'applied');
  if (!j) return [];
  return detectDrift(snap, { txid: j.txid, intent: j.intent as unknown as BootTransactionIntent }).map(
    (d) => `hardware changed since transaction ${j.txid}: ${d.message}; ${d.nextBoot}${d.fix ? `; re-target with \`${d.fix}\`` : ''}`,
  );
}

export async function run(ctx: CommandContext): Promise<number> {
  const plan = planOrThrow(ctx);
  if (ctx.values.json) printJson(ctx, plan);
  else out(ctx, renderPlan(plan));
  return 0;
}

export { renderProblems };
