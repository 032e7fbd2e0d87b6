// `vfiokit handoff prepare|release|status DOMAIN`: what the libvirt hook runs.
// The domain XML comes from stdin (--hook: libvirt passes it) or the defined
// file /etc/libvirt/qemu/NAME.xml; libvirt is never called back. prepare is
// one transaction (rolled back on failure: a non-zero exit makes libvirt
// refuse the start and the desktop stays); release undoes that transaction
// (every step is tried even after a failure), then checks the display came back.
// With --hugepages / --isolate (recorded in the hook by `hooks install`) the
// hugepages reserve comes before and the CPU isolation after the handoff, and
// release gives them back in reverse; the order and its rollback rule are in
// hook-session.ts.

import { Readable } from 'node:stream';
import { appliedThisBoot, applyPlan, listJournals, undoTransaction, withWriteLock, type JournalDoc } from '../../apply/index.js';
import { verifyDisplayBack } from '../../analysis/handoff-verify.js';
import { EXIT, PreconditionError, UsageError, VfioError } from '../../errors.js';
import { children, hostdevSource, parseDomainXml } from '../../formats/libvirt-domain.js';
import { formatCpuList } from '../../formats/cpu-list.js';
import { inspect } from '../../host/inspect.js';
import type { HostSnapshot } from '../../model/snapshot.js';
import { definedDomainXml } from '../../host/sysfs-paths.js';
import { inferHandoffRecord, planHandoffPrepare, planHandoffRelease, type HandoffIntent, type HandoffRecord } from '../../plan/handoff-plan.js';
import { renderStepPlan, renderVerify } from '../../render/handoff.js';
import { out, printJson, type CommandContext } from '../context.js';
import { notLive, refuse, runtimeEnv, type RuntimeCommandDeps } from './bind.js';
import { prepareParts, releaseParts, type HookPart } from './hook-session.js';
import { applyIsolation, isolationOutcome, isolationPreview, isolationToUndo, undoIsolation } from './isolate.js';
import { hookIsolateIntent } from '../../plan/domain-vm-cpus.js';
import type { IsolateIntent } from '../../plan/isolate-plan.js';
import { COMMANDS } from '../registry.js';

/** Runs another vfiokit command in this process (the hugepages part), as main would. */
export type CommandRunner = (name: string, ctx: CommandContext, deps: HandoffDeps) => Promise<number>;

export interface HandoffDeps extends RuntimeCommandDeps {
  /** The domain XML as libvirt writes it on stdin (tests). */
  stdinText?: string;
  sleep?: (ms: number) => Promise<void>;
  /** How the hugepages part runs `vfiokit hugepages` (default: the registry's command, in this process). */
  command?: CommandRunner;
}

const registryCommand: CommandRunner = async (name, ctx, deps) => {
  const spec = COMMANDS.find((c) => c.name === name);
  if (!spec) throw new PreconditionError('E_HOOK_PART_MISSING', `this vfiokit has no \`${name}\` command, which the hook's --${name} needs; nothing was changed`, `update vfiokit, or reinstall the hook without --${name} (vfiokit hooks install DOMAIN ...)`, name);
  const mod = (await spec.load()) as { run: (c: CommandContext, d?: HandoffDeps) => Promise<number> };
  return mod.run(ctx, deps);
};

async function readStdin(ctx: CommandContext): Promise<string> {
  const s = ctx.io.stdin;
  if (!s) return '';
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** PCI host addresses of the domain's <hostdev type='pci'>s. */
function domainHostdevs(xml: string, source: string): { name: string | null; hostdevs: string[] } {
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
  return appliedThisBoot(listJournals(ctx.root), 'handoff-prepare', bootId).filter((d) => domain === null || (d.intent as { domain?: string }).domain === domain);
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
  const session = { xml, source, isolate: Boolean(ctx.values.isolate), hugepages: Boolean(ctx.values.hugepages) };
  return sub === 'prepare' ? prepare(ctx, intent, deps, session) : release(ctx, intent, deps, typeof ctx.values.reason === 'string' ? ctx.values.reason : null, session);
}

interface Session {
  xml: string;
  source: string;
  isolate: boolean;
  hugepages: boolean;
}

/** The isolation the hook asks for (HOOK_ISOLATION for the domain's CPUs); refusals throw, nothing changed. */
function isolateIntentOf(snap: HostSnapshot, domain: string, s: Session): IsolateIntent {
  const r = hookIsolateIntent(s.xml, s.source, domain, snap);
  if (!r.intent) throw new PreconditionError(r.problems[0]?.code ?? 'E_NO_VM_CPUS', r.problems[0]?.message ?? `${s.source}: no VM CPUs`, r.problems[0]?.hint, domain, r.problems);
  return r.intent;
}

/** A child context for another command run in this process: its stdout goes to our stderr (the hook's log), stdin is the domain XML. */
function childCtx(ctx: CommandContext, positionals: string[], values: Record<string, string | boolean>, stdinText?: string): { c: CommandContext; stdout: () => string } {
  let stdout = '';
  const stdin = stdinText === undefined ? undefined : Readable.from([stdinText]);
  return {
    c: { positionals, values, root: ctx.root, io: { stdout: { write: (t: string) => (stdout += t) }, stderr: ctx.io.stderr, stdin, env: ctx.io.env } },
    stdout: () => stdout,
  };
}

/** The parts of the hook's session in prepare order (release runs them in reverse). */
function hookParts(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps, s: Session): HookPart[] & { handoffResult?: ReleaseResult } {
  const command = deps.command ?? registryCommand;
  const log = (l: string) => ctx.io.stderr.write(l + '\n');
  const parts: HookPart[] & { handoffResult?: ReleaseResult } = [];
  if (s.hugepages) {
    parts.push({
      name: 'hugepages',
      prepare: async () => {
        const x = childCtx(ctx, ['reserve'], { domain: intent.domain, hook: true, json: true }, s.xml);
        const code = await command('hugepages', x.c, { ...deps, stdinText: s.xml });
        if (code !== EXIT.OK) throw new VfioError('E_HUGEPAGES_FAILED', `hugepages reserve --domain ${intent.domain} exited ${code} (its messages are above); it rolled itself back`, `free memory or reserve at boot (see \`vfiokit hugepages reserve --domain ${intent.domain} --dry-run\`)`, intent.domain);
        return jsonField(x.stdout(), 'changed') !== false;
      },
      release: async () => {
        const x = childCtx(ctx, ['release', intent.domain], {});
        const code = await command('hugepages', x.c, deps);
        if (x.stdout().trim()) log(x.stdout().trim());
        return code === EXIT.OK ? [] : [`hugepages release ${intent.domain} exited ${code}: the pages may still be reserved; run \`vfiokit hugepages release ${intent.domain}\``];
      },
    });
  }
  parts.push({
    name: 'handoff',
    prepare: async () => (await prepareHandoff(ctx, intent, deps)) !== null,
    release: async () => {
      const r = await releaseHandoff(ctx, intent, deps);
      parts.handoffResult = r;
      return r.failures;
    },
  });
  if (s.isolate) {
    parts.push({
      name: 'isolate',
      prepare: async () => {
        const r = await applyIsolation(ctx, deps, (snap) => isolateIntentOf(snap, intent.domain, s));
        const o = r.changed && r.doc ? isolationOutcome(r.doc) : null;
        log(o ? `vfiokit: host units, ${o.irqsMoved} IRQ(s) (${o.irqsKept.length} kept by the kernel) and unbound workqueues moved to CPU ${r.host} (transaction ${r.txid}); ${intent.domain} keeps CPU ${formatCpuList(r.intent.vmCpus)}` : `vfiokit: CPU isolation ${r.txid ? `in effect already (transaction ${r.txid})` : 'had nothing to do'}`);
        return r.changed;
      },
      release: async () => {
        const r = await undoIsolation(ctx, deps, intent.domain);
        if (r) log(`vfiokit: host CPUs given back (transaction ${r.txid}: ${r.restored.length} value(s) restored)${r.notes.length ? `; ${r.notes.join('; ')}` : ''}`);
        return [];
      },
    });
  }
  return parts;
}

/** The txid of the domain's CPU isolation of this boot, if one is in effect. */
const isolationOf = (ctx: CommandContext, domain: string): string | null => isolationToUndo(ctx.root, domain)?.txid ?? null;

/** A top-level field of a command's --json output, undefined when absent or not JSON. */
function jsonField(text: string, key: string): unknown {
  try {
    return (JSON.parse(text) as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

async function prepare(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps, s: Session): Promise<number> {
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const snap = inspect(ctx.root);
    // As prepare itself: a prepare of this boot still in effect means nothing to do.
    const already = preparedFor(ctx, intent.domain, snap.runtime.bootId)[0];
    if (already && !s.isolate && !s.hugepages) {
      if (json) printJson(ctx, { action: 'prepare', dryRun: true, domain: intent.domain, preparedAlready: already.txid });
      else out(ctx, `${intent.domain} is prepared already (transaction ${already.txid}; release it first): prepare would do nothing\n(--dry-run: nothing was changed)`);
      return EXIT.OK;
    }
    // Each part as the hook would find it: a handoff or an isolation in effect already does nothing.
    const plan = already ? null : planHandoffPrepare(snap, intent);
    const isoPreview = s.isolate ? isolationPreview(ctx.root, snap, isolateIntentOf(snap, intent.domain, s)) : null;
    const iso = isoPreview?.plan ?? null;
    const pre = s.hugepages ? `first: vfiokit hugepages reserve --domain ${intent.domain} (its own transaction)` : null;
    if (json) {
      printJson(ctx, {
        hugepages: s.hugepages ? { reserve: intent.domain } : null,
        handoff: plan ?? { preparedAlready: already!.txid },
        isolate: isoPreview ? (isoPreview.active ? { inEffectAlready: isoPreview.active.txid } : iso) : null,
      });
    } else {
      if (pre) out(ctx, pre);
      if (plan) out(ctx, renderStepPlan(`handoff prepare ${intent.domain} (dry run: nothing is changed)`, plan));
      else out(ctx, `handoff: ${intent.domain} is prepared already (transaction ${already!.txid}): nothing to do (dry run: nothing is changed)`);
      if (iso) out(ctx, renderStepPlan(`then isolate ${intent.domain}`, iso));
      else if (isoPreview?.active) out(ctx, `then isolate: in effect already (transaction ${isoPreview.active.txid}): nothing to do`);
    }
    return plan?.problems.length || iso?.problems.length ? EXIT.PRECONDITION : EXIT.OK;
  }
  if (!s.isolate && !s.hugepages) {
    const txid = await prepareHandoff(ctx, intent, deps);
    if (json) printJson(ctx, { action: 'prepare', domain: intent.domain, txid });
    return EXIT.OK;
  }
  const t0 = Date.now();
  const done = await prepareParts(hookParts(ctx, intent, deps, s), (l) => ctx.io.stderr.write(l + '\n'));
  ctx.io.stderr.write(`vfiokit: ${intent.domain} ready in ${Date.now() - t0} ms (${done.length ? `changed: ${done.join(', ')}` : 'nothing to change'})\n`);
  if (json) printJson(ctx, { action: 'prepare', domain: intent.domain, parts: done });
  return EXIT.OK;
}

/** handoff prepare as one transaction under the lock; its txid, null when it changed nothing (prepared already, nothing to do). */
async function prepareHandoff(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps): Promise<string | null> {
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const snap = inspect(ctx.root);
    if (preparedFor(ctx, intent.domain, snap.runtime.bootId).length) {
      ctx.io.stderr.write(`vfiokit: ${intent.domain} is prepared already (release it first); nothing to do\n`);
      return null;
    }
    const plan = planHandoffPrepare(snap, intent);
    if (plan.problems.length) refuse('handoff prepare', plan);
    for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
    if (!plan.steps.length) return null;
    if (!env.sysfs) throw notLive(ctx.root);
    const t0 = Date.now();
    const res = await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true, sleep: deps.sleep });
    ctx.io.stderr.write(`vfiokit: ${intent.domain} prepared as transaction ${res.txid} in ${Date.now() - t0} ms\n`);
    return res.txid ?? null;
  });
}

async function release(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps, reason: string | null, s: Session): Promise<number> {
  if (ctx.values['dry-run'] && (s.isolate || s.hugepages) && !ctx.values.json) {
    if (s.isolate) out(ctx, `first: vfiokit isolate --undo of ${intent.domain}'s isolation${isolationOf(ctx, intent.domain) ? ` (transaction ${isolationOf(ctx, intent.domain)})` : ' (none in effect)'}`);
    const code = await releaseOnly(ctx, intent, deps, reason);
    if (s.hugepages) out(ctx, `last: vfiokit hugepages release ${intent.domain}`);
    return code;
  }
  if ((!s.isolate && !s.hugepages) || ctx.values['dry-run']) return releaseOnly(ctx, intent, deps, reason);
  const json = Boolean(ctx.values.json);
  const parts = hookParts(ctx, intent, deps, s);
  const results = await releaseParts([...parts].reverse(), (l) => ctx.io.stderr.write(l + '\n'));
  const h = parts.handoffResult;
  const failures = results.flatMap((r) => r.failures.map((f) => `${r.part}: ${f}`));
  if (json) printJson(ctx, { action: 'release', domain: intent.domain, reason, verify: h?.lines ?? [], parts: results, failures });
  else {
    if (h) ctx.io.stderr.write(`vfiokit: released ${intent.domain}${reason ? ` (${reason})` : ''}; display check:\n${renderVerify(h.lines)}`);
    ctx.io.stderr.write(failures.length ? `vfiokit: release of ${intent.domain}: NOT back: ${results.filter((r) => r.failures.length).map((r) => r.part).join(', ')}\n` : `vfiokit: release of ${intent.domain}: ${results.map((r) => r.part).join(', ')} given back\n`);
  }
  return failures.length ? EXIT.FAILURE : EXIT.OK;
}

interface ReleaseResult {
  lines: ReturnType<typeof verifyDisplayBack>;
  failures: string[];
}

/** handoff release alone (no --isolate / --hugepages, or a dry run): as before the hook had parts. */
async function releaseOnly(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps, reason: string | null): Promise<number> {
  const json = Boolean(ctx.values.json);
  if (ctx.values['dry-run']) {
    const look = () => inspect(ctx.root, { names: false });
    const snap0 = look();
    const tx = preparedFor(ctx, intent.domain, snap0.runtime.bootId)[0] ?? null;
    const record = tx ? ((tx.intent as { record?: HandoffRecord }).record ?? inferHandoffRecord(snap0, intent)) : inferHandoffRecord(snap0, intent);
    const plan = planHandoffRelease(snap0, record);
    if (json) printJson(ctx, { undo: tx?.txid ?? null, plan });
    else out(ctx, renderStepPlan(`handoff release ${intent.domain} (dry run: nothing is changed)${tx ? `: undoes transaction ${tx.txid}` : ': no prepare transaction recorded; from the domain\'s devices'}`, plan));
    return EXIT.OK;
  }
  const { lines, failures } = await releaseHandoff(ctx, intent, deps);
  if (json) printJson(ctx, { action: 'release', domain: intent.domain, reason, verify: lines, failures });
  else {
    ctx.io.stderr.write(`vfiokit: released ${intent.domain}${reason ? ` (${reason})` : ''}; display check:\n${renderVerify(lines)}`);
    for (const f of failures) ctx.io.stderr.write(`vfiokit: release: ${f}\n`);
  }
  return failures.length ? EXIT.FAILURE : EXIT.OK;
}

/** Undo the domain's prepare transaction (or give the devices back from the domain's list), then check the display: the failures. */
async function releaseHandoff(ctx: CommandContext, intent: HandoffIntent, deps: HandoffDeps): Promise<ReleaseResult> {
  // release runs while libvirt waits (virsh destroy returns after it): PCI names are not needed.
  const look = () => inspect(ctx.root, { names: false });
  const pick = (snap: HostSnapshot) => {
    const tx = preparedFor(ctx, intent.domain, snap.runtime.bootId)[0] ?? null;
    const record = tx ? ((tx.intent as { record?: HandoffRecord }).record ?? inferHandoffRecord(snap, intent)) : inferHandoffRecord(snap, intent);
    return { tx, record };
  };
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
  return { lines, failures };
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
