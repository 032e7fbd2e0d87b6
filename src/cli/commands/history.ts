// `vfiokit history [--json]`: every transaction under the root, oldest first —
// id, kind, when, what it did, and its state — and the journals that cannot
// be read. Exit 3 when one is unfinished or unreadable (it needs attention).

import { currentBootId, describeStep, findUnfinished, scanJournals } from '../../apply/index.js';
import { EXIT } from '../../errors.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  const { docs, corrupt } = scanJournals(ctx.root);
  const boot = currentBootId(ctx.root);
  const rows = docs.map((d) => ({
    txid: d.txid,
    kind: d.kind,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    state: d.state,
    thisBoot: d.bootId && boot ? d.bootId === boot : null,
    summary: d.summary,
    steps: d.steps.map((s) => ({ index: s.index + 1, state: s.state, what: describeStep(s), ...(s.error ? { error: s.error } : {}) })),
  }));
  const unfinished = findUnfinished(ctx.root);
  if (ctx.values.json) printJson(ctx, { transactions: rows, unreadable: corrupt });
  else {
    if (!rows.length && !corrupt.length) out(ctx, 'no transactions yet');
    for (const r of rows) {
      out(ctx, `${r.txid}  ${r.kind.padEnd(17)} ${r.state.padEnd(15)} ${r.createdAt}${r.thisBoot === false ? '  (earlier boot)' : ''}`);
      for (const l of r.summary) out(ctx, `    ${l}`);
      if (ctx.values.steps || !['applied', 'undone', 'rolled-back'].includes(r.state)) for (const s of r.steps) out(ctx, `    ${String(s.index).padStart(3)}. ${s.state.padEnd(11)} ${s.what}${s.error ? ` — ${s.error.split('\n')[0]}` : ''}`);
    }
    for (const c of corrupt) out(ctx, `${c.txid}  UNREADABLE: ${c.file} ${c.problem}`);
    if (unfinished.length) out(ctx, `\n${unfinished.length} transaction(s) unfinished: run \`vfiokit recover\``);
  }
  return unfinished.length || corrupt.length ? EXIT.PRECONDITION : EXIT.OK;
}
