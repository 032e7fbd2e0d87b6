// KubeVirt export: the KubeVirt CR patch permitting the devices
// (permittedHostDevices.pciHostDevices), node labels for the nodes carrying
// them, the node preparation KubeVirt assumes done, and a VirtualMachine
// snippet requesting the GPU and every companion function. YAML through the
// `yaml` library; every object is parsed back and checked against the facts
// of KubeVirt's OpenAPI schema for these fields (validateKubevirt).

import { parseAllDocuments, stringify } from 'yaml';
import type { Problem } from '../errors.js';
import { shortAddress } from '../model/pci-address.js';
import { extendedResourceNameProblem, type DeviceModel, type FleetExport } from './export-model.js';

interface KubevirtFiles {
  'kubevirt-cr-patch.yaml': string;
  'node-labels.yaml': string;
  'vm-snippet.yaml': string;
  'node-preparation.txt': string;
}

const LABEL_DOMAIN = 'vfiokit.io';
const modelLabel = (m: DeviceModel) => `${LABEL_DOMAIN}/pci-${m.vendor}-${m.device}`;
const selector = (m: DeviceModel) => `${m.vendor}:${m.device}`.toUpperCase();

function doc(header: string[], value: unknown): string {
  return header.map((l) => `# ${l}`.trimEnd()).join('\n') + '\n' + stringify(value, { lineWidth: 0 });
}

export function renderKubevirt(x: FleetExport): KubevirtFiles {
  const primaries = x.models.filter((m) => m.role === 'primary');
  const cr = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'KubeVirt',
    metadata: { name: 'kubevirt', namespace: 'kubevirt' },
    spec: { configuration: { permittedHostDevices: { pciHostDevices: x.models.map((m) => ({ pciVendorSelector: selector(m), resourceName: m.resourceName, externalResourceProvider: false })) } } },
  };
  const crText = doc(
    [
      'KubeVirt permits these PCI devices; its device plugin advertises every one bound to vfio-pci on a node.',
      'A merge patch replaces the whole pciHostDevices list: merge it with the entries the cluster already has',
      '(kubectl get kubevirt kubevirt -n kubevirt -o yaml), then: kubectl patch kubevirt kubevirt -n kubevirt --type merge --patch-file kubevirt-cr-patch.yaml',
      ...x.models.map((m) => `${selector(m)}  ${m.role === 'primary' ? 'device' : `companion of ${m.companionOf!.toUpperCase()}`}${m.name ? `: ${m.name}` : ''}`),
    ],
    cr,
  );
  const labelDocs = x.nodes
    .filter((n) => n.ok)
    .map((n) => {
      const labels: Record<string, string> = { [`${LABEL_DOMAIN}/passthrough`]: 'true' };
      for (const d of n.devices) {
        const m = x.models.find((mm) => mm.vendor === d.primary.vendor && mm.device === d.primary.device)!;
        labels[modelLabel(m)] = 'true';
      }
      return { apiVersion: 'v1', kind: 'Node', metadata: { name: n.name, labels } };
    });
  const labelText =
    '# Labels for the nodes that carry the devices (kubectl apply --server-side --force-conflicts -f node-labels.yaml,\n# or kubectl label node NAME KEY=VALUE for each label).\n' +
    labelDocs.map((d) => '---\n' + stringify(d, { lineWidth: 0 })).join('');
  const vmDocs = primaries.map((p) => {
    const comps = x.models.filter((m) => m.companionOf === `${p.vendor}:${p.device}`);
    const isDisplay = p.class.startsWith('03');
    const devices: Record<string, unknown> = {};
    const hostDevices = [...(isDisplay ? [] : [p]), ...comps].map((m, i) => ({ name: `hostdev${i + 1}`, deviceName: m.resourceName }));
    if (isDisplay) devices.gpus = [{ name: 'gpu1', deviceName: p.resourceName }];
    if (hostDevices.length) devices.hostDevices = hostDevices;
    return {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: `vm-${p.slug}` },
      spec: { runStrategy: 'Halted', template: { spec: { nodeSelector: { [modelLabel(p)]: 'true' }, domain: { devices } } } },
    };
  });
  const vmText =
    '# VirtualMachine snippets: each requests the device and every companion function that moves with it\n# (the whole IOMMU group goes to vfio-pci on the node). Merge spec.template.spec into your VM.\n' +
    vmDocs.map((d) => '---\n' + stringify(d, { lineWidth: 0 })).join('');
  return { 'kubevirt-cr-patch.yaml': crText, 'node-labels.yaml': labelText, 'vm-snippet.yaml': vmText, 'node-preparation.txt': renderNodePreparation(x, 'KubeVirt') };
}

/** The vfiokit boot plan per node: what the cluster software assumes already done. */
export function renderNodePreparation(x: FleetExport, consumer: string): string {
  const out = [`Node preparation (${consumer} assumes it done: IOMMU on, vfio-pci loaded from boot, devices bound to vfio-pci).`, 'Run on each node, or drive it with the vfiokit.passthrough Ansible collection:', ''];
  for (const n of x.nodes) {
    if (!n.ok) {
      out.push(`${n.name}: not exported`);
      for (const p of n.problems) out.push(`  - ${p.message}${p.hint ? `\n    fix: ${p.hint}` : ''}`);
      out.push('');
      continue;
    }
    const sel = n.devices.map((d) => shortAddress(d.primary.address)).join(' ');
    out.push(`${n.name}: ${n.devices.map((d) => `${d.functions.map((f) => shortAddress(f.address)).join(' + ')} (IOMMU group ${d.iommuGroup ?? '?'})`).join(', ')}`);
    const plan = n.bootPlan!;
    if (plan.problems.length) for (const p of plan.problems) out.push(`  cannot prepare: ${p.message}${p.hint ? ` (fix: ${p.hint})` : ''}`);
    else if (!plan.steps.length) out.push('  already prepared (the boot plan is empty)');
    else {
      out.push(`  vfiokit apply ${sel} --yes && reboot; then vfiokit status`);
      for (const st of plan.steps) {
        if (st.kind === 'write-file' || st.kind === 'remove-file') out.push(`    ${st.kind === 'write-file' ? (st.before ? 'edit' : 'create') : 'remove'} ${st.path}: ${st.reason}`);
        else if (st.kind === 'run-command') out.push(`    run ${st.argv.join(' ')}`);
      }
    }
    for (const w of n.warnings) out.push(`  warning: ${w}`);
    out.push('');
  }
  return out.join('\n');
}

// Facts from KubeVirt's published OpenAPI schema (api/openapi-spec/swagger.json):
// v1.PciHostDevice: pciVendorSelector (string, required), resourceName (string,
// required), externalResourceProvider (boolean). v1.GPU and v1.HostDevice: name
// and deviceName (strings, required), tag (string); GPU also virtualGPUOptions.
const SCHEMA: Record<string, { required: string[]; types: Record<string, 'string' | 'boolean' | 'object'> }> = {
  PciHostDevice: { required: ['pciVendorSelector', 'resourceName'], types: { pciVendorSelector: 'string', resourceName: 'string', externalResourceProvider: 'boolean' } },
  GPU: { required: ['name', 'deviceName'], types: { name: 'string', deviceName: 'string', tag: 'string', virtualGPUOptions: 'object' } },
  HostDevice: { required: ['name', 'deviceName'], types: { name: 'string', deviceName: 'string', tag: 'string' } },
};

function checkObject(kind: string, where: string, v: unknown, problems: Problem[]): void {
  const s = SCHEMA[kind];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.push({ code: 'E_EXPORT_INVALID', subject: where, message: `${where} is not a ${kind} object` });
    return;
  }
  const o = v as Record<string, unknown>;
  for (const r of s.required) if (!(r in o)) problems.push({ code: 'E_EXPORT_INVALID', subject: where, message: `${where}: ${kind}.${r} is required` });
  for (const [k, val] of Object.entries(o)) {
    const t = s.types[k];
    if (!t) problems.push({ code: 'E_EXPORT_INVALID', subject: where, message: `${where}: ${kind} has no field '${k}'` });
    else if (typeof val !== t) problems.push({ code: 'E_EXPORT_INVALID', subject: where, message: `${where}: ${kind}.${k} must be a ${t}` });
  }
  for (const k of ['resourceName', 'deviceName']) {
    const n = o[k];
    if (typeof n === 'string') {
      const why = extendedResourceNameProblem(n);
      if (why) problems.push({ code: 'E_EXPORT_INVALID', subject: where, message: `${where}: ${k} '${n}' is not an extended resource name: ${why}` });
    }
  }
  if (kind === 'PciHostDevice' && typeof o.pciVendorSelector === 'string' && !/^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$/.test(o.pciVendorSelector))
    problems.push({ code: 'E_EXPORT_INVALID', subject: where, message: `${where}: pciVendorSelector '${o.pciVendorSelector}' is not VVVV:DDDD` });
}

const get = (o: unknown, path: string[]): unknown => path.reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as Record<string, unknown>)[k] : undefined), o);

/** Parse KubeVirt export YAML back and check every object against the schema facts above. */
export function validateKubevirt(files: Pick<KubevirtFiles, 'kubevirt-cr-patch.yaml' | 'vm-snippet.yaml'>): Problem[] {
  const problems: Problem[] = [];
  const parse = (name: string, text: string) =>
    parseAllDocuments(text).flatMap((d, i) => {
      if (!('errors' in d) || d.errors.length) {
        problems.push({ code: 'E_EXPORT_INVALID', subject: name, message: `${name} document ${i + 1} is not valid YAML` });
        return [];
      }
      return d.contents === null ? [] : [d.toJS() as unknown];
    });
  const resources = new Set<string>();
  for (const [i, cr] of parse('kubevirt-cr-patch.yaml', files['kubevirt-cr-patch.yaml']).entries()) {
    if (get(cr, ['apiVersion']) !== 'kubevirt.io/v1' || get(cr, ['kind']) !== 'KubeVirt') problems.push({ code: 'E_EXPORT_INVALID', subject: 'kubevirt-cr-patch.yaml', message: `document ${i + 1} is not a kubevirt.io/v1 KubeVirt` });
    const list = get(cr, ['spec', 'configuration', 'permittedHostDevices', 'pciHostDevices']);
    if (!Array.isArray(list)) problems.push({ code: 'E_EXPORT_INVALID', subject: 'kubevirt-cr-patch.yaml', message: 'permittedHostDevices.pciHostDevices must be a list' });
    else
      list.forEach((e, k) => {
        checkObject('PciHostDevice', `pciHostDevices[${k}]`, e, problems);
        const sel = (e as Record<string, unknown>)?.pciVendorSelector;
        if (typeof sel === 'string' && list.filter((o) => (o as Record<string, unknown>)?.pciVendorSelector === sel).length > 1) problems.push({ code: 'E_EXPORT_INVALID', subject: sel, message: `pciVendorSelector ${sel} is listed twice` });
        resources.add(String((e as Record<string, unknown>)?.resourceName));
      });
  }
  for (const [i, vm] of parse('vm-snippet.yaml', files['vm-snippet.yaml']).entries()) {
    const devs = get(vm, ['spec', 'template', 'spec', 'domain', 'devices']);
    for (const [field, kind] of [['gpus', 'GPU'], ['hostDevices', 'HostDevice']] as const) {
      const list = get(devs, [field]);
      if (list === undefined) continue;
      if (!Array.isArray(list)) {
        problems.push({ code: 'E_EXPORT_INVALID', subject: 'vm-snippet.yaml', message: `document ${i + 1}: devices.${field} must be a list` });
        continue;
      }
      list.forEach((e, k) => {
        checkObject(kind, `vm ${i + 1} ${field}[${k}]`, e, problems);
        const dn = (e as Record<string, unknown>)?.deviceName;
        if (typeof dn === 'string' && !resources.has(dn)) problems.push({ code: 'E_EXPORT_INVALID', subject: dn, message: `vm ${i + 1} requests ${dn}, which the KubeVirt CR does not permit` });
      });
    }
  }
  return problems;
}
