// Confirmation before a command changes the host: ask on a terminal,
// require --yes without one (exit 2, nothing changed).

import { UsageError } from '../errors.js';
import type { CommandContext } from './context.js';

async function readLine(ctx: CommandContext, question: string): Promise<string> {
  ctx.io.stderr.write(question);
  const input = ctx.io.stdin ?? process.stdin;
  return new Promise((resolve) => {
    let buf = '';
    const onData = (c: Buffer | string) => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        input.removeListener('data', onData);
        input.removeListener('end', onEnd);
        (input as NodeJS.ReadStream).pause?.();
        resolve(buf.slice(0, nl));
      }
    };
    const onEnd = () => resolve(buf);
    input.on('data', onData);
    input.on('end', onEnd);
    (input as NodeJS.ReadStream).resume?.();
  });
}

/**
 * On a terminal ask; without one require --yes. Returns false when declined.
 * Throws UsageError (exit 2) when there is no terminal and no --yes.
 */
export async function confirm(ctx: CommandContext, question: string, deps: { answer?: (question: string) => Promise<string> } = {}): Promise<boolean> {
  if (ctx.values.yes) return true;
  const tty = Boolean(ctx.io.stdin?.isTTY && ctx.io.stderr.isTTY);
  if (!tty && !deps.answer) throw new UsageError('no terminal to confirm on; nothing was changed', 'review the plan above and re-run with --yes', 'E_CONFIRM_REQUIRED');
  const a = await (deps.answer ? deps.answer(question) : readLine(ctx, question));
  return /^\s*y(es)?\s*$/i.test(a);
}

