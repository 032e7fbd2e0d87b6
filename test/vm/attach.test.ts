import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreconditionError } from '../../src/errors.js';
import { inspect } from '../../src/host/inspect.js';
import type { HostSnapshot } from '../../src/model/snapshot.js';
import { attachHostdevs } from '../../src/render/domain-attach.js';
import { planDevices } from '../../src/vm/plan.js';
import { CORPUS_DIR } from '../corpus/fixtures.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { dualXeonServer } from './hosts.js';
import { defineInTestDriver, printSkip, validateSchema, virshTest, virtXmlValidate } from './validate.js';

// Real users' passthrough domains (read only, outside the repository).
// The shared corpus, wherever the repository is checked out (VFIOKIT_CORPUS overrides).
const CORPUS = path.join(CORPUS_DIR, 'E_libvirt');
const corpus = fs.existsSync(CORPUS) ? fs.readdirSync(CORPUS).filter((f) => f.endsWith('.xml')).sort() : [];
const q35 = corpus.filter((f) => /machine=["'][^"']*q35/.test(fs.readFileSync(path.join(CORPUS, f), 'utf8')));

let root: string;
let snap: HostSnapshot;
beforeAll(() => {
  root = buildFakeHost(dualXeonServer);
  snap = inspect(root);
}, 60_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const gpu = () => planDevices(snap, { devices: ['81:00.0'] }).hostdevs;

/** The document with everything vfiokit added taken out again. */
function withoutAdded(xml: string, added: { host: string; guestBus: number }[]): string {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const devices = doc.getElementsByTagName('devices')[0];
  const ports = new Set(added.map((a) => String(a.guestBus)));
  const hosts = new Set(added.map((a) => a.host));
  for (const e of Array.from(devices.childNodes)) {
    if (e.nodeType !== 1) continue;
    const el = e as unknown as Element;
    const isPort = el.tagName === 'controller' && el.getAttribute('model') === 'pcie-root-port' && ports.has(el.getAttribute('index') ?? '') && !el.firstChild;
    let isHost = false;
    const a = el.tagName === 'hostdev' && el.getAttribute('type') === 'pci' ? el.getElementsByTagName('address')[0] : undefined;
    if (a) {
      const addr = `${parseInt(a.getAttribute('domain')!, 16).toString(16).padStart(4, '0')}:${parseInt(a.getAttribute('bus')!, 16).toString(16).padStart(2, '0')}:${parseInt(a.getAttribute('slot')!, 16).toString(16).padStart(2, '0')}.${parseInt(a.getAttribute('function')!, 16)}`;
      isHost = hosts.has(addr);
    }
    if (isPort || isHost) {
      const prev = e.previousSibling;
      if (prev && prev.nodeType === 3) devices.removeChild(prev);
      devices.removeChild(e);
    }
  }
  return new XMLSerializer().serializeToString(doc);
}

function wellFormed(xml: string): boolean {
  let ok = true;
  try {
    new DOMParser({ onError: (level) => { if (level !== 'warning') ok = false; } }).parseFromString(xml, 'text/xml');
  } catch {
    ok = false;
  }
  return ok;
}

const canonical = (xml: string) => new XMLSerializer().serializeToString(new DOMParser().parseFromString(xml, 'text/xml'));

describe('vm attach: editing a domain XML', () => {
  if (!q35.length) {
    it.skip('corpus of user domains not found', () => {});
    printSkip('attach corpus tests', `${CORPUS} is absent`);
  }

  it.each(q35)('%s: adds the functions on new root ports and leaves everything else as it was', (file) => {
    const original = fs.readFileSync(path.join(CORPUS, file), 'utf8');
    if (!wellFormed(original)) {
      // Some users' files are not XML at all (e.g. "--" inside a comment): refused, nothing changed.
      expect(() => attachHostdevs(original, 'vm', gpu())).toThrow(/is not a libvirt domain XML: .*position/);
      return;
    }
    const r = attachHostdevs(original, 'vm', gpu());
    expect(r.present).toEqual([]);
    expect(r.added.map((a) => a.host)).toEqual(['0000:81:00.0', '0000:81:00.1', '0000:81:00.2', '0000:81:00.3']);
    expect(new Set(r.added.map((a) => a.guestBus)).size).toBe(1);
    const doc = new DOMParser().parseFromString(original, 'text/xml');
    const maxIndex = Math.max(0, ...Array.from(doc.getElementsByTagName('controller')).filter((c) => c.getAttribute('type') === 'pci').map((c) => Number(c.getAttribute('index'))));
    expect(r.added[0].guestBus).toBe(maxIndex + 1);
    expect(r.xml).toMatch(new RegExp(`<controller type="pci" index="${maxIndex + 1}" model="pcie-root-port"/>`));
    expect(r.xml).toMatch(/multifunction="on"/);
    expect(withoutAdded(r.xml, r.added)).toBe(canonical(original));
    // Attaching again changes nothing.
    const again = attachHostdevs(r.xml, 'vm', gpu());
    expect(again.added).toEqual([]);
    expect(again.present).toHaveLength(4);
    if (virtXmlValidate.ok && validateSchema(original).status === 0) {
      expect(validateSchema(r.xml).output).toMatch(/validates/);
    }
  });

  it('the edited XML defines in the libvirt test driver', () => {
    if (!virshTest.ok || !q35.length) return printSkip('virsh test driver', virshTest.ok ? 'no corpus' : virshTest.reason);
    const original = fs.readFileSync(path.join(CORPUS, q35[0]), 'utf8');
    const name = /<name>([^<]+)<\/name>/.exec(original)![1];
    const d = defineInTestDriver(attachHostdevs(original, name, gpu()).xml, name);
    expect(d.output).toContain(`Domain '${name}' defined`);
    expect(d.output).toMatch(/<address domain='0x0000' bus='0x81' slot='0x00' function='0x3'\/>/);
  });

  it('refuses i440fx domains and half-present devices, naming the fix', () => {
    const i440 = corpus.find((f) => /i440fx/.test(fs.readFileSync(path.join(CORPUS, f), 'utf8')));
    const minimal = (machine: string, extra = '') => `<domain type='kvm'>\n  <name>v</name>\n  <os>\n    <type arch='x86_64' machine='${machine}'>hvm</type>\n  </os>\n  <devices>\n${extra}  </devices>\n</domain>\n`;
    const src = i440 ? fs.readFileSync(path.join(CORPUS, i440), 'utf8') : minimal('pc-i440fx-8.0');
    expect(() => attachHostdevs(src, 'v', gpu())).toThrow(/not q35.*/);
    const half = minimal('q35', "    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source>\n        <address domain='0x0000' bus='0x81' slot='0x00' function='0x1'/>\n      </source>\n    </hostdev>\n");
    try {
      attachHostdevs(half, 'v', gpu());
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(PreconditionError);
      expect((e as PreconditionError).problems[0].message).toMatch(/already has 81:00.1 but not 81:00.0, 81:00.2, 81:00.3/);
    }
    expect(() => attachHostdevs('<domain><name>x</oops></domain>', 'v', gpu())).toThrow(/is not a libvirt domain XML/);
  });

  it('indents new elements like their siblings in a minimal domain', () => {
    const xml = "<domain type='kvm'>\n  <name>v</name>\n  <os>\n    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>\n  </os>\n  <devices>\n    <controller type='pci' index='0' model='pcie-root'/>\n    <memballoon model='virtio'/>\n  </devices>\n</domain>\n";
    const r = attachHostdevs(xml, 'v', gpu().slice(0, 2));
    expect(r.xml).toContain('<controller type="pci" index="0" model="pcie-root"/>\n    <controller type="pci" index="1" model="pcie-root-port"/>\n    <memballoon');
    expect(r.xml).toContain('\n    <hostdev mode="subsystem" type="pci" managed="yes">\n      <driver name="vfio"/>\n      <source>\n        <address domain="0x0000" bus="0x81" slot="0x00" function="0x0"/>\n      </source>\n      <address type="pci" domain="0x0000" bus="0x01" slot="0x00" function="0x0" multifunction="on"/>\n    </hostdev>');
    expect(r.xml.endsWith('  </devices>\n</domain>')).toBe(true);
    expect(r.warnings.join()).toMatch(/virtio memory balloon/);
  });
});
