import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLspci } from '../helpers/lspci-import.js';
import { CORPUS_DIR, FIXTURE_DIR, FIXTURE_DUMPS, renderFixture, toFixture } from './fixtures.js';

// A hand-written dump in the lspci -vvnn layout (tabs, as lspci prints).
const SAMPLE = [
  'user@host:~$ sudo lspci -vvnn',
  '00:01.0 Host bridge [0600]: Advanced Micro Devices, Inc. [AMD] Starship/Matisse PCIe Dummy Host Bridge [1022:1482]',
  '\tStatus: Cap- 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
  '\tIOMMU group: 0',
  '',
  '00:01.1 PCI bridge [0604]: Advanced Micro Devices, Inc. [AMD] Starship/Matisse GPP Bridge [1022:1483] (prog-if 00 [Normal decode])',
  '\tSubsystem: Advanced Micro Devices, Inc. [AMD] Starship/Matisse GPP Bridge [1022:1453]',
  '\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
  '\tIOMMU group: 1',
  '\tBus: primary=00, secondary=01, subordinate=01, sec-latency=0',
  '\tCapabilities: [58] Express (v2) Root Port (Slot+), MSI 00',
  '\t\tDevCap:\tMaxPayload 512 bytes, PhantFunc 0',
  '\t\t\tExtTag+ RBE+',
  '\t\tDevCtl:\tCorrErr+ NonFatalErr+ FatalErr+ UnsupReq+',
  '\t\t\tRlxdOrd+ ExtTag+ PhantFunc- AuxPwr- NoSnoop+ FLReset+',
  '\tCapabilities: [2a0 v1] Access Control Services',
  '\t\tACSCap:\tSrcValid+ TransBlk+ ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans+',
  '\t\tACSCtl:\tSrcValid+ TransBlk- ReqRedir+ CmpltRedir+ UpstreamFwd+ EgressCtrl- DirectTrans-',
  '\tKernel driver in use: pcieport',
  '',
  '01:00.0 VGA compatible controller [0300]: NVIDIA Corporation TU106 [GeForce RTX 2070] [10de:1f02] (rev a1) (prog-if 00 [VGA controller])',
  '\tSubsystem: ZOTAC International (MCO) Ltd. Device [19da:2503]',
  '\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
  '\tIOMMU group: 2',
  '\tCapabilities: [78] Express (v2) Legacy Endpoint, MSI 00',
  '\t\tDevCap:\tMaxPayload 256 bytes, PhantFunc 0, Latency L0s unlimited, L1 <64us',
  '\t\t\tExtTag+ AttnBtn- AttnInd- PwrInd- RBE+ FLReset+',
  '\t\tDevCtl:\tCorrErr- NonFatalErr- FatalErr- UnsupReq-',
  '\t\t\tRlxdOrd+ ExtTag+ PhantFunc- AuxPwr- NoSnoop- FLReset-',
  '\tKernel driver in use: vfio-pci',
  '',
  '01:00.1 Audio device [0403]: NVIDIA Corporation TU106 High Definition Audio Controller [10de:10f9] (rev a1)',
  '\tStatus: Cap+ 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- <PERR- INTx-',
  '\tIOMMU group: 2',
  '\tCapabilities: [78] Express (v2) Endpoint, MSI 00',
  '\t\tDevCap:\tMaxPayload 256 bytes, PhantFunc 0, Latency L0s unlimited, L1 <64us',
  '\t\t\tExtTag+ AttnBtn- AttnInd- PwrInd- RBE+ FLReset- SlotPowerLimit 75W',
  '\t\tDevCtl:\tCorrErr- NonFatalErr- FatalErr- UnsupReq-',
  '\t\t\tRlxdOrd+ ExtTag+ PhantFunc- AuxPwr- NoSnoop+ FLReset+',
  '',
].join('\n');

describe('lspci import: fields', () => {
  const r = parseLspci(SAMPLE, 'sample');
  const byAddr = new Map(r.host!.pci.map((d) => [d.addr, d]));

  it('converts a -vvnn dump with groups and full capabilities', () => {
    expect(r.problems).toEqual([]);
    expect(r.capabilities).toBe('full');
    expect(r.ids && r.groups && !r.fragment).toBe(true);
    expect(r.host!.pci.map((d) => d.addr)).toEqual(['0000:00:01.0', '0000:00:01.1', '0000:01:00.0', '0000:01:00.1']);
    expect(r.host!.iommu).toBe('amd');
  });
  it('reads IDs, class with prog-if, revision and subsystem from the header and Subsystem lines', () => {
    expect(byAddr.get('0000:01:00.0')).toMatchObject({ id: '10de:1f02', class: 0x030000, rev: 0xa1, subsys: '19da:2503' });
    expect(byAddr.get('0000:00:01.1')).toMatchObject({ id: '1022:1483', class: 0x060400, subsys: '1022:1453' });
  });
  it('reads port types; no Express capability is conventional PCI', () => {
    expect(byAddr.get('0000:00:01.0')!.pcie).toBeNull();
    expect(byAddr.get('0000:00:01.1')!.pcie).toBe('root-port');
    expect(byAddr.get('0000:01:00.0')!.pcie).toBe('legacy-endpoint');
    expect(byAddr.get('0000:01:00.1')!.pcie).toBe('endpoint');
  });
  it('takes FLR from DevCap only, not from the DevCtl "initiate FLR" bit', () => {
    expect(byAddr.get('0000:01:00.0')!.flr).toBe(true);
    expect(byAddr.get('0000:01:00.1')!.flr).toBe(false);
    expect(byAddr.get('0000:00:01.1')!.flr).toBe(false);
  });
  it('reads ACS capability and control bits', () => {
    // cap SV TB RR CR UF DT = 0x5f; ctrl SV RR CR UF = 0x1d
    expect(byAddr.get('0000:00:01.1')!.acs).toEqual({ cap: 0x5f, ctrl: 0x1d });
    expect(byAddr.get('0000:01:00.0')!.acs).toBeNull();
  });
  it('rebuilds the parent tree from secondary bus numbers, and keeps groups and drivers as data', () => {
    expect(byAddr.get('0000:01:00.0')!.parent).toBe('0000:00:01.1');
    expect(byAddr.get('0000:01:00.1')!.parent).toBe('0000:00:01.1');
    expect(byAddr.get('0000:00:01.1')!.parent).toBeUndefined();
    expect(r.host!.pci.map((d) => d.group)).toEqual([0, 1, 2, 2]);
    expect(byAddr.get('0000:01:00.0')!.driver).toBe('vfio-pci');
    expect(byAddr.get('0000:01:00.1')!.driver).toBeNull();
  });
  it('marks a non-root capture (<access denied>) as short config for every device', () => {
    const denied = SAMPLE.replace(/\tCapabilities: \[[^\n]*(\n\t\t[^\n]*)*/g, '\tCapabilities: <access denied>');
    const d = parseLspci(denied, 'denied');
    expect(d.capabilities).toBe('denied');
    expect(d.host!.pci.every((p) => p.config === 'short' && p.acs === undefined && p.pcie === undefined)).toBe(true);
  });
  it('reads the numeric -n header form and domain-prefixed addresses', () => {
    const n = parseLspci('0000:00:16.0 0780: 8086:8d3a (rev 05)\n    Subsystem: 103c:212a\n    Capabilities: <access denied>\n    IOMMU group: 39\n', 'n');
    expect(n.host!.pci[0]).toMatchObject({ addr: '0000:00:16.0', id: '8086:8d3a', class: 0x078000, rev: 5, subsys: '103c:212a', group: 39 });
    expect(n.fragment).toBe(true);
  });
  it('refuses dumps without IDs or without capability registers, saying why', () => {
    const v = parseLspci('00:01.0 PCI bridge: Intel Corporation 6th-10th Gen Core Processor PCIe Controller (x16) (rev 05)\n\tFlags: bus master, fast devsel, latency 0, IRQ 123, IOMMU group 2\n\tCapabilities: [a0] Express Root Port (Slot+), IntMsgNum 0\n', 'v');
    expect(v.host).toBeNull();
    expect(v.devices[0].group).toBe(2);
    expect(v.problems.join('\n')).toMatch(/without -nn/);
    expect(v.problems.join('\n')).toMatch(/lspci -v, not -vv/);
  });
});

const corpusPresent = fs.existsSync(path.join(CORPUS_DIR, 'A_lspci'));
if (!corpusPresent) console.log(`corpus not found at ${CORPUS_DIR}: checking fixtures against their sources is skipped (the fixtures themselves are still tested)`);

describe.skipIf(!corpusPresent)('lspci import: the shared corpus', () => {
  const read = (name: string) => parseLspci(fs.readFileSync(path.join(CORPUS_DIR, 'A_lspci', `${name}.txt`), 'utf8'), `A_lspci/${name}.txt`);

  for (const name of FIXTURE_DUMPS) {
    it(`${name}: the committed fixture is what the importer derives from the corpus`, () => {
      const text = renderFixture(toFixture(read(name)));
      const file = path.join(FIXTURE_DIR, `${name}.json`);
      if (process.env.UPDATE_CORPUS_FIXTURES === '1') fs.writeFileSync(file, text);
      expect(fs.existsSync(file), `${file} missing: run with UPDATE_CORPUS_FIXTURES=1`).toBe(true);
      expect(text).toBe(fs.readFileSync(file, 'utf8'));
    });
  }

  it('every dump that is not a fixture is refused or a single-device fragment', () => {
    const rest = fs.readdirSync(path.join(CORPUS_DIR, 'A_lspci')).map((f) => f.replace(/\.txt$/, '')).filter((n) => !(FIXTURE_DUMPS as readonly string[]).includes(n));
    for (const name of rest) {
      const r = read(name);
      expect(r.problems.length > 0 || r.fragment, `${name} converts cleanly: add it to FIXTURE_DUMPS`).toBe(true);
    }
  });
  it('lspci -v captures (no -nn, no registers) are refused with both reasons', () => {
    for (const name of ['sergeyklay_1', 'asokolsky_1']) {
      const r = read(name);
      expect(r.capabilities).toBe('names-only');
      expect(r.groups).toBe(true);
      expect(r.problems.some((p) => p.includes('without -nn'))).toBe(true);
      expect(r.problems.some((p) => p.includes('not -vv'))).toBe(true);
    }
    // The iGPU of the Latitude 7490 has no group in the Flags line; everything else has one.
    const a = read('asokolsky_1');
    expect(a.devices.filter((d) => d.group === null).map((d) => d.addr)).toEqual(['0000:00:02.0']);
  });
  it('single-device captures parse, but are fragments', () => {
    const root = read('chestergillon_1');
    expect(root.fragment).toBe(true);
    expect(root.host!.pci[0]).toMatchObject({ addr: '0000:00:01.1', id: '1022:15d3', pcie: 'root-port', group: 2 });
    expect(root.host!.pci[0].acs).toMatchObject({ cap: expect.any(Number), ctrl: expect.any(Number) });
    const mei = read('chestergillon_3');
    expect(mei.capabilities).toBe('denied');
    expect(mei.host!.pci[0]).toMatchObject({ id: '8086:8d3a', config: 'short', group: 39 });
  });
  it('the mail-archive paste is refused', () => {
    expect(read('kernelbugzilla_1').problems.join(' ')).toMatch(/quoted-printable/);
  });
});
