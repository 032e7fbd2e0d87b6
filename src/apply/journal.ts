// The apply journal: what was done, written and fsynced *before* each step,
// so rollback, undo and crash recovery are exact (libvirt keeps origstates
// in a state dir for the same reason).
//
// Layout under the root:
//   /var/lib/vfiokit/journal/<txid>/journal.json   the transaction (JournalDoc)
//   /var/lib/vfiokit/journal/<txid>/backup-<n>      original bytes of step n's file
//
// A step goes pending → started (backup saved, journal synced; the effect may
// or may not have happened) → done, and later rolled-back or undone. A
// transaction is applying → applied | rolling-back → rolled-back |
// rollback-failed, and applied → undoing → undone | undo-failed. A
// transaction found in applying, rolling-back or undoing was interrupted
// (see recover.ts). Must not: decide what to roll back; executor and undo do.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostRoot } from '../host/root.js';
import type { Plan, Step } from '../model/plan.js';
import { fsyncDir, writeFileAtomic } from './atomic-write.js';
import { asRoot, JOURNAL_DIR } from './state-dir.js';

export type TxState = 'applying' | 'applied' | 'rolling-back' | 'rolled-back' | 'rollback-failed' | 'undoing' | 'undone' | 'undo-failed';
export type StepState = 'pending' | 'started' | 'done' | 'failed' | 'rolled-back' | 'undone';

/** The original state of a file a step changed. */
export interface FileBackup {
  /** Host path actually changed: the symlink's target for a write through a link. */
  target: string;
  existed: boolean;
  /** Backup file name inside the transaction directory; null when nothing to keep. */
  file: string | null;
  mode: number | null;
  uid: number | null;
  gid: number | null;
  sha256: string | null;
  /** remove-file of a symlink: the link text (the link is removed, not its target). */
  link: string | null;
  /** Directories created to hold a new file, outermost first (removed on restore when empty). */
  createdDirs: string[];
}

export interface JournalStep {
  index: number;
  kind: Step['kind'];
  reason: string;
  state: StepState;
  path?: string;
  argv?: string[];
  label?: string;
  regenerate?: boolean;
  timeoutMs?: number;
  backup?: FileBackup;
  /** What the step left: sha256 of the bytes written (null = removed) and the mode. */
  after?: { sha256: string | null; mode: number | null };
  result?: { code: number | null; signal: string | null; durationMs: number };
  error?: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface JournalEvent {
  at: string;
  message: string;
}

export interface JournalDoc {
  version: 1;
  txid: string;
  /** Monotonic per root; orders transactions. */
  seq: number;
  kind: string;
  intent: Record<string, unknown>;
  summary: string[];
  /** The root the transaction ran under ("/" for the live host). */
  root: string;
  pid: number;
  state: TxState;
  createdAt: string;
  updatedAt: string;
  steps: JournalStep[];
  events: JournalEvent[];
}

export const INTERRUPTED_STATES: TxState[] = ['applying', 'rolling-back', 'undoing'];

const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

function stepRecord(s: Step, index: number): JournalStep {
  const base = { index, kind: s.kind, reason: s.reason, state: 'pending' as StepState };
  if (s.kind === 'run-command') return { ...base, argv: [...s.argv], label: s.label, regenerate: s.regenerate, ...(s.timeoutMs ? { timeoutMs: s.timeoutMs } : {}) };
  return { ...base, path: 'path' in s ? s.path : undefined };
}

export class Journal {
  private constructor(
    readonly root: HostRoot,
    /** Real directory of the transaction. */
    readonly dir: string,
    public doc: JournalDoc,
    private readonly clock: () => Date,
  ) {}

  /** Create a transaction for `plan` in state "applying" and sync it to disk. */
  static create(rootArg: HostRoot | string, plan: Plan, clock: () => Date = () => new Date()): Journal {
    const root = asRoot(rootArg);
    const base = root.path(JOURNAL_DIR);
    fs.mkdirSync(base, { recursive: true, mode: 0o700 });
    const seq = Math.max(0, ...listJournals(root).map((j) => j.seq)) + 1;
    const now = clock();
    const txid = `${stamp(now)}-${String(seq).padStart(4, '0')}`;
    const dir = path.join(base, txid);
    fs.mkdirSync(dir, { mode: 0o700 });
    fsyncDir(base);
    const doc: JournalDoc = {
      version: 1,
      txid,
      seq,
      kind: plan.kind,
      intent: plan.intent,
      summary: plan.summary,
      root: root.dir,
      pid: process.pid,
      state: 'applying',
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      steps: plan.steps.map(stepRecord),
      events: [],
    };
    const j = new Journal(root, dir, doc, clock);
    j.save();
    return j;
  }

  static open(rootArg: HostRoot | string, txid: string, clock: () => Date = () => new Date()): Journal {
    const root = asRoot(rootArg);
    if (!/^[\w.-]+$/.test(txid)) throw new Error(`bad transaction id ${txid}`);
    const dir = path.join(root.path(JOURNAL_DIR), txid);
    const doc = JSON.parse(fs.readFileSync(path.join(dir, 'journal.json'), 'utf8')) as JournalDoc;
    return new Journal(root, dir, doc, clock);
  }

  now(): string {
    return this.clock().toISOString();
  }

  /** Write journal.json atomically (temp, fsync, rename, dir fsync). */
  save(): void {
    this.doc.updatedAt = this.now();
    writeFileAtomic(path.join(this.dir, 'journal.json'), Buffer.from(JSON.stringify(this.doc, null, 2) + '\n', 'utf8'), { mode: 0o600 });
  }

  event(message: string): void {
    this.doc.events.push({ at: this.now(), message });
  }

  setState(state: TxState, message?: string): void {
    this.doc.state = state;
    if (message) this.event(message);
    this.save();
  }

  /** Keep the original bytes of step `index`'s file; returns the backup name. */
  writeBackup(index: number, bytes: Uint8Array): string {
    const name = `backup-${index}`;
    writeFileAtomic(path.join(this.dir, name), bytes, { mode: 0o600 });
    return name;
  }

  readBackup(name: string): Buffer {
    return fs.readFileSync(path.join(this.dir, name));
  }
}

/** Every transaction under the root, oldest first. Unreadable entries are skipped. */
export function listJournals(rootArg: HostRoot | string): JournalDoc[] {
  const root = asRoot(rootArg);
  let names: string[];
  try {
    names = fs.readdirSync(root.path(JOURNAL_DIR));
  } catch {
    return [];
  }
  const docs: JournalDoc[] = [];
  for (const n of names) {
    try {
      docs.push(JSON.parse(fs.readFileSync(path.join(root.path(JOURNAL_DIR), n, 'journal.json'), 'utf8')) as JournalDoc);
    } catch {
      /* not a transaction directory (or torn before its first sync) */
    }
  }
  return docs.sort((a, b) => a.seq - b.seq);
}

/** The newest transaction (optionally the newest matching `pred`), or null. */
export function latestJournal(rootArg: HostRoot | string, pred: (d: JournalDoc) => boolean = () => true): JournalDoc | null {
  const all = listJournals(rootArg).filter(pred);
  return all.length ? all[all.length - 1] : null;
}

/** One line per step, for messages and `status`. */
export function describeStep(s: JournalStep | Step): string {
  if (s.kind === 'run-command') return `run ${'label' in s && s.label ? s.label : (s.argv ?? []).join(' ')}`;
  return `${s.kind === 'write-file' ? 'write' : 'remove'} ${"path" in s ? s.path : s.kind}`;
}
