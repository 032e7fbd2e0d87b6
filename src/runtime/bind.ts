// Runtime binding: move whole IOMMU groups to vfio-pci now, and back.
//
// planBind / planUnbind read the host and decide (Step 1, validate everything
// before any change, as virhostdev does); executeBind / executeUnbind carry
// the plan out under the root's lock, record originals before each device
// moves, and on a failure midway move the devices already moved back
// (reverse order) before throwing ApplyError (exit 4, or 5 if that failed).
//
// The kernel's sequence (Documentation/ABI/testing/sysfs-bus-pci; libvirt
// virPCIDeviceBindWithDriverOverride), per device:
//   bind:   driver_override ← "vfio-pci"       (restricts matching; does not unbind)
//           drivers/<cur>/unbind ← BDF          (when bound)
//           drivers_probe ← BDF                 (runs matching, honours the override)
//   unbind: driver_override ← original or "\n" ("\n" clears it)
//           drivers/vfio-pci/unbind ← BDF
//           drivers_probe ← BDF                 (the original / default driver binds)
// Not `new_id`: it grabs every unbound device with that ID (twin GPUs).
// Not `modprobe -r` on rollback: a loaded vfio-pci harms nothing and others may use it.

import { acquireLock, type LockOptions } from '../apply/lock.js';
import type { Runner } from '../apply/runner.js';
import { asRoot } from '../apply/state-dir.js';
import { ApplyError, PreconditionError, VfioError, type Problem, type RollbackReport } from '../errors.js';
import { inspect } from '../host/inspect.js';
import type { HostRoot } from '../host/root.js';
import { pciAttr, pciDriverDir, SYS_PCI_DRIVERS_PROBE } from '../host/sysfs-paths.js';
import { shortAddress } from '../model/pci-address.js';
import type { HostSnapshot } from '../model/snapshot.js';
import { resolveSelection } from '../plan/select.js';
import {
  drivesConsole,
  groupUsers,
  groupViability,
  readLive,
  readRuntimeRecord,
  writeRuntimeRecord,
  type GroupViability,
  type RuntimeRecord,
} from './state.js';
import { describeWriteError, type SysfsWriter } from './sysfs-writer.js';

export const VFIO_PCI = 'vfio-pci';
/** `to.driver` of an unbind with nothing recorded: whatever the kernel matches. */
export const DEFAULT_MATCH = '(kernel default)';

export interface DriverState {
  driver: string | null;
  override: string | null;
}

export interface DeviceMove {
  address: string;
  name: string | null;
  group: number | null;
  from: DriverState;
  to: DriverState;
  /** Already where it should be: nothing to do. */
  skip: boolean;
  /** Unbind: the original came from the runtime record. */
  recorded: boolean;
}

export interface RuntimePlan {
  action: 'bind' | 'unbind';
  devices: DeviceMove[];
  groups: number[];
  /** bind: run `modprobe vfio-pci` first. */
  loadModule: boolean;
  problems: Problem[];
  warnings: string[];
}

export interface RuntimeDeps {
  root: HostRoot | string;
  writer: SysfsWriter;
  runner: Runner;
  clock?: () => Date;
  log?: (line: string) => void;
  lock?: LockOptions;
}

export interface RuntimeResult {
  action: 'bind' | 'unbind';
  devices: (DeviceMove & { after: DriverState; changed: boolean })[];
  groups: GroupViability[];
  loadedModule: boolean;
  warnings: string[];
}

const label = (snap: HostSnapshot, a: string) => {
  const d = snap.pci.find((x) => x.address === a);
  return d ? d.deviceName ?? `${d.vendor}:${d.device}` : null;
};

function inUseProblems(root: HostRoot, groups: number[], warnings: string[]): Problem[] {
  const out: Problem[] = [];
  for (const g of groups) {
    const { users, unreadable } = groupUsers(root, g);
    if (users.length) {
      out.push({
        code: 'E_GROUP_IN_USE',
        subject: `/dev/vfio/${g}`,
        message: `IOMMU group ${g} is open by ${users.map((u) => `pid ${u.pid}${u.comm ? ` (${u.comm})` : ''}`).join(', ')}: a running VM owns its devices`,
        hint: 'shut the VM down first (virsh shutdown <vm>), then try again',
      });
    } else if (unreadable) warnings.push(`could not read the open files of ${unreadable} process(es) to check that no VM holds /dev/vfio/${g} (run as root)`);
  }
  return out;
}

/** Step 1 of bind: what moves, and every reason to refuse. Reads the host; changes nothing. */
export function planBind(rootArg: HostRoot | string, selectors: string[], opts: { with?: string[]; force?: boolean } = {}): RuntimePlan {
  const root = asRoot(rootArg);
  const snap = inspect(root);
  const sel = resolveSelection(snap, selectors, { with: opts.with, allowBootVga: true });
  const problems = [...sel.problems];
  const warnings = [...sel.warnings];
  // Every device that moves (selected, companions and --with), not only the named ones.
  for (const d of sel.devices) {
    if (!d.bootVga || opts.force) continue;
    const c = drivesConsole(root, d.address, d.driver);
    if (c.yes) {
      problems.push({
        code: 'E_BOOT_VGA',
        subject: d.address,
        message: `${shortAddress(d.address)} is the boot display and drives the host console (${c.why}); taking it away leaves the host without a screen`,
        hint: 'pass a GPU the host does not boot from, or take it knowingly with --force (stop the display manager and release the console first)',
      });
    }
  }
  const groups = [...new Set(sel.devices.map((d) => d.iommuGroup).filter((g): g is number => g !== null))].sort((a, b) => a - b);
  problems.push(...inUseProblems(root, groups, warnings));
  let loadModule = false;
  if (!root.exists(pciDriverDir(VFIO_PCI))) {
    const state = snap.kernel.modules.vfio_pci;
    if (state === 'module' || state === 'unknown') loadModule = true;
    else
      problems.push({
        code: 'E_NO_VFIO_PCI',
        subject: 'vfio-pci',
        message: state === 'builtin' ? 'vfio-pci is built into the kernel but /sys/bus/pci/drivers/vfio-pci is missing' : `this kernel (${snap.kernel.release ?? 'unknown'}) has no vfio-pci driver`,
        hint: state === 'builtin' ? 'check that sysfs is mounted and CONFIG_VFIO_PCI is enabled' : 'install the kernel modules package for this kernel (vfio-pci ships with it)',
      });
  }
  const devices: DeviceMove[] = sel.devices.map((d) => {
    const live = readLive(root, d.address);
    return {
      address: d.address,
      name: label(snap, d.address),
      group: d.iommuGroup,
      from: { driver: live.driver, override: live.override },
      to: { driver: VFIO_PCI, override: VFIO_PCI },
      skip: live.driver === VFIO_PCI,
      recorded: false,
    };
  });
  return { action: 'bind', devices, groups, loadModule, problems, warnings };
}

/** Step 1 of unbind: every endpoint of the selected devices' groups that is on vfio-pci or recorded goes back. */
export function planUnbind(rootArg: HostRoot | string, selectors: string[]): RuntimePlan {
  const root = asRoot(rootArg);
  const snap = inspect(root);
  const sel = resolveSelection(snap, selectors, { allowBootVga: true, requireIommu: false });
  // Group isolation is a bind concern: unbind returns whatever of the group is on vfio-pci.
  const problems = sel.problems.filter((p) => p.code !== 'E_GROUP_NOT_ISOLATED' && p.code !== 'E_BOOT_VGA');
  const warnings = [...sel.warnings];
  const rec = readRuntimeRecord(root);
  const addrs = new Set<string>();
  for (const d of sel.selected) addrs.add(d.address);
  for (const g of sel.groups) for (const m of g.members) if (m.role === 'endpoint') addrs.add(m.address);
  const groups = [...new Set([...addrs].map((a) => snap.pci.find((d) => d.address === a)?.iommuGroup).filter((g): g is number => g != null))].sort((a, b) => a - b);
  problems.push(...inUseProblems(root, groups, warnings));
  const devices: DeviceMove[] = [];
  for (const a of [...addrs].sort()) {
    const live = readLive(root, a);
    const r = rec.devices[a];
    if (live.driver !== VFIO_PCI && !r) {
      if (sel.selected.some((d) => d.address === a)) warnings.push(`${shortAddress(a)} is not bound to vfio-pci (driver ${live.driver ?? 'none'}); nothing to do for it`);
      continue;
    }
    const to: DriverState = r ? { driver: r.originalDriver, override: r.originalOverride } : { driver: DEFAULT_MATCH, override: null };
    devices.push({
      address: a,
      name: label(snap, a),
      group: live.group,
      from: { driver: live.driver, override: live.override },
      to,
      skip: Boolean(r) && live.driver === r.originalDriver && live.override === r.originalOverride,
      recorded: Boolean(r),
    });
  }
  return { action: 'unbind', devices, groups, loadModule: false, problems, warnings };
}

class Sysfs {
  constructor(
    readonly root: HostRoot,
    private readonly w: SysfsWriter,
    private readonly log: (l: string) => void,
  ) {}
  write(p: string, v: string): void {
    this.log(`  ${p} ← ${JSON.stringify(v)}`);
    try {
      this.w.write(p, v);
    } catch (e) {
      throw new VfioError('E_SYSFS_WRITE', describeWriteError(p, v, e), undefined, p);
    }
  }
  live(a: string) {
    return readLive(this.root, a);
  }
  /** Move one device to vfio-pci (the three writes). */
  toVfio(a: string): void {
    this.write(pciAttr(a, 'driver_override'), VFIO_PCI);
    const cur = this.live(a).driver;
    if (cur && cur !== VFIO_PCI) this.write(`${pciDriverDir(cur)}/unbind`, a);
    if (this.live(a).driver !== VFIO_PCI) this.write(SYS_PCI_DRIVERS_PROBE, a);
    const now = this.live(a).driver;
    if (now !== VFIO_PCI) throw new VfioError('E_BIND_FAILED', `${a} did not bind to vfio-pci (driver now ${now ?? 'none'})`, 'check dmesg for vfio-pci errors');
  }
  /** Put a device back to `want` (DEFAULT_MATCH: whatever the kernel matches). */
  restore(a: string, want: DriverState): void {
    this.write(pciAttr(a, 'driver_override'), want.override ?? '\n');
    let cur = this.live(a).driver;
    if (cur && cur !== want.driver) {
      this.write(`${pciDriverDir(cur)}/unbind`, a);
      cur = null;
    }
    if (want.driver === null) return;
    if (!cur) this.write(SYS_PCI_DRIVERS_PROBE, a);
    if (want.driver === DEFAULT_MATCH) return;
    cur = this.live(a).driver;
    if (cur === want.driver) return;
    // The default match picked another driver (the original was bound by hand):
    // pin the original with a temporary override, probe, then restore the override.
    if (!this.root.exists(pciDriverDir(want.driver))) throw new VfioError('E_RESTORE_FAILED', `${a} cannot go back to ${want.driver}: that driver is not loaded (now ${cur ?? 'unbound'})`, `load it (modprobe ${want.driver}) and run \`vfiokit unbind ${a}\` again`);
    this.write(pciAttr(a, 'driver_override'), want.driver);
    if (cur) this.write(`${pciDriverDir(cur)}/unbind`, a);
    this.write(SYS_PCI_DRIVERS_PROBE, a);
    this.write(pciAttr(a, 'driver_override'), want.override ?? '\n');
    cur = this.live(a).driver;
    if (cur !== want.driver) throw new VfioError('E_RESTORE_FAILED', `${a} did not go back to ${want.driver} (driver now ${cur ?? 'none'})`, 'check dmesg for the driver\'s probe error');
  }
}

function refuse(plan: RuntimePlan): never {
  throw new PreconditionError(
    plan.problems.length === 1 ? plan.problems[0].code : `E_${plan.action.toUpperCase()}_REFUSED`,
    `${plan.action} refused (${plan.problems.length} problem${plan.problems.length > 1 ? 's' : ''}); nothing was changed`,
    undefined,
    plan.problems[0].subject,
    plan.problems,
  );
}

function result(root: HostRoot, plan: RuntimePlan, loadedModule: boolean): RuntimeResult {
  return {
    action: plan.action,
    devices: plan.devices.map((d) => {
      const l = readLive(root, d.address);
      return { ...d, after: { driver: l.driver, override: l.override }, changed: !d.skip };
    }),
    groups: plan.groups.map((g) => groupViability(root, g)),
    loadedModule,
    warnings: plan.warnings,
  };
}

export async function executeBind(plan: RuntimePlan, deps: RuntimeDeps): Promise<RuntimeResult> {
  const root = asRoot(deps.root);
  const log = deps.log ?? (() => {});
  const now = () => (deps.clock ?? (() => new Date()))().toISOString();
  if (plan.problems.length) refuse(plan);
  const lock = acquireLock(root, { onStale: log, ...deps.lock });
  try {
    // Re-check under the lock: a VM may have started since planning.
    const late = inUseProblems(root, plan.groups, []);
    if (late.length) refuse({ ...plan, problems: late });
    const sys = new Sysfs(root, deps.writer, log);
    let loadedModule = false;
    if (plan.loadModule && !root.exists(pciDriverDir(VFIO_PCI))) {
      await deps.runner.run(['modprobe', VFIO_PCI], { label: `modprobe ${VFIO_PCI}`, timeoutMs: 60_000 });
      loadedModule = true;
      if (!root.exists(pciDriverDir(VFIO_PCI))) throw new PreconditionError('E_NO_VFIO_PCI', `modprobe ${VFIO_PCI} succeeded but /sys/bus/pci/drivers/vfio-pci did not appear; nothing was changed`, 'check `modprobe -c | grep vfio` for an install/blacklist rule');
    }
    const rec: RuntimeRecord = readRuntimeRecord(root);
    const moved: string[] = [];
    let failure: unknown = null;
    let failedAt = '';
    try {
      for (const d of plan.devices) {
        if (d.skip) continue;
        failedAt = d.address;
        const live = sys.live(d.address);
        // Record the original before the first write (a rollback or `unbind` reads it back).
        if (!rec.devices[d.address]) rec.devices[d.address] = { originalDriver: live.driver, originalOverride: live.override, group: d.group, boundAt: now(), pending: true };
        writeRuntimeRecord(root, rec);
        moved.push(d.address);
        sys.toVfio(d.address);
        rec.devices[d.address].pending = false;
        writeRuntimeRecord(root, rec);
        log(`  ${d.address}: ${live.driver ?? 'unbound'} → vfio-pci`);
      }
      failedAt = 'verification';
      for (const g of plan.groups) {
        const v = groupViability(root, g);
        if (!v.viable) throw new VfioError('E_GROUP_NOT_VIABLE', `IOMMU group ${g} is not viable after binding: ${v.blockers.length ? `${v.blockers.join(', ')} still on a host driver` : `/dev/vfio/${g} did not appear`}`);
      }
    } catch (e) {
      failure = e;
    }
    if (failure) {
      const rep: RollbackReport = { restored: [], reran: [], failures: [] };
      for (const a of [...moved].reverse()) {
        const r = rec.devices[a];
        try {
          sys.restore(a, { driver: r.originalDriver, override: r.originalOverride });
          delete rec.devices[a];
          rep.restored.push(`${a} (${r.originalDriver ?? 'unbound'})`);
        } catch (e) {
          rep.failures.push(`${a}: ${(e as Error).message}`);
        }
      }
      writeRuntimeRecord(root, rec);
      throw runtimeFailure('bind', failedAt, failure, rep, '', [`record: ${RUNTIME_RECORD_NOTE}`], 'the devices listed as INCOMPLETE keep their original driver in /var/lib/vfiokit/runtime.json; fix the cause and run `vfiokit unbind` for them');
    }
    return result(root, plan, loadedModule);
  } finally {
    lock.release();
  }
}

const RUNTIME_RECORD_NOTE = '/var/lib/vfiokit/runtime.json';

/** The error for a bind/unbind that failed midway: what failed, what the rollback returned, the fix. */
function runtimeFailure(action: 'bind' | 'unbind', failedAt: string, failure: unknown, rep: RollbackReport, returnedTo: string, extra: string[], incompleteHint: string): ApplyError {
  return new ApplyError(
    [
      `${action} failed at ${failedAt}: ${(failure as Error).message ?? String(failure)}`,
      `rollback: ${rep.restored.length ? `returned ${rep.restored.join(', ')}${returnedTo}` : 'no device had been moved'}${rep.failures.length ? `; INCOMPLETE: ${rep.failures.join('; ')}` : ''}`,
      ...extra,
    ].join('\n'),
    null,
    failedAt,
    rep,
    failure,
    rep.failures.length ? incompleteHint : 'nothing remains changed; fix the cause above and try again',
  );
}

export async function executeUnbind(plan: RuntimePlan, deps: RuntimeDeps): Promise<RuntimeResult> {
  const root = asRoot(deps.root);
  const log = deps.log ?? (() => {});
  if (plan.problems.length) refuse(plan);
  const lock = acquireLock(root, { onStale: log, ...deps.lock });
  try {
    const late = inUseProblems(root, plan.groups, []);
    if (late.length) refuse({ ...plan, problems: late });
    const sys = new Sysfs(root, deps.writer, log);
    const rec = readRuntimeRecord(root);
    const moved: { address: string; entry: RuntimeRecord['devices'][string] | undefined }[] = [];
    let failure: unknown = null;
    let failedAt = '';
    try {
      for (const d of plan.devices) {
        failedAt = d.address;
        if (d.skip) {
          delete rec.devices[d.address];
          writeRuntimeRecord(root, rec);
          continue;
        }
        moved.push({ address: d.address, entry: rec.devices[d.address] });
        sys.restore(d.address, d.to);
        delete rec.devices[d.address];
        writeRuntimeRecord(root, rec);
        const now = sys.live(d.address).driver;
        if (now === VFIO_PCI) plan.warnings.push(`${shortAddress(d.address)} went straight back to vfio-pci: a boot-time vfio-pci ids= setting claims it`);
        log(`  ${d.address}: vfio-pci → ${now ?? 'unbound'}`);
      }
    } catch (e) {
      failure = e;
    }
    if (failure) {
      // Put the devices already returned back on vfio-pci (reverse order), with their records.
      const rep: RollbackReport = { restored: [], reran: [], failures: [] };
      for (const m of [...moved].reverse()) {
        try {
          const live = sys.live(m.address);
          if (live.driver !== VFIO_PCI) sys.toVfio(m.address);
          if (m.entry) rec.devices[m.address] = m.entry;
          rep.restored.push(`${m.address} (vfio-pci)`);
        } catch (e) {
          rep.failures.push(`${m.address}: ${(e as Error).message}`);
        }
      }
      writeRuntimeRecord(root, rec);
      throw runtimeFailure('unbind', failedAt, failure, rep, ' to vfio-pci', [], 'check the devices listed as INCOMPLETE with `vfiokit groups`');
    }
    return result(root, plan, false);
  } finally {
    lock.release();
  }
}
