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
  /** argv that reverses this command (systemctl start ↔ stop); run by undo and rollback. */
  undoArgv?: string[];
  /** The command changes only the running system (systemctl --runtime, start/stop): void after a reboot. */
  volatile?: boolean;
}

/**
 * Write one kernel attribute (sysfs, procfs or cgroupfs) the way `echo -n`
 * does. `before` is what it read when planned (checked again before the first
 * change; null when the plan could not read it); `restore` is how undo and
 * rollback put it back: write a value (usually `before`), or nothing for a
 * one-shot trigger (drivers_probe, compact_memory).
 */
export interface WriteAttrStep {
  kind: 'write-attr';
  path: string;
  value: string;
  before: string | null;
  restore: { value: string } | null;
  /** When set, the attribute must read this after the write (trimmed), else the step fails. */
  expect?: string;
  /**
   * The kernel may refuse this write for reasons of its own (a managed or
   * per-CPU IRQ answers EIO, some kernels EPERM; an MSI vector may vanish):
   * then the step is skipped and counted (journaled as `skipped`), never
   * failed. Undo restores only what was written, ignoring an attribute gone since.
   */
  optional?: boolean;
  /**
   * A one-shot trigger (compact_memory): the write makes the kernel do
   * something once and leaves no value behind, so there is nothing to
   * restore. Says why; journaled with the step (`live.nothingToRestore`), and
   * `restore` must be null. Nothing is read back.
   */
  oneShot?: string;
  reason: string;
}

/**
 * Set a systemd unit property for the running system only
 * (`systemctl set-property --runtime -- UNIT PROPERTY=VALUE`: nothing persists
 * across a reboot). Journaled before the effect: the property's value as the
 * cgroup showed it ("" = not set) and the runtime drop-in systemd keeps for it
 * (bytes, or absent). Undo sets the old value back (an empty assignment
 * resets), then puts the drop-in back byte for byte (or removes it and the
 * directories it created) and reloads systemd so unit and files agree.
 */
export interface UnitPropertyStep {
  kind: 'unit-property';
  unit: string;
  property: string;
  value: string;
  /** The cgroup attribute that shows the property's effect (cpuset.cpus for AllowedCPUs); compared as CPU lists. */
  attr: string;
  /** The runtime drop-in `set-property --runtime` writes. */
  dropIn: string;
  /** Observed when planned: the attribute ("" = not set, null = absent) and the drop-in (null = absent). */
  before: { value: string | null; dropIn: string | null };
  reason: string;
}

/**
 * Move a PCI function to `driver` (null: leave it unbound) with the kernel's
 * sequence: driver_override ← driver, unbind from the current driver,
 * drivers_probe. The driver and override found at execution are journaled;
 * undo and rollback put exactly those back.
 */
export interface BindDriverStep {
  kind: 'bind-driver';
  address: string;
  driver: string | null;
  /** Observed when planned; execution re-reads and journals the live state. */
  before: { driver: string | null; override: string | null };
  reason: string;
}

/** modprobe / modprobe -r. Undo reverses only what this step changed (`before` = loaded when planned). */
export interface ModuleStep {
  kind: 'module';
  action: 'load' | 'unload';
  module: string;
  /** Modules `modprobe -r` takes along (dependency order), reloaded by undo. */
  also?: string[];
  /** Undo of a load leaves the module loaded (vfio-pci harms nothing loaded). */
  keepOnUndo?: boolean;
  reason: string;
}

/** virsh define / undefine. `before` is the domain's inactive XML before (null: not defined); undo restores it. */
export interface DomainStep {
  kind: 'domain';
  action: 'define' | 'undefine';
  name: string;
  /** For define: the new XML. */
  xml?: string;
  before: string | null;
  /** libvirt connection URI (virsh -c); default: virsh's own default. */
  connect?: string;
  reason: string;
}

/**
 * Install a file that is not configuration (a libvirt hook executable, a ROM
 * image) from bytes: like write-file, but the content is binary (base64 in
 * JSON) and the file must not exist unless `before` says what it holds.
 */
export interface InstallFileStep {
  kind: 'install-file';
  path: string;
  /** base64 of the bytes to install. */
  contentBase64: string;
  mode: number;
  /** sha256 of what is there now (null: absent); undo puts that back. */
  beforeSha256: string | null;
  reason: string;
}

/**
 * Read a (binary) kernel attribute whole and keep it as a new file — a
 * device's option ROM (`rom`, enabled by a write-attr step before and disabled
 * after). Undo removes the file.
 */
export interface CopyAttrStep {
  kind: 'copy-attr';
  from: string;
  path: string;
  /** Refuse (fail the step) when the attribute yields more than this. */
  maxBytes: number;
  mode: number;
  reason: string;
}

/** Wait (with a timeout) until a condition holds; fails the step (and rolls back) when it does not. Undo does nothing. */
export interface WaitStep {
  kind: 'wait';
  condition:
    | { type: 'path-exists'; path: string }
    | { type: 'path-absent'; path: string }
    | { type: 'no-open-files'; paths: string[] }
    | { type: 'group-viable'; group: number };
  timeoutMs: number;
  reason: string;
}

/** Steps that change the running kernel: they do not survive a reboot. */
export const VOLATILE_STEP_KINDS = ['write-attr', 'bind-driver', 'module', 'wait', 'unit-property'] as const;

export type Step = WriteFileStep | RemoveFileStep | RunCommandStep | WriteAttrStep | BindDriverStep | ModuleStep | DomainStep | InstallFileStep | CopyAttrStep | WaitStep | UnitPropertyStep;

export interface Plan {
  /** What kind of transaction (journal, history and undo use it). */
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
  /** `identity`: what each device was when applied (absent in transactions made before it was recorded). */
  devices: { address: string; vendor: string; device: string; iommuGroup: number | null; hostDriver: string | null; identity?: import('./device-identity.js').DeviceIdentity }[];
  strategy: 'ids' | 'address';
  /** Devices with the same IDs that stayed on the host (so drift never mistakes one for a moved device). */
  stayed?: string[];
  kernelArgs: string[];
  bootloader: BootloaderKind;
  initramfs: InitramfsKind;
}
