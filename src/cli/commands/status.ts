// `vfiokit status [--json]`: is the applied boot-time passthrough in effect?

import { findInterrupted, latestJournal, recoverInterrupted, realRunner } from '../../apply/index.js';
import { EXIT } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import type { BootTransactionIntent } from '../../model/plan.js';
import { assembleStatus } from '../../analysis/status.js';
import { renderStatus } from '../../render/plan.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  assertLinuxRoot(ctx.root);
  // An apply cut off by a power loss is rolled back (or finished) first.
  if (findInterrupted(ctx.root).length) {
    try {
      const rec = await recoverInterrupted(ctx.root, realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: null }));
      for (const r of rec) ctx.io.stderr.write(`vfiokit: ${r.message}\n`);
    } catch (e) {
      ctx.io.stderr.write(`vfiokit: could not recover an interrupted transaction: ${(e as Error).message}\n`);
    }
  }
  const j = latestJournal(ctx.root, (d) => d.kind === 'boot-passthrough' && d.state === 'applied');
  const snap = inspect(ctx.root);
  const report = assembleStatus(snap, j ? { txid: j.txid, intent: j.intent as unknown as BootTransactionIntent, appliedAt: j.updatedAt } : null);
  if (ctx.values.json) printJson(ctx, report);
  else out(ctx, renderStatus(report));
  return report.inEffect ? EXIT.OK : EXIT.PRECONDITION;
}
