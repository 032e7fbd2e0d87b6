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
import { PreconditionError } from '../errors.js';
import { describeIssues, journalSchema } from './journal-schema.js';
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
  /** run-command: the argv that reverses it; volatile: void after a reboot. */
  undoArgv?: string[];
  volatile?: boolean;
  /** Kernel, libvirt and install steps: the step as planned (install-file without its bytes). */
  spec?: Step;
  /** What the step found when it ran (previous driver, attribute value, loaded modules…), journaled before its effect. */
  live?: Record<string, unknown>;
  backup?: FileBackup;
  /** What the step left: sha256 of the bytes written (null = removed) and the mode. */
  after?: { sha256: string | null; mode: number | null };
  result?: { code: number | null; signal: string | null; durationMs: number };
  error?: string;
  startedAt?: string;
  finishedAt?: string;
}

interface JournalEvent {
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
  /** Boot the transaction ran in (/proc/sys/kernel/random/boot_id): kernel changes of another boot are void. */
  bootId?: string | null;
  /** The root the transaction ran under ("/" for the live host). */
  root: string;
  pid: number;
  state: TxState;
  createdAt: string;
  updatedAt: string;
  steps: JournalStep[];
  events: JournalEvent[];
}


const stamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');

function stepRecord(s: Step, index: number): JournalStep {
  const base = { index, kind: s.kind, reason: s.reason, state: 'pending' as StepState };
  if (s.kind === 'run-command')
    return {
      ...base,
      argv: [...s.argv],
      label: s.label,
      regenerate: s.regenerate,
      ...(s.timeoutMs ? { timeoutMs: s.timeoutMs } : {}),
      ...(s.undoArgv ? { undoArgv: [...s.undoArgv] } : {}),
      ...(s.volatile ? { volatile: true } : {}),
    };
  if (s.kind === 'write-file' || s.kind === 'remove-file') return { ...base, path: s.path };
  const spec: Step = s.kind === 'install-file' ? { ...s, contentBase64: '' } : s;
  return { ...base, ...('path' in s ? { path: s.path } : {}), spec };
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
  static create(rootArg: HostRoot | string, plan: Plan, clock: () => Date = () => new Date(), bootId: string | null = null): Journal {
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
      bootId,
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
    if (!/^[\w.-]+$/.test(txid) || !fs.existsSync(path.join(root.path(JOURNAL_DIR), txid))) {
      throw new PreconditionError('E_NO_TRANSACTION', `there is no transaction ${txid}${root.isLive ? '' : ` under ${root.dir}`}`, 'see `vfiokit history` for the transaction ids');
    }
    const dir = path.join(root.path(JOURNAL_DIR), txid);
    const d = parseJournal(path.join(dir, 'journal.json'), `${JOURNAL_DIR}/${txid}/journal.json`);
    if ('problem' in d) throw corruptJournalError([{ txid, file: `${JOURNAL_DIR}/${txid}/journal.json`, problem: d.problem }], root);
    return new Journal(root, dir, d, clock);
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

/** A transaction directory whose journal.json cannot be trusted. */
export interface CorruptJournal {
  txid: string;
  /** Host path of the file. */
  file: string;
  problem: string;
}

/** Read and validate one journal.json (host path for messages). */
function parseJournal(real: string, hostFile: string): JournalDoc | { problem: string } {
  let text: string;
  try {
    text = fs.readFileSync(real, 'utf8');
  } catch (e) {
    return { problem: `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return { problem: text.trim() === '' ? 'is empty' : `is not valid JSON (${(e as Error).message}${text.length ? `; ${text.length} bytes, truncated?` : ''})` };
  }
  const r = journalSchema.safeParse(raw);
  if (!r.success) return { problem: `does not have the shape of a vfiokit journal: ${describeIssues(r.error)}` };
  void hostFile;
  return r.data as unknown as JournalDoc;
}

/**
 * Every transaction under the root, oldest first, and the directories whose
 * journal is unreadable or wrongly shaped. A directory with no journal.json
 * and nothing else in it was torn before its first sync (no step ran) and is
 * ignored.
 */
export function scanJournals(rootArg: HostRoot | string): { docs: JournalDoc[]; corrupt: CorruptJournal[] } {
  const root = asRoot(rootArg);
  const base = root.path(JOURNAL_DIR);
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return { docs: [], corrupt: [] };
  }
  const docs: JournalDoc[] = [];
  const corrupt: CorruptJournal[] = [];
  for (const n of names.sort()) {
    const dir = path.join(base, n);
    let entries: string[];
    try {
      if (!fs.statSync(dir).isDirectory()) continue;
      entries = fs.readdirSync(dir);
    } catch {
      continue;
    }
    const hostFile = `${JOURNAL_DIR}/${n}/journal.json`;
    if (!entries.includes('journal.json')) {
      if (entries.some((e) => !e.endsWith('.tmp'))) corrupt.push({ txid: n, file: hostFile, problem: 'is missing (the directory still holds backups)' });
      continue;
    }
    const d = parseJournal(path.join(dir, 'journal.json'), hostFile);
    if ('problem' in d) corrupt.push({ txid: n, file: hostFile, problem: d.problem });
    else docs.push(d);
  }
  return { docs: docs.sort((a, b) => a.seq - b.seq), corrupt };
}

/** The error for unreadable journals: vfiokit cannot know what they changed, so it changes nothing. */
export function corruptJournalError(c: CorruptJournal[], root: HostRoot): PreconditionError {
  return new PreconditionError(
    'E_JOURNAL_CORRUPT',
    `${c.length === 1 ? `the journal ${c[0].file}` : `${c.length} journals`}${root.isLive ? '' : ` under ${root.dir}`} ${c.length === 1 ? c[0].problem : 'cannot be read'}; vfiokit cannot tell what ${c.length === 1 ? 'that transaction' : 'those transactions'} changed, so nothing was changed`,
    `look at the backups next to it (${JOURNAL_DIR}/${c[0].txid}/) and restore what it changed by hand, then move the directory out of ${JOURNAL_DIR}`,
    c[0].file,
    c.map((x) => ({ code: 'E_JOURNAL_CORRUPT', subject: x.file, message: `${x.file} ${x.problem}` })),
  );
}

/** Every transaction under the root, oldest first; throws E_JOURNAL_CORRUPT when one cannot be read. */
export function listJournals(rootArg: HostRoot | string): JournalDoc[] {
  const root = asRoot(rootArg);
  const { docs, corrupt } = scanJournals(root);
  if (corrupt.length) throw corruptJournalError(corrupt, root);
  return docs;
}

/** The newest transaction (optionally the newest matching `pred`), or null. */
export function latestJournal(rootArg: HostRoot | string, pred: (d: JournalDoc) => boolean = () => true): JournalDoc | null {
  const all = listJournals(rootArg).filter(pred);
  return all.length ? all[all.length - 1] : null;
}

/**
 * Whether a transaction ran in an earlier boot, so its changes to the running
 * kernel went with that boot. A transaction or a host without a boot id counts
 * as this boot's.
 */
export function fromEarlierBoot(d: Pick<JournalDoc, 'bootId'>, bootNow: string | null): boolean {
  return Boolean(d.bootId && bootNow && d.bootId !== bootNow);
}

/** The applied transactions of `kind` of this boot (their kernel changes still in effect), newest first. */
export function appliedThisBoot(docs: JournalDoc[], kind: string, bootNow: string | null): JournalDoc[] {
  return docs.filter((d) => d.kind === kind && d.state === 'applied' && !fromEarlierBoot(d, bootNow)).sort((a, b) => b.seq - a.seq);
}

/** One line per step, for messages, `history` and `status`. */
export function describeStep(s: JournalStep | Step): string {
  if (s.kind === 'run-command') return `run ${'label' in s && s.label ? s.label : (s.argv ?? []).join(' ')}`;
  if (s.kind === 'write-file' || s.kind === 'remove-file') return `${s.kind === 'write-file' ? 'write' : 'remove'} ${s.path}`;
  const p: Step = 'spec' in s && s.spec ? s.spec : (s as Step);
  switch (p.kind) {
    case 'write-attr':
      return `write ${JSON.stringify(p.value)} to ${p.path}`;
    case 'bind-driver':
      return `bind ${p.address} to ${p.driver ?? 'its default driver'}`;
    case 'module':
      return `${p.action === 'load' ? 'load' : 'unload'} module ${[...(p.also ?? []), p.module].join(', ')}`;
    case 'domain':
      return `${p.action} libvirt domain ${p.name}`;
    case 'install-file':
      return `install ${p.path}`;
    case 'copy-attr':
      return `copy ${p.from} to ${p.path}`;
    case 'wait':
      return `wait: ${p.reason}`;
    case 'unit-property':
      return `set ${p.property}=${p.value} on ${p.unit} (runtime)`;
    default:
      return p.kind;
  }
}
