// Fleet exports: goldens per fixture host, the validators (fed broken input
// too, so they can fail), resource-name and per-node errors, and the Proxmox
// pci.cfg parser's round-trip property.
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { FileFormatError, UsageError } from '../../src/errors.js';
import * as pve from '../../src/formats/pve-mapping-pci.js';
import { parseNovaPci } from '../../src/formats/nova-pci.js';
import { HostRoot } from '../../src/host/root.js';
import { inspect } from '../../src/host/inspect.js';
import { buildFleetExport, extendedResourceNameProblem } from '../../src/render/export-model.js';
import { renderKubevirt, validateKubevirt } from '../../src/render/export-kubevirt.js';
import { renderNova, validateNova } from '../../src/render/export-nova.js';
import { renderProxmox, validateProxmox } from '../../src/render/export-proxmox.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';
import { debianGrub, fedoraBls, archSdboot } from '../helpers/distros.js';
import { expectGolden } from '../helpers/golden.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => tmp.forEach((t) => fs.rmSync(t, { recursive: true, force: true })));
const snap = (h: Parameters<typeof buildFakeHost>[0]) => {
  const r = buildFakeHost(h);
  tmp.push(r);
  return { root: r, snapshot: inspect(new HostRoot(r)) };
};

describe('exports per fixture host', () => {
  for (const [name, host] of Object.entries(FIXTURE_HOSTS)) {
    it(name, () => {
      const x = buildFleetExport([{ name: 'node1', snapshot: snap(host).snapshot }], { selectors: [] });
      const n = x.nodes[0];
      if (!n.ok) {
        expectGolden(`export/${name}.problems.txt`, n.problems.map((p) => `${p.code} ${p.message}`).join('\n'));
        return;
      }
      const k = renderKubevirt(x);
      const nova = renderNova(x);
      const p = renderProxmox(x);
      expect(validateKubevirt(k)).toEqual([]);
      expect(validateNova(nova)).toEqual([]);
      expect(validateProxmox(p.pciCfg, ['node1'])).toEqual([]);
      // Every function the group moves is permitted and requested: nothing silently missed.
      const permitted = parseAllDocuments(k['kubevirt-cr-patch.yaml'])[0].toJS().spec.configuration.permittedHostDevices.pciHostDevices.map((e: { pciVendorSelector: string }) => e.pciVendorSelector.toLowerCase());
      for (const d of n.devices) for (const f of d.functions) expect(permitted).toContain(`${f.vendor}:${f.device}`);
      expectGolden(`export/${name}.kubevirt.yaml`, Object.entries(k).map(([f, t]) => `#### ${f}\n${t}`).join('\n'));
      expectGolden(`export/${name}.nova.conf`, [nova.nodes.node1, nova.api, nova.flavor].join('\n'));
      expectGolden(`export/${name}.pci.cfg`, p.pciCfg + '\n' + p.usage);
    });
  }
});

describe('several nodes', () => {
  it('one mapping per model with a map line per node; labels per node', () => {
    const x = buildFleetExport(
      [
        { name: 'gpu1', snapshot: snap(debianGrub).snapshot },
        { name: 'gpu2', snapshot: snap(fedoraBls).snapshot },
        { name: 'gpu3', snapshot: snap(FIXTURE_HOSTS['twin-gpus']).snapshot },
      ],
      { selectors: [] },
    );
    expect(x.nodes.map((n) => n.ok)).toEqual([true, true, true]);
    const k = renderKubevirt(x);
    const nova = renderNova(x);
    const p = renderProxmox(x);
    expect(validateKubevirt(k)).toEqual([]);
    expect(validateNova(nova)).toEqual([]);
    expect(validateProxmox(p.pciCfg, ['gpu1', 'gpu2', 'gpu3'])).toEqual([]);
    expect(p.pciCfg.match(/^\tmap .*id=10de:1f08/gm)).toHaveLength(2);
    expectGolden('export/fleet-3-nodes.kubevirt.yaml', Object.entries(k).map(([f, t]) => `#### ${f}\n${t}`).join('\n'));
    expectGolden('export/fleet-3-nodes.pci.cfg', p.pciCfg);
    expectGolden('export/fleet-3-nodes.nova.conf', [...Object.values(nova.nodes), nova.api, nova.flavor].join('\n'));
  });
});

describe('companions', () => {
  it('the desktop GPU brings its audio, USB-C and UCSI functions into the VM snippet', () => {
    const x = buildFleetExport([{ name: 'n1', snapshot: snap(FIXTURE_HOSTS['desktop-nvidia']).snapshot }], { selectors: ['01:00.0'] });
    const vm = parseAllDocuments(renderKubevirt(x)['vm-snippet.yaml']).map((d) => d.toJS()).filter(Boolean)[0];
    const devs = vm.spec.template.spec.domain.devices;
    expect(devs.gpus).toHaveLength(1);
    expect(devs.hostDevices.map((h: { deviceName: string }) => h.deviceName.split('_').pop())).toEqual(['Audio', 'USB', 'UCSI']);
    expect(renderNova(x).flavor).toMatch(/"pci_passthrough:alias"="[^"]+:1,[^"]+-audio:1,[^"]+-usb:1,[^"]+-ucsi:1"/);
    expect(renderProxmox(x).pciCfg).toContain('path=0000:01:00,');
  });
  it('warns when a node carries two cards of one model (companions cannot be requested together)', () => {
    const x = buildFleetExport([{ name: 'n1', snapshot: snap(FIXTURE_HOSTS['twin-gpus']).snapshot }], { selectors: ['10de:2204'], allowBootVga: true });
    expect(x.warnings.join('\n')).toMatch(/node n1 carries 2 devices of 10de:2204: .*independently/);
  });
  it('warns that an identical device the host keeps matches the vendor selector', () => {
    const x = buildFleetExport([{ name: 'n1', snapshot: snap(FIXTURE_HOSTS['twin-gpus']).snapshot }], { selectors: ['0b:00.0'] });
    expect(x.warnings.join('\n')).toMatch(/10de:2204 also matches 0a:00.0 \(driver nvidia\)/);
  });
});

describe('bad input', () => {
  it('rejects resource names Kubernetes would reject', () => {
    for (const bad of ['gpu', 'kubernetes.io/gpu', 'a.kubernetes.io/gpu', 'Nvidia.com/gpu', 'nvidia.com/-gpu', 'requests.x.io/gpu', 'a/b/c', `x.io/${'a'.repeat(64)}`]) expect(extendedResourceNameProblem(bad), bad).not.toBeNull();
    for (const good of ['nvidia.com/TU104GL_Tesla_T4', 'example.com/gpu', 'a.b-c.io/x.y-z_1']) expect(extendedResourceNameProblem(good), good).toBeNull();
    const s = snap(FIXTURE_HOSTS['desktop-nvidia']).snapshot;
    expect(() => buildFleetExport([{ name: 'n', snapshot: s }], { selectors: ['01:00.0'], resourceNames: ['kubernetes.io/gpu'] })).toThrow(UsageError);
  });
  it('a node without the device is skipped with the reason, the others exported (exit 3)', async () => {
    const a = snap(debianGrub).root;
    const b = snap(FIXTURE_HOSTS['amd-no-acs']).root;
    const r = await runCli(['export', 'proxmox', '10de:1f08', '--node', `gpu1=${a}`, '--node', `gpu2=${b}`]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("skipped node gpu2: no PCI device matches '10de:1f08' on this host");
    expect(r.stdout).toContain('node=gpu1,path=0000:01:00');
    expect(r.stdout).not.toContain('node=gpu2');
  });
  it('a root that is not a Linux root is a clear error naming it', async () => {
    const empty = fs.mkdtempSync('/tmp/vfiokit-notroot-');
    tmp.push(empty);
    const r = await runCli(['export', 'kubevirt', '--node', `n1=${empty}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`node n1: ${empty} is not a Linux root`);
    expect(r.stderr).toContain('fix:');
    // Among good nodes it is skipped with the reason (exit 3); the others are exported.
    const good = snap(debianGrub).root;
    const m = await runCli(['export', 'proxmox', '10de:1f08', '--node', `gpu1=${good}`, '--node', `n1=${empty}`, '--node', `n2=${empty}/nonexistent`]);
    expect(m.code).toBe(3);
    expect(m.stderr).toContain(`skipped node n1: ${empty} is not a Linux root: /sys/bus/pci/devices, /proc/cmdline, /etc/os-release missing`);
    expect(m.stderr).toContain(`skipped node n2: ${empty}/nonexistent does not exist or is not a directory`);
    expect(m.stderr).toContain('(--node n1=DIR)');
    expect(m.stdout).toContain('node=gpu1,path=0000:01:00');
    expect(m.stdout).not.toMatch(/node=n[12]/);
    const p = await runCli(['plan', '01:00.0', '--root', empty]);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain(`--root ${empty}`);
  });
  it('bad resource name through the CLI: usage error naming the rule, nothing written', async () => {
    const out = fs.mkdtempSync('/tmp/vfiokit-out-');
    tmp.push(out);
    const r = await runCli(['export', 'kubevirt', '--root', snap(archSdboot).root, '--resource-name', 'gpu', '-o', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--resource-name 'gpu' is not a valid Kubernetes extended resource name");
    expect(fs.readdirSync(out)).toEqual([]);
  });
  it('writes the files with -o, lists them with --dry-run', async () => {
    const out = path.join(fs.mkdtempSync('/tmp/vfiokit-out-'), 'k');
    tmp.push(path.dirname(out));
    const root = snap(fedoraBls).root;
    const d = await runCli(['export', 'kubevirt', '--root', root, '-o', out, '--dry-run']);
    expect(d.stdout).toContain(`would write ${out}/kubevirt-cr-patch.yaml`);
    expect(fs.existsSync(out)).toBe(false);
    const w = await runCli(['export', 'kubevirt', '--root', root, '-o', out]);
    expect(w.code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['kubevirt-cr-patch.yaml', 'node-labels.yaml', 'node-preparation.txt', 'vm-snippet.yaml']);
  });
});

describe('validators catch broken output', () => {
  it('KubeVirt: missing required field, wrong type, unknown field, unpermitted request', () => {
    const cr = 'apiVersion: kubevirt.io/v1\nkind: KubeVirt\nspec:\n  configuration:\n    permittedHostDevices:\n      pciHostDevices:\n        - pciVendorSelector: 10de:1f08\n          externalResourceProvider: "no"\n          colour: red\n';
    const vm = 'kind: VirtualMachine\nspec:\n  template:\n    spec:\n      domain:\n        devices:\n          gpus:\n            - name: g\n              deviceName: nvidia.com/other\n';
    const msgs = validateKubevirt({ 'kubevirt-cr-patch.yaml': cr, 'vm-snippet.yaml': vm }).map((p) => p.message).join('\n');
    expect(msgs).toContain('PciHostDevice.resourceName is required');
    expect(msgs).toContain('externalResourceProvider must be a boolean');
    expect(msgs).toContain("has no field 'colour'");
    expect(msgs).toContain('requests nvidia.com/other, which the KubeVirt CR does not permit');
  });
  it('Nova: bad JSON is a file format error; bad keys and aliases are problems', () => {
    expect(() => parseNovaPci('[pci]\nalias = {name: x}\n')).toThrow(FileFormatError);
    const msgs = validateNova({ api: '[pci]\nalias = {"name":"a:b","vendor_id":"10DE","product_id":"1f08","device_type":"type-GPU"}\n', nodes: { n: '[pci]\ndevice_spec = {"vendor_id":"10de","product_id":"1f08","adress":"x"}\n' }, flavor: '"pci_passthrough:alias"="zz:1"', preparation: '' })
      .map((p) => p.message)
      .join('\n');
    expect(msgs).toMatch(/alias name 'a:b'/);
    expect(msgs).toMatch(/vendor_id must be 4 lowercase hex/);
    expect(msgs).toMatch(/device_type 'type-GPU'/);
    expect(msgs).toMatch(/unknown key 'adress'/);
    expect(msgs).toMatch(/alias 'zz', which nova-api does not define/);
  });
  it('Proxmox: bad id, path and node are problems; stray properties are format errors', () => {
    const msgs = validateProxmox('gpu\n\tmap id=10de,node=x,path=01:00.0\n', ['n1']).map((p) => p.message).join('\n');
    expect(msgs).toMatch(/map id '10de'/);
    expect(msgs).toMatch(/map path '01:00.0'/);
    expect(msgs).toMatch(/map node 'x'/);
    expect(() => pve.parsePveMappingPci('\tmap id=1\n')).toThrow(FileFormatError);
    expect(() => pve.parsePveMappingPci('9gpu\n')).toThrow(FileFormatError);
  });
});

describe('pci.cfg parser (fast-check)', () => {
  const id = fc.stringMatching(/^[a-z][a-z0-9_-]{1,12}$/);
  const val = fc.stringMatching(/^[a-z0-9=,:.;_ -]{0,30}$/).map((s) => s.trim());
  const prop = fc.tuple(fc.constantFrom('\t', '  ', '    '), fc.constantFrom('map', 'description', 'mdev'), val).map(([ind, k, v]) => `${ind}${k}${v ? ' ' + v : ''}`);
  const section = fc.tuple(id, fc.array(prop, { maxLength: 4 })).map(([i, ps]) => [i, ...ps]);
  const text = fc.tuple(fc.array(fc.tuple(section, fc.constantFrom([''], ['', '# comment'], ['#x'])), { maxLength: 5 }), fc.boolean()).map(([secs, nl]) => {
    const lines = secs.flatMap(([s, sep]) => [...sep, ...s]);
    return lines.length ? lines.join('\n') + (nl ? '\n' : '') : '';
  });
  it('renders any valid file back byte-identical', () => {
    fc.assert(fc.property(text, (t) => pve.renderPveMappingPci(pve.parsePveMappingPci(t)) === t), { numRuns: 200 });
  });
  it('documents built from sections parse back to the same mappings', () => {
    const entry = fc.array(fc.tuple(fc.constantFrom('node', 'path', 'id', 'iommugroup'), fc.stringMatching(/^[a-z0-9:.]{1,10}$/)), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(fc.uniqueArray(id, { maxLength: 4 }), fc.array(entry, { maxLength: 3 }), (ids, maps) => {
        const secs = ids.map((i) => pve.newSection(i, maps.map((m) => ({ key: 'map', value: pve.renderMapValue({ fields: m }) }))));
        const back = pve.sections(pve.parsePveMappingPci(pve.renderPveMappingPci(pve.documentOf(secs))));
        expect(back.map((s) => s.id)).toEqual(ids);
        for (const s of back) expect(s.properties.map((p) => pve.parseMapValue(p.value).fields)).toEqual(maps);
      }),
      { numRuns: 150 },
    );
  });
});
