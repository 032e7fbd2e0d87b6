import { EXIT } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { assembleCheck } from '../../analysis/check.js';
import { analyzeGroups } from '../../analysis/groups.js';
import { renderCheck } from '../../render/text.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  const snap = inspect(ctx.root);
  const report = assembleCheck(snap, analyzeGroups(snap));
  if (ctx.values.json) printJson(ctx, { ...report, warnings: snap.warnings });
  else {
    out(ctx, renderCheck(report));
    if (snap.warnings.length) out(ctx, '\nWhat could not be read:\n' + snap.warnings.map((w) => `  ! ${w.message}`).join('\n'));
  }
  return report.ready ? EXIT.OK : EXIT.PRECONDITION;
}
