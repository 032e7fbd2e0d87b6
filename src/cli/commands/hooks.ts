// `vfiokit hooks install|remove|list`: vfiokit's libvirt hook for a domain, as
// one transaction (undoable with `vfiokit undo`). Nothing else under
// /etc/libvirt/hooks is touched.

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyPlan, realRunner, sha256 } from '../../apply/index.js';
import { EXIT, PreconditionError, UsageError } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { LIBVIRT_QEMU_HOOK, LIBVIRT_QEMU_HOOKS_D } from '../../host/sysfs-paths.js';
import { hookPath, listHooks, planHooksInstall, planHooksRemove } from '../../plan/hooks-plan.js';
import { renderStepPlan } from '../../render/handoff.js';
import { out, printJson, type CommandContext } from '../context.js';
import type { Runner } from '../../apply/runner.js';

export interface HooksDeps {
  runner?: Runner;
}

/** How the hook runs this vfiokit: node and bin/vfiokit.js of this installation. */
function selfArgv(ctx: CommandContext): string[] {
  if (typeof ctx.values.vfiokit === 'string') return [ctx.values.vfiokit];
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../bin/vfiokit.js');
  return [process.execPath, bin];
}

export async function run(ctx: CommandContext, deps: HooksDeps = {}): Promise<number> {
  const [sub, domain] = ctx.positionals;
  const snap = inspect(ctx.root, { names: false });
  if (sub === 'list') {
    const hooks = listHooks(snap, (n) => ctx.root.tryReadText(`${LIBVIRT_QEMU_HOOKS_D}/${n}`));
    if (ctx.values.json) printJson(ctx, { mainHook: snap.libvirt.mainHook ? { path: LIBVIRT_QEMU_HOOK, mode: snap.libvirt.mainHook.mode } : null, hooks, libvirt: { version: snap.libvirt.version, runningDaemons: snap.libvirt.runningDaemons } });
    else {
      if (!hooks.length) out(ctx, 'no vfiokit hooks installed');
      for (const h of hooks) out(ctx, `${h.domain}: ${h.path}${h.singleGpu ? ' (single-gpu)' : ''}${h.executable ? '' : ' — NOT executable: libvirt skips it'}`);
      if (snap.libvirt.mainHook) out(ctx, `${LIBVIRT_QEMU_HOOK}: present (not vfiokit's; left as it is)`);
    }
    return EXIT.OK;
  }
  if (sub !== 'install' && sub !== 'remove') throw new UsageError(`hooks: unknown action '${sub ?? ''}'`, 'use `vfiokit hooks install|remove DOMAIN` or `vfiokit hooks list`');
  if (!domain) throw new UsageError(`hooks ${sub}: no domain named`, `give the libvirt domain: vfiokit hooks ${sub} DOMAIN`);
  const file = hookPath(domain);
  const bytes = ctx.root.tryReadBytes(file);
  const state = ctx.root.tryReadFileState(file);
  const existing = bytes && state ? { content: state.content, sha256: sha256(bytes), mode: state.mode, uid: state.uid, gid: state.gid } : null;
  const plan = sub === 'install'
    ? planHooksInstall(snap, { domain, singleGpu: Boolean(ctx.values['single-gpu']), vfiokit: selfArgv(ctx) }, existing)
    : planHooksRemove(snap, domain, existing);
  if (ctx.values['dry-run'] || plan.problems.length) {
    if (ctx.values.json) printJson(ctx, plan);
    else out(ctx, renderStepPlan(`hooks ${sub} ${domain}${ctx.values['dry-run'] ? ' (dry run: nothing is changed)' : ''}`, plan));
    if (plan.problems.length) throw new PreconditionError(plan.problems[0].code, `hooks ${sub} ${domain} refused; nothing was changed`, plan.problems[0].hint, plan.problems[0].subject, plan.problems);
    return EXIT.OK;
  }
  for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  if (!plan.steps.length) {
    out(ctx, plan.summary.join('\n') || 'nothing to do');
    return EXIT.OK;
  }
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr });
  const res = await applyPlan(plan, { root: ctx.root, runner, log: (l) => ctx.io.stderr.write(l + '\n') });
  out(ctx, `${plan.summary.join('\n')}\ntransaction ${res.txid}; \`vfiokit undo --id ${res.txid}\` reverts it`);
  return EXIT.OK;
}
