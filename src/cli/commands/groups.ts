import { inspect } from '../../host/inspect.js';
import { analyzeGroups } from '../../analysis/groups.js';
import { renderGroups } from '../../render/text.js';
import { out, printJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  const snap = inspect(ctx.root);
  const report = analyzeGroups(snap);
  if (ctx.values.json) {
    const groups = ctx.values.gpu ? report.groups.filter((g) => g.hasGpu) : report.groups;
    printJson(ctx, { iommuActive: report.iommuActive, groups, prediction: report.prediction, warnings: snap.warnings });
  } else out(ctx, renderGroups(report, snap, Boolean(ctx.values.gpu)));
  return 0;
}
