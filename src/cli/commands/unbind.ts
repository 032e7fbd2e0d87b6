// `vfiokit unbind SELECTOR... [--yes] [--json] [--dry-run]`: give the selected
// devices' groups back. Devices a `vfiokit bind` of this boot moved go back by
// undoing that transaction (exactly the drivers and overrides it recorded);
// devices on vfio-pci no transaction moved go to the kernel's default driver.

import { appliedThisBoot, applyPlan, listJournals, undoTransaction, withWriteLock, type JournalDoc } from '../../apply/index.js';
import { EXIT } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { shortAddress } from '../../model/pci-address.js';
import { boundBy, planUnbind, unbindCandidates } from '../../plan/runtime-plan.js';
import { confirm } from '../confirm.js';
import { out, printJson, type CommandContext } from '../context.js';
import { groupsJson, notLive, outcomes, refuse, renderOutcomes, runtimeEnv, type RuntimeCommandDeps } from './bind.js';

/** Applied runtime-bind transactions of this boot that moved any of `addrs`, newest first. */
function coveringBinds(docs: JournalDoc[], addrs: Set<string>, bootId: string | null): JournalDoc[] {
  return appliedThisBoot(docs, 'runtime-bind', bootId).filter((d) => boundBy(d.steps).some((a) => addrs.has(a)));
}

export async function run(ctx: CommandContext, deps: RuntimeCommandDeps = {}): Promise<number> {
  const json = Boolean(ctx.values.json);
  const say = (s: string) => (json ? ctx.io.stderr.write(s + '\n') : out(ctx, s));
  const decide = () => {
    const snap = inspect(ctx.root);
    const cand = unbindCandidates(snap, ctx.positionals);
    const addrs = new Set(cand.devices.map((d) => d.address));
    const txs = coveringBinds(listJournals(ctx.root), addrs, snap.runtime.bootId);
    const covered = new Set(txs.flatMap((d) => boundBy(d.steps)));
    const plan = planUnbind(snap, ctx.positionals, covered);
    for (const d of txs) for (const a of boundBy(d.steps)) if (!addrs.has(a)) plan.warnings.push(`${shortAddress(a)} goes back too: it was bound in the same transaction ${d.txid}`);
    const devices = snap.pci.filter((d) => addrs.has(d.address) || covered.has(d.address)).map((d) => ({ address: d.address, name: d.deviceName, group: d.iommuGroup, driver: d.driver }));
    return { plan, txs, devices };
  };
  const describe = (txs: JournalDoc[], plan: ReturnType<typeof planUnbind>) => {
    const lines: string[] = [];
    for (const d of txs)
      for (const s of d.steps.filter((x) => x.kind === 'bind-driver' && x.state === 'done'))
        lines.push(`  ${shortAddress((s.spec as { address: string }).address)}: vfio-pci → ${(s.live as { driver: string | null } | undefined)?.driver ?? 'unbound'} (undoes transaction ${d.txid})`);
    for (const l of plan.summary) lines.push(`  ${l}`);
    return lines;
  };
  if (ctx.values['dry-run']) {
    const { plan, txs } = decide();
    if (json) printJson(ctx, { undo: txs.map((d) => d.txid), plan });
    else {
      for (const l of describe(txs, plan)) out(ctx, l);
      for (const w of plan.warnings) out(ctx, `warning: ${w}`);
      for (const p of plan.problems) out(ctx, `refused: ${p.message}${p.hint ? `\n  fix: ${p.hint}` : ''}`);
      out(ctx, txs.length || plan.steps.length ? 'nothing was changed (--dry-run)' : 'nothing to do');
    }
    return plan.problems.length ? EXIT.PRECONDITION : EXIT.OK;
  }
  const env = runtimeEnv(ctx, deps);
  return withWriteLock(ctx.root, env.runner, { sysfs: env.sysfs, log: env.log, clock: deps.clock }, async () => {
    const { plan, txs, devices } = decide();
    if (plan.problems.length) refuse('unbind', plan);
    for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
    const groups = [...new Set(devices.map((d) => d.group).filter((g): g is number => g !== null))].sort((a, b) => a - b);
    if (!txs.length && !plan.steps.length) {
      if (json) printJson(ctx, { action: 'unbind', changed: false, undone: [], txid: null, devices: outcomes(ctx.root, devices), groups: groupsJson(ctx.root, groups), warnings: plan.warnings });
      else say('nothing to do: no device selected is bound to vfio-pci');
      return EXIT.OK;
    }
    if (!env.sysfs) throw notLive(ctx.root);
    say('Return to the host drivers:');
    for (const l of describe(txs, plan)) say(l);
    if (!(await confirm(ctx, `Unbind now? [y/N] `, deps))) {
      say('cancelled; nothing was changed');
      return EXIT.FAILURE;
    }
    const undone: string[] = [];
    for (const d of txs) {
      await undoTransaction({ root: ctx.root, runner: env.runner, sysfs: env.sysfs, txid: d.txid, log: env.log, clock: deps.clock, locked: true });
      undone.push(d.txid);
    }
    const res = await applyPlan(plan, { root: ctx.root, runner: env.runner, sysfs: env.sysfs, log: env.log, clock: deps.clock, locked: true, sleep: deps.sleep });
    const devs = outcomes(ctx.root, devices);
    for (const d of devs) if (d.after === 'vfio-pci') plan.warnings.push(`${shortAddress(d.address)} went straight back to vfio-pci: a boot-time vfio-pci ids= setting claims it`);
    if (json) printJson(ctx, { action: 'unbind', changed: true, undone, txid: res.txid, devices: devs, groups: groupsJson(ctx.root, groups), warnings: plan.warnings });
    else {
      say('Done:');
      for (const l of renderOutcomes(devs, groups, ctx.root, false)) say(l);
      for (const w of plan.warnings) if (w.includes('straight back')) say(`warning: ${w}`);
    }
    return EXIT.OK;
  });
}
