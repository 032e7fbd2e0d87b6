// `vfiokit isolate DOMAIN|--cpus LIST [--irqs] [--workqueues] [--governor G]
// [--allow-smt-split] [--dry-run] [--json]` and `vfiokit isolate --undo`:
// keep the host's own work off the VM's CPUs while it runs, as one
// transaction of the engine (runtime only: nothing survives a reboot), and
// give back every value exactly. Under the lock, after recovery, planned over
// a fresh snapshot.

import { appliedThisBoot, applyPlan, currentBootId, findUnfinished, listJournals, undoChangesPreview, undoTransaction, withWriteLock, type JournalDoc } from '../../apply/index.js';
import { refuseAsUndoWould, showChangesSince, showUnfinished } from './undo.js';
import { EXIT, PreconditionError, UsageError } from '../../errors.js';
import { formatCpuList, parseCpuList } from '../../formats/cpu-list.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import { inspect } from '../../host/inspect.js';
import type { HostRoot } from '../../host/root.js';
import { definedDomainXml } from '../../host/sysfs-paths.js';
import type { HostSnapshot } from '../../model/snapshot.js';
import type { Plan } from '../../model/plan.js';
import { domainVmCpus } from '../../plan/domain-vm-cpus.js';
import { ISOLATE_KIND, planIsolate, type IsolateIntent } from '../../plan/isolate-plan.js';
import { renderStepPlan } from '../../render/handoff.js';
import { out, printJson, type CommandContext } from '../context.js';
import { notLive, runtimeEnv, type RuntimeCommandDeps } from './bind.js';

const GOVERNOR_RE = /^[a-z][a-z0-9_-]{0,31}$/;

/** The applied isolate transactions of this boot, newest first. */
function activeIsolations(root: HostRoot): JournalDoc[] {
  return appliedThisBoot(listJournals(root), ISOLATE_KIND, currentBootId(root));
}

/** The intent from the command line; throws UsageError / PreconditionError for bad input (nothing changed). */
function isolateIntent(ctx: CommandContext, snap: HostSnapshot): IsolateIntent {
  const cpusArg = ctx.values.cpus;
  const domain = ctx.positionals[0] ?? null;
  if (ctx.positionals.length > 1) throw new UsageError(`isolate: one domain at a time (got ${ctx.positionals.join(' ')})`, 'vfiokit isolate DOMAIN, or vfiokit isolate --cpus LIST');
  if (domain && typeof cpusArg === 'string') throw new UsageError('isolate: give a domain or --cpus, not both', 'vfiokit isolate DOMAIN, or vfiokit isolate --cpus LIST');
  const gov = ctx.values.governor;
  if (gov !== undefined && (typeof gov !== 'string' || !GOVERNOR_RE.test(gov))) throw new UsageError(`--governor ${String(gov)} is not a cpufreq governor name`, 'e.g. --governor performance (see scaling_available_governors)', 'E_BAD_GOVERNOR');
  const base = { domain, irqs: Boolean(ctx.values.irqs), workqueues: Boolean(ctx.values.workqueues), governor: typeof gov === 'string' ? gov : null, allowSmtSplit: Boolean(ctx.values['allow-smt-split']) };
  if (typeof cpusArg === 'string') {
    const cpus = parseCpuList(cpusArg);
    if (cpus === null || !cpusArg.trim()) throw new UsageError(`--cpus ${JSON.stringify(cpusArg)} is not a CPU list (the kernel's format: numbers and ranges separated by commas)`, 'e.g. --cpus 2-7 or --cpus 4-7,12-15', 'E_BAD_CPU_LIST');
    return { ...base, vmCpus: cpus, source: `--cpus ${cpusArg}` };
  }
  if (!domain) throw new UsageError('isolate: name the VM\'s domain or its CPUs', 'vfiokit isolate DOMAIN, vfiokit isolate --cpus LIST, or vfiokit isolate --undo');
  const file = definedDomainXml(domain);
  const xml = ctx.root.tryReadText(file);
  if (xml === undefined) throw new PreconditionError('E_DOMAIN_NOT_DEFINED', `no libvirt domain '${domain}': ${file} does not exist`, 'check the name with `virsh list --all`, or give the VM CPUs with --cpus LIST', domain);
  const d = domainVmCpus(xml, file, snap);
  if (!d.cpus) throw new PreconditionError(d.problems[0]?.code ?? 'E_NO_VM_CPUS', d.problems[0]?.message ?? `${file}: no VM CPUs`, d.problems[0]?.hint, domain, d.problems);
  return { ...base, vmCpus: d.cpus, source: `domain ${domain}: ${d.how}` };
}

/** What the transaction left, from its journal: units, IRQs moved, IRQs the kernel kept (managed). */
export function isolationOutcome(doc: JournalDoc) {
  const irqSteps = doc.steps.filter((s) => s.kind === 'write-attr' && s.spec?.kind === 'write-attr' && s.spec.optional);
  const kept = irqSteps.filter((s) => (s.live as { skipped?: string } | undefined)?.skipped).map((s) => ({ path: s.path ?? '', errno: String((s.live as { skipped?: string }).skipped) }));
  return {
    units: doc.steps.filter((s) => s.kind === 'unit-property').map((s) => ({ unit: (s.spec as { unit: string }).unit, before: ((s.live as { value?: string | null } | undefined)?.value ?? '') || null })),
    irqsMoved: irqSteps.length - kept.length,
    irqsKept: kept,
  };
}

/** The applied isolation of this boot to undo: the newest, or the newest tagged with `domain` when one is given. */
export function isolationToUndo(root: HostRoot, domain: string | null): JournalDoc | undefined {
  return activeIsolations(root).find((d) => domain === null || (d.intent as { domain?: string | null }).domain === domain);
}

/**
 * Undo the isolation of this boot (of `domain`'s, when given), under the lock
 * after recovery; null when none is in effect. A value changed since (by hand)
 * is refused by name unless `force` (`isolate --undo --force`).
 */
export async function undoIsolation(ctx: CommandContext, deps: RuntimeCommandDeps, domain: string | null = null, force = false): Promise<{ txid: string; restored: string[]; notes: string[] } | null> {
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const tx = isolationToUndo(ctx.root, domain);
    if (!tx) return null;
    const r = await undoTransaction({ root: ctx.root, runner: env.runner, sysfs: env.sysfs, txid: tx.txid, force, log: env.log, locked: true });
    return { txid: tx.txid, restored: r.restored, notes: r.notes };
  });
}

async function undo(ctx: CommandContext, deps: RuntimeCommandDeps): Promise<number> {
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const tx = isolationToUndo(ctx.root, null);
    if (!tx) {
      if (json) printJson(ctx, { action: 'isolate-undo', dryRun: true, changed: false, txid: null });
      else out(ctx, 'nothing to undo: no CPU isolation of this boot is in effect');
      return EXIT.OK;
    }
    const since = undoChangesPreview(ctx.root, tx, Boolean(ctx.values.force));
    const unfinished = findUnfinished(ctx.root).map((d) => d.txid);
    if (json) printJson(ctx, { action: 'isolate-undo', dryRun: true, txid: tx.txid, summary: tx.summary, ...since, unfinished });
    else {
      showUnfinished(ctx, unfinished, 'isolate --undo');
      out(ctx, [`would undo transaction ${tx.txid}:`, ...tx.summary.map((l) => `  ${l}`)].join('\n'));
      showChangesSince(ctx, since);
      out(ctx, '(--dry-run: nothing was changed)');
    }
    refuseAsUndoWould(since, tx.txid);
    return EXIT.OK;
  }
  const r = await undoIsolation(ctx, deps, null, Boolean(ctx.values.force));
  if (!r) {
    if (json) printJson(ctx, { action: 'isolate-undo', changed: false, txid: null });
    else out(ctx, 'nothing to undo: no CPU isolation of this boot is in effect');
    return EXIT.OK;
  }
  if (json) printJson(ctx, { action: 'isolate-undo', changed: true, txid: r.txid, restored: r.restored, notes: r.notes });
  else {
    out(ctx, `CPU isolation undone (transaction ${r.txid}): ${r.restored.length} value(s) restored`);
    for (const n of r.notes) out(ctx, `  note: ${n}`);
  }
  return EXIT.OK;
}

/**
 * An isolation in effect does what `intent` asks when it is for the same CPUs
 * and moved at least what is asked now (IRQs, workqueues, the governor);
 * otherwise E_ALREADY_ISOLATED, naming what it lacks (nothing changed).
 */
function checkCovers(active: JournalDoc, intent: IsolateIntent): void {
  const a = active.intent as Partial<IsolateIntent>;
  const cpus = formatCpuList(a.vmCpus ?? []);
  const hint = 'undo it first (vfiokit isolate --undo), then isolate again with what you want';
  if (cpus !== formatCpuList(intent.vmCpus)) throw new PreconditionError('E_ALREADY_ISOLATED', `CPU isolation for CPU ${cpus} is in effect (transaction ${active.txid}); nothing was changed`, hint, active.txid);
  const lacks = [intent.irqs && !a.irqs && '--irqs', intent.workqueues && !a.workqueues && '--workqueues', intent.governor !== null && a.governor !== intent.governor && `--governor ${intent.governor}${a.governor ? ` (it set ${a.governor})` : ''}`].filter((x): x is string => Boolean(x));
  if (lacks.length) throw new PreconditionError('E_ALREADY_ISOLATED', `CPU isolation for CPU ${cpus} is in effect (transaction ${active.txid}) without ${lacks.join(', ')}; nothing was changed`, hint, active.txid);
}

interface IsolationResult {
  intent: IsolateIntent;
  /** The transaction in effect (this one, or the one found in effect already); null when there was nothing to do. */
  txid: string | null;
  /** Whether this call changed the host. */
  changed: boolean;
  plan: Plan | null;
  doc: JournalDoc | null;
  /** The host CPUs, in the kernel's list format. */
  host: string;
}

/**
 * Isolate under the lock, after recovery, planned over a fresh snapshot:
 * `makeIntent` turns that snapshot into the intent. An isolation of the same
 * CPUs in effect already is reported (changed: false); one of other CPUs is
 * refused (E_ALREADY_ISOLATED). Refusals throw PreconditionError, nothing changed.
 */
export async function applyIsolation(ctx: CommandContext, deps: RuntimeCommandDeps, makeIntent: (snap: HostSnapshot) => IsolateIntent): Promise<IsolationResult> {
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const snap = inspect(ctx.root, { names: false });
    const intent = makeIntent(snap);
    const host = formatCpuList((snap.cpuTopology?.online ?? []).filter((c) => !intent.vmCpus.includes(c)));
    const active = activeIsolations(ctx.root)[0];
    if (active) {
      checkCovers(active, intent);
      return { intent, txid: active.txid, changed: false, plan: null, doc: active, host };
    }
    const plan = planIsolate(snap, intent);
    if (plan.problems.length) throw new PreconditionError(plan.problems.length === 1 ? plan.problems[0].code : 'E_ISOLATE_REFUSED', 'isolate refused; nothing was changed', undefined, plan.problems[0].subject, plan.problems);
    for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
    if (!plan.steps.length) return { intent, txid: null, changed: false, plan, doc: null, host };
    if (plan.steps.some((s) => s.kind === 'write-attr') && !env.sysfs) throw notLive(ctx.root);
    const res = await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true });
    const doc = listJournals(ctx.root).find((d) => d.txid === res.txid) ?? null;
    return { intent, txid: res.txid ?? null, changed: true, plan, doc, host };
  });
}

/**
 * What isolate would do, read only (for dry runs): the isolation in effect
 * already when it covers `intent` (refused, as isolate refuses, when it does
 * not), else the plan.
 */
export function isolationPreview(root: HostRoot, snap: HostSnapshot, intent: IsolateIntent): { active: JournalDoc; plan: null } | { active: null; plan: Plan } {
  const active = activeIsolations(root)[0];
  if (active) {
    checkCovers(active, intent);
    return { active, plan: null };
  }
  return { active: null, plan: planIsolate(snap, intent) };
}

export async function run(ctx: CommandContext, deps: RuntimeCommandDeps = {}): Promise<number> {
  assertLinuxRoot(ctx.root);
  if (ctx.values.undo) return undo(ctx, deps);
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const snap = inspect(ctx.root, { names: false });
    const intent = isolateIntent(ctx, snap);
    // What isolate would find: an isolation in effect is reported (or refused) as isolate does.
    const { active, plan } = isolationPreview(ctx.root, snap, intent);
    if (active) {
      if (json) printJson(ctx, { action: 'isolate', dryRun: true, changed: false, txid: active.txid, ...isolationOutcome(active) });
      else out(ctx, `CPU isolation for CPU ${formatCpuList(intent.vmCpus)} is in effect already (transaction ${active.txid}); nothing to do (dry run: nothing is changed)`);
      return EXIT.OK;
    }
    if (json) printJson(ctx, plan);
    else out(ctx, renderStepPlan('isolate (dry run: nothing is changed)', plan));
    return plan.problems.length ? EXIT.PRECONDITION : EXIT.OK;
  }
  const r = await applyIsolation(ctx, deps, (snap) => isolateIntent(ctx, snap));
  if (!r.changed) {
    if (json) printJson(ctx, { action: 'isolate', changed: false, txid: r.txid, ...(r.doc ? isolationOutcome(r.doc) : {}) });
    else out(ctx, r.txid ? `CPU isolation for CPU ${formatCpuList(r.intent.vmCpus)} is in effect already (transaction ${r.txid}); nothing to do` : 'nothing to do');
    return EXIT.OK;
  }
  const o = isolationOutcome(r.doc!);
  if (json) printJson(ctx, { action: 'isolate', changed: true, txid: r.txid, vmCpus: formatCpuList(r.intent.vmCpus), hostCpus: r.host, ...o, warnings: r.plan!.warnings });
  else {
    out(ctx, `Isolated (transaction ${r.txid}; \`vfiokit isolate --undo\` gives everything back):`);
    for (const l of r.plan!.summary) out(ctx, `  ${l}`);
    for (const u of o.units) out(ctx, `  ${u.unit}: AllowedCPUs=${r.host} (was ${u.before ?? 'not set'})`);
    if (r.intent.irqs) out(ctx, `  IRQs moved: ${o.irqsMoved}; kept by the kernel (managed or not movable): ${o.irqsKept.length}${o.irqsKept.length ? ` (${o.irqsKept.map((k) => k.path.split('/')[3]).join(' ')})` : ''}`);
  }
  return EXIT.OK;
}
