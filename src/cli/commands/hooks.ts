// `vfiokit hooks install|remove|list`: vfiokit's libvirt hook for a domain, as
// one transaction (undoable with `vfiokit undo`). Nothing else under
// /etc/libvirt/hooks is touched.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyPlan, realRunner, sha256 } from '../../apply/index.js';
import { EXIT, PreconditionError, UsageError } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { LIBVIRT_QEMU_HOOK, LIBVIRT_QEMU_HOOKS_D } from '../../host/sysfs-paths.js';
import { definedDomainXml } from '../../host/sysfs-paths.js';
import type { HookFlags } from '../../formats/libvirt-hook.js';
import { describeHookFlags, hookPath, hookSequence, listHooks, planHooksInstall, planHooksRemove } from '../../plan/hooks-plan.js';
import { renderStepPlan } from '../../render/handoff.js';
import { out, printJson, type CommandContext } from '../context.js';
import type { Runner } from '../../apply/runner.js';
import type { Plan } from '../../model/plan.js';
import type { HostSnapshot } from '../../model/snapshot.js';

interface HooksDeps {
  runner?: Runner;
}

/** How the hook runs this vfiokit: node and bin/vfiokit.js of this installation. */
function selfArgv(ctx: CommandContext): string[] {
  if (typeof ctx.values.vfiokit === 'string') return [ctx.values.vfiokit];
  // The installation's bin/vfiokit.js, above this file wherever the build put it
  // (dist/cli/chunks in the bundle, dist/src/cli/commands from tsc, src/ in tests).
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'bin', 'vfiokit.js')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return [process.execPath, path.join(dir, 'bin', 'vfiokit.js')];
}

export async function run(ctx: CommandContext, deps: HooksDeps = {}): Promise<number> {
  const [sub, domain] = ctx.positionals;
  const snap = inspect(ctx.root, { names: false });
  if (sub === 'list') {
    const hooks = listHooks(snap, (n) => ctx.root.tryReadText(`${LIBVIRT_QEMU_HOOKS_D}/${n}`));
    if (ctx.values.json) printJson(ctx, { mainHook: snap.libvirt.mainHook ? { path: LIBVIRT_QEMU_HOOK, mode: snap.libvirt.mainHook.mode } : null, hooks, libvirt: { version: snap.libvirt.version, runningDaemons: snap.libvirt.runningDaemons } });
    else {
      if (!hooks.length) out(ctx, 'no vfiokit hooks installed');
      for (const h of hooks) {
        out(ctx, `${h.domain}: ${h.path} (${describeHookFlags(h)})${h.executable ? '' : ' — NOT executable: libvirt skips it'}`);
        for (const l of hookSequence(h)) out(ctx, `  ${l}`);
      }
      if (snap.libvirt.mainHook) out(ctx, `${LIBVIRT_QEMU_HOOK}: present (not vfiokit's; left as it is)`);
    }
    return EXIT.OK;
  }
  if (sub !== 'install' && sub !== 'remove') throw new UsageError(`hooks: unknown action '${sub ?? ''}'`, 'use `vfiokit hooks install|remove DOMAIN` or `vfiokit hooks list`');
  if (!domain) throw new UsageError(`hooks ${sub}: no domain named`, `give the libvirt domain: vfiokit hooks ${sub} DOMAIN`);
  const existing = existingHook(ctx, domain);
  const plan = sub === 'install'
    ? planHooksInstall(snap, { domain, ...flagsOf(ctx), vfiokit: selfArgv(ctx), domainXml: definedXml(ctx, domain) }, existing)
    : planHooksRemove(snap, domain, existing);
  if (ctx.values['dry-run'] || plan.problems.length) {
    if (ctx.values.json) printJson(ctx, plan);
    else out(ctx, renderStepPlan(`hooks ${sub} ${domain}${ctx.values['dry-run'] ? ' (dry run: nothing is changed)' : ''}`, plan));
    if (plan.problems.length) throw new PreconditionError(plan.problems[0].code, `hooks ${sub} ${domain} refused; nothing was changed`, plan.problems[0].hint, plan.problems[0].subject, plan.problems);
    return EXIT.OK;
  }
  for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  if (!plan.steps.length) {
    if (ctx.values.json) printJson(ctx, { action: `hooks-${sub}`, domain, changed: false, txid: null, summary: plan.summary, warnings: plan.warnings });
    else out(ctx, plan.summary.join('\n') || 'nothing to do');
    return EXIT.OK;
  }
  const txid = await applyHookPlan(ctx, plan, deps);
  if (ctx.values.json) printJson(ctx, { action: `hooks-${sub}`, domain, changed: true, txid, summary: plan.summary, warnings: plan.warnings });
  else out(ctx, `${plan.summary.join('\n')}\ntransaction ${txid}; \`vfiokit undo --id ${txid}\` reverts it`);
  return EXIT.OK;
}

/** --single-gpu, --isolate, --hugepages of the command line. */
function flagsOf(ctx: CommandContext): HookFlags {
  return { singleGpu: Boolean(ctx.values['single-gpu']), isolate: Boolean(ctx.values.isolate), hugepages: Boolean(ctx.values.hugepages) };
}

/** The domain's defined XML, when readable (--isolate is checked against it). */
function definedXml(ctx: CommandContext, domain: string): { xml: string; source: string } | null {
  const file = definedDomainXml(domain);
  const xml = ctx.root.tryReadText(file);
  return xml === undefined ? null : { xml, source: file };
}

/** The installed hook file of a domain (content, sha256, mode, owner), null when absent. */
function existingHook(ctx: CommandContext, domain: string) {
  const file = hookPath(domain);
  const bytes = ctx.root.tryReadBytes(file);
  const state = ctx.root.tryReadFileState(file);
  return bytes && state ? { content: state.content, sha256: sha256(bytes), mode: state.mode, uid: state.uid, gid: state.gid } : null;
}

async function applyHookPlan(ctx: CommandContext, plan: Plan, deps: HooksDeps): Promise<string> {
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr });
  const res = await applyPlan(plan, { root: ctx.root, runner, log: (l) => ctx.io.stderr.write(l + '\n') });
  return res.txid ?? '';
}

/**
 * `vm define --hooks single-gpu,isolate,hugepages`: the hook install planned for a domain
 * about to be defined (so a refusal comes before anything is defined; `xml` is
 * the XML about to be defined), and applied as its own transaction once it is.
 */
export function planHookForNewDomain(ctx: CommandContext, snap: HostSnapshot, domain: string, flags: HookFlags, xml: string | null = null): Plan {
  const assumed: HostSnapshot = { ...snap, libvirt: { ...snap.libvirt, definedDomains: [...snap.libvirt.definedDomains, domain] } };
  return planHooksInstall(assumed, { domain, ...flags, vfiokit: selfArgv(ctx), domainXml: xml === null ? null : { xml, source: `the XML of ${domain}` } }, existingHook(ctx, domain));
}

export async function installHookFor(ctx: CommandContext, domain: string, flags: HookFlags, deps: HooksDeps = {}): Promise<{ plan: Plan; txid: string | null }> {
  const plan = planHooksInstall(inspect(ctx.root, { names: false }), { domain, ...flags, vfiokit: selfArgv(ctx), domainXml: definedXml(ctx, domain) }, existingHook(ctx, domain));
  if (plan.problems.length) throw new PreconditionError(plan.problems[0].code, `hooks install ${domain} refused; the hook was not installed`, plan.problems[0].hint, plan.problems[0].subject, plan.problems);
  return { plan, txid: plan.steps.length ? await applyHookPlan(ctx, plan, deps) : null };
}
