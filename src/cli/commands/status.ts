// `vfiokit status [--json]`: is the applied boot-time passthrough in effect?

import { findInterrupted, findUnfinished, latestJournal, recoverInterrupted, realRunner, scanJournals } from '../../apply/index.js';
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
  // A journal that cannot be read, or a transaction left unfinished, is never reported as clean.
  const { corrupt } = scanJournals(ctx.root);
  const unfinished = findUnfinished(ctx.root);
  const j = corrupt.length ? null : latestJournal(ctx.root, (d) => d.kind === 'boot-passthrough' && d.state === 'applied');
  const snap = inspect(ctx.root);
  const report = assembleStatus(snap, j ? { txid: j.txid, intent: j.intent as unknown as BootTransactionIntent, appliedAt: j.updatedAt } : null);
  const blocking = [
    ...corrupt.map((c) => `journal ${c.file} ${c.problem}: vfiokit cannot tell what that transaction changed (see \`vfiokit history\`)`),
    ...unfinished.map((d) => `transaction ${d.txid} (${d.kind}) is ${d.state}: its changes are only partly undone — run \`vfiokit recover\` once the cause is fixed`),
  ];
  if (ctx.values.json) printJson(ctx, { ...report, inEffect: report.inEffect && !blocking.length, unfinished: blocking });
  else {
    out(ctx, renderStatus(report));
    for (const b of blocking) out(ctx, `NOT CLEAN: ${b}`);
  }
  if (blocking.length) return EXIT.ROLLBACK_INCOMPLETE;
  return report.inEffect ? EXIT.OK : EXIT.PRECONDITION;
}
