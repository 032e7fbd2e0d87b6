// `vfiokit handoff prepare|release|status DOMAIN`: what the libvirt hook runs.
// The domain XML comes from stdin (--hook: libvirt passes it) or the defined
// file /etc/libvirt/qemu/NAME.xml; libvirt is never called back. prepare is
// one transaction (rolled back on failure: a non-zero exit makes libvirt
// refuse the start and the desktop stays); release undoes that transaction
// (every step is tried even after a failure), then checks the display came back.

import { applyPlan, listJournals, undoTransaction, withWriteLock, type JournalDoc } from '../../apply/index.js';
import { verifyDisplayBack } from '../../analysis/handoff-verify.js';
import { EXIT, PreconditionError, UsageError, VfioError } from '../../errors.js';
import { children, hostdevSource, parseDomainXml } from '../../formats/libvirt-domain.js';
import { inspect } from '../../host/inspect.js';
import type { HostSnapshot } from '../../model/snapshot.js';
import { definedDomainXml } from '../../host/sysfs-paths.js';
import { inferHandoffRecord, planHandoffPrepare, planHandoffRelease, type HandoffIntent, type HandoffRecord } from '../../plan/handoff-plan.js';
import { renderStepPlan, renderVerify } from '../../render/handoff.js';
import { out, printJson, type CommandContext } from '../context.js';
import { notLive, refuse, runtimeEnv, type RuntimeCommandDeps } from './bind.js';

export interface HandoffDeps extends RuntimeCommandDeps {
  /** The domain XML as libvirt writes it on stdin (tests). */
  stdinText?: string;
  sleep?: (ms: number) => Promise<void>;
}

async function readStdin(ctx: CommandContext): Promise<string> {
  const s = ctx.io.stdin;
  if (!s) return '';
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** PCI host addresses of the domain's <hostdev type='pci'>s. */
export function domainHostdevs(xml: string, source: string): { name: string | null; hostdevs: string[] } {
  const doc = parseDomainXml(xml, source);
  const d = doc.documentElement!;
  const name = children(d, 'name')[0]?.textContent?.trim() ?? null;
  const devs = children(d, 'devices')[0];
  const hostdevs = devs ? children(devs, 'hostdev').map(hostdevSource).filter((a): a is string => Boolean(a)) : [];
  return { name, hostdevs: [...new Set(hostdevs)] };
}

export async function domainXml(ctx: CommandContext, domain: string, deps: HandoffDeps): Promise<{ xml: string; source: string }> {
  if (ctx.values.hook) {
    const xml = deps.stdinText ?? (await readStdin(ctx));
    if (xml.trim()) return { xml, source: `the domain XML libvirt passed on stdin for ${domain}` };
  }
  const file = definedDomainXml(domain);
  const xml = ctx.root.tryReadText(file);
  if (xml === undefined) throw new PreconditionError('E_DOMAIN_NOT_DEFINED', `no libvirt domain '${domain}': ${file} does not exist`, 'check the name with `virsh list --all`; the hook passes the XML on stdin (--hook)', domain);
  return { xml, source: file };
}

/** Applied prepare transactions of this boot for the domain, newest first. */
function preparedFor(ctx: CommandContext, domain: string | null, bootId: string | null): JournalDoc[] {
  return listJournals(ctx.root)
    .filter((d) => d.kind === 'handoff-prepare' && d.state === 'applied' && (domain === null || (d.intent as { domain?: string }).domain === domain) && (!d.bootId || !bootId || d.bootId === bootId))
    .sort((a, b) => b.seq - a.seq);
}

export async function run(ctx: CommandContext, deps: HandoffDeps = {}): Promise<number> {
  const [sub, ...rest] = ctx.positionals;
  if (sub === 'status') return status(ctx, rest[0] ?? null);
  if (sub !== 'prepare' && sub !== 'release') throw new UsageError(`handoff: unknown action '${sub ?? ''}'`, 'use `vfiokit handoff prepare|release|status DOMAIN`');
  const domain = rest[0];
  if (!domain) throw new UsageError(`handoff ${sub}: no domain named`, `give the libvirt domain: vfiokit handoff ${sub} DOMAIN`);
  const { xml, source } = await domainXml(ctx, domain, deps);
  const { hostdevs } = domainHostdevs(xml, source);
  const timeout = typeof ctx.values.timeout === 'string' ? Number(ctx.values.timeout) : undefined;
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout ${String(ctx.values.timeout)} is not a number of seconds`, 'e.g. --timeout 15');
  const intent: HandoffIntent = { domain, hostdevs, singleGpu: Boolean(ctx.values['single-gpu']), holderTimeoutMs: timeout ? timeout * 1000 : undefined };
  return sub === 'prepare' ? prepare(ctx, intent, deps) : release(ctx, intent, deps, typeof ctx.values.reason === 'string' ? ctx.values.reason : null);
}

async function prepare(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps): Promise<number> {
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const plan = planHandoffPrepare(inspect(ctx.root), intent);
    if (json) printJson(ctx, plan);
    else out(ctx, renderStepPlan(`handoff prepare ${intent.domain} (dry run: nothing is changed)`, plan));
    return plan.problems.length ? EXIT.PRECONDITION : EXIT.OK;
  }
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const snap = inspect(ctx.root);
    if (preparedFor(ctx, intent.domain, snap.runtime.bootId).length) {
      ctx.io.stderr.write(`vfiokit: ${intent.domain} is prepared already (release it first); nothing to do\n`);
      return EXIT.OK;
    }
    const plan = planHandoffPrepare(snap, intent);
    if (plan.problems.length) refuse('handoff prepare', plan);
    for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
    if (!plan.steps.length) return EXIT.OK;
    if (!env.sysfs) throw notLive(ctx.root);
    const t0 = Date.now();
    const res = await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true, sleep: deps.sleep });
    ctx.io.stderr.write(`vfiokit: ${intent.domain} prepared as transaction ${res.txid} in ${Date.now() - t0} ms\n`);
    if (json) printJson(ctx, { action: 'prepare', domain: intent.domain, txid: res.txid });
    return EXIT.OK;
  });
}

async function release(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps, reason: string | null): Promise<number> {
  const json = Boolean(ctx.values.json);
  // release runs while libvirt waits (virsh destroy returns after it): PCI names are not needed.
  const look = () => inspect(ctx.root, { names: false });
  const pick = (snap: HostSnapshot) => {
    const tx = preparedFor(ctx, intent.domain, snap.runtime.bootId)[0] ?? null;
    const record = tx ? ((tx.intent as { record?: HandoffRecord }).record ?? inferHandoffRecord(snap, intent)) : inferHandoffRecord(snap, intent);
    return { tx, record };
  };
  if (ctx.values['dry-run']) {
    const snap0 = look();
    const { tx, record } = pick(snap0);
    const plan = planHandoffRelease(snap0, record);
    if (json) printJson(ctx, { undo: tx?.txid ?? null, plan });
    else out(ctx, renderStepPlan(`handoff release ${intent.domain} (dry run: nothing is changed)${tx ? `: undoes transaction ${tx.txid}` : ': no prepare transaction recorded; from the domain\'s devices'}`, plan));
    return EXIT.OK;
  }
  const env = runtimeEnv(ctx, deps);
  if (!env.sysfs) throw notLive(ctx.root);
  let failures: string[] = [];
  const record = await withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const snap = look();
    const { tx, record } = pick(snap);
    if (tx) {
      try {
        await undoTransaction({ root: ctx.root, runner: env.runner, sysfs: env.sysfs, txid: tx.txid, log: env.log, clock: deps.clock, locked: true });
      } catch (e) {
        if (!(e instanceof VfioError)) throw e;
        failures.push(e.message);
      }
    } else {
      const plan = planHandoffRelease(snap, record);
      if (plan.steps.length) {
        try {
          await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true, sleep: deps.sleep });
        } catch (e) {
          if (!(e instanceof VfioError)) throw e;
          failures.push(e.message);
        }
      }
    }
    return record;
  });
  const lines = verifyDisplayBack(look(), record);
  const bad = lines.filter((l) => !l.ok);
  failures = [...failures, ...bad.map((l) => `${l.what}${l.fix ? ` — fix: ${l.fix}` : ''}`)];
  if (json) printJson(ctx, { action: 'release', domain: intent.domain, reason, verify: lines, failures });
  else {
    ctx.io.stderr.write(`vfiokit: released ${intent.domain}${reason ? ` (${reason})` : ''}; display check:\n${renderVerify(lines)}`);
    for (const f of failures) ctx.io.stderr.write(`vfiokit: release: ${f}\n`);
  }
  return failures.length ? EXIT.FAILURE : EXIT.OK;
}

function status(ctx: CommandContext, domain: string | null): number {
  const snap = inspect(ctx.root, { names: false });
  const txs = preparedFor(ctx, domain, snap.runtime.bootId);
  const view = {
    prepared: txs.map((t) => ({ txid: t.txid, domain: (t.intent as { domain?: string }).domain ?? null, createdAt: t.createdAt, steps: t.steps.map((s) => ({ kind: s.kind, state: s.state, error: s.error ?? null })) })),
    vfioHolders: snap.runtime.vfioHolders,
    displayHolders: snap.display.holders,
    displayManager: snap.display.displayManager,
    vtconsoles: snap.display.vtconsoles,
  };
  if (ctx.values.json) {
    printJson(ctx, view);
    return EXIT.OK;
  }
  if (!txs.length) out(ctx, `no handoff is in effect${domain ? ` for ${domain}` : ''}`);
  for (const t of view.prepared) {
    out(ctx, `${t.domain}: prepared by transaction ${t.txid} at ${t.createdAt}`);
    for (const s of t.steps) out(ctx, `  ${s.state.padEnd(11)} ${s.kind}${s.error ? ` — ${s.error}` : ''}`);
  }
  for (const h of snap.runtime.vfioHolders) out(ctx, `/dev/vfio/${h.group} held by pid ${h.pid}${h.comm ? ` (${h.comm})` : ''}`);
  for (const h of snap.display.holders ?? []) out(ctx, `${h.path} held by pid ${h.pid} (${h.comm})`);
  if (snap.display.displayManager) out(ctx, `display manager ${snap.display.displayManager.unit}: ${snap.display.displayManager.active === null ? 'state unknown' : snap.display.displayManager.active ? 'active' : 'inactive'}`);
  for (const v of snap.display.vtconsoles) out(ctx, `${v.id} ${v.name}: ${v.bound ? 'bound' : 'unbound'}`);
  return EXIT.OK;
}
