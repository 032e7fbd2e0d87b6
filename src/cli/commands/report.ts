// `vfiokit report [-o FILE.html] [--open] [--json]`: one self-contained HTML
// page about the host (or the snapshot under --root): topology, IOMMU groups,
// readiness, transactions, what can be passed. Reads only; the page goes to
// FILE or standard output.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findInterrupted, latestJournal, listJournals } from '../../apply/index.js';
import { OutputError, UsageError } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { loadPciNames } from '../../host/pci-ids.js';
import type { BootTransactionIntent } from '../../model/plan.js';
import { assembleCheck } from '../../analysis/check.js';
import { analyzeGroups } from '../../analysis/groups.js';
import { assembleStatus } from '../../analysis/status.js';
import { renderReportFromData, reportData, type ReportInput } from '../../render/report-html.js';
import { out, printJson, type CommandContext } from '../context.js';

function collectReportInput(ctx: CommandContext, now: Date = new Date()): ReportInput {
  const snapshot = inspect(ctx.root);
  const groups = analyzeGroups(snapshot);
  const applied = latestJournal(ctx.root, (d) => d.kind === 'boot-passthrough' && d.state === 'applied');
  const names = loadPciNames(ctx.root);
  const classNames: Record<string, string> = {};
  for (const d of snapshot.pci) {
    const n = names.className(d.class);
    if (n) classNames[d.class] = n;
  }
  return {
    snapshot,
    groups,
    check: assembleCheck(snapshot, groups),
    status: assembleStatus(snapshot, applied ? { txid: applied.txid, intent: applied.intent as unknown as BootTransactionIntent, appliedAt: applied.updatedAt } : null),
    transactions: listJournals(ctx.root).map((j) => ({ txid: j.txid, kind: j.kind, state: j.state, createdAt: j.createdAt, updatedAt: j.updatedAt, summary: j.summary })),
    interrupted: findInterrupted(ctx.root).map((j) => j.txid),
    classNames,
    generatedAt: now.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

function openInBrowser(ctx: CommandContext, file: string): void {
  const env = ctx.io.env ?? process.env;
  const opener = (env.PATH ?? '').split(':').map((d) => path.join(d, 'xdg-open')).find((p) => fs.existsSync(p));
  if (!opener) {
    ctx.io.stderr.write(`vfiokit: xdg-open not found; open ${file} in a browser\n`);
    return;
  }
  const child = spawn(opener, [file], { detached: true, stdio: 'ignore', env: env as NodeJS.ProcessEnv });
  child.on('error', (e) => ctx.io.stderr.write(`vfiokit: could not run xdg-open (${e.message}); open ${file} in a browser\n`));
  child.unref();
}

export async function run(ctx: CommandContext): Promise<number> {
  const output = typeof ctx.values.output === 'string' ? ctx.values.output : null;
  if (ctx.values.json && (output || ctx.values.open)) throw new UsageError('--json prints the report data and cannot be combined with -o or --open', 'use either --json, or -o FILE.html [--open]');
  const data = reportData(collectReportInput(ctx));
  if (ctx.values.json) {
    printJson(ctx, data);
    return 0;
  }
  const html = renderReportFromData(data);
  let file = output ? path.resolve(output) : null;
  if (!file && ctx.values.open) file = path.join(os.tmpdir(), `vfiokit-report-${process.pid}.html`);
  if (!file) {
    ctx.io.stdout.write(html);
    return 0;
  }
  const size = Buffer.byteLength(html);
  if (ctx.values['dry-run']) {
    out(ctx, `would write ${file} (${size} bytes: ${data.devices.length} PCI functions, ${data.groups.length} IOMMU groups)`);
    return 0;
  }
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new OutputError(file, 'it is a directory');
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, html);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    throw new OutputError(file, err.code === 'ENOENT' ? 'the directory does not exist' : err.code === 'EACCES' ? 'permission denied' : err.message);
  }
  ctx.io.stderr.write(`vfiokit: wrote ${file} (${(size / 1024).toFixed(0)} KiB: ${data.devices.length} PCI functions, ${data.groups.length} IOMMU groups)\n`);
  if (ctx.values.open) openInBrowser(ctx, file);
  return 0;
}
