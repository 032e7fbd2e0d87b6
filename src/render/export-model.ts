// What the fleet exports (KubeVirt, Nova, Proxmox) are made from: per node,
// the selected devices resolved by src/plan/select.ts to their whole IOMMU
// group and companion functions (audio, USB-C, UCSI), grouped into device
// models (vendor:device) with resource names. Pure: snapshots in, data out.
// A node whose selection fails is reported with its problems and left out;
// the other nodes are still exported.

import { UsageError, type Problem } from '../errors.js';
import { shortAddress, slotOf } from '../model/pci-address.js';
import type { Plan } from '../model/plan.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { assembleBootPlan } from '../plan/boot-plan.js';
import { resolveSelection } from '../plan/select.js';

/** A node's snapshot, or why its root could not be read (the node is then skipped with that reason). */
export type ExportNodeInput = { name: string; snapshot: HostSnapshot } | { name: string; unreadable: Problem };

interface ExportOptions {
  selectors: string[];
  with?: string[];
  allowBootVga?: boolean;
  /** Resource names for the primary device models, in model order (vendor:device ascending). */
  resourceNames?: string[];
}

type PciDeviceType = 'type-PCI' | 'type-PF' | 'type-VF';

/** One vendor:device model across the nodes. */
export interface DeviceModel {
  vendor: string;
  device: string;
  /** Class (6 hex digits) of the first function seen. */
  class: string;
  name: string | null;
  /** Kubernetes extended resource name (`vendor.com/NAME`). */
  resourceName: string;
  /** Short lowercase identifier (Nova alias, Proxmox mapping ID). */
  slug: string;
  /** primary: a device the user selected; companion: another function taken with it. */
  role: 'primary' | 'companion';
  deviceType: PciDeviceType;
  /** Primary model this companion belongs to (vendor:device), null for primaries. */
  companionOf: string | null;
}

/** One selected device on one node with the functions that go with it. */
interface NodeDevice {
  primary: PciDevice;
  /** Every function that moves with it: the primary first, then companions by address. */
  functions: PciDevice[];
  iommuGroup: number | null;
  /** Endpoints taken with --with outside the primary's slot. */
  extra: PciDevice[];
}

interface ExportNode {
  name: string;
  ok: boolean;
  devices: NodeDevice[];
  problems: Problem[];
  warnings: string[];
  /** The boot plan that prepares the node (vfio-pci from boot); empty steps when already prepared. */
  bootPlan: Plan | null;
}

export interface FleetExport {
  models: DeviceModel[];
  nodes: ExportNode[];
  warnings: string[];
}

const VENDOR_DOMAIN: Record<string, string> = { '10de': 'nvidia.com', '1002': 'amd.com', '8086': 'intel.com', '15b3': 'mellanox.com', '144d': 'samsung.com' };
const COMPANION_SUFFIX: Record<string, string> = { '0403': 'Audio', '0c03': 'USB', '0c80': 'UCSI', '0c05': 'SMBus' };

/** Kubernetes extended resource name: `domain/name`, domain a DNS subdomain outside kubernetes.io, name a qualified-name part. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Why `name` is not a valid Kubernetes extended resource name, or null when it is. */
export function extendedResourceNameProblem(name: string): string | null {
  const slash = name.indexOf('/');
  if (slash < 0 || name.indexOf('/', slash + 1) >= 0) return 'it must be DOMAIN/NAME with exactly one /';
  const domain = name.slice(0, slash);
  const part = name.slice(slash + 1);
  if (!domain.length || domain.length > 253 || !domain.split('.').every((l) => l.length <= 63 && DNS_LABEL.test(l))) return `'${domain}' is not a lowercase DNS subdomain`;
  if (domain === 'kubernetes.io' || domain.endsWith('.kubernetes.io')) return 'the kubernetes.io domain is reserved for Kubernetes itself';
  if (domain.startsWith('requests.')) return "names starting with 'requests.' are reserved for quotas";
  if (!part.length || part.length > 63 || !NAME_PART.test(part)) return `'${part}' must be 1–63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit`;
  return null;
}

function namePart(text: string): string {
  const bracket = /\[([^\]]+)\]/.exec(text);
  const s = (bracket ? `${text.slice(0, bracket.index).trim()} ${bracket[1]}` : text).replace(/[^A-Za-z0-9._-]+/g, '_').replace(/_+/g, '_');
  return s.slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

function defaultResourceName(d: PciDevice): string {
  const domain = VENDOR_DOMAIN[d.vendor] ?? 'vfiokit.io';
  const part = (d.deviceName && namePart(d.deviceName)) || `${d.vendor}_${d.device}`.toUpperCase();
  return `${domain}/${part}`;
}

const slugOf = (resourceName: string) =>
  resourceName.slice(resourceName.indexOf('/') + 1).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').replace(/^(?![a-z])/, 'd').slice(0, 40) || 'device';

function deviceType(d: PciDevice): PciDeviceType {
  if (d.physfn) return 'type-VF';
  if (d.sriov && d.sriov.totalVfs > 0) return 'type-PF';
  return 'type-PCI';
}

const idOf = (d: { vendor: string; device: string }) => `${d.vendor}:${d.device}`;

export function buildFleetExport(inputs: ExportNodeInput[], opts: ExportOptions): FleetExport {
  for (const n of opts.resourceNames ?? []) {
    const why = extendedResourceNameProblem(n);
    if (why) throw new UsageError(`--resource-name '${n}' is not a valid Kubernetes extended resource name: ${why}`, 'use a name like nvidia.com/TU104GL_Tesla_T4 or example.com/gpu (a domain you own, outside kubernetes.io)', 'E_BAD_RESOURCE_NAME');
  }
  const names = new Set<string>();
  for (const i of inputs) {
    if (names.has(i.name)) throw new UsageError(`node name '${i.name}' is given twice`, 'give every --node a distinct name', 'E_DUPLICATE_NODE');
    names.add(i.name);
  }
  const warnings: string[] = [];
  const nodes: ExportNode[] = inputs.map((input) => exportNode(input, opts));

  // Models: primaries first (vendor:device ascending), then their companions.
  const primaries = new Map<string, PciDevice>();
  for (const n of nodes) for (const d of n.devices) if (!primaries.has(idOf(d.primary))) primaries.set(idOf(d.primary), d.primary);
  const models: DeviceModel[] = [];
  const byId = new Map<string, DeviceModel>();
  const resourceNames = opts.resourceNames ?? [];
  const primaryIds = [...primaries.keys()].sort();
  if (resourceNames.length > primaryIds.length)
    throw new UsageError(`${resourceNames.length} --resource-name given for ${primaryIds.length} device model(s) (${primaryIds.join(', ') || 'none'})`, 'give one --resource-name per selected device model, in vendor:device order', 'E_BAD_RESOURCE_NAME');
  primaryIds.forEach((id, i) => {
    const d = primaries.get(id)!;
    const resourceName = resourceNames[i] ?? defaultResourceName(d);
    const m: DeviceModel = { vendor: d.vendor, device: d.device, class: d.class, name: d.deviceName, resourceName, slug: slugOf(resourceName), role: 'primary', deviceType: deviceType(d), companionOf: null };
    models.push(m);
    byId.set(id, m);
  });
  for (const pid of primaryIds) {
    const pm = byId.get(pid)!;
    for (const n of nodes)
      for (const nd of n.devices) {
        if (idOf(nd.primary) !== pid) continue;
        for (const f of nd.functions) {
          const fid = idOf(f);
          const existing = byId.get(fid);
          if (existing) {
            if (existing.role === 'companion' && existing.companionOf !== pid && !warnings.some((w) => w.includes(`${fid} is a companion of`)))
              warnings.push(`${fid} is a companion of both ${existing.companionOf} and ${pid}: one resource (${existing.resourceName}) serves both, so a VM asking for one model's companions may get the other card's function`);
            continue;
          }
          const suffix = COMPANION_SUFFIX[f.class.slice(0, 4)] ?? `Fn${f.address.slice(-1)}`;
          const base = pm.resourceName.slice(pm.resourceName.indexOf('/') + 1);
          const rn = `${pm.resourceName.slice(0, pm.resourceName.indexOf('/'))}/${namePart(`${base.slice(0, 62 - suffix.length)}_${suffix}`)}`;
          const m: DeviceModel = { vendor: f.vendor, device: f.device, class: f.class, name: f.deviceName, resourceName: rn, slug: slugOf(rn), role: 'companion', deviceType: deviceType(f), companionOf: pid };
          models.push(m);
          byId.set(fid, m);
        }
      }
  }
  const slugs = new Set<string>();
  for (const m of models) {
    let s = m.slug;
    for (let k = 2; slugs.has(s); k++) s = `${m.slug}-${k}`;
    m.slug = s;
    slugs.add(s);
  }

  // Nothing silent: where companions cannot be requested together, say so.
  for (const n of nodes) {
    const count = new Map<string, number>();
    for (const d of n.devices) count.set(idOf(d.primary), (count.get(idOf(d.primary)) ?? 0) + 1);
    for (const [id, c] of count) {
      const comps = models.filter((m) => m.companionOf === id);
      if (c > 1 && comps.length)
        warnings.push(`node ${n.name} carries ${c} devices of ${id}: schedulers allocate ${byId.get(id)!.resourceName} and ${comps.map((m) => m.resourceName).join(', ')} independently, so a VM may receive the GPU of one card and the companions of another; keep one card of a model per node, or request them only together with a device plugin that allocates whole IOMMU groups`);
    }
    for (const d of n.devices) {
      const moving = new Set(d.functions.map((f) => f.address));
      for (const f of d.functions) {
        const input = inputs.find((i) => i.name === n.name);
        const sameId = input && 'snapshot' in input ? input.snapshot.pci.filter((x) => idOf(x) === idOf(f) && !moving.has(x.address) && !n.devices.some((o) => o.functions.some((of) => of.address === x.address))) : [];
        if (sameId.length)
          warnings.push(`node ${n.name}: ${idOf(f)} also matches ${sameId.map((x) => `${shortAddress(x.address)} (driver ${x.driver ?? 'none'})`).join(', ')}, which stays with the host: the vendor:device selector permits it too, so keep it off vfio-pci (the boot plan binds by address when IDs are shared)`);
      }
      if (d.extra.length) warnings.push(`node ${n.name}: ${d.extra.map((x) => shortAddress(x.address)).join(', ')} taken with --with sit outside ${shortAddress(d.primary.address)}'s slot and are exported as their own models`);
    }
  }
  return { models, nodes, warnings: [...new Set(warnings)] };
}

function exportNode(input: ExportNodeInput, opts: ExportOptions): ExportNode {
  if ('unreadable' in input) return { name: input.name, ok: false, devices: [], warnings: [], bootPlan: null, problems: [input.unreadable] };
  const s = input.snapshot;
  const selectors = opts.selectors.length ? opts.selectors : s.pci.filter((d) => d.class.startsWith('03') && !d.bootVga && !d.isBridge).map((d) => d.address);
  if (!selectors.length)
    return { name: input.name, ok: false, devices: [], warnings: [], bootPlan: null, problems: [{ code: 'E_UNKNOWN_DEVICE', subject: input.name, message: `node ${input.name} has no GPU that is not the boot display`, hint: 'name the devices to export (PCI address or vendor:device)' }] };
  const sel = resolveSelection(s, selectors, { with: opts.with, allowBootVga: opts.allowBootVga });
  if (sel.problems.length) return { name: input.name, ok: false, devices: [], problems: sel.problems.map((p) => ({ ...p, message: `node ${input.name}: ${p.message}` })), warnings: sel.warnings, bootPlan: null };
  const taken = new Set<string>();
  const devices: NodeDevice[] = [];
  for (const p of sel.selected) {
    if (taken.has(p.address)) continue;
    const functions = sel.devices.filter((d) => slotOf(d.address) === slotOf(p.address));
    functions.sort((a, b) => (a.address === p.address ? -1 : b.address === p.address ? 1 : a.address < b.address ? -1 : 1));
    for (const f of functions) taken.add(f.address);
    devices.push({ primary: p, functions, iommuGroup: p.iommuGroup, extra: [] });
  }
  const extra = sel.devices.filter((d) => !taken.has(d.address));
  if (extra.length && devices.length) {
    devices[0].extra = extra;
    for (const x of extra) devices.push({ primary: x, functions: [x], iommuGroup: x.iommuGroup, extra: [] });
  }
  const bootPlan = assembleBootPlan(s, { selectors, with: opts.with, allowBootVga: opts.allowBootVga });
  return { name: input.name, ok: true, devices, problems: bootPlan.problems, warnings: [...sel.warnings, ...bootPlan.warnings], bootPlan };
}
