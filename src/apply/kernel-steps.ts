// Doing and undoing the steps that change the running kernel or libvirt:
// attribute writes (sysfs, procfs, cgroupfs), driver binding, modules,
// waits, attribute copies and libvirt domain definitions. Like file steps,
// each one journals what it found (`js.live`) and is synced *before* its
// effect, so rollback, undo and crash recovery put back exactly that; every
// undo is idempotent (running it twice, or after a crash halfway, is safe).
//
// Driver binding follows the kernel's sequence (Documentation/ABI/testing/
// sysfs-bus-pci; libvirt virPCIDeviceBindWithDriverOverride):
//   driver_override ← driver (restricts matching; does not unbind)
//   drivers/<cur>/unbind ← BDF (when bound elsewhere)
//   drivers_probe ← BDF (runs matching, honours the override)
// Not `new_id`: it grabs every unbound device with that ID (twin GPUs).

import * as fs from 'node:fs';
import { VfioError } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { groupViability, openFileHolders, readLive, type LiveDevice } from '../host/runtime.js';
import { pciAttr, pciDevice, pciDriverDir, SYS_PCI_DRIVERS_PROBE, sysModule } from '../host/sysfs-paths.js';
import type { BindDriverStep, DomainStep, ModuleStep, WaitStep, WriteAttrStep } from '../model/plan.js';
import { formatArgv, type Runner } from './runner.js';
import { describeWriteError, type SysfsWriter } from './sysfs-writer.js';

export interface KernelContext {
  root: HostRoot;
  runner: Runner;
  /** null when the root has no kernel behind it (a --root tree without a fake). */
  sysfs: SysfsWriter | null;
  log: (line: string) => void;
  /** Directory of the transaction (domain XML copies live there). */
  txDir: string;
  /** Test hook: sleep for waits (default: real time). */
  sleep?: (ms: number) => Promise<void>;
}

export const VFIO_PCI = 'vfio-pci';

function writer(ctx: KernelContext): SysfsWriter {
  if (!ctx.sysfs) throw new VfioError('E_NOT_LIVE', `this step changes the running kernel, but ${ctx.root.dir} has no kernel behind it`, 'run the command on the host itself, without --root');
  return ctx.sysfs;
}

export function writeAttr(ctx: KernelContext, p: string, v: string): void {
  ctx.log(`  ${p} ← ${JSON.stringify(v)}`);
  try {
    writer(ctx).write(p, v);
  } catch (e) {
    throw Object.assign(new VfioError('E_SYSFS_WRITE', describeWriteError(p, v, e), 'check dmesg for what the kernel said', p), { cause: e });
  }
}

/** An attribute's current value (trimmed of the trailing newline), or null when absent/unreadable. */
export function readAttr(root: HostRoot, p: string): string | null {
  const t = root.tryReadText(p);
  return t === undefined ? null : t.replace(/\n$/, '');
}

// ── write-attr ──────────────────────────────────────────────────────────

export interface AttrLive {
  found: string | null;
  /** An optional write the kernel refused (errno, or ENOENT when the attribute vanished): nothing to undo. */
  skipped?: string;
  /** What the attribute read after the write (undo checks it is still so). */
  after?: string | null;
  /** A one-shot trigger: why there is nothing to restore. */
  nothingToRestore?: string;
}

/** A one-shot trigger (compact_memory): written, never read back (such attributes are often write-only). */
export function writeOneShot(ctx: KernelContext, s: WriteAttrStep): void {
  writeAttr(ctx, s.path, s.value);
}

export function doWriteAttr(ctx: KernelContext, s: WriteAttrStep, live: AttrLive): void {
  writeAttr(ctx, s.path, s.value);
  const now = readAttr(ctx.root, s.path);
  // Keep small values only: some attributes read back data (a ROM), which the journal need not hold.
  live.after = now !== null && now.length <= 4096 ? now : null;
  if (s.expect !== undefined && (now ?? '').trim() !== s.expect) {
    throw new VfioError('E_ATTR_NOT_SET', `${s.path} reads ${JSON.stringify(now)} after writing ${JSON.stringify(s.value)} (expected ${JSON.stringify(s.expect)})`, 'check dmesg for what the kernel said', s.path);
  }
}

/** Errors with which the kernel refuses an attribute write for reasons of its own (managed IRQs: EIO; some kernels EPERM; a vanished IRQ: ENOENT). */
const KERNEL_REFUSALS = new Set(['EIO', 'EPERM', 'ENOENT', 'ENODEV']);

export function refusedByKernel(e: unknown): string | null {
  for (const code of [(e as NodeJS.ErrnoException)?.code, (e as { cause?: NodeJS.ErrnoException })?.cause?.code]) if (code && KERNEL_REFUSALS.has(code)) return code;
  return null;
}

/** An optional write: returns the errno when the kernel refused it (the step is skipped), null when written. */
export function optionalWrite(ctx: KernelContext, s: WriteAttrStep, live: AttrLive): string | null {
  if (!ctx.root.exists(s.path)) return 'ENOENT';
  ctx.log(`  ${s.path} ← ${JSON.stringify(s.value)}`);
  try {
    writer(ctx).write(s.path, s.value);
  } catch (e) {
    const code = refusedByKernel(e);
    if (code) return code;
    throw new VfioError('E_SYSFS_WRITE', describeWriteError(s.path, s.value, e), 'check dmesg for what the kernel said', s.path);
  }
  const now = readAttr(ctx.root, s.path);
  live.after = now !== null && now.length <= 4096 ? now : null;
  return null;
}

export function undoWriteAttr(ctx: KernelContext, s: WriteAttrStep): void {
  if (!s.restore) return;
  if (readAttr(ctx.root, s.path)?.trim() === s.restore.value.trim()) return;
  writeAttr(ctx, s.path, s.restore.value);
}

/**
 * Undo of a counter step: take away what it added from what the attribute
 * reads now (other transactions' shares stay). Without a read-back (cut off
 * before it) the recorded value is restored, as for any attribute.
 */
export function undoCounter(ctx: KernelContext, s: WriteAttrStep, live: AttrLive | undefined): string {
  const before = Number(s.before);
  const after = Number(live?.after?.trim());
  const now = Number(readAttr(ctx.root, s.path)?.trim());
  if (!live?.after || !Number.isInteger(before) || !Number.isInteger(after) || !Number.isInteger(now)) {
    undoWriteAttr(ctx, s);
    return `${s.path} = ${JSON.stringify(s.restore?.value ?? '')}`;
  }
  const added = Math.max(0, after - before);
  const target = String(Math.max(0, now - added));
  if (String(now) !== target) writeAttr(ctx, s.path, target);
  return `${s.path} = ${target} (${now} less the ${added} this transaction added)`;
}

// ── bind-driver ─────────────────────────────────────────────────────────

export interface BindLive {
  driver: string | null;
  override: string | null;
}

const liveOf = (ctx: KernelContext, a: string): LiveDevice => readLive(ctx.root, a);

/** Move a device to `driver`; null = clear the override and let the kernel's default driver probe. */
function moveDevice(ctx: KernelContext, a: string, driver: string | null): void {
  if (!ctx.root.exists(pciDevice(a))) throw new VfioError('E_NO_DEVICE', `PCI device ${a} is gone`, 'check `vfiokit groups`: the hardware changed', a);
  const cur0 = liveOf(ctx, a);
  if (driver !== null && cur0.driver === driver && cur0.override === driver) return;
  writeAttr(ctx, pciAttr(a, 'driver_override'), driver ?? '\n');
  const cur = liveOf(ctx, a).driver;
  if (cur && cur !== driver) writeAttr(ctx, `${pciDriverDir(cur)}/unbind`, a);
  if (liveOf(ctx, a).driver === null) writeAttr(ctx, SYS_PCI_DRIVERS_PROBE, a);
  const now = liveOf(ctx, a).driver;
  if (driver !== null && now !== driver) {
    throw new VfioError('E_BIND_FAILED', `${a} did not bind to ${driver} (driver now ${now ?? 'none'})`, `check dmesg for ${driver} errors${driver === VFIO_PCI ? '' : `; is the ${driver} module loaded?`}`, a);
  }
}

/**
 * Put a device back exactly: its driver (or none) and its driver_override.
 * The kernel's own order first (override back, unbind, probe); when the
 * default match picks another driver (the original was bound by hand), the
 * original is pinned with a temporary override and the override put back.
 */
export function restoreDevice(ctx: KernelContext, a: string, want: BindLive): void {
  let live = liveOf(ctx, a);
  if (live.driver === want.driver && live.override === want.override) return;
  if (live.override !== want.override) writeAttr(ctx, pciAttr(a, 'driver_override'), want.override ?? '\n');
  let cur = liveOf(ctx, a).driver;
  if (cur && cur !== want.driver) {
    writeAttr(ctx, `${pciDriverDir(cur)}/unbind`, a);
    cur = null;
  }
  if (want.driver === null) return;
  if (!cur) writeAttr(ctx, SYS_PCI_DRIVERS_PROBE, a);
  cur = liveOf(ctx, a).driver;
  if (cur === want.driver) return;
  if (!ctx.root.exists(pciDriverDir(want.driver))) {
    throw new VfioError('E_RESTORE_FAILED', `${a} cannot go back to ${want.driver}: that driver is not loaded (now ${cur ?? 'unbound'})`, `load it (modprobe ${want.driver}) and run \`vfiokit recover\``, a);
  }
  writeAttr(ctx, pciAttr(a, 'driver_override'), want.driver);
  if (cur) writeAttr(ctx, `${pciDriverDir(cur)}/unbind`, a);
  writeAttr(ctx, SYS_PCI_DRIVERS_PROBE, a);
  writeAttr(ctx, pciAttr(a, 'driver_override'), want.override ?? '\n');
  live = liveOf(ctx, a);
  if (live.driver !== want.driver) throw new VfioError('E_RESTORE_FAILED', `${a} did not go back to ${want.driver} (driver now ${live.driver ?? 'none'})`, "check dmesg for the driver's probe error", a);
}

export function bindLive(ctx: KernelContext, s: BindDriverStep): BindLive {
  const l = liveOf(ctx, s.address);
  return { driver: l.driver, override: l.override };
}

export function doBind(ctx: KernelContext, s: BindDriverStep): void {
  moveDevice(ctx, s.address, s.driver);
}

// ── module ──────────────────────────────────────────────────────────────

export interface ModuleLive {
  /** Modules loaded before the step, of those it names. */
  loaded: string[];
}

function moduleLoaded(root: HostRoot, name: string): boolean {
  return root.exists(sysModule(name)) || root.exists(pciDriverDir(name));
}

export function moduleLive(ctx: KernelContext, s: ModuleStep): ModuleLive {
  return { loaded: [s.module, ...(s.also ?? [])].filter((m) => moduleLoaded(ctx.root, m)) };
}

async function modprobe(ctx: KernelContext, argv: string[]): Promise<void> {
  await ctx.runner.run(argv, { label: formatArgv(argv), timeoutMs: 120_000 });
}

export async function doModule(ctx: KernelContext, s: ModuleStep, live: ModuleLive): Promise<void> {
  if (s.action === 'load') {
    if (live.loaded.includes(s.module)) return;
    await modprobe(ctx, ['modprobe', s.module]);
    if (!moduleLoaded(ctx.root, s.module)) throw new VfioError('E_MODULE_LOAD', `modprobe ${s.module} succeeded but the module did not appear in /sys/module`, `check \`modprobe -c | grep ${s.module}\` for an install or blacklist rule`, s.module);
    return;
  }
  // Unload dependents first (the order given), then the module itself.
  const order = [...(s.also ?? []), s.module].filter((m) => moduleLoaded(ctx.root, m));
  if (order.length) await modprobe(ctx, ['modprobe', '-r', ...order]);
}

export async function undoModule(ctx: KernelContext, s: ModuleStep, live: ModuleLive): Promise<void> {
  if (s.action === 'load') {
    if (s.keepOnUndo || live.loaded.includes(s.module) || !moduleLoaded(ctx.root, s.module)) return;
    await modprobe(ctx, ['modprobe', '-r', s.module]);
    return;
  }
  // Reload what was loaded, the module first (dependents need it).
  const order = [s.module, ...(s.also ?? [])].filter((m) => live.loaded.includes(m) && !moduleLoaded(ctx.root, m));
  for (const m of order) await modprobe(ctx, ['modprobe', m]);
}

// ── wait ────────────────────────────────────────────────────────────────

/** Whether a wait's condition holds; when not, why, and what a user does about it. */
function conditionHolds(ctx: KernelContext, c: WaitStep['condition']): { ok: boolean; why: string; fix: string } {
  switch (c.type) {
    case 'path-exists':
      return { ok: ctx.root.exists(c.path), why: `${c.path} did not appear`, fix: 'check the kernel log (dmesg) for why, then try again' };
    case 'path-absent':
      return { ok: !ctx.root.exists(c.path), why: `${c.path} is still there`, fix: 'check the kernel log (dmesg) for why, then try again' };
    case 'group-viable': {
      const v = groupViability(ctx.root, c.group);
      return {
        ok: v.viable,
        why: `IOMMU group ${c.group} is not viable: ${v.blockers.length ? `${v.blockers.join(', ')} still on a host driver` : `/dev/vfio/${c.group} did not appear`}`,
        fix: v.blockers.length ? `pass every device of group ${c.group} (vfiokit groups shows them), then try again` : 'check that vfio-pci is loaded (lsmod) and the kernel log (dmesg), then try again',
      };
    }
    case 'no-open-files': {
      const held = openFileHolders(ctx.root, (t) => c.paths.includes(t)).holders;
      const who = [...new Set(held.map((h) => `${h.comm?.trim() || '?'} (pid ${h.pid})`))];
      return {
        ok: held.length === 0,
        why: `still open: ${held.map((h) => `${h.path} by pid ${h.pid} (${h.comm?.trim() ?? '?'})`).join(', ')}`,
        fix: `stop ${who.join(', ')} — a desktop session or compositor, Xorg, a CUDA or monitoring program — then try again`,
      };
    }
  }
}

export async function doWait(ctx: KernelContext, s: WaitStep): Promise<void> {
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const t0 = Date.now();
  for (;;) {
    const c = conditionHolds(ctx, s.condition);
    if (c.ok) return;
    if (Date.now() - t0 >= s.timeoutMs) throw new VfioError('E_WAIT_TIMEOUT', `${s.reason}: gave up after ${(s.timeoutMs / 1000).toFixed(1)} s — ${c.why}`, c.fix);
    await sleep(Math.min(200, s.timeoutMs));
  }
}

// ── domain ──────────────────────────────────────────────────────────────

export interface DomainLive {
  /** File in the transaction directory holding the XML found before (null: not defined). */
  beforeFile: string | null;
}

const virsh = (s: DomainStep, ...args: string[]) => ['virsh', ...(s.connect ? ['-c', s.connect] : []), ...args];

export function domainLive(ctx: KernelContext, s: DomainStep, index: number): DomainLive {
  if (s.before === null) return { beforeFile: null };
  const name = `domain-before-${index}.xml`;
  fs.writeFileSync(`${ctx.txDir}/${name}`, s.before, { mode: 0o600 });
  return { beforeFile: name };
}

async function defineXml(ctx: KernelContext, s: DomainStep, file: string): Promise<void> {
  const argv = virsh(s, 'define', file);
  await ctx.runner.run(argv, { label: formatArgv(argv), timeoutMs: 120_000 });
}

export async function doDomain(ctx: KernelContext, s: DomainStep, index: number): Promise<void> {
  if (s.action === 'define') {
    const file = `${ctx.txDir}/domain-${index}.xml`;
    fs.writeFileSync(file, s.xml ?? '', { mode: 0o600 });
    await defineXml(ctx, s, file);
  } else {
    const argv = virsh(s, 'undefine', '--keep-nvram', s.name);
    await ctx.runner.run(argv, { label: formatArgv(argv), timeoutMs: 120_000 });
  }
}

export async function undoDomain(ctx: KernelContext, s: DomainStep, live: DomainLive): Promise<void> {
  if (live.beforeFile) return defineXml(ctx, s, `${ctx.txDir}/${live.beforeFile}`);
  if (s.action === 'define') {
    // It did not exist before: remove the definition, if there is one (a define that failed, or an undo cut off, left none).
    // The NVRAM file is kept: it may hold an installed guest's boot entries.
    const probe = await ctx.runner.run(virsh(s, 'domuuid', s.name), { label: `virsh domuuid ${s.name}`, timeoutMs: 60_000, nothrow: true });
    if (probe.code !== 0) return;
    const argv = virsh(s, 'undefine', '--keep-nvram', s.name);
    await ctx.runner.run(argv, { label: formatArgv(argv), timeoutMs: 120_000 });
  }
}
