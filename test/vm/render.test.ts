import { DOMParser } from '@xmldom/xmldom';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { expectGolden, stableRoot } from '../helpers/golden.js';
import { runCli } from '../helpers/run-cli.js';
import { VM_HOSTS } from './hosts.js';
import { gpuRom } from './rom-builder.js';
import { defineInTestDriver, printSkip, validateSchema, virshTest, virtXmlValidate } from './validate.js';

const GOLDEN = path.resolve(__dirname, '../fixtures/vm');
const roots: Record<string, string> = {};
beforeAll(() => {
  for (const [n, h] of Object.entries(VM_HOSTS)) roots[n] = buildFakeHost(h);
  fs.writeFileSync(path.join(roots['ryzen-5950x'], 'gpu.rom'), gpuRom(0x10de, 0x2204));
}, 60_000);
afterAll(() => {
  for (const r of Object.values(roots)) fs.rmSync(r, { recursive: true, force: true });
});

/** One representative invocation per fixture host. */
const CASES: Record<string, (root: string) => string[]> = {
  'ryzen-5950x': (root) => ['--device', '10de:2204', '--memory', '16G', '--disk', '/var/lib/libvirt/images/win11.qcow2', '--cdrom', '/var/lib/libvirt/iso/Win11.iso', '--rom', path.join(root, 'gpu.rom')],
  'i9-12900k': () => ['--device', '03:00.0', '--memory', '12G', '--hugepages', '--disk', '/dev/nvme1n1'],
  'dual-xeon': () => ['--device', '81:00.0', '--memory', '32G', '--vcpus', '16', '--hugepages'],
};

const sources = (xml: string) => {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  return Array.from(doc.getElementsByTagName('hostdev')).map((h) => {
    const [src, guest] = Array.from(h.getElementsByTagName('address'));
    const attr = (e: typeof src, k: string) => e.getAttribute(k);
    return { host: `${attr(src, 'bus')}:${attr(src, 'slot')}.${attr(src, 'function')}`, bus: attr(guest, 'bus'), slot: attr(guest, 'slot'), fn: attr(guest, 'function'), mf: attr(guest, 'multifunction') };
  });
};

describe.each(Object.keys(CASES))('vm output for %s', (name) => {
  it('xml matches its golden, validates against the schema and defines in the test driver', async () => {
    const root = roots[name];
    const r = await runCli(['vm', 'xml', 'guest', ...CASES[name](root), '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expectGolden(`${name}.xml`, stableRoot(r.stdout, root), GOLDEN);
    expectGolden(`${name}.xml.notes`, stableRoot(r.stderr, root), GOLDEN);
    if (virtXmlValidate.ok) {
      const v = validateSchema(r.stdout);
      expect(v.output).toMatch(/validates/);
      expect(v.status).toBe(0);
    } else printSkip('virt-xml-validate', virtXmlValidate.reason);
    if (virshTest.ok) {
      const d = defineInTestDriver(r.stdout, 'guest');
      expect(d.output).toMatch(/Domain 'guest' defined/);
      expect(d.status).toBe(0);
      // libvirt kept every hostdev at the address we gave it.
      expect(sources(d.output.slice(d.output.indexOf('<domain')))).toEqual(sources(r.stdout));
    } else printSkip('virsh test driver', virshTest.reason);
  });

  it('qemu command line matches its golden and is one shell-safe option per line', async () => {
    const root = roots[name];
    const r = await runCli(['vm', 'qemu', 'guest', ...CASES[name](root), '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expectGolden(`${name}.qemu.sh`, stableRoot(r.stdout, root), GOLDEN);
    expectGolden(`${name}.qemu.notes`, stableRoot(r.stderr, root), GOLDEN);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('qemu-system-x86_64 \\');
    for (const l of lines.slice(1, -1)) expect(l).toMatch(/^ {2}-\S+( \S+)? \\$/);
    // The JSON argv carries the same arguments.
    const j = JSON.parse((await runCli(['vm', 'qemu', 'guest', ...CASES[name](root), '--root', root, '--json'])).stdout);
    expect(j.argv.filter((a: string) => a.startsWith('vfio-pci,')).length).toBe(sources((await runCli(['vm', 'xml', 'guest', ...CASES[name](root), '--root', root])).stdout).length);
  });
});

describe('guest PCI layout', () => {
  it('mirrors the host: all four functions of the RTX 2060 on one guest slot, function 0 multifunction', async () => {
    const r = await runCli(['vm', 'xml', 'g', '--device', '81:00.0', '--root', roots['dual-xeon']]);
    const s = sources(r.stdout);
    expect(s.map((x) => x.host)).toEqual(['0x81:0x00.0x0', '0x81:0x00.0x1', '0x81:0x00.0x2', '0x81:0x00.0x3']);
    expect(new Set(s.map((x) => `${x.bus}:${x.slot}`)).size).toBe(1);
    expect(s.map((x) => x.fn)).toEqual(['0x0', '0x1', '0x2', '0x3']);
    expect(s.map((x) => x.mf)).toEqual(['on', null, null, null]);
  });

  it('selecting only the audio function still brings the whole device', async () => {
    const r = await runCli(['vm', 'xml', 'g', '--device', '01:00.1', '--root', roots['ryzen-5950x']]);
    expect(r.code).toBe(0);
    expect(sources(r.stdout).map((x) => x.host)).toEqual(['0x01:0x00.0x0', '0x01:0x00.0x1']);
  });

  it('two devices get two root ports; Hyper-V vendor_id only for NVIDIA', async () => {
    const r = await runCli(['vm', 'xml', 'g', '--device', '01:00.0,0c:00.0', '--root', roots['ryzen-5950x']]);
    expect(r.code, r.stderr).toBe(0);
    const s = sources(r.stdout);
    expect(s.map((x) => [x.host, x.bus, x.fn, x.mf])).toEqual([
      ['0x01:0x00.0x0', '0x01', '0x0', 'on'],
      ['0x01:0x00.0x1', '0x01', '0x1', null],
      ['0x0c:0x00.0x0', '0x02', '0x0', null],
    ]);
    expect(r.stdout.match(/model='pcie-root-port'/g)).toHaveLength(2);
    expect(r.stdout).toContain("<vendor_id state='on'");
    const amd = await runCli(['vm', 'xml', 'g', '--device', '03:00.0', '--root', roots['i9-12900k']]);
    expect(amd.stdout).not.toContain('vendor_id');
    expect(amd.stdout).not.toContain('<kvm>');
  });

  it('--pin none: no cputune, flat topology', async () => {
    const r = await runCli(['vm', 'xml', 'g', '--device', '03:00.0', '--vcpus', '6', '--pin', 'none', '--root', roots['i9-12900k']]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('<cputune>');
    expect(r.stdout).toContain("<topology sockets='1' dies='1' cores='6' threads='1'/>");
  });
});
