// Proxmox VE export: cluster resource mappings for /etc/pve/mapping/pci.cfg,
// one mapping per device model with a `map` line per node and device (IDs,
// subsystem IDs, IOMMU group and the function-less path, which hands the VM
// every function of the slot: GPU + audio + USB-C + UCSI). Rendered through
// src/formats/pve-mapping-pci.ts and checked by parsing it back.

import type { Problem } from '../errors.js';
import { documentOf, newSection, parseMapValue, parsePveMappingPci, renderMapValue, renderPveMappingPci, sections, PVE_ID } from '../formats/pve-mapping-pci.js';
import { slotOf } from '../model/pci-address.js';
import type { FleetExport } from './export-model.js';
import { renderNodePreparation } from './export-kubevirt.js';

interface ProxmoxExport {
  pciCfg: string;
  usage: string;
  preparation: string;
}

export function renderProxmox(x: FleetExport): ProxmoxExport {
  const primaries = x.models.filter((m) => m.role === 'primary');
  const secs = primaries.map((p) => {
    const props: { key: string; value: string }[] = [];
    if (p.name) props.push({ key: 'description', value: p.name });
    for (const n of x.nodes) {
      if (!n.ok) continue;
      for (const d of n.devices) {
        if (d.primary.vendor !== p.vendor || d.primary.device !== p.device) continue;
        const whole = d.functions.length > 1;
        const fields: [string, string][] = [['id', `${p.vendor}:${p.device}`]];
        if (d.iommuGroup !== null) fields.push(['iommugroup', String(d.iommuGroup)]);
        fields.push(['node', n.name], ['path', whole ? slotOf(d.primary.address) : d.primary.address]);
        if (d.primary.subsystemVendor && d.primary.subsystemDevice && `${d.primary.subsystemVendor}${d.primary.subsystemDevice}` !== '00000000') fields.push(['subsystem-id', `${d.primary.subsystemVendor}:${d.primary.subsystemDevice}`]);
        props.push({ key: 'map', value: renderMapValue({ fields }) });
      }
    }
    return newSection(p.slug, props);
  });
  const usage = primaries.map((p) => `hostpci0: mapping=${p.slug},pcie=1${p.class.startsWith('0300') ? ',x-vga=1' : ''}`).join('\n');
  return {
    pciCfg: renderPveMappingPci(documentOf(secs)),
    usage: `# in /etc/pve/qemu-server/VMID.conf (q35 machine), or qm set VMID --hostpci0 mapping=ID,pcie=1\n${usage}\n`,
    preparation: renderNodePreparation(x, 'Proxmox VE'),
  };
}

/** Parse pci.cfg back with the project's parser and check each mapping. */
export function validateProxmox(text: string, expectedNodes: string[]): Problem[] {
  const problems: Problem[] = [];
  const bad = (subject: string, message: string) => problems.push({ code: 'E_EXPORT_INVALID', subject, message });
  const doc = parsePveMappingPci(text);
  if (renderPveMappingPci(doc) !== text) bad('pci.cfg', 'does not render back byte-identical');
  const seen = new Set<string>();
  for (const s of sections(doc)) {
    if (!PVE_ID.test(s.id)) bad(s.id, 'mapping ID is not a Proxmox config ID');
    if (seen.has(s.id)) bad(s.id, 'mapping ID is used twice');
    seen.add(s.id);
    for (const p of s.properties) {
      if (!['description', 'mdev', 'map'].includes(p.key)) bad(s.id, `unknown property '${p.key}'`);
      if (p.key !== 'map') continue;
      const e = new Map(parseMapValue(p.value).fields);
      if (!/^[0-9a-f]{4}:[0-9a-f]{4}$/.test(e.get('id') ?? '')) bad(s.id, `map id '${e.get('id')}' is not vvvv:dddd`);
      if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}(\.[0-7])?$/.test(e.get('path') ?? '')) bad(s.id, `map path '${e.get('path')}' is not a PCI address`);
      if (!expectedNodes.includes(e.get('node') ?? '')) bad(s.id, `map node '${e.get('node')}' is not one of the exported nodes`);
      if (e.has('subsystem-id') && !/^[0-9a-f]{4}:[0-9a-f]{4}$/.test(e.get('subsystem-id')!)) bad(s.id, 'subsystem-id is not vvvv:dddd');
      if (e.has('iommugroup') && !/^[0-9]+$/.test(e.get('iommugroup')!)) bad(s.id, 'iommugroup is not a number');
    }
  }
  return problems;
}
