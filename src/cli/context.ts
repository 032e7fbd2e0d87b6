// What every command receives: parsed flags, the host root, output streams.

import type { HostRoot } from '../host/root.js';
import { jsonChunks } from '../render/json.js';

export interface Io {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  env?: Record<string, string | undefined>;
}

export interface CommandContext {
  positionals: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  root: HostRoot;
  io: Io;
}

export function out(ctx: CommandContext, text: string): void {
  ctx.io.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** JSON.stringify(value, null, 2) and a newline, written in chunks (never built as one string). */
export function printJson(ctx: CommandContext, value: unknown): void {
  for (const chunk of jsonChunks(value)) ctx.io.stdout.write(chunk);
}

/**
 * printJson for large values: waits for the output to drain whenever it
 * buffers (a pipe to a slower reader), so at most a chunk or two is held in
 * memory instead of the whole text.
 */
export async function streamJson(ctx: CommandContext, value: unknown): Promise<void> {
  const out = ctx.io.stdout as Io['stdout'] & { once?: (event: 'drain', f: () => void) => unknown };
  for (const chunk of jsonChunks(value)) {
    if (out.write(chunk) === false && typeof out.once === 'function') await new Promise<void>((resolve) => out.once!('drain', resolve));
  }
}
