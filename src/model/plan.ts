// Plans: what vfiokit will do, as data. Produced by pure planners
// (src/plan, src/vm), rendered as diffs/argv (src/render), executed only by
// src/apply. A plan never holds hashes or I/O handles: `before` carries the
// observed content so the executor can check nothing changed since.

import type { Problem } from '../errors.js';

/** A file as observed when planning; null means the file did not exist. */
export interface FileState {
  content: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface WriteFileStep {
  kind: 'write-file';
  /** Absolute host path (resolved under the root by the executor). */
  path: string;
  before: FileState | null;
  after: { content: string; mode: number };
  reason: string;
}

export interface RemoveFileStep {
  kind: 'remove-file';
  path: string;
  before: FileState;
  reason: string;
}

export interface RunCommandStep {
  kind: 'run-command';
  argv: string[];
  reason: string;
  /** Short label for progress output ("update-initramfs -u -k 6.1.0-18-amd64"). */
  label: string;
  /**
   * Regenerates derived files (initramfs, grub.cfg): run again on undo after
   * the files were restored, and on rollback when a later step failed.
   */
  regenerate: boolean;
  timeoutMs?: number;
}

export type Step = WriteFileStep | RemoveFileStep | RunCommandStep;

export interface Plan {
  /** What kind of transaction (journal and undo use it). */
  kind: 'boot-passthrough' | 'boot-undo' | string;
  /** What the user asked for, recorded in the journal. */
  intent: Record<string, unknown>;
  steps: Step[];
  /** Refusals: when non-empty nothing may be applied. */
  problems: Problem[];
  warnings: string[];
  /** Human summary lines (devices, strategy, bootloader, initramfs). */
  summary: string[];
}

export function emptyPlan(kind: string, intent: Record<string, unknown>): Plan {
  return { kind, intent, steps: [], problems: [], warnings: [], summary: [] };
}

export type BootloaderKind = 'grub' | 'grubby-bls' | 'systemd-boot' | 'kernelstub' | 'proxmox-boot-tool' | 'refind' | 'limine' | 'unknown';
export type InitramfsKind = 'initramfs-tools' | 'dracut' | 'mkinitcpio' | 'booster' | 'unknown';

/** What `status` needs to verify after reboot; stored as the journal's intent. */
export interface BootTransactionIntent {
  selectors: string[];
  devices: { address: string; vendor: string; device: string; iommuGroup: number | null; hostDriver: string | null }[];
  strategy: 'ids' | 'address';
  kernelArgs: string[];
  bootloader: BootloaderKind;
  initramfs: InitramfsKind;
}
