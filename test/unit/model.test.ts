import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ACS, acsFlagsEnabled, acsMissing, parseConfigSpace } from '../../src/model/config-space.js';
import { comparePciAddress, parsePciAddress, shortAddress } from '../../src/model/pci-address.js';
import { parsePciIdsLazily, pciIdsVendorBlocks } from '../../src/host/pci-ids.js';
import { joinRelative } from '../../src/host/root.js';
import { buildFakeHost } from '../helpers/fake-host.js';

describe('PCI addresses', () => {
  it('normalises short and long forms, wide domains', () => {
    expect(parsePciAddress('01:00.0')).toBe('0000:01:00.0');
    expect(parsePciAddress('0000:0A:1f.7')).toBe('0000:0a:1f.7');
    expect(parsePciAddress('10000:02:05.0')).toBe('10000:02:05.0');
    expect(shortAddress('0000:01:00.0')).toBe('01:00.0');
  });
  it('rejects malformed addresses', () => {
    for (const bad of ['1:00.0', '01:20.0', '01:00.8', '0000:01:00', 'zz:00.0', '', '01:00.0 ']) {
      if (bad.trim() === '01:00.0') continue;
      expect(parsePciAddress(bad)).toBeNull();
    }
  });
  it('round-trips every valid address and orders numerically', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 7 }), (d, b, s, f) => {
        const text = `${d.toString(16).padStart(4, '0')}:${b.toString(16).padStart(2, '0')}:${s.toString(16).padStart(2, '0')}.${f}`;
        expect(parsePciAddress(text.toUpperCase())).toBe(text);
      }),
    );
    expect(['0000:0b:00.0', '0000:02:00.0', '0000:0a:00.1'].sort(comparePciAddress)).toEqual(['0000:02:00.0', '0000:0a:00.1', '0000:0b:00.0']);
  });
});

describe('config space', () => {
  it('parses what the fake host writes: port type, FLR, ACS, multifunction', () => {
    const root = buildFakeHost({
      iommu: 'intel',
      pci: [
        { addr: '00:1c.0', id: '8086:a190', class: 0x060400, pcie: 'root-port', acs: { cap: 0x5f, ctrl: 0x15 }, group: 0 },
        { addr: '01:00.0', id: '10de:2204', class: 0x030000, parent: '00:1c.0', flr: true, group: 1 },
        { addr: '01:00.1', id: '10de:1aef', class: 0x040300, parent: '00:1c.0', group: 1 },
      ],
    });
    const cfg = (p: string) => parseConfigSpace(fs.readFileSync(path.join(root, p)))!;
    const rp = cfg('sys/devices/pci0000:00/0000:00:1c.0/config');
    expect(rp.caps).toMatchObject({ pcie: true, pcieType: 'root-port', acs: { cap: 0x5f, ctrl: 0x15 } });
    expect(rp.header.secondaryBus).toBe(1);
    expect(acsFlagsEnabled(rp.caps!.acs)).toBe(false);
    expect(acsMissing(rp.caps!.acs!)).toEqual(['CR']);
    const gpu = cfg('sys/devices/pci0000:00/0000:00:1c.0/0000:01:00.0/config');
    expect(gpu.header).toMatchObject({ vendor: 0x10de, device: 0x2204, classCode: 0x030000, multifunctionBit: true });
    expect(gpu.caps).toMatchObject({ pcieType: 'endpoint', flr: true, acs: null });
    fs.rmSync(root, { recursive: true, force: true });
  });
  it('treats ACS features the device lacks as hard-wired on, except egress control', () => {
    expect(acsFlagsEnabled({ cap: ACS.SV | ACS.RR, ctrl: ACS.SV | ACS.RR })).toBe(true);
    expect(acsFlagsEnabled({ cap: 0x5f, ctrl: 0x1d })).toBe(true);
    expect(acsFlagsEnabled({ cap: 0x5f, ctrl: 0x0d })).toBe(false);
    expect(acsFlagsEnabled(null)).toBe(false);
  });
  it('never throws on arbitrary bytes and returns null below 64 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4096 }), (bytes) => {
        const p = parseConfigSpace(bytes);
        if (bytes.length < 64) expect(p).toBeNull();
        else expect(p!.caps === null).toBe(bytes.length <= 64);
      }),
      { numRuns: 300 },
    );
  });
  it('stops capability walks on loops (TTL) instead of hanging', () => {
    const b = new Uint8Array(4096);
    b[6] = 0x10;
    b[0x34] = 0x40;
    b[0x40] = 0x10;
    b[0x41] = 0x40; // points at itself
    new DataView(b.buffer).setUint32(0x100, (0x000d | (1 << 16) | (0x100 << 20)) >>> 0, true); // ext cap loop
    const p = parseConfigSpace(b)!;
    expect(p.caps!.capIds.length).toBe(48);
    expect(p.caps!.extCapIds.length).toBe(480);
  });
});

describe('pci.ids lookups', () => {
  const text = '# comment\n10de  NVIDIA Corporation\n\t2204  GA102 [GeForce RTX 3090]\n\t\t3842 3987  subsystem\n\t1aef  GA102 High Definition Audio Controller\n1002  Advanced Micro Devices, Inc. [AMD/ATI]\n\t73bf  Navi 21\nC 03  Display controller\n\t00  VGA compatible controller\n\t02  3D controller\n';
  const names = parsePciIdsLazily(text, 'test');
  it('names vendors, devices and classes', () => {
    expect(names.vendor('10DE')).toBe('NVIDIA Corporation');
    expect(names.device('10de', '1aef')).toBe('GA102 High Definition Audio Controller');
    expect(names.device('1002', '73bf')).toBe('Navi 21');
    expect(names.className('030200')).toBe('3D controller');
  });
  it('returns null for unknown IDs and does not confuse subsystem lines for devices', () => {
    expect(names.device('10de', '3842')).toBeNull();
    expect(names.vendor('abcd')).toBeNull();
    expect(parsePciIdsLazily('', null).device('10de', '2204')).toBeNull();
  });
  it('reads the real system pci.ids when present', () => {
    const real = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids'].find((p) => fs.existsSync(p));
    if (!real) return console.log('skipped: no system pci.ids on this machine');
    const n = parsePciIdsLazily(fs.readFileSync(real, 'latin1'), real);
    expect(n.vendor('8086')).toMatch(/Intel/);
    expect(n.device('10de', '2204')).toMatch(/3090/);
  });
});

describe('pci.ids looked up for the vendors present only', () => {
  const reader = (bytes: Buffer) => (buf: Buffer, pos: number) => bytes.copy(buf, 0, pos, Math.min(bytes.length, pos + buf.length));
  // Lines a pci.ids holds (and some it should not): vendors, devices, subsystems, comments, blank lines, classes, CRs.
  const hex4 = fc.constantFrom('10de', '1002', '8086', '1af4', 'abcd', '10DE');
  const line = fc.oneof(
    fc.tuple(hex4, fc.constantFrom('NVIDIA', ' Intel ', 'x')).map(([v, n]) => `${v}  ${n}`),
    fc.tuple(fc.constantFrom('2204', '1aef', '73bf', 'ABCD'), fc.constantFrom('GA102', 'Navi 21 ', '')).map(([d, n]) => `\t${d}  ${n}`),
    fc.constant('\t\t3842 3987  subsystem'),
    fc.constantFrom('# comment', '', '\r', 'C 03  Display controller', '\t00  VGA compatible controller', '10de', '10de NVIDIA'),
  );
  const file = fc.array(line, { maxLength: 40 }).map((ls) => ls.join('\n') + (ls.length % 2 ? '\n' : ''));
  it('answers exactly as the whole-file parser, whatever the chunk boundaries', () => {
    fc.assert(
      fc.property(file, fc.subarray(['10de', '1002', '8086', '1af4', 'abcd', '0000']), fc.integer({ min: 1, max: 64 }), (text, want, chunk) => {
        const whole = parsePciIdsLazily(text, 't');
        const part = parsePciIdsLazily(pciIdsVendorBlocks(reader(Buffer.from(text, 'latin1')), new Set(want), chunk), 't');
        for (const v of want) {
          expect(part.vendor(v)).toBe(whole.vendor(v));
          for (const d of ['2204', '1aef', '73bf', 'abcd', '3842']) expect(part.device(v, d)).toBe(whole.device(v, d));
        }
      }),
      { numRuns: 500 },
    );
  });
  it('on the real system pci.ids, decodes only the blocks of the vendors asked for', () => {
    const real = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids'].find((p) => fs.existsSync(p));
    if (!real) return console.log('skipped: no system pci.ids on this machine');
    const bytes = fs.readFileSync(real);
    const whole = parsePciIdsLazily(bytes.toString('latin1'), real);
    const blocks = pciIdsVendorBlocks(reader(bytes), new Set(['10de', '8086', '144d']), 4096);
    expect(blocks.length).toBeLessThan(bytes.length / 4);
    const part = parsePciIdsLazily(blocks, real);
    for (const [v, d] of [['10de', '2204'], ['10de', '1aef'], ['8086', '1901'], ['8086', 'a36d'], ['144d', 'a808'], ['10de', 'ffff']]) {
      expect(part.vendor(v)).toBe(whole.vendor(v));
      expect(part.device(v, d)).toBe(whole.device(v, d));
    }
  });
});

describe('relative link targets joined without path.resolve', () => {
  it('agree with path.posix.resolve wherever the fast form applies', () => {
    const seg = fc.constantFrom('sys', 'bus', 'pci', 'devices', '0000:00:01.0', '.', '..', '', 'a.b', '.hidden');
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 6 }), fc.array(seg, { minLength: 1, maxLength: 6 }), (l, t) => {
        const link = '/' + l.join('/');
        const target = t.join('/');
        const fast = joinRelative(link, target);
        if (fast !== null) expect(fast).toBe(path.posix.resolve(path.posix.dirname(link), target));
      }),
      { numRuns: 2000 },
    );
    expect(joinRelative('/sys/bus/pci/devices/0000:00:01.0', '../../../devices/pci0000:00/0000:00:01.0')).toBe('/sys/devices/pci0000:00/0000:00:01.0');
  });
});

describe('HostRoot', () => {
  it('resolves absolute symlinks inside the root, never on the live host', async () => {
    const { HostRoot } = await import('../../src/host/root.js');
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'vfiokit-root-'));
    fs.mkdirSync(path.join(dir, 'usr/lib'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'usr/lib/os-release'), 'ID=fixture\n');
    fs.symlinkSync('/usr/lib/os-release', path.join(dir, 'etc/os-release'));
    fs.symlinkSync('/usr/lib', path.join(dir, 'etc/lib-link'));
    const r = new HostRoot(dir);
    expect(r.tryReadText('/etc/os-release')).toBe('ID=fixture\n');
    expect(r.tryReadText('/etc/lib-link/os-release')).toBe('ID=fixture\n');
    expect(r.path('/etc/missing/file')).toBe(`${dir}/etc/missing/file`);
    expect(r.path('/../etc/os-release')).toBe(`${dir}/usr/lib/os-release`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
