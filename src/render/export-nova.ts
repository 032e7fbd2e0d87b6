// OpenStack Nova export: per compute node the `[pci] device_spec` entries (by
// address, so an identical device the host keeps is not offered), the
// `[pci] alias` entries (the same on nova-api and every nova-compute) and the
// flavor extra spec requesting a device with all its companion functions.
// The text is parsed back (src/formats/nova-pci.ts) and checked (validateNova).

import type { Problem } from '../errors.js';
import { parseNovaPci } from '../formats/nova-pci.js';
import type { FleetExport } from './export-model.js';
import { renderNodePreparation } from './export-kubevirt.js';

interface NovaExport {
  /** nova.conf snippet per node name. */
  nodes: Record<string, string>;
  /** Alias entries for nova-api (and every compute node). */
  api: string;
  /** `openstack flavor set` lines, one per primary model. */
  flavor: string;
  preparation: string;
}

const hex4 = (s: string) => s.toLowerCase();

function aliasLines(x: FleetExport): string[] {
  return x.models.map((m) => JSON.stringify({ name: m.slug, vendor_id: hex4(m.vendor), product_id: hex4(m.device), device_type: m.deviceType, numa_policy: 'preferred' }));
}

export function renderNova(x: FleetExport): NovaExport {
  const aliases = aliasLines(x).map((a) => `alias = ${a}`);
  const nodes: Record<string, string> = {};
  for (const n of x.nodes) {
    if (!n.ok) continue;
    const specs = n.devices.flatMap((d) => d.functions).map((f) => `device_spec = ${JSON.stringify({ vendor_id: f.vendor, product_id: f.device, address: f.address })}`);
    nodes[n.name] = [`# nova-compute on ${n.name}: the devices vfiokit binds to vfio-pci, by address`, '[pci]', ...specs, ...aliases, ''].join('\n');
  }
  const api = ['# nova-api (and every nova-compute, for resize and migration): the same aliases', '[pci]', ...aliases, ''].join('\n');
  const flavor = x.models
    .filter((m) => m.role === 'primary')
    .map((p) => {
      const all = [p, ...x.models.filter((m) => m.companionOf === `${p.vendor}:${p.device}`)];
      return `openstack flavor set FLAVOR --property "pci_passthrough:alias"="${all.map((m) => `${m.slug}:1`).join(',')}"`;
    })
    .join('\n');
  return { nodes, api, flavor: `# the scheduler needs PciPassthroughFilter; each line requests a device with every companion function\n${flavor}\n`, preparation: renderNodePreparation(x, 'Nova') };
}

const HEX4 = /^[0-9a-f]{4}$/;
const DEVICE_TYPES = ['type-PCI', 'type-PF', 'type-VF'];
const NUMA = ['legacy', 'preferred', 'required', 'socket'];
const SPEC_KEYS = ['vendor_id', 'product_id', 'address', 'devname', 'physical_network', 'trusted', 'remote_managed', 'resource_class', 'traits', 'managed', 'live_migratable'];
const ALIAS_KEYS = ['name', 'vendor_id', 'product_id', 'device_type', 'numa_policy', 'resource_class', 'traits', 'live_migratable'];

/** Parse Nova snippets back and check the option syntax Nova expects. */
export function validateNova(e: NovaExport): Problem[] {
  const problems: Problem[] = [];
  const bad = (subject: string, message: string) => problems.push({ code: 'E_EXPORT_INVALID', subject, message });
  const aliasNames = new Set<string>();
  for (const [file, text] of [['nova-api', e.api], ...Object.entries(e.nodes)]) {
    const o = parseNovaPci(text, file);
    for (const s of o.deviceSpec) {
      for (const k of Object.keys(s)) if (!SPEC_KEYS.includes(k)) bad(file, `device_spec has unknown key '${k}'`);
      for (const k of ['vendor_id', 'product_id']) if (typeof s[k] !== 'string' || !HEX4.test(s[k] as string)) bad(file, `device_spec ${k} must be 4 lowercase hex digits`);
      if (s.address !== undefined && (typeof s.address !== 'string' || !/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(s.address))) bad(file, `device_spec address '${String(s.address)}' is not DDDD:BB:SS.F`);
    }
    for (const a of o.alias) {
      for (const k of Object.keys(a)) if (!ALIAS_KEYS.includes(k)) bad(file, `alias has unknown key '${k}'`);
      if (typeof a.name !== 'string' || !a.name || a.name.includes(':') || a.name.includes(',')) bad(file, `alias name '${String(a.name)}' must be a non-empty string without ':' or ','`);
      for (const k of ['vendor_id', 'product_id']) if (typeof a[k] !== 'string' || !HEX4.test(a[k] as string)) bad(file, `alias ${k} must be 4 lowercase hex digits`);
      if (a.device_type !== undefined && !DEVICE_TYPES.includes(a.device_type as string)) bad(file, `alias device_type '${String(a.device_type)}' is not one of ${DEVICE_TYPES.join(', ')}`);
      if (a.numa_policy !== undefined && !NUMA.includes(a.numa_policy as string)) bad(file, `alias numa_policy '${String(a.numa_policy)}' is not one of ${NUMA.join(', ')}`);
      if (file === 'nova-api') aliasNames.add(String(a.name));
    }
  }
  for (const line of e.flavor.split('\n')) {
    const m = /"pci_passthrough:alias"="([^"]*)"/.exec(line);
    if (!m) continue;
    for (const part of m[1].split(',')) {
      const pm = /^([^:]+):([1-9][0-9]*)$/.exec(part);
      if (!pm) bad('flavor', `'${part}' is not ALIAS:COUNT`);
      else if (!aliasNames.has(pm[1])) bad('flavor', `flavor requests alias '${pm[1]}', which nova-api does not define`);
    }
  }
  return problems;
}
