// Log sources for `vfiokit diagnose`, each streamed line by line (constant
// memory): the kernel log of this boot (the journal, else dmesg, else
// /var/log/kern.log), libvirt's per-domain QEMU logs and the libvirt daemons'
// journal, vfiokit's own transaction journal — all under the HostRoot — and
// pasted files or stdin.

import { spawn } from 'node:child_process';
import { isAscii } from 'node:buffer';
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { HostRoot } from './root.js';
import { LIBVIRT_QEMU_LOG_DIR, VAR_LOG_DMESG, VAR_LOG_JOURNAL, VAR_LOG_KERN, VFIOKIT_JOURNAL_DIR } from './sysfs-paths.js';

/**
 * Receives text of whole lines (the last line of a stream may lack its
 * newline), the first of them being line `firstLine` of `source`; returns the
 * number of lines in it.
 */
type ChunkSink = (text: string, source: string, firstLine: number) => number;

/** 'boot' (this boot) or a number of seconds back from now. */
export type Since = 'boot' | number;

export interface SourceReport {
  source: string;
  lines: number;
  /** Why a source was skipped (absent, not permitted). */
  skipped?: string;
}

/** A line longer than this is passed on in pieces, so memory stays bounded whatever the input. */
const MAX_PENDING = 1 << 20;

/** Streams a readable into the sink in chunks cut at line ends; resolves with the line count. */
export async function streamLines(input: NodeJS.ReadableStream, source: string, sink: ChunkSink): Promise<number> {
  const decoder = new StringDecoder('utf8');
  // Plain ASCII (most logs) is decoded as latin1, several times faster; the
  // UTF-8 decoder takes any chunk with other bytes, and the one after it in
  // case it ended inside a character.
  let decoderHolds = false;
  const decode = (b: Buffer): string => {
    if (!decoderHolds && isAscii(b)) return b.toString('latin1');
    decoderHolds = b.length > 0 && b[b.length - 1] >= 0x80;
    return decoder.write(b);
  };
  let pending = '';
  let n = 0;
  for await (const chunk of input) {
    const text = pending + (typeof chunk === 'string' ? chunk : decode(chunk as Buffer));
    const last = text.lastIndexOf('\n');
    if (last === -1) {
      pending = text;
    } else {
      n += sink(last === text.length - 1 ? text : text.slice(0, last + 1), source, n + 1);
      pending = text.slice(last + 1);
    }
    if (pending.length > MAX_PENDING) {
      n += sink(pending + '\n', source, n + 1);
      pending = '';
    }
  }
  pending += decoder.end();
  if (pending) n += sink(pending, source, n + 1);
  return n;
}

export async function streamFile(file: string, label: string, sink: ChunkSink): Promise<number> {
  return streamLines(fs.createReadStream(file, { highWaterMark: 1 << 20 }), label, sink);
}

/** Runs a command and streams its stdout; null when it cannot run or fails without output. */
async function streamCommand(argv: string[], label: string, sink: ChunkSink): Promise<number | null> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      resolve(null);
      return;
    }
    let failed = false;
    child.on('error', () => {
      failed = true;
    });
    const counted = streamLines(child.stdout, label, sink);
    child.on('close', async (code) => {
      const n = await counted.catch(() => 0);
      resolve(failed || (code !== 0 && n === 0) ? null : n);
    });
  });
}

function sinceArgs(since: Since): string[] {
  return since === 'boot' ? ['-b'] : [`--since=-${Math.max(1, Math.round(since))}s`];
}

/** Reads every log of the host under the root into the sink. */
export async function readHostLogs(root: HostRoot, since: Since, sink: ChunkSink): Promise<SourceReport[]> {
  const reports: SourceReport[] = [];
  const journalDir = root.isLive ? null : root.path(VAR_LOG_JOURNAL);
  const jctl = (extra: string[]) => ['journalctl', '--no-pager', '-q', '-o', 'short-iso', ...(journalDir ? ['-D', journalDir] : []), ...sinceArgs(since), ...extra];
  // kernel log
  let kernel: number | null = null;
  if (root.isLive || (journalDir && fs.existsSync(journalDir))) {
    kernel = await streamCommand(jctl(['-k']), 'journal (kernel)', sink);
    if (kernel === 0 && root.isLive) kernel = null;
    if (kernel !== null) reports.push({ source: 'journal (kernel)', lines: kernel });
  }
  if (kernel === null && root.isLive) {
    kernel = await streamCommand(['dmesg'], 'dmesg', sink);
    if (kernel !== null) reports.push({ source: 'dmesg', lines: kernel });
  }
  if (kernel === null) {
    for (const p of [VAR_LOG_KERN, VAR_LOG_DMESG]) {
      const abs = root.path(p);
      if (fs.existsSync(abs)) {
        reports.push({ source: p, lines: await streamFile(abs, p, sink) });
        kernel = 1;
        break;
      }
    }
    if (kernel === null) reports.push({ source: 'kernel log', lines: 0, skipped: 'no journal, dmesg or /var/log/kern.log could be read' });
  }
  // libvirt daemons
  if (root.isLive) {
    const n = await streamCommand(jctl(['-u', 'libvirtd', '-u', 'virtqemud', '-u', 'virtnodedevd']), 'journal (libvirt)', sink);
    if (n !== null) reports.push({ source: 'journal (libvirt)', lines: n });
  }
  // libvirt per-domain QEMU logs
  const qdir = root.path(LIBVIRT_QEMU_LOG_DIR);
  let names: string[] = [];
  try {
    names = fs.readdirSync(qdir).filter((n) => n.endsWith('.log')).sort();
  } catch (e) {
    reports.push({ source: LIBVIRT_QEMU_LOG_DIR, lines: 0, skipped: (e as NodeJS.ErrnoException).code === 'EACCES' ? 'permission denied (run as root)' : 'absent' });
  }
  for (const n of names) {
    const p = `${LIBVIRT_QEMU_LOG_DIR}/${n}`;
    try {
      reports.push({ source: p, lines: await streamFile(root.path(p), p, sink) });
    } catch (e) {
      reports.push({ source: p, lines: 0, skipped: (e as Error).message });
    }
  }
  // vfiokit's own journal: errors and events of each transaction
  let txs: string[] = [];
  try {
    txs = fs.readdirSync(root.path(VFIOKIT_JOURNAL_DIR)).sort();
  } catch {
    /* no transactions */
  }
  for (const tx of txs) {
    const p = `${VFIOKIT_JOURNAL_DIR}/${tx}/journal.json`;
    const text = root.tryReadText(p);
    if (text === undefined) continue;
    let n = 0;
    try {
      const lines = journalMessages(JSON.parse(text));
      if (lines.length) n = sink(lines.join('\n') + '\n', p, 1);
    } catch {
      reports.push({ source: p, lines: 0, skipped: 'not valid JSON' });
      continue;
    }
    reports.push({ source: p, lines: n });
  }
  return reports;
}

/** The error and event messages of one transaction journal. */
function journalMessages(j: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown, key: string): void => {
    if (typeof v === 'string') {
      if (key === 'error' || key === 'message' || key === 'output') out.push(...v.split('\n'));
    } else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(j, '');
  return out;
}
