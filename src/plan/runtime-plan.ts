// Runtime binding as plans (pure, over the snapshot): `vfiokit bind` moves
// whole IOMMU groups to vfio-pci now, `vfiokit unbind` gives them back.
//
// bind:   [load vfio-pci] → bind-driver vfio-pci for every endpoint not on it
//         → wait until each group is viable (/dev/vfio/N, no host driver left).
//         The executor journals each device's driver and driver_override
//         before moving it; undo (and unbind) put exactly those back.
// unbind: devices a bind transaction of this boot moved are returned by
//         undoing that transaction (exactly the recorded drivers); devices on
//         vfio-pci that no transaction moved (bound at boot, or by hand) get
//         a plan of their own: the default driver the kernel matches.
// Refusals: a running VM holds the group (/dev/vfio/N open), the boot
// display runs the host console (unless --force), no vfio-pci in this kernel.

import type { Problem } from '../errors.js';
import { shortAddress } from '../model/pci-address.js';
import { emptyPlan, type BindDriverStep, type Plan } from '../model/plan.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { hostCriticalProblems, hostCriticalWarnings } from './guards.js';
import { resolveSelection } from './select.js';

export const VFIO_PCI = 'vfio-pci';
const VIABLE_TIMEOUT_MS = 10_000;

interface RuntimeBindIntent {
  selectors: string[];
  devices: { address: string; vendor: string; device: string; iommuGroup: number | null; driver: string | null }[];
  groups: number[];
}

const nameOf = (d: PciDevice) => d.deviceName ?? `${d.vendor}:${d.device}`;

function inUse(snap: HostSnapshot, groups: number[], warnings: string[]): Problem[] {
  const out: Problem[] = [];
  for (const g of groups) {
    const users = snap.runtime.vfioHolders.filter((h) => h.group === g);
    if (users.length) {
      out.push({
        code: 'E_GROUP_IN_USE',
        subject: `/dev/vfio/${g}`,
        message: `IOMMU group ${g} is open by ${users.map((u) => `pid ${u.pid}${u.comm ? ` (${u.comm})` : ''}`).join(', ')}: a running VM owns its devices`,
        hint: 'shut the VM down first (virsh shutdown <vm>), then try again',
      });
    }
  }
  if (!out.length && snap.runtime.holdersUnreadable) warnings.push(`could not read the open files of ${snap.runtime.holdersUnreadable} process(es) to check that no VM holds ${groups.map((g) => `/dev/vfio/${g}`).join(', ')} (run as root)`);
  return out;
}

export function planBind(snap: HostSnapshot, selectors: string[], opts: { with?: string[]; force?: boolean; allowChipset?: boolean } = {}): Plan {
  const sel = resolveSelection(snap, selectors, { with: opts.with, allowBootVga: true, allowChipset: opts.allowChipset });
  const plan = emptyPlan('runtime-bind', {});
  plan.problems.push(...sel.problems);
  plan.warnings.push(...sel.warnings);
  for (const d of sel.devices) {
    const c = snap.runtime.consoles.find((x) => x.address === d.address);
    if (!c || opts.force) continue;
    plan.problems.push({
      code: 'E_BOOT_VGA',
      subject: d.address,
      message: `${shortAddress(d.address)} is the boot display and drives the host console (${c.why}); taking it away leaves the host without a screen`,
      hint: 'pass a GPU the host does not boot from, or take it knowingly with --force (stop the display manager and release the console first)',
    });
  }
  plan.problems.push(...hostCriticalProblems(snap, sel.devices));
  plan.warnings.push(...hostCriticalWarnings(snap, sel.devices));
  const groups = [...new Set(sel.devices.map((d) => d.iommuGroup).filter((g): g is number => g !== null))].sort((a, b) => a - b);
  plan.problems.push(...inUse(snap, groups, plan.warnings));
  if (!snap.runtime.pciDrivers.includes(VFIO_PCI)) {
    const state = snap.kernel.modules.vfio_pci;
    if (state === 'module' || state === 'unknown') plan.steps.push({ kind: 'module', action: 'load', module: VFIO_PCI, keepOnUndo: true, reason: 'vfio-pci must be loaded to take the devices' });
    else
      plan.problems.push({
        code: 'E_NO_VFIO_PCI',
        subject: VFIO_PCI,
        message: state === 'builtin' ? 'vfio-pci is built into the kernel but /sys/bus/pci/drivers/vfio-pci is missing' : `this kernel (${snap.kernel.release ?? 'unknown'}) has no vfio-pci driver`,
        hint: state === 'builtin' ? 'check that sysfs is mounted and CONFIG_VFIO_PCI is enabled' : 'install the kernel modules package for this kernel (vfio-pci ships with it)',
      });
  }
  const moves: BindDriverStep[] = sel.devices
    .filter((d) => d.driver !== VFIO_PCI)
    .map((d) => ({ kind: 'bind-driver', address: d.address, driver: VFIO_PCI, before: { driver: d.driver, override: d.driverOverride }, reason: `${shortAddress(d.address)} ${nameOf(d)} (group ${d.iommuGroup ?? '-'}) to vfio-pci` }));
  plan.steps.push(...moves);
  if (!moves.length) plan.steps = [];
  else for (const g of groups) plan.steps.push({ kind: 'wait', condition: { type: 'group-viable', group: g }, timeoutMs: VIABLE_TIMEOUT_MS, reason: `IOMMU group ${g} viable (/dev/vfio/${g})` });
  const intent: RuntimeBindIntent = {
    selectors,
    devices: sel.devices.map((d) => ({ address: d.address, vendor: d.vendor, device: d.device, iommuGroup: d.iommuGroup, driver: d.driver })),
    groups,
  };
  plan.intent = intent as unknown as Record<string, unknown>;
  for (const d of sel.devices) plan.summary.push(`${shortAddress(d.address)} ${nameOf(d)} (group ${d.iommuGroup ?? '-'}): ${d.driver === VFIO_PCI ? 'already on vfio-pci' : `${d.driver ?? 'unbound'} → vfio-pci`}`);
  return plan;
}

/** The endpoints unbind considers: the selected devices and every endpoint of their groups. */
export function unbindCandidates(snap: HostSnapshot, selectors: string[]): { devices: PciDevice[]; problems: Problem[]; warnings: string[] } {
  const sel = resolveSelection(snap, selectors, { allowBootVga: true, requireIommu: false });
  // Group isolation is a bind concern: unbind returns whatever of the group is on vfio-pci.
  const problems = sel.problems.filter((p) => p.code !== 'E_GROUP_NOT_ISOLATED' && p.code !== 'E_BOOT_VGA' && p.code !== 'E_FOREIGN_ENDPOINT');
  const addrs = new Set<string>(sel.selected.map((d) => d.address));
  for (const g of sel.groups) for (const m of g.members) if (m.role === 'endpoint') addrs.add(m.address);
  const devices = snap.pci.filter((d) => addrs.has(d.address)).sort((a, b) => (a.address < b.address ? -1 : 1));
  return { devices, problems, warnings: [...sel.warnings] };
}

/**
 * The plan for devices on vfio-pci that no bind transaction of this boot
 * covers: back to the kernel's default match (clear the override, probe).
 */
export function planUnbind(snap: HostSnapshot, selectors: string[], covered: Set<string>): Plan {
  const c = unbindCandidates(snap, selectors);
  const plan = emptyPlan('runtime-unbind', { selectors });
  plan.problems.push(...c.problems);
  plan.warnings.push(...c.warnings);
  const todo = c.devices.filter((d) => !covered.has(d.address) && (d.driver === VFIO_PCI || d.driverOverride === VFIO_PCI));
  for (const d of c.devices) {
    if (!covered.has(d.address) && d.driver !== VFIO_PCI && selectors.some((s) => s === d.address || shortAddress(d.address) === s)) plan.warnings.push(`${shortAddress(d.address)} is not bound to vfio-pci (driver ${d.driver ?? 'none'}); nothing to do for it`);
  }
  const groups = [...new Set(c.devices.filter((d) => todo.includes(d) || covered.has(d.address)).map((d) => d.iommuGroup).filter((g): g is number => g !== null))].sort((a, b) => a - b);
  plan.problems.push(...inUse(snap, groups, plan.warnings));
  for (const d of todo) {
    plan.steps.push({ kind: 'bind-driver', address: d.address, driver: null, before: { driver: d.driver, override: d.driverOverride }, reason: `${shortAddress(d.address)} ${nameOf(d)}: no transaction recorded its driver; back to the kernel's default match` });
    plan.summary.push(`${shortAddress(d.address)} ${nameOf(d)}: vfio-pci → the kernel's default driver (nothing recorded)`);
  }
  return plan;
}

/** Addresses a runtime-bind transaction moved (its done bind-driver steps). */
export function boundBy(steps: { kind: string; state: string; spec?: { kind: string; address?: string } }[]): string[] {
  return steps.filter((s) => s.kind === 'bind-driver' && s.state === 'done' && s.spec?.address).map((s) => s.spec!.address!);
}
