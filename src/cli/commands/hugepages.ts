// `vfiokit hugepages reserve SIZE|--domain DOMAIN [--page 2M|1G] [--node N]`,
// `vfiokit hugepages release [DOMAIN]` and `vfiokit hugepages [status]`:
// huge pages for a running VM as one transaction of the engine (compaction,
// then nr_hugepages raised by the shortfall), checked against what the kernel
// gave (short: rolled back, exit 3, with the boot-time alternative), and given
// back exactly by release / undo / recover. Under the lock, after recovery.

import { showUnfinished } from './undo.js';
import { appliedThisBoot, applyPlan, currentBootId, findUnfinished, listJournals, undoTransaction, withWriteLock, type JournalDoc } from '../../apply/index.js';
import { ApplyError, EXIT, PreconditionError, UsageError } from '../../errors.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import { inspect } from '../../host/inspect.js';
import type { HostRoot } from '../../host/root.js';
import type { HostSnapshot } from '../../model/snapshot.js';
import { domainHugepageNeed } from '../../plan/domain-hugepages.js';
import { bootAlternative, HUGEPAGES_KIND, PAGE_2M_KB, pageArg, pageLabel, parsePageSize, planReserve, type ReserveIntent, type ReserveRecord } from '../../plan/hugepages-plan.js';
import { renderStepPlan } from '../../render/handoff.js';
import { describeMemory, formatMemorySize, parseMemorySize } from '../../vm/memory.js';
import { out, printJson, type CommandContext } from '../context.js';
import { notLive, runtimeEnv } from './bind.js';
import { domainXml, type HandoffDeps } from './handoff.js';

/** The applied reserve transactions of this boot (of DOMAIN when given), newest first. */
function activeReserves(root: HostRoot, domain: string | null = null): JournalDoc[] {
  return appliedThisBoot(listJournals(root), HUGEPAGES_KIND, currentBootId(root)).filter((d) => domain === null || (d.intent as { domain?: string }).domain === domain);
}

const recordOf = (d: JournalDoc) => d.intent as unknown as ReserveRecord;
const sameNeed = (a: ReserveIntent, b: ReserveIntent) => a.domain === b.domain && a.sizeKb === b.sizeKb && a.pageKb === b.pageKb && a.node === b.node;

/** The need from the command line or the domain XML; bad input throws (nothing changed). */
async function reserveIntent(ctx: CommandContext, snap: HostSnapshot, deps: HandoffDeps): Promise<ReserveIntent> {
  const v = ctx.values;
  const args = ctx.positionals.slice(1);
  const domain = typeof v.domain === 'string' ? v.domain : null;
  if (domain && args.length) throw new UsageError('hugepages reserve: give a SIZE or --domain, not both', 'vfiokit hugepages reserve 8G, or vfiokit hugepages reserve --domain DOMAIN');
  if (args.length > 1) throw new UsageError(`hugepages reserve: one size (got ${args.join(' ')})`, 'e.g. vfiokit hugepages reserve 8G');
  const page = typeof v.page === 'string' ? parsePageSize(v.page) : null;
  if (typeof v.page === 'string' && page === null) throw new UsageError(`--page ${JSON.stringify(v.page)} is not a huge page size`, 'use --page 2M or --page 1G', 'E_BAD_PAGE_SIZE');
  let node: number | null = null;
  if (typeof v.node === 'string') {
    if (!/^\d{1,4}$/.test(v.node.trim())) throw new UsageError(`--node ${JSON.stringify(v.node)} is not a NUMA node number`, 'e.g. --node 0 (see /sys/devices/system/node)', 'E_BAD_NUMA_NODE');
    node = Number(v.node.trim());
  }
  if (domain) {
    const { xml, source } = await domainXml(ctx, domain, deps);
    const d = domainHugepageNeed(xml, source, domain, snap);
    if (!d.need) throw new PreconditionError(d.problems[0].code, d.problems[0].message, d.problems[0].hint, domain, d.problems);
    return { ...d.need, ...(page !== null ? { pageKb: page } : {}), ...(typeof v.node === 'string' ? { node } : {}) };
  }
  if (!args.length) throw new UsageError('hugepages reserve: how much memory?', 'vfiokit hugepages reserve 8G, or vfiokit hugepages reserve --domain DOMAIN');
  const sizeKb = parseMemorySize(args[0], 'hugepages reserve', 'vfiokit hugepages reserve');
  const pageKb = page ?? PAGE_2M_KB;
  return { sizeKb, pageKb, node, domain: null, source: `${args[0]}${page ? ` --page ${v.page}` : ''}${node === null ? '' : ` --node ${node}`}` };
}

/**
 * The same need in effect already, or the plan over the pages other applied
 * reservations of the pool leave free: what reserve does, and what its
 * --dry-run shows.
 */
function decideReserve(root: HostRoot, snap: HostSnapshot, intent: ReserveIntent): { same: JournalDoc } | { plan: ReturnType<typeof planReserve> } {
  const active = activeReserves(root);
  const same = active.find((d) => sameNeed(recordOf(d), intent));
  if (same) return { same };
  // Pages other reservations of the same pool promised to their VMs are not free for this one.
  const held = active.map(recordOf).filter((r) => r.pageKb === intent.pageKb && r.node === intent.node).reduce((n, r) => n + r.pages, 0);
  return { plan: planReserve(snap, intent, held) };
}

function inEffect(ctx: CommandContext, intent: ReserveIntent, same: JournalDoc, dryRun: boolean): number {
  if (ctx.values.json) printJson(ctx, { action: 'hugepages-reserve', ...(dryRun ? { dryRun: true } : {}), changed: false, txid: same.txid, ...recordOf(same) });
  else out(ctx, `${describeMemory(intent.sizeKb)} of ${pageLabel(intent.pageKb)} pages${intent.domain ? ` for ${intent.domain}` : ''} is in effect already (transaction ${same.txid}); nothing to do${dryRun ? ' (dry run: nothing is changed)' : ''}`);
  return EXIT.OK;
}

function refused(plan: ReturnType<typeof planReserve>): PreconditionError {
  return new PreconditionError(plan.problems.length === 1 ? plan.problems[0].code : 'E_HUGEPAGES_REFUSED', 'hugepages reserve refused; nothing was changed', undefined, plan.problems[0].subject, plan.problems);
}

async function reserve(ctx: CommandContext, deps: HandoffDeps): Promise<number> {
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const snap = inspect(ctx.root, { names: false });
    const intent = await reserveIntent(ctx, snap, deps);
    const d = decideReserve(ctx.root, snap, intent);
    if ('same' in d) return inEffect(ctx, intent, d.same, true);
    if (json) printJson(ctx, d.plan);
    else out(ctx, renderStepPlan('hugepages reserve (dry run: nothing is changed)', d.plan));
    return d.plan.problems.length ? EXIT.PRECONDITION : EXIT.OK;
  }
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const snap = inspect(ctx.root, { names: false });
    const intent = await reserveIntent(ctx, snap, deps);
    const d = decideReserve(ctx.root, snap, intent);
    if ('same' in d) return inEffect(ctx, intent, d.same, false);
    const plan = d.plan;
    if (plan.problems.length) throw refused(plan);
    for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
    const rec = plan.intent as unknown as ReserveRecord;
    if (!plan.steps.length) {
      if (json) printJson(ctx, { action: 'hugepages-reserve', changed: false, txid: null, ...rec });
      else out(ctx, `in effect already: ${plan.summary.join('; ')}`);
      return EXIT.OK;
    }
    if (!env.sysfs) throw notLive(ctx.root);
    try {
      const res = await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true });
      if (json) printJson(ctx, { action: 'hugepages-reserve', changed: true, txid: res.txid, ...rec });
      else out(ctx, [`Reserved (transaction ${res.txid}; \`vfiokit hugepages release${rec.domain ? ` ${rec.domain}` : ''}\` gives them back):`, ...plan.summary.map((l) => `  ${l}`)].join('\n'));
      return EXIT.OK;
    } catch (e) {
      throw shortfall(ctx.root, e, rec) ?? e;
    }
  });
}

/** A reserve the kernel could not fill (fragmented memory), rolled back completely: exit 3 with the shortfall and the boot-time alternative. */
function shortfall(root: HostRoot, e: unknown, rec: ReserveRecord): PreconditionError | null {
  if (!(e instanceof ApplyError) || e.rollback.failures.length || !e.journalId) return null;
  const doc = listJournals(root).find((d) => d.txid === e.journalId);
  const step = doc?.steps.find((s) => s.kind === 'write-attr' && s.path === rec.attr);
  const got = Number((step?.live as { after?: string | null } | undefined)?.after ?? NaN);
  if (!step || step.state !== 'rolled-back' || !Number.isFinite(got) || got >= rec.target) return null;
  const short = rec.target - got;
  return new PreconditionError(
    'E_HUGEPAGES_SHORT',
    `the kernel gave ${got - rec.before} of the ${rec.target - rec.before} more ${pageLabel(rec.pageKb)} pages asked for (${short} short: memory is too fragmented, even after compaction); the pool was put back to ${rec.before} (transaction ${e.journalId} rolled back), so nothing is reserved`,
    `reserve them at boot, where memory is not yet fragmented: ${bootAlternative(rec.sizeKb, rec.pageKb)} (then reboot)`,
    rec.attr,
  );
}

async function release(ctx: CommandContext, deps: HandoffDeps): Promise<number> {
  const json = Boolean(ctx.values.json);
  const domain = ctx.positionals[1] ?? null;
  const none = `nothing to release: no huge page reservation${domain ? ` for ${domain}` : ''} of this boot is in effect`;
  const nothing = () => {
    if (json) printJson(ctx, { action: 'hugepages-release', changed: false, txid: null });
    else out(ctx, none);
    return EXIT.OK;
  };
  if (ctx.values['dry-run']) {
    // Read only: no lock, no recovery (release itself recovers an unfinished transaction first; said so).
    const unfinished = findUnfinished(ctx.root).map((d) => d.txid);
    const tx = activeReserves(ctx.root, domain)[0];
    if (json) printJson(ctx, { action: 'hugepages-release', dryRun: true, txid: tx?.txid ?? null, ...(tx ? recordOf(tx) : {}), unfinished });
    else {
      showUnfinished(ctx, unfinished, 'release');
      if (tx) {
        const rec = recordOf(tx);
        const now = Number(ctx.root.tryReadAttr(rec.attr)?.trim());
        const added = rec.target - rec.before;
        out(ctx, `would release transaction ${tx.txid}: the ${added} page(s) it added to ${rec.attr}${Number.isFinite(now) ? ` (${now} → ${Math.max(0, now - added)})` : ''}`);
      }
      else out(ctx, none);
      out(ctx, '(--dry-run: nothing was changed)');
    }
    return EXIT.OK;
  }
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const tx = activeReserves(ctx.root, domain)[0];
    if (!tx) return nothing();
    const rec = recordOf(tx);
    const r = await undoTransaction({ root: ctx.root, runner: env.runner, sysfs: env.sysfs, txid: tx.txid, force: true, log: env.log, locked: true });
    if (json) printJson(ctx, { action: 'hugepages-release', changed: true, txid: tx.txid, restored: r.restored, notes: r.notes });
    else {
      // Other reservations may have been released before or after this one: what is left is the pool minus this one's pages.
      const now = ctx.root.tryReadAttr(rec.attr)?.trim();
      out(ctx, `Released (transaction ${tx.txid}): the ${rec.target - rec.before} page(s) it added to ${rec.attr}${now !== undefined ? `; it reads ${now} now` : ''}`);
      for (const n of r.notes) out(ctx, `  note: ${n}`);
    }
    return EXIT.OK;
  });
}

function status(ctx: CommandContext): number {
  const snap = inspect(ctx.root, { names: false });
  const held = activeReserves(ctx.root).map((d) => ({ txid: d.txid, ...recordOf(d), added: recordOf(d).target - recordOf(d).before }));
  const pools = [
    ...snap.hugepages.map((p) => ({ node: null as number | null, ...p })),
    ...snap.hugepageHost.nodes.flatMap((n) => n.pools.map((p) => ({ node: n.id as number | null, ...p }))),
  ].map((p) => ({ ...p, heldBy: held.filter((h) => h.pageKb === p.sizeKb && (h.node === p.node || p.node === null)).map((h) => h.txid) }));
  if (ctx.values.json) {
    printJson(ctx, { pools, reservations: held, defaultPageKb: snap.memory.hugepageDefaultKb, pdpe1gb: snap.hugepageHost.pdpe1gb, availableKb: snap.hugepageHost.availableKb });
    return EXIT.OK;
  }
  const lines = ['pool                 total   free  surplus'];
  for (const p of pools) lines.push(`${`${pageArg(p.sizeKb)} ${p.node === null ? 'global' : `node ${p.node}`}`.padEnd(19)} ${String(p.total).padStart(6)} ${String(p.free).padStart(6)} ${String(p.surplus ?? '-').padStart(8)}${p.heldBy.length ? `  (vfiokit: ${p.heldBy.join(', ')})` : ''}`);
  lines.push(held.length ? 'reservations of this boot:' : 'no vfiokit reservation of this boot');
  for (const h of held) lines.push(`  ${h.txid}: +${h.added} × ${pageLabel(h.pageKb)} (${formatMemorySize(h.sizeKb)}${h.domain ? ` for ${h.domain}` : ''}) on ${h.attr}, from ${h.before}`);
  out(ctx, lines.join('\n'));
  return EXIT.OK;
}

export async function run(ctx: CommandContext, deps: HandoffDeps = {}): Promise<number> {
  assertLinuxRoot(ctx.root);
  const sub = ctx.positionals[0] ?? 'status';
  if (sub === 'reserve') return reserve(ctx, deps);
  if (sub === 'release') return release(ctx, deps);
  if (sub === 'status') return status(ctx);
  throw new UsageError(`hugepages: unknown action '${sub}'`, 'use `vfiokit hugepages reserve SIZE|--domain DOMAIN`, `vfiokit hugepages release [DOMAIN]` or `vfiokit hugepages status`');
}
