// `vfiokit unbind SELECTOR... [--yes] [--json]`: return the selected devices'
// groups from vfio-pci to exactly the drivers recorded by `bind` (or the
// kernel's default match when nothing was recorded).

import { planUnbind } from '../../runtime/index.js';
import type { CommandContext } from '../context.js';
import { runRuntime, type RuntimeCommandDeps } from './bind.js';

export async function run(ctx: CommandContext, deps: RuntimeCommandDeps = {}): Promise<number> {
  return runRuntime('unbind', ctx, planUnbind(ctx.root, ctx.positionals), deps);
}
