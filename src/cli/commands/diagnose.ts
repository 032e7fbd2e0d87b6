import * as fs from 'node:fs';
import { correlate } from '../../analysis/diagnose/correlate.js';
import { Diagnoser } from '../../analysis/diagnose/engine.js';
import { UsageError } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { readHostLogs, streamFile, streamLines, type Since, type SourceReport } from '../../host/logs.js';
import { renderDiagnosis } from '../../render/diagnose.js';
import { out, printJson, type CommandContext } from '../context.js';

/** "boot", or a duration: 90s, 30m, 2h, 1d (a bare number is seconds). */
function parseSince(v: string | undefined): Since {
  if (v === undefined || v === 'boot') return 'boot';
  const m = /^(\d{1,9})\s?(s|sec|m|min|h|d)?$/.exec(v.trim());
  if (!m) throw new UsageError(`--since ${v}: not "boot" or a duration`, 'write --since boot, or a duration such as 90s, 30m, 2h or 1d', 'E_DIAGNOSE_SINCE');
  const unit = { s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * unit;
}

export async function run(ctx: CommandContext): Promise<number> {
  const since = parseSince(ctx.values.since as string | undefined);
  const files = ctx.positionals;
  for (const f of files) {
    if (f === '-') continue;
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(f);
    } catch {
      st = undefined;
    }
    if (!st || !st.isFile()) throw new UsageError(`${f}: no such file`, 'name a log file, or - to read pasted text from standard input', 'E_DIAGNOSE_INPUT');
  }
  const d = new Diagnoser();
  const tty = Boolean(ctx.io.stderr.isTTY) && !ctx.values.json;
  const progress = (s: string) => tty && ctx.io.stderr.write(`\r\x1b[2Kreading ${s}…`);
  let seq = 0;
  let shown = 0;
  const sink = (text: string, source: string, first: number): number => {
    const n = d.feedText(text, source, first);
    seq += n;
    if (tty && seq - shown >= 200_000) {
      shown = seq;
      progress(`${source} (${seq} lines)`);
    }
    return n;
  };
  let sources: SourceReport[] = [];
  if (files.length) {
    for (const f of files) {
      progress(f === '-' ? 'standard input' : f);
      const n = f === '-' ? await streamLines(ctx.io.stdin ?? process.stdin, 'stdin', sink) : await streamFile(f, f, sink);
      sources.push({ source: f === '-' ? 'stdin' : f, lines: n });
    }
  } else {
    progress('the host logs');
    sources = await readHostLogs(ctx.root, since, sink);
  }
  if (tty) ctx.io.stderr.write('\r\x1b[2K');
  const useHost = files.length === 0 || ctx.values.root !== undefined || Boolean(ctx.values.host);
  const snap = useHost ? inspect(ctx.root) : null;
  const diagnosis = correlate(d.result(), snap);
  if (ctx.values.json) printJson(ctx, { ...diagnosis, sources });
  else {
    out(ctx, renderDiagnosis(diagnosis).trimEnd());
    const skipped = sources.filter((s) => s.skipped);
    for (const s of skipped) ctx.io.stderr.write(`note: ${s.source} not read: ${s.skipped}\n`);
  }
  return 0;
}
