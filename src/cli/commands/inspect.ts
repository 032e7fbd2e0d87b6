import { inspect } from '../../host/inspect.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import { renderInspect } from '../../render/text.js';
import { out, streamJson, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  assertLinuxRoot(ctx.root);
  const snap = inspect(ctx.root);
  if (ctx.values.json) await streamJson(ctx, snap);
  else out(ctx, renderInspect(snap));
  return 0;
}
