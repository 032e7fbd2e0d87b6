// `vfiokit bind SELECTOR... [--with ADDR] [--force] [--yes] [--json]`:
// move the selected devices' IOMMU groups to vfio-pci now (no reboot).
// Thin wrapper: planBind → show → confirm → executeBind → render.

import { realRunner, type Runner } from '../../apply/runner.js';
import { EXIT, PreconditionError } from '../../errors.js';
import { shortAddress } from '../../model/pci-address.js';
import { executeBind, executeUnbind, planBind, realSysfsWriter, type RuntimePlan, type RuntimeResult, type SysfsWriter } from '../../runtime/index.js';
import { confirm } from '../confirm.js';
import { out, printJson, type CommandContext } from '../context.js';

/** Injected by tests: the kernel fake and a recording runner. */
export interface RuntimeCommandDeps {
  writer?: SysfsWriter;
  runner?: Runner;
  clock?: () => Date;
  /** Answer to the confirmation prompt (tests of the terminal path). */
  answer?: (question: string) => Promise<string>;
}

export function describePlan(plan: RuntimePlan): string[] {
  const lines: string[] = [];
  if (plan.loadModule) lines.push('  load the vfio-pci module (modprobe vfio-pci)');
  for (const d of plan.devices) {
    const what = `${shortAddress(d.address)}${d.name ? ` ${d.name}` : ''} (group ${d.group ?? '-'})`;
    if (d.skip) lines.push(`  ${what}: already ${plan.action === 'bind' ? 'on vfio-pci' : 'restored'}`);
    else lines.push(`  ${what}: ${d.from.driver ?? 'unbound'} → ${d.to.driver ?? 'unbound'}${d.to.override && d.to.override !== d.to.driver ? ` (driver_override ${d.to.override})` : ''}`);
  }
  return lines;
}

export function renderResult(r: RuntimeResult): string[] {
  const lines = r.devices.map((d) => `  ${shortAddress(d.address)}: ${d.changed ? `${d.from.driver ?? 'unbound'} → ${d.after.driver ?? 'unbound'}` : `unchanged (${d.after.driver ?? 'unbound'})`}`);
  if (r.action === 'bind') for (const g of r.groups) lines.push(`  group ${g.id}: ${g.viable ? `viable, /dev/vfio/${g.id} ready` : `NOT viable${g.blockers.length ? `: ${g.blockers.join(', ')}` : ''}`}`);
  return lines;
}

export function jsonResult(r: RuntimeResult): unknown {
  return {
    action: r.action,
    changed: r.devices.some((d) => d.changed),
    loadedModule: r.loadedModule,
    devices: r.devices.map((d) => ({ address: d.address, name: d.name, group: d.group, from: d.from, to: d.to, after: d.after, changed: d.changed, recorded: d.recorded })),
    groups: r.groups.map((g) => ({ id: g.id, viable: g.viable, devVfio: g.devVfio ? `/dev/vfio/${g.id}` : null, blockers: g.blockers })),
    warnings: r.warnings,
  };
}

export async function runRuntime(action: 'bind' | 'unbind', ctx: CommandContext, plan: RuntimePlan, deps: RuntimeCommandDeps): Promise<number> {
  const json = Boolean(ctx.values.json);
  const say = (s: string) => (json ? ctx.io.stderr.write(s + '\n') : out(ctx, s));
  if (plan.problems.length) {
    throw new PreconditionError(plan.problems.length === 1 ? plan.problems[0].code : `E_${action.toUpperCase()}_REFUSED`, `${action} refused; nothing was changed`, undefined, plan.problems[0].subject, plan.problems);
  }
  for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  const todo = plan.devices.filter((d) => !d.skip);
  if (!todo.length && !plan.loadModule) {
    const r: RuntimeResult = { action, devices: plan.devices.map((d) => ({ ...d, after: d.from, changed: false })), groups: [], loadedModule: false, warnings: plan.warnings };
    if (json) printJson(ctx, jsonResult(r));
    else say(`nothing to do: ${plan.devices.length ? 'every device is already where it should be' : 'no device selected is bound to vfio-pci'}`);
    return EXIT.OK;
  }
  // Before asking: a --root tree has no kernel to write to (E_NOT_LIVE).
  const env = ctx.io.env ?? process.env;
  const runDeps = {
    root: ctx.root,
    writer: deps.writer ?? realSysfsWriter(ctx.root),
    runner: deps.runner ?? realRunner(ctx.root, { env, progress: ctx.io.stderr }),
    clock: deps.clock,
    log: (l: string) => ctx.io.stderr.write(l + '\n'),
  };
  say(`${action === 'bind' ? 'Bind to vfio-pci' : 'Return to the host drivers'}:`);
  for (const l of describePlan(plan)) say(l);
  if (!(await confirm(ctx, `${action === 'bind' ? 'Bind' : 'Unbind'} ${todo.length} device(s) now? [y/N] `, deps))) {
    say('cancelled; nothing was changed');
    return EXIT.FAILURE;
  }
  const r = action === 'bind' ? await executeBind(plan, runDeps) : await executeUnbind(plan, runDeps);
  if (json) printJson(ctx, jsonResult(r));
  else {
    say('Done:');
    for (const l of renderResult(r)) say(l);
    for (const w of r.warnings.slice(plan.warnings.length)) say(`warning: ${w}`);
  }
  return EXIT.OK;
}

export async function run(ctx: CommandContext, deps: RuntimeCommandDeps = {}): Promise<number> {
  const withs = ctx.values.with;
  const plan = planBind(ctx.root, ctx.positionals, { with: Array.isArray(withs) ? withs : typeof withs === 'string' ? [withs] : [], force: Boolean(ctx.values.force) });
  return runRuntime('bind', ctx, plan, deps);
}
