// Turns an `lspci -vvnn`-style dump (as people paste it into bug reports and
// hw-probe uploads) into a FakeHost description for buildFakeHost().
//
// What is read, and from where:
//   header line     address, class [cccc], IDs [vvvv:dddd], (rev xx), (prog-if xx)
//                   also the numeric form `00:16.0 0780: 8086:8d3a (rev 05)` (lspci -n)
//   Subsystem:      subsystem IDs when shown as [vvvv:dddd] (or bare vvvv:dddd with -n)
//   Express (vN) …  PCIe port type; no Express capability = conventional PCI
//   DevCap: … FLReset+ / AFCap: … FLR+   function-level reset
//   ACSCap:/ACSCtl: ACS capability and control bits
//   Bus: primary=…, secondary=…, subordinate=…   rebuilds the parent tree
//   Kernel driver in use:
//   IOMMU group: N  (or `Flags: …, IOMMU group N` in lspci -v) — the kernel's group, kept as data
//   Capabilities: <access denied>   lspci ran without root → config 'short'
//
// A dump that cannot describe a host faithfully is not converted: `problems`
// says why (no vendor:device IDs, capability registers not shown, a mangled
// paste). Nothing is invented: a fact the dump does not show stays unset.

import type { PcieType } from '../../src/model/config-space.js';
import { ACS } from '../../src/model/config-space.js';
import type { FakeHost, FakePci } from './fake-host.js';

export interface LspciDevice {
  addr: string;
  classCode: number | null;
  vendor: string | null;
  device: string | null;
  subsys: string | null;
  rev: number | null;
  /** Status: Cap+ / Cap- (null when the Status line is absent, e.g. lspci -v). */
  capList: boolean | null;
  capsDenied: boolean;
  /** Capability headers were listed ("Capabilities: [xx] …"). */
  capsListed: boolean;
  /** PCIe register detail was shown (DevCap:), i.e. -vv. */
  pcieDetail: boolean;
  pcie: PcieType | null | undefined;
  acsListed: boolean;
  acs: { cap: number; ctrl: number } | null;
  flr: boolean;
  bus: { primary: number; secondary: number; subordinate: number } | null;
  driver: string | null;
  group: number | null;
}

export interface LspciImport {
  source: string;
  devices: LspciDevice[];
  /** What the dump shows: full capability registers, denied (non-root), names only (lspci -v). */
  capabilities: 'full' | 'denied' | 'names-only' | 'none';
  ids: boolean;
  groups: boolean;
  /** Single-device capture (lspci -s): topology and the rest of each group are not in the dump. */
  fragment: boolean;
  /** Reasons the dump cannot be turned into a faithful host; empty = `host` is usable. */
  problems: string[];
  /** Facts worth knowing that do not prevent conversion. */
  notes: string[];
  host: FakeHost | null;
}

const HEADER = /^(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-1][0-9a-f])\.([0-7])\s+(.*)$/i;

const PCIE_TYPES: [RegExp, PcieType][] = [
  [/^Root Port\b/, 'root-port'],
  [/^Upstream Port\b/, 'upstream-port'],
  [/^Downstream Port\b/, 'downstream-port'],
  [/^Legacy Endpoint\b/, 'legacy-endpoint'],
  [/^Endpoint\b/, 'endpoint'],
  [/^Root Complex Integrated Endpoint\b/, 'rc-integrated-endpoint'],
  [/^Root Complex Event Collector\b/, 'rc-event-collector'],
  [/^PCI-Express to PCI\/PCI-X Bridge\b/, 'pcie-to-pci-bridge'],
  [/^PCI\/PCI-X to PCI-Express Bridge\b/, 'pci-to-pcie-bridge'],
];

const ACS_NAMES: Record<string, number> = {
  SrcValid: ACS.SV,
  TransBlk: ACS.TB,
  ReqRedir: ACS.RR,
  CmpltRedir: ACS.CR,
  UpstreamFwd: ACS.UF,
  EgressCtrl: ACS.EC,
  DirectTrans: ACS.DT,
};

function acsBits(text: string): number {
  let v = 0;
  for (const m of text.matchAll(/([A-Za-z]+)([+-])/g)) if (m[2] === '+' && ACS_NAMES[m[1]] !== undefined) v |= ACS_NAMES[m[1]];
  return v;
}

function parseHeader(rest: string): Pick<LspciDevice, 'classCode' | 'vendor' | 'device' | 'rev'> {
  const rev = /\(rev ([0-9a-f]{2})\)/i.exec(rest);
  const progIf = /\(prog-if ([0-9a-f]{2})/i.exec(rest);
  const out = { classCode: null as number | null, vendor: null as string | null, device: null as string | null, rev: rev ? parseInt(rev[1], 16) : null };
  // lspci -n: "0780: 8086:8d3a (rev 05)"
  const numeric = /^([0-9a-f]{4}): ([0-9a-f]{4}):([0-9a-f]{4})\b/i.exec(rest);
  if (numeric) {
    out.classCode = (parseInt(numeric[1], 16) << 8) | (progIf ? parseInt(progIf[1], 16) : 0);
    out.vendor = numeric[2].toLowerCase();
    out.device = numeric[3].toLowerCase();
    return out;
  }
  // lspci -nn: "VGA compatible controller [0300]: NVIDIA … [10de:1f02] (rev a1) (prog-if 00 [VGA controller])"
  const cls = /^[^[]*?\[([0-9a-f]{4})\]: (.*)$/i.exec(rest);
  if (!cls) return out;
  out.classCode = (parseInt(cls[1], 16) << 8) | (progIf ? parseInt(progIf[1], 16) : 0);
  const tail = cls[2].replace(/\s*\((?:rev|prog-if) .*$/, '');
  const ids = [...tail.matchAll(/\[([0-9a-f]{4}):([0-9a-f]{4})\]/gi)].pop();
  if (ids) {
    out.vendor = ids[1].toLowerCase();
    out.device = ids[2].toLowerCase();
  }
  return out;
}

/** Parse the text of one dump. `source` names the corpus file (kept in fixtures). */
export function parseLspci(text: string, source: string): LspciImport {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const problems: string[] = [];
  const notes: string[] = [];
  if (/=3D|=\n/.test(text)) problems.push('the paste is quoted-printable encoded and line-wrapped (mail archive); lines cannot be attributed reliably');

  const devices: LspciDevice[] = [];
  let cur: LspciDevice | null = null;
  let key: string | null = null; // the register line a continuation line belongs to
  let inAcs = false;
  for (const raw of lines) {
    const h = HEADER.exec(raw);
    if (h && !/^\s/.test(raw)) {
      const domain = (h[1] ?? '0000').toLowerCase().padStart(4, '0');
      const addr = `${domain}:${h[2].toLowerCase()}:${h[3].toLowerCase()}.${h[4]}`;
      cur = {
        addr,
        ...parseHeader(h[5]),
        subsys: null,
        capList: null,
        capsDenied: false,
        capsListed: false,
        pcieDetail: false,
        pcie: undefined,
        acsListed: false,
        acs: null,
        flr: false,
        bus: null,
        driver: null,
        group: null,
      };
      devices.push(cur);
      key = null;
      inAcs = false;
      continue;
    }
    if (!cur || !raw.trim()) continue;
    const line = raw.trim();
    const k = /^([A-Za-z][A-Za-z0-9]*(?: [a-z]+)*):(?:\s|$)/.exec(line);
    if (k) key = k[1];
    if (/^Capabilities: /.test(line)) {
      inAcs = false;
      if (/<access denied>/.test(line)) {
        cur.capsDenied = true;
        continue;
      }
      cur.capsListed = true;
      const ex = /^Capabilities: \[[0-9a-f]+(?: v\d+)?\] Express (?:\(v\d+\) )?(.*)$/i.exec(line);
      if (ex) {
        const t = PCIE_TYPES.find(([re]) => re.test(ex[1]));
        if (!t) problems.push(`${cur.addr}: unknown PCIe port type "${ex[1]}"`);
        else cur.pcie = t[1];
      }
      if (/\] Access Control Services/.test(line)) {
        cur.acsListed = true;
        inAcs = true;
      }
      continue;
    }
    if (key === 'Status' && /^Status: /.test(line) && cur.capList === null) {
      const cap = /\bCap([+-])/.exec(line);
      if (cap) cur.capList = cap[1] === '+';
      continue;
    }
    if (/^Subsystem: /.test(line)) {
      const ids = [...line.matchAll(/\[([0-9a-f]{4}):([0-9a-f]{4})\]/gi)].pop() ?? /^Subsystem: ([0-9a-f]{4}):([0-9a-f]{4})$/i.exec(line);
      if (ids) cur.subsys = `${ids[1].toLowerCase()}:${ids[2].toLowerCase()}`;
      continue;
    }
    if (key === 'DevCap') {
      cur.pcieDetail = true;
      if (/\bFLReset\+/.test(line)) cur.flr = true;
    }
    if (key === 'AFCap' && /\bFLR\+/.test(line)) cur.flr = true;
    if (inAcs && key === 'ACSCap' && /^ACSCap:/.test(line)) {
      cur.acs = { cap: acsBits(line.slice(7)), ctrl: cur.acs?.ctrl ?? 0 };
      continue;
    }
    if (inAcs && key === 'ACSCtl' && /^ACSCtl:/.test(line)) {
      cur.acs = { cap: cur.acs?.cap ?? 0, ctrl: acsBits(line.slice(7)) };
      continue;
    }
    const bus = /^Bus: primary=([0-9a-f]{2}), secondary=([0-9a-f]{2}), subordinate=([0-9a-f]{2})/i.exec(line);
    if (bus) {
      cur.bus = { primary: parseInt(bus[1], 16), secondary: parseInt(bus[2], 16), subordinate: parseInt(bus[3], 16) };
      continue;
    }
    const drv = /^Kernel driver in use: (\S+)/.exec(line);
    if (drv) {
      cur.driver = drv[1];
      continue;
    }
    const grp = /^IOMMU group: (\d+)$/.exec(line) ?? (/^Flags: /.test(line) ? /\bIOMMU group (\d+)\b/.exec(line) : null);
    if (grp) cur.group = parseInt(grp[1], 10);
  }

  const ids = devices.length > 0 && devices.every((d) => d.vendor && d.device && d.classCode !== null);
  const groups = devices.some((d) => d.group !== null);
  const anyDenied = devices.some((d) => d.capsDenied);
  const anyListed = devices.some((d) => d.capsListed);
  const namesOnly = devices.some((d) => d.pcie != null && !d.pcieDetail) || devices.some((d) => d.acsListed && !d.acs);
  const capabilities: LspciImport['capabilities'] = anyDenied ? 'denied' : !anyListed ? 'none' : namesOnly ? 'names-only' : 'full';
  const fragment = devices.length === 1;

  if (!devices.length) problems.push('no device header lines found');
  if (devices.length && !ids) problems.push('no [vendor:device] IDs and class codes on the header lines (lspci without -nn): device-specific quirks cannot be matched and no sysfs vendor/device/class can be written');
  if (capabilities === 'names-only') problems.push('capability registers are not shown (lspci -v, not -vv): PCIe port types are named but ACS control bits are not');
  if (capabilities === 'none' && devices.some((d) => d.capList === null)) problems.push('no device detail at all (plain lspci -nn): no capabilities, bridges or groups');
  if (anyDenied && devices.some((d) => d.capList !== false && !d.capsDenied)) notes.push('mixed capture: some devices show capabilities, others <access denied>');
  if (fragment) notes.push(`single-device capture: the rest of the topology and of group ${devices[0].group ?? '(none)'} is not in the dump`);

  // Rebuild the tree: a device on bus B hangs below the bridge whose secondary bus is B.
  const bridgeOf = new Map<string, string>();
  for (const d of devices) if (d.bus) bridgeOf.set(`${d.addr.slice(0, 4)}:${d.bus.secondary}`, d.addr);
  const busOfDev = (a: string) => `${a.slice(0, 4)}:${parseInt(a.slice(5, 7), 16)}`;
  const orphanBuses = new Set<string>();
  for (const d of devices) {
    const b = busOfDev(d.addr);
    if (!bridgeOf.has(b) && parseInt(d.addr.slice(5, 7), 16) !== 0) orphanBuses.add(d.addr.slice(0, 7));
  }
  if (orphanBuses.size && !fragment) notes.push(`no bridge in the dump leads to bus(es) ${[...orphanBuses].join(', ')}: treated as root buses`);

  let host: FakeHost | null = null;
  if (!problems.length) {
    const full = capabilities === 'full' || (capabilities === 'none' && devices.every((d) => d.capList === false));
    const pci: FakePci[] = devices.map((d) => {
      const row: FakePci = { addr: d.addr, id: `${d.vendor}:${d.device}`, class: d.classCode! };
      if (d.subsys) row.subsys = d.subsys;
      if (d.rev !== null) row.rev = d.rev;
      const parent = bridgeOf.get(busOfDev(d.addr));
      if (parent && parent !== d.addr) row.parent = parent;
      if (full) {
        row.pcie = d.pcie ?? null;
        row.acs = d.acs;
        row.flr = d.flr;
      } else {
        row.config = 'short';
      }
      row.driver = d.driver;
      if (d.group !== null) row.group = d.group;
      return row;
    });
    const hostVendor = devices.find((d) => d.addr.endsWith(':00:00.0'))?.vendor ?? devices[0].vendor;
    const cpu = hostVendor === '1022' ? 'amd' : 'intel';
    host = { pci, cpu: { vendor: cpu }, iommu: groups ? cpu : null };
  }
  return { source, devices, capabilities, ids, groups, fragment, problems, notes, host };
}
