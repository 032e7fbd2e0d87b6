// Single-GPU handoff as plans (pure): `prepare` frees the domain's hostdev
// groups from the host and moves every function to vfio-pci; `release` is the
// exact reverse, built from what prepare recorded (its intent, kept in the
// journal), and then the display is verified (src/analysis/handoff-verify.ts).
//
// prepare (--single-gpu), after the reference sequence (libvirt docs/hooks.rst,
// kernel Documentation/fb/fbcon.rst, drivers/firmware/sysfb.c):
//   1. stop the display manager (systemctl stop; undo starts it)
//   2. wait until no process holds the GPU's /dev/dri/* or /dev/nvidia*
//   3. unbind the framebuffer consoles that can be unbound (fbcon; never "(S)")
//   4. release the firmware framebuffer platform device when a driver holds it
//   5. unload the GPU driver's modules, dependants first (NVIDIA's four), or
//      unbind amdgpu/i915/nouveau functions with the bind below
//   6. every function of every hostdev group → vfio-pci
// release: 6⁻¹ functions back (drivers whose module was unloaded: override
// cleared, reprobed by the module load), 5⁻¹ modules loaded, 3⁻¹ consoles
// bound, 1⁻¹ display manager started. The firmware framebuffer is not rebound:
// the native driver's fbdev emulation replaces it (rebinding efifb onto a mode
// the native driver changed gives a garbled console).

import type { Problem } from '../errors.js';
import { DEV_DRI, platformUnbind, vtconsoleAttr } from '../model/display-paths.js';
import { shortAddress } from '../model/pci-address.js';
import { emptyPlan, type BindDriverStep, type ModuleStep, type Plan, type Step } from '../model/plan.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { hostCriticalWarnings, storageMountProblems } from './guards.js';
import { resolveSelection } from './select.js';

export const VFIO_PCI = 'vfio-pci';
const DEFAULT_HOLDER_TIMEOUT_MS = 10_000;

export interface HandoffIntent {
  domain: string;
  /** PCI host addresses of the domain's <hostdev type='pci'>s. */
  hostdevs: string[];
  singleGpu: boolean;
  /** How long to wait for processes to close the GPU's device nodes. */
  holderTimeoutMs?: number;
}

/** What prepare did, recorded as the transaction's intent; release is built from it. */
export interface HandoffRecord {
  domain: string;
  singleGpu: boolean;
  devices: { address: string; driver: string | null; override: string | null; module: string | null }[];
  groups: number[];
  displayManager: string | null;
  vtconsoles: string[];
  platformFramebuffers: { device: string; driver: string }[];
  /** Modules unloaded, in unload order (each with the dependants it took along). */
  modules: { module: string; also: string[] }[];
  /** DRM cards and connectors of the devices before prepare (what verification expects back). */
  drm: { device: string; connectors: string[] }[];
}

interface HandoffPlan extends Plan {
  record: HandoffRecord;
}

/** The proprietary NVIDIA stack, dependants first (nvidia_drm → nvidia_modeset → nvidia; nvidia_uvm → nvidia). */
const NVIDIA_UNLOAD_ORDER = ['nvidia_drm', 'nvidia_uvm', 'nvidia_modeset', 'nvidia'];
/** Loaded again on release: nvidia_drm pulls nvidia_modeset and nvidia; nvidia_uvm is separate. */
const NVIDIA_RELOAD = ['nvidia_drm', 'nvidia_uvm'];
/** DRM drivers that are unbound (not unloaded) by default: unloading takes other GPUs and the drm core along. */
const UNBIND_ONLY = new Set(['amdgpu', 'radeon', 'i915', 'xe', 'nouveau']);

const isDisplay = (d: PciDevice) => d.class.startsWith('03');

function problem(code: string, subject: string, message: string, hint: string): Problem {
  return { code, subject, message, hint };
}

export function planHandoffPrepare(snap: HostSnapshot, intent: HandoffIntent): HandoffPlan {
  const plan = emptyPlan('handoff-prepare', intent as unknown as Record<string, unknown>) as HandoffPlan;
  const record: HandoffRecord = { domain: intent.domain, singleGpu: intent.singleGpu, devices: [], groups: [], displayManager: null, vtconsoles: [], platformFramebuffers: [], modules: [], drm: [] };
  plan.record = record;
  if (!intent.hostdevs.length) {
    plan.problems.push(problem('E_NO_HOSTDEVS', intent.domain, `domain ${intent.domain} has no PCI <hostdev>: there is nothing to hand over`, `add a device with \`vfiokit vm attach ${intent.domain} --device ADDR\`, or remove the hook with \`vfiokit hooks remove ${intent.domain}\``));
    return plan;
  }
  const byAddr = new Map(snap.pci.map((d) => [d.address, d]));
  for (const a of intent.hostdevs) {
    if (!byAddr.has(a)) plan.problems.push(problem('E_HOSTDEV_MISSING', a, `domain ${intent.domain} passes through ${a}, but this host has no such PCI device (moved or removed hardware)`, `check \`vfiokit groups\` and fix the domain's <hostdev> (virsh edit ${intent.domain})`));
  }
  if (plan.problems.length) return plan;
  // Every hostdev's whole group; the domain's other hostdevs count as taken knowingly.
  const sel = resolveSelection(snap, intent.hostdevs, { with: intent.hostdevs, allowBootVga: intent.singleGpu });
  plan.problems.push(...sel.problems);
  plan.warnings.push(...sel.warnings);
  for (const d of sel.devices) {
    if (snap.boot.rootStorage.includes(d.address)) plan.problems.push(problem('E_HOSTDEV_ROOT_DISK', d.address, `${shortAddress(d.address)} (group ${d.iommuGroup}) holds the root filesystem's disk: handing it to ${intent.domain} would stop the host`, 'pass through another controller, or move the card to a slot with its own IOMMU group'));
    if (snap.boot.defaultRouteNics.includes(d.address)) plan.problems.push(problem('E_HOSTDEV_DEFAULT_NIC', d.address, `${shortAddress(d.address)} (group ${d.iommuGroup}) carries the default route: the host would lose its network`, 'pass through another NIC, or give the host a second network path first'));
  }
  plan.problems.push(...storageMountProblems(snap, sel.devices, 'now'));
  plan.warnings.push(...hostCriticalWarnings(snap, sel.devices));
  const gpus = sel.devices.filter(isDisplay);
  const bootGpuOnHost = gpus.some((g) => g.bootVga) || gpus.some((g) => snap.display.drm.some((c) => c.device === g.address));
  if (!intent.singleGpu && gpus.some((g) => g.bootVga && g.driver && g.driver !== VFIO_PCI)) {
    plan.problems.push(problem('E_HOST_DISPLAY_GPU', gpus.find((g) => g.bootVga)!.address, `${shortAddress(gpus.find((g) => g.bootVga)!.address)} is the host's display and the hook is not a single-GPU one`, `reinstall with \`vfiokit hooks install ${intent.domain} --single-gpu\` so the desktop lets go of it first`));
  }
  for (const h of snap.runtime.vfioHolders) {
    if (sel.devices.some((d) => d.iommuGroup === h.group)) plan.problems.push(problem('E_GROUP_IN_USE', `/dev/vfio/${h.group}`, `IOMMU group ${h.group} is open by pid ${h.pid}${h.comm ? ` (${h.comm})` : ''}: another VM owns it`, 'shut that VM down first'));
  }
  if (plan.problems.length) return plan;
  record.groups = [...new Set(sel.devices.map((d) => d.iommuGroup).filter((g): g is number => g !== null))].sort((a, b) => a - b);
  plan.summary.push(`domain ${intent.domain}: ${sel.devices.map((d) => shortAddress(d.address)).join(', ')} (group${record.groups.length > 1 ? 's' : ''} ${record.groups.join(', ')}) to vfio-pci`);

  const steps: Step[] = [];
  const unloaded = new Set<string>();
  if (intent.singleGpu && bootGpuOnHost) {
    const dm = snap.display.displayManager;
    if (dm && dm.active !== false) {
      record.displayManager = dm.unit;
      steps.push({ kind: 'run-command', argv: ['systemctl', 'stop', dm.unit], undoArgv: ['systemctl', 'start', dm.unit], volatile: true, regenerate: false, label: `systemctl stop ${dm.unit}`, timeoutMs: 30_000, reason: 'the display manager lets go of the GPU' });
    } else if (!dm) {
      plan.warnings.push('no display manager is enabled (display-manager.service): a desktop started by hand (startx, a compositor on a TTY) must be closed before the VM starts');
    }
    // The GPU's device nodes, and whatever display node a process holds now.
    const cards = snap.display.drm.filter((c) => c.device && gpus.some((g) => g.address === c.device));
    const nodes = [...new Set([
      ...cards.flatMap((c) => [`${DEV_DRI}/${c.id}`, ...(c.render ? [`${DEV_DRI}/${c.render}`] : [])]),
      ...(gpus.some((g) => g.vendor === '10de') ? snap.display.nvidiaNodes : []),
      ...(snap.display.holders ?? []).filter((h) => cards.some((c) => h.path === `${DEV_DRI}/${c.id}` || h.path === `${DEV_DRI}/${c.render}`) || h.path.startsWith('/dev/nvidia')).map((h) => h.path),
    ])].sort();
    steps.push({ kind: 'wait', condition: { type: 'no-open-files', paths: nodes }, timeoutMs: intent.holderTimeoutMs ?? DEFAULT_HOLDER_TIMEOUT_MS, reason: 'every process using the GPU (compositor, Xorg, CUDA, persistenced) has exited' });
    for (const v of snap.display.vtconsoles) {
      if (!v.bound) continue;
      if (!v.unbindable) {
        plan.summary.push(`console ${v.id} (${v.name}) is a system console and stays bound`);
        continue;
      }
      record.vtconsoles.push(v.id);
      steps.push({ kind: 'write-attr', path: vtconsoleAttr(v.id, 'bind'), value: '0', before: '1', restore: { value: '1' }, expect: '0', reason: `unbind the framebuffer console ${v.id} (${v.name})` });
    }
    for (const f of snap.display.platformFramebuffers) {
      if (!f.driver) continue;
      record.platformFramebuffers.push({ device: f.device, driver: f.driver });
      steps.push({ kind: 'write-attr', path: platformUnbind(f.driver), value: f.device, before: null, restore: null, reason: `release the firmware framebuffer ${f.device} (driver ${f.driver}); the native driver's own framebuffer replaces it on release` });
    }
    // NVIDIA proprietary: unload the stack in dependency order.
    const loaded = new Map(snap.display.modules.map((m) => [m.name, m]));
    if (gpus.some((g) => g.driver === 'nvidia')) {
      const present = NVIDIA_UNLOAD_ORDER.filter((m) => loaded.has(m));
      if (present.length) {
        // modprobe -r takes `also` first, in order, then the module: the base module (nvidia) is the step's module.
        const order = [...(loaded.has('i2c_nvidia_gpu') ? ['i2c_nvidia_gpu'] : []), ...present];
        const base = order[order.length - 1];
        const also = order.slice(0, -1);
        for (const m of order) unloaded.add(m);
        record.modules.push({ module: base, also });
        steps.push({ kind: 'module', action: 'unload', module: base, also, reason: `unload the NVIDIA driver (${order.join(', ')}), dependants first` });
      }
    }
    for (const g of gpus) {
      const conns = snap.display.drm.filter((c) => c.device === g.address);
      record.drm.push({ device: g.address, connectors: conns.flatMap((c) => c.connectors.map((x) => x.name)) });
    }
    plan.summary.push(record.displayManager ? `display manager ${record.displayManager} is stopped and started again on release` : 'no display manager to stop');
  }
  // Functions to vfio-pci (amdgpu/i915/nouveau and companions are unbound here).
  if (!snap.runtime.pciDrivers.includes(VFIO_PCI)) steps.push({ kind: 'module', action: 'load', module: VFIO_PCI, keepOnUndo: true, reason: 'vfio-pci must be loaded to take the functions' });
  for (const d of sel.devices) {
    record.devices.push({ address: d.address, driver: d.driver, override: d.driverOverride, module: d.driverModule ?? d.driver });
    if (d.driver === VFIO_PCI && d.driverOverride === VFIO_PCI) continue;
    if (d.driver && unloaded.has(d.driver)) {
      // Its module is gone: the function is unbound now; only vfio-pci remains to bind.
    } else if (d.driver && UNBIND_ONLY.has(d.driver) && intent.singleGpu) {
      plan.summary.push(`${shortAddress(d.address)}: ${d.driver} is unbound from this function (the module stays loaded for other devices)`);
    }
    const step: BindDriverStep = { kind: 'bind-driver', address: d.address, driver: VFIO_PCI, before: { driver: d.driver, override: d.driverOverride }, reason: `${shortAddress(d.address)} (${d.deviceName ?? `${d.vendor}:${d.device}`}) ${d.driver ?? 'unbound'} → vfio-pci` };
    steps.push(step);
  }
  steps.push(...record.groups.map((g): Step => ({ kind: 'wait', condition: { type: 'group-viable', group: g }, timeoutMs: 5_000, reason: `IOMMU group ${g} is viable (/dev/vfio/${g})` })));
  plan.steps = steps;
  plan.intent = { ...(intent as unknown as Record<string, unknown>), record };
  return plan;
}

/**
 * release: the exact reverse of what prepare recorded. Every step is tried
 * even when an earlier one fails (the executor runs this plan best-effort).
 */
export function planHandoffRelease(snap: HostSnapshot, record: HandoffRecord): HandoffPlan {
  const plan = emptyPlan('handoff-release', { domain: record.domain, record }) as HandoffPlan;
  plan.record = record;
  const byAddr = new Map(snap.pci.map((d) => [d.address, d]));
  const unloaded = new Set(record.modules.flatMap((m) => [m.module, ...m.also]));
  const steps: Step[] = [];
  for (const r of record.devices) {
    const now = byAddr.get(r.address);
    if (!now) {
      plan.warnings.push(`${r.address} is no longer on the PCI bus (removed, or fell off the bus): it cannot be given back — \`echo 1 > /sys/bus/pci/rescan\` may bring it back`);
      continue;
    }
    // A function no longer held for vfio-pci is the host's already (a recovered prepare, libvirt's managed re-attach): leave it.
    if (now.driver !== VFIO_PCI && now.driverOverride !== VFIO_PCI) continue;
    // A driver whose module prepare unloaded comes back with the module load: clear the override and leave it unbound.
    const back = r.driver && !unloaded.has(r.driver) && r.driver !== VFIO_PCI ? r.driver : null;
    if (now.driver === back && (now.driverOverride ?? null) === (r.override ?? null)) continue;
    steps.push({ kind: 'bind-driver', address: r.address, driver: back, before: { driver: now.driver, override: now.driverOverride }, reason: `${shortAddress(r.address)} vfio-pci → ${back ?? (r.driver ? `${r.driver} (loaded below)` : "the kernel's default driver")}` });
  }
  const loadedNow = new Set(snap.display.modules.map((m) => m.name));
  for (const m of [...record.modules].reverse()) {
    const set = [m.module, ...m.also];
    const nvidia = set.filter((x) => NVIDIA_RELOAD.includes(x));
    const toLoad = set.includes('nvidia') ? [...(nvidia.length ? nvidia : ['nvidia']), ...set.filter((x) => x === 'i2c_nvidia_gpu')] : [m.module];
    for (const mod of toLoad) {
      if (loadedNow.has(mod)) continue;
      const s: ModuleStep = { kind: 'module', action: 'load', module: mod, reason: `load ${mod} again (probes the functions given back)` };
      steps.push(s);
    }
  }
  for (const id of [...record.vtconsoles].reverse()) steps.push({ kind: 'write-attr', path: vtconsoleAttr(id, 'bind'), value: '1', before: '0', restore: null, expect: '1', reason: `bind the framebuffer console ${id} again` });
  if (record.displayManager) steps.push({ kind: 'run-command', argv: ['systemctl', 'start', record.displayManager], volatile: true, regenerate: false, label: `systemctl start ${record.displayManager}`, timeoutMs: 60_000, reason: 'the display manager takes the GPU again' });
  plan.steps = steps;
  plan.summary.push(`domain ${record.domain}: give back ${record.devices.map((d) => `${shortAddress(d.address)} → ${d.driver ?? 'default'}`).join(', ')}`);
  return plan;
}

/** The record a release needs when prepare's record is lost (a hook killed before its journal, a release after a reboot): inferred from the domain's hostdevs. */
export function inferHandoffRecord(snap: HostSnapshot, intent: HandoffIntent): HandoffRecord {
  const byAddr = new Map(snap.pci.map((d) => [d.address, d]));
  const groups = new Set(intent.hostdevs.map((a) => byAddr.get(a)?.iommuGroup).filter((g): g is number => g !== null && g !== undefined));
  const devices = snap.pci.filter((d) => d.iommuGroup !== null && groups.has(d.iommuGroup) && !d.isBridge);
  return {
    domain: intent.domain,
    singleGpu: intent.singleGpu,
    devices: devices.map((d) => ({ address: d.address, driver: null, override: null, module: null })),
    groups: [...groups].sort((a, b) => a - b),
    displayManager: intent.singleGpu && snap.display.displayManager && snap.display.displayManager.active === false ? snap.display.displayManager.unit : null,
    vtconsoles: intent.singleGpu ? snap.display.vtconsoles.filter((v) => v.unbindable && !v.bound).map((v) => v.id) : [],
    platformFramebuffers: [],
    modules: [],
    drm: [],
  };
}
