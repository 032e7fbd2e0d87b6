// `vfiokit bind SELECTOR... [--with ADDR] [--force] [--yes] [--json] [--dry-run]`:
// move the selected devices' IOMMU groups to vfio-pci now (no reboot), as
// one transaction of the engine: under the lock, after recovery, plan over a
// fresh snapshot → show → confirm → apply (rolled back on any failure).

import { applyPlan, withWriteLock } from '../../apply/index.js';
import { realRunner, type Runner } from '../../apply/runner.js';
import { realSysfsWriter, type SysfsWriter } from '../../apply/sysfs-writer.js';
import { EXIT, PreconditionError } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import type { HostRoot } from '../../host/root.js';
import { groupViability, readLive } from '../../host/runtime.js';
import { shortAddress } from '../../model/pci-address.js';
import type { Plan } from '../../model/plan.js';
import { planBind } from '../../plan/runtime-plan.js';
import { confirm } from '../confirm.js';
import { out, printJson, type CommandContext } from '../context.js';

/** Injected by tests: the kernel fake and a recording runner. */
export interface RuntimeCommandDeps {
  writer?: SysfsWriter;
  runner?: Runner;
  clock?: () => Date;
  /** Answer to the confirmation prompt (tests of the terminal path). */
  answer?: (question: string) => Promise<string>;
  /** Test hook for wait steps. */
  sleep?: (ms: number) => Promise<void>;
}

interface RuntimeEnv {
  runner: Runner;
  sysfs: SysfsWriter | null;
  log: (l: string) => void;
}

export function runtimeEnv(ctx: CommandContext, deps: RuntimeCommandDeps): RuntimeEnv {
  const env = ctx.io.env ?? process.env;
  return {
    runner: deps.runner ?? realRunner(ctx.root, { env, progress: ctx.io.stderr }),
    sysfs: deps.writer ?? (ctx.root.isLive ? realSysfsWriter(ctx.root) : null),
    log: (l: string) => ctx.io.stderr.write(l + '\n'),
  };
}

export function notLive(root: HostRoot): PreconditionError {
  return new PreconditionError('E_NOT_LIVE', `runtime binding changes the running kernel, but --root ${root.dir} is a directory tree with no kernel behind it; nothing was changed`, 'run bind/unbind without --root on the host itself (plan it from a snapshot with --dry-run)');
}

export function refuse(action: string, plan: Plan): never {
  throw new PreconditionError(plan.problems.length === 1 ? plan.problems[0].code : `E_${action.toUpperCase()}_REFUSED`, `${action} refused; nothing was changed`, undefined, plan.problems[0].subject, plan.problems, plan.warnings);
}

interface DeviceOutcome {
  address: string;
  name: string | null;
  group: number | null;
  from: string | null;
  after: string | null;
  changed: boolean;
}

/** What the devices look like now, against what they were. */
export function outcomes(root: HostRoot, before: { address: string; name: string | null; group: number | null; driver: string | null }[]): DeviceOutcome[] {
  return before.map((d) => {
    const after = readLive(root, d.address).driver;
    return { address: d.address, name: d.name, group: d.group, from: d.driver, after, changed: after !== d.driver };
  });
}

export function renderOutcomes(devs: DeviceOutcome[], groups: number[], root: HostRoot, bind: boolean): string[] {
  const lines = devs.map((d) => `  ${shortAddress(d.address)}${d.name ? ` ${d.name}` : ''}: ${d.changed ? `${d.from ?? 'unbound'} → ${d.after ?? 'unbound'}` : `unchanged (${d.after ?? 'unbound'})`}`);
  if (bind)
    for (const g of groups) {
      const v = groupViability(root, g);
      lines.push(`  group ${g}: ${v.viable ? `viable, /dev/vfio/${g} ready` : `NOT viable${v.blockers.length ? `: ${v.blockers.join(', ')}` : ''}`}`);
    }
  return lines;
}

export function groupsJson(root: HostRoot, groups: number[]) {
  return groups.map((g) => {
    const v = groupViability(root, g);
    return { id: g, viable: v.viable, devVfio: v.devVfio ? `/dev/vfio/${g}` : null, blockers: v.blockers };
  });
}

export async function run(ctx: CommandContext, deps: RuntimeCommandDeps = {}): Promise<number> {
  const json = Boolean(ctx.values.json);
  const say = (s: string) => (json ? ctx.io.stderr.write(s + '\n') : out(ctx, s));
  const withs = ctx.values.with;
  const opts = { with: Array.isArray(withs) ? withs : typeof withs === 'string' ? [withs] : [], force: Boolean(ctx.values.force), allowChipset: Boolean(ctx.values['allow-chipset']) };
  const make = () => planBind(inspect(ctx.root), ctx.positionals, opts);
  if (ctx.values['dry-run']) {
    const plan = make();
    if (json) printJson(ctx, plan);
    else {
      for (const l of plan.summary) out(ctx, `  ${l}`);
      for (const w of plan.warnings) out(ctx, `warning: ${w}`);
      for (const p of plan.problems) out(ctx, `refused: ${p.message}${p.hint ? `\n  fix: ${p.hint}` : ''}`);
      out(ctx, plan.steps.length ? `${plan.steps.length} step(s); nothing was changed (--dry-run)` : 'nothing to do');
    }
    return plan.problems.length ? EXIT.PRECONDITION : EXIT.OK;
  }
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const plan = make();
    if (plan.problems.length) refuse('bind', plan);
    for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
    const intent = plan.intent as unknown as { devices: { address: string; iommuGroup: number | null; driver: string | null }[]; groups: number[] };
    const snapDevs = intent.devices.map((d) => ({ address: d.address, name: null as string | null, group: d.iommuGroup, driver: d.driver }));
    for (const [i, l] of plan.summary.entries()) snapDevs[i].name = l.replace(/^\S+ /, '').replace(/ \(group .*$/, '');
    if (!plan.steps.length) {
      if (json) printJson(ctx, { action: 'bind', changed: false, txid: null, loadedModule: false, devices: outcomes(ctx.root, snapDevs), groups: groupsJson(ctx.root, intent.groups), warnings: plan.warnings });
      else say('nothing to do: every device is already on vfio-pci');
      return EXIT.OK;
    }
    if (!env.sysfs) throw notLive(ctx.root);
    say('Bind to vfio-pci:');
    for (const l of plan.summary) say(`  ${l}`);
    const n = plan.steps.filter((s) => s.kind === 'bind-driver').length;
    if (!(await confirm(ctx, `Bind ${n} device(s) now? [y/N] `, deps))) {
      say('cancelled; nothing was changed');
      return EXIT.FAILURE;
    }
    const res = await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true, sleep: deps.sleep });
    const devs = outcomes(ctx.root, snapDevs);
    const loadedModule = plan.steps.some((s) => s.kind === 'module');
    if (json) printJson(ctx, { action: 'bind', changed: true, txid: res.txid, loadedModule, devices: devs, groups: groupsJson(ctx.root, intent.groups), warnings: plan.warnings });
    else {
      say(`Done (transaction ${res.txid}; \`vfiokit unbind\` or \`vfiokit undo --id ${res.txid}\` gives them back):`);
      for (const l of renderOutcomes(devs, intent.groups, ctx.root, true)) say(l);
    }
    return EXIT.OK;
  });
}
