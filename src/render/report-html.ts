// `vfiokit report` (pure): one self-contained HTML page about a host — the PCI
// topology as SVG with IOMMU groups coloured by verdict, the same data as an
// HTML table, the readiness check, applied transactions and their status, and
// what can be passed through with the commands to do it.
//
// Two parts: reportData() collects everything the page shows from the
// snapshot and the existing analyses (nothing is re-derived here), and
// renderReportHtml() renders it. The data also travels inside the page as
// JSON (<script type="application/json" id="vfiokit-data">), which the
// page's script reads for details, and which golden tests pin.
// No network: inline CSS and script only, and a Content-Security-Policy that
// forbids every fetch, so the page works from file:// and as an attachment.

import { shortAddress, slotOf } from '../model/pci-address.js';
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import type { CheckReport } from '../analysis/check.js';
import { chipsetFunctionKind, describeKind, isBridgeRole, type GroupsReport, type Verdict } from '../analysis/groups.js';
import type { StatusReport } from '../analysis/status.js';
import { deviceLabel } from './text.js';
import { REPORT_CSS } from './report-css.js';
import { REPORT_SCRIPT } from './report-script.js';

const REPORT_DATA_VERSION = 1;

interface ReportTransaction {
  txid: string;
  kind: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  summary: string[];
}

export interface ReportInput {
  snapshot: HostSnapshot;
  groups: GroupsReport;
  check: CheckReport;
  /** Status of the newest applied boot-time transaction (assembleStatus). */
  status: StatusReport;
  /** Every transaction under the root, oldest first. */
  transactions: ReportTransaction[];
  /** Transactions cut off by a crash (`vfiokit recover` finishes them). */
  interrupted: string[];
  /** Class code (6 hex digits) → name, from pci.ids. */
  classNames: Record<string, string>;
  /** When the page was made, ISO 8601 (passed in: the renderer reads no clock). */
  generatedAt: string;
}

/** Colour family of a verdict: what the page's legend and regions use. */
type VerdictTone = 'isolated' | 'own' | 'shares' | 'none';

const VERDICT_TONE: Record<Verdict, VerdictTone> = {
  isolated: 'isolated',
  'gpu-functions-only': 'own',
  'device-functions-only': 'own',
  shares: 'shares',
  'no-iommu': 'none',
};

const TONE_LABEL: Record<VerdictTone, string> = {
  isolated: 'isolated',
  own: "device's own functions only",
  shares: 'shares its group',
  none: 'no IOMMU group',
};

interface ReportDevice {
  address: string;
  short: string;
  ids: string;
  subsystem: string | null;
  name: string;
  class: string;
  className: string | null;
  kind: string;
  bridge: boolean;
  parent: string | null;
  depth: number;
  driver: string | null;
  vfio: boolean;
  group: number | null;
  verdict: Verdict;
  tone: VerdictTone;
  bootVga: boolean;
  /** Why the host needs this device (boot display, root disk, default-route NIC, firmware framebuffer). */
  hostNeeds: string[];
  resetMethods: string[] | null;
  flr: boolean | null;
  link: string | null;
  numaNode: number | null;
  rom: boolean;
  sriov: string | null;
  physfn: string | null;
  gpu: boolean;
  candidate: boolean;
}

interface ReportGroup {
  id: number;
  verdict: Verdict;
  tone: VerdictTone;
  explanation: string;
  devices: string[];
  sharesWith: string[];
}

interface ReportCandidate {
  address: string;
  name: string;
  group: number | null;
  verdict: Verdict;
  tone: VerdictTone;
  explanation: string;
  /** Other endpoints that go to the VM with it. */
  takesAlong: string[];
  hostNeeds: string[];
  commands: string[];
  note: string | null;
}

export interface ReportData {
  version: number;
  generatedAt: string;
  host: {
    root: string;
    os: string | null;
    kernel: string | null;
    cpu: string | null;
    iommu: string;
    cmdline: string | null;
  };
  devices: ReportDevice[];
  groups: ReportGroup[];
  candidates: ReportCandidate[];
  check: { ready: boolean; lines: CheckReport['lines'] };
  status: StatusReport;
  transactions: ReportTransaction[];
  interrupted: string[];
  prediction: { available: boolean; matchesKernel: boolean | null; differences: string[]; reason: string | null };
  warnings: string[];
}

const isGpu = (cls: string) => cls.startsWith('03');
const CANDIDATE_CLASS = /^(03|01|02|0c03|0403)/;

/** Devices in tree order (each bus's functions by address, then what is below each bridge), with depth. */
function treeOrder(devices: PciDevice[]): { dev: PciDevice; depth: number }[] {
  const byAddr = new Map(devices.map((d) => [d.address, d]));
  const children = new Map<string, PciDevice[]>();
  const roots: PciDevice[] = [];
  for (const d of devices) {
    if (d.parent && byAddr.has(d.parent)) {
      const list = children.get(d.parent);
      if (list) list.push(d);
      else children.set(d.parent, [d]);
    }
    else roots.push(d);
  }
  const out: { dev: PciDevice; depth: number }[] = [];
  const seen = new Set<string>();
  const walk = (list: PciDevice[], depth: number) => {
    for (const d of [...list].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0))) {
      if (seen.has(d.address)) continue;
      seen.add(d.address);
      out.push({ dev: d, depth });
      walk(children.get(d.address) ?? [], depth + 1);
    }
  };
  walk(roots, 1);
  return out;
}

function linkText(d: PciDevice): string | null {
  const l = d.link;
  if (!l || (!l.speed && !l.width)) return null;
  const now = `${l.speed ?? '?'} x${l.width ?? '?'}`;
  const max = l.maxSpeed || l.maxWidth ? ` (max ${l.maxSpeed ?? '?'} x${l.maxWidth ?? '?'})` : '';
  return now + max;
}

export function reportData(input: ReportInput): ReportData {
  const s = input.snapshot;
  const groupById = new Map(input.groups.groups.map((g) => [g.id, g]));
  const fb = new Map(s.boot.framebuffers.map((f) => [f.address, f.owner]));
  const hostNeeds = (d: PciDevice): string[] => {
    const out: string[] = [];
    if (d.bootVga) out.push('boot display');
    if (s.boot.rootStorage.includes(d.address)) out.push('root filesystem disk');
    if (s.boot.defaultRouteNics.includes(d.address)) out.push('default-route network card');
    const owner = fb.get(d.address);
    if (owner) out.push(`firmware framebuffer (${owner})`);
    return out;
  };
  const verdictOf = (d: PciDevice): Verdict => (d.iommuGroup !== null && groupById.has(d.iommuGroup) ? groupById.get(d.iommuGroup)!.verdict : 'no-iommu');
  const gpuSlots = new Set(s.pci.filter((d) => isGpu(d.class)).map((d) => slotOf(d.address)));
  const pciByAddress = new Map(s.pci.map((d) => [d.address, d]));
  const isCandidate = (d: PciDevice) =>
    !isBridgeRole(d) && CANDIDATE_CLASS.test(d.class) && !(d.class.startsWith('0403') && gpuSlots.has(slotOf(d.address))) && !(d.class.startsWith('0c03') && gpuSlots.has(slotOf(d.address)));

  const devices: ReportDevice[] = treeOrder(s.pci).map(({ dev: d, depth }) => {
    const verdict = verdictOf(d);
    return {
      address: d.address,
      short: shortAddress(d.address),
      ids: `${d.vendor}:${d.device}`,
      subsystem: d.subsystemVendor && d.subsystemDevice ? `${d.subsystemVendor}:${d.subsystemDevice}` : null,
      name: deviceLabel(d),
      class: d.class,
      className: input.classNames[d.class] ?? null,
      kind: describeKind(d),
      bridge: isBridgeRole(d),
      parent: d.parent,
      depth,
      driver: d.driver,
      vfio: d.driver === 'vfio-pci',
      group: d.iommuGroup,
      verdict,
      tone: VERDICT_TONE[verdict],
      bootVga: d.bootVga,
      hostNeeds: hostNeeds(d),
      resetMethods: d.resetMethods,
      flr: d.caps ? d.caps.flr : null,
      link: linkText(d),
      numaNode: d.numaNode,
      rom: d.hasRom,
      sriov: d.sriov ? `${d.sriov.numVfs} of ${d.sriov.totalVfs} virtual functions enabled` : null,
      physfn: d.physfn,
      gpu: isGpu(d.class),
      candidate: isCandidate(d),
    };
  });

  const groups: ReportGroup[] = input.groups.groups.map((g) => ({
    id: g.id,
    verdict: g.verdict,
    tone: VERDICT_TONE[g.verdict],
    explanation: g.explanation,
    devices: g.devices,
    sharesWith: g.sharesWith,
  }));

  const candidates: ReportCandidate[] = devices
    .filter((d) => d.candidate)
    .sort((a, b) => Number(b.gpu) - Number(a.gpu) || (a.address < b.address ? -1 : 1))
    .map((d) => {
      const g = d.group !== null ? groupById.get(d.group) : undefined;
      const endpoints = g ? g.members.filter((m) => m.role === 'endpoint' && m.address !== d.address) : [];
      const ownSlot = endpoints.filter((m) => slotOf(m.address) === slotOf(d.address)).map((m) => m.address);
      const foreign = endpoints.filter((m) => slotOf(m.address) !== slotOf(d.address)).map((m) => m.address);
      const needs = d.hostNeeds;
      const flags = [...foreign.map((f) => `--with ${shortAddress(f)}`), ...(d.bootVga ? ['--allow-boot-vga'] : [])];
      const bootFlags = [
        ...flags,
        ...(s.boot.rootStorage.includes(d.address) ? ['--allow-root-storage'] : []),
        ...(s.boot.defaultRouteNics.includes(d.address) ? ['--allow-default-nic'] : []),
      ];
      const vmFlags = flags;
      let note: string | null = null;
      let commands: string[] = [];
      const chipset = [d.address, ...endpoints.map((m) => m.address)].map((a) => pciByAddress.get(a)).filter((x): x is PciDevice => Boolean(x && chipsetFunctionKind(x.class)));
      if (!s.iommu.active || !g) note = 'the IOMMU is not active: fix the readiness check first, then run `vfiokit report` again';
      else if (chipset.length) note = `its IOMMU group holds ${chipset.map((c) => `${shortAddress(c.address)} (${chipsetFunctionKind(c.class)})`).join(', ')}, part of the host's chipset: vfiokit refuses to pass it through (--allow-chipset only knowingly)`;
      else {
        const sel = d.short;
        commands = [`vfiokit plan ${[sel, ...bootFlags].join(' ')}`, `sudo vfiokit apply ${[sel, ...bootFlags].join(' ')}`];
        if (d.gpu) commands.push(`vfiokit vm xml win11 --device ${[sel, ...vmFlags].join(' ')} > win11.xml`);
        if (foreign.length) note = `the whole IOMMU group goes to the VM: ${foreign.map(shortAddress).join(', ')} ${foreign.length === 1 ? 'goes' : 'go'} along`;
        if (needs.length) note = `${note ? note + '; ' : ''}the host needs it (${needs.join(', ')})`;
      }
      return {
        address: d.address,
        name: d.name,
        group: d.group,
        verdict: d.verdict,
        tone: d.tone,
        explanation: g ? g.explanation : 'no IOMMU group',
        takesAlong: [...ownSlot, ...foreign],
        hostNeeds: needs,
        commands,
        note,
      };
    });

  return {
    version: REPORT_DATA_VERSION,
    generatedAt: input.generatedAt,
    host: {
      root: s.root,
      os: s.os.prettyName,
      kernel: s.kernel.release,
      cpu: s.cpu.model,
      iommu: s.iommu.active ? `active (${s.iommu.vendor ?? 'unknown vendor'}, ${s.iommu.groups.length} groups)` : 'not active',
      cmdline: s.kernel.cmdline,
    },
    devices,
    groups,
    candidates,
    check: { ready: input.check.ready, lines: input.check.lines },
    status: input.status,
    transactions: input.transactions,
    interrupted: input.interrupted,
    prediction: {
      available: input.groups.prediction.available,
      matchesKernel: input.groups.prediction.matchesKernel,
      differences: input.groups.prediction.differences,
      reason: input.groups.prediction.reason,
    },
    warnings: s.warnings.map((w) => w.message),
  };
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const NEEDS_ESC = /[&<>"']/;
export const esc = (t: string): string => (NEEDS_ESC.test(t) ? t.replace(/[&<>"']/g, (c) => ESC[c]) : t);

/** JSON safe inside a <script> element (no `</script>`, no `<!--`, no U+2028/9 surprises). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const ROW = 24;
const INDENT = 20;
const NODE_W = 480;
const PAD = 8;

function renderSvg(data: ReportData): string {
  // Rows: one per root complex (host bridge domain:bus), then every function in tree order.
  type Row = { kind: 'rc'; label: string } | { kind: 'dev'; dev: ReportDevice };
  const rows: Row[] = [];
  let lastRc: string | null = null;
  for (const d of data.devices) {
    if (d.depth === 1) {
      const rc = d.address.slice(0, d.address.lastIndexOf(':'));
      if (rc !== lastRc) rows.push({ kind: 'rc', label: `root complex ${rc}` });
      lastRc = rc;
    }
    rows.push({ kind: 'dev', dev: d });
  }
  const maxDepth = data.devices.reduce((m, d) => Math.max(m, d.depth), 1);
  const width = PAD * 2 + maxDepth * INDENT + NODE_W + 150;
  const height = PAD * 2 + rows.length * ROW;
  const y = (i: number) => PAD + i * ROW;
  const rowOf = new Map<string, number>();
  rows.forEach((r, i) => r.kind === 'dev' && rowOf.set(r.dev.address, i));
  const groupById = new Map(data.groups.map((g) => [g.id, g]));

  const regions: string[] = [];
  // One band per contiguous run of rows in the same group.
  for (let i = 0; i < rows.length; ) {
    const r = rows[i];
    const gid = r.kind === 'dev' ? r.dev.group : null;
    if (gid === null) {
      i++;
      continue;
    }
    let j = i;
    while (j + 1 < rows.length && rows[j + 1].kind === 'dev' && (rows[j + 1] as { dev: ReportDevice }).dev.group === gid) j++;
    const g = groupById.get(gid);
    const tone = g ? g.tone : 'none';
    const title = g ? `IOMMU group ${gid}: ${g.explanation}` : `IOMMU group ${gid}`;
    regions.push(
      `<g class="region tone-${tone}" data-group="${gid}"><title>${esc(title)}</title><rect x="${PAD / 2}" y="${y(i) + 1}" width="${width - PAD}" height="${(j - i + 1) * ROW - 2}" rx="6"/>` +
        `<text class="glabel" x="${width - PAD - 6}" y="${y(i) + 16}" text-anchor="end">group ${gid}</text></g>`,
    );
    i = j + 1;
  }

  const links: string[] = [];
  const nodes: string[] = [];
  let rcRow = 0;
  rows.forEach((r, i) => {
    if (r.kind === 'rc') {
      rcRow = i;
      nodes.push(`<g class="node rc"><title>${esc(r.label)}</title><rect x="${PAD}" y="${y(i) + 3}" width="${NODE_W}" height="${ROW - 6}" rx="4"/><text x="${PAD + 8}" y="${y(i) + 16}">${esc(r.label)}</text></g>`);
      return;
    }
    const d = r.dev;
    const x = PAD + d.depth * INDENT;
    const pRow = d.parent !== null && rowOf.has(d.parent) ? rowOf.get(d.parent)! : rcRow;
    const px = PAD + (d.parent !== null && rowOf.has(d.parent) ? (rows[pRow] as { dev: ReportDevice }).dev.depth * INDENT : 0) + 8;
    links.push(`M${px} ${y(pRow) + ROW - 3}V${y(i) + ROW / 2}H${x}`);
    const flags = [d.vfio ? 'vfio' : '', d.hostNeeds.length ? 'needed' : '', d.bridge ? 'bridge' : ''].filter(Boolean).join(' ');
    const label = `${d.short} ${d.bridge && d.kind !== 'device' ? `${d.kind}: ` : ''}${d.name}${d.driver ? ` — ${d.driver}` : ''}`;
    const title = `${d.short} ${d.name}; ${d.kind}${d.className ? ` (${d.className})` : ''}; driver ${d.driver ?? 'none'}; ${d.group === null ? 'no IOMMU group' : `IOMMU group ${d.group}: ${TONE_LABEL[d.tone]}`}${d.hostNeeds.length ? `; the host needs it: ${d.hostNeeds.join(', ')}` : ''}`;
    nodes.push(
      `<g class="node dev tone-${d.tone}${flags ? ' ' + flags : ''}" data-kind="${esc(d.kind)}" data-address="${d.address}" tabindex="0" role="button"><title>${esc(title)}</title>` +
        `<rect x="${x}" y="${y(i) + 3}" width="${NODE_W}" height="${ROW - 6}" rx="4"/><text x="${x + 8}" y="${y(i) + 16}">${esc(label.length > 62 ? label.slice(0, 61) + '…' : label)}</text></g>`,
    );
  });
  return (
    `<svg id="topology" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-labelledby="topology-title">` +
    `<title id="topology-title">PCI topology: ${data.devices.length} functions, ${data.groups.length} IOMMU groups</title>` +
    `<g class="regions">${regions.join('')}</g><path class="links" d="${links.join('')}"/><g class="nodes">${nodes.join('')}</g></svg>`
  );
}

const searchText = (d: ReportDevice) => [d.address, d.short, d.ids, d.subsystem ?? '', d.name, d.driver ?? '', d.className ?? '', d.kind, d.group === null ? '' : `group ${d.group}`].join(' ').toLowerCase();

function cell(text: string | null | undefined, cls = ''): string {
  return `<td${cls ? ` class="${cls}"` : ''}>${text === null || text === undefined || text === '' ? '<span class="muted">—</span>' : esc(text)}</td>`;
}

function renderTable(data: ReportData): string {
  const rows = data.devices.map((d) => {
    const badges = [
      d.vfio ? '<span class="badge vfio">vfio-pci</span>' : '',
      d.bootVga ? '<span class="badge boot">boot VGA</span>' : '',
      ...d.hostNeeds.filter((n) => n !== 'boot display').map((n) => `<span class="badge needed">${esc(n)}</span>`),
    ].join('');
    return (
      `<tr class="dev tone-${d.tone}${d.hostNeeds.length ? ' needed' : ''}${d.bridge ? ' bridge' : ''}" data-address="${d.address}" data-candidate="${d.candidate ? 1 : 0}" data-search="${esc(searchText(d))}" tabindex="0">` +
      `<td class="addr" style="padding-left:${0.4 + (d.depth - 1) * 0.8}em"><button type="button" class="open" aria-label="details of ${esc(d.short)}">${esc(d.short)}</button></td>` +
      cell(d.name, 'name') +
      cell(d.className ?? d.class) +
      `<td class="driver${d.vfio ? ' is-vfio' : ''}">${d.driver ? esc(d.driver) : '<span class="muted">none</span>'}</td>` +
      `<td class="group"><span class="swatch tone-${d.tone}"></span>${d.group === null ? 'none' : d.group} <span class="verdict">${esc(TONE_LABEL[d.tone])}</span></td>` +
      `<td class="flags">${badges}</td>` +
      cell(d.resetMethods ? d.resetMethods.join(', ') : null) +
      cell(d.link) +
      cell(d.numaNode === null || d.numaNode < 0 ? null : String(d.numaNode)) +
      cell(d.rom ? 'yes' : 'no') +
      '</tr>'
    );
  });
  return (
    '<table id="devices"><caption>Every PCI function, in topology order</caption><thead><tr>' +
    ['address', 'device', 'class', 'driver', 'IOMMU group', 'host / flags', 'reset', 'link', 'NUMA', 'ROM'].map((h) => `<th scope="col">${h}</th>`).join('') +
    `</tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

function renderCandidates(data: ReportData): string {
  if (!data.candidates.length) return '<p class="muted">No GPU, storage, network, USB or audio endpoint on this host.</p>';
  return data.candidates
    .map(
      (c) =>
        `<article class="candidate tone-${c.tone}${c.hostNeeds.length ? ' needed' : ''}" data-address="${c.address}">` +
        `<h3><span class="swatch tone-${c.tone}"></span>${esc(shortAddress(c.address))} ${esc(c.name)}</h3>` +
        `<p><strong>${c.group === null ? 'no IOMMU group' : `group ${c.group}: ${esc(TONE_LABEL[c.tone])}`}</strong> — ${esc(c.explanation)}</p>` +
        (c.takesAlong.length ? `<p>Goes with: ${c.takesAlong.map((a) => esc(shortAddress(a))).join(', ')}</p>` : '') +
        (c.note ? `<p class="note">${esc(c.note)}</p>` : '') +
        (c.commands.length ? `<pre class="cmd">${c.commands.map(esc).join('\n')}</pre>` : '') +
        '</article>',
    )
    .join('');
}

const CHECK_MARK = { ok: 'ok', warn: 'warn', fail: 'FAIL' } as const;

function renderCheck(data: ReportData): string {
  const rows = data.check.lines.map(
    (l) => `<tr class="check-${l.status}"><td><span class="mark">${CHECK_MARK[l.status]}</span></td><td>${esc(l.title)}</td><td>${esc(l.detail)}</td><td>${l.fix && l.status !== 'ok' ? esc(l.fix) : ''}</td></tr>`,
  );
  return (
    `<p class="${data.check.ready ? 'ready' : 'not-ready'}">${data.check.ready ? 'Ready for passthrough.' : 'Not ready: fix the FAIL lines below.'}</p>` +
    `<table id="check"><thead><tr><th scope="col">result</th><th scope="col">check</th><th scope="col">found</th><th scope="col">fix</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

function renderStatusSection(data: ReportData): string {
  const out: string[] = [];
  if (data.interrupted.length) out.push(`<p class="not-ready">Interrupted transaction${data.interrupted.length > 1 ? 's' : ''} ${data.interrupted.map(esc).join(', ')}: run <code>sudo vfiokit recover</code>.</p>`);
  if (!data.transactions.length) out.push('<p class="muted">No vfiokit transaction on this host.</p>');
  else
    out.push(
      '<table id="transactions"><thead><tr><th scope="col">transaction</th><th scope="col">kind</th><th scope="col">state</th><th scope="col">applied</th><th scope="col">what</th></tr></thead><tbody>' +
        data.transactions
          .map((t) => `<tr><td>${esc(t.txid)}</td><td>${esc(t.kind)}</td><td>${esc(t.state)}</td><td>${esc(t.updatedAt)}</td><td>${t.summary.map(esc).join('<br>')}</td></tr>`)
          .join('') +
        '</tbody></table>',
    );
  const st = data.status;
  if (st.txid) {
    out.push(`<p class="${st.inEffect ? 'ready' : 'not-ready'}">Transaction ${esc(st.txid)} is ${st.inEffect ? 'in effect' : 'not in effect'}${st.rebootedSinceApply === false ? ' (the host has not been rebooted since it was applied)' : ''}.</p>`);
    out.push(
      '<table id="status"><thead><tr><th scope="col">what</th><th scope="col">observed</th><th scope="col">expected</th><th scope="col">likely cause</th></tr></thead><tbody>' +
        st.lines.map((l) => `<tr class="check-${l.ok ? 'ok' : 'fail'}"><td>${esc(l.subject)}</td><td>${esc(l.observed)}</td><td>${esc(l.expected)}</td><td>${l.cause ? esc(l.cause) : ''}</td></tr>`).join('') +
        '</tbody></table>',
    );
  }
  return out.join('');
}

export function renderReportHtml(input: ReportInput): string {
  return renderReportFromData(reportData(input));
}

export function renderReportFromData(data: ReportData): string {
  const h = data.host;
  const title = `vfiokit report — ${h.os ?? 'host'}${h.kernel ? `, ${h.kernel}` : ''}`;
  const legend = (['isolated', 'own', 'shares', 'none'] as VerdictTone[]).map((t) => `<li><span class="swatch tone-${t}"></span>${esc(TONE_LABEL[t])}</li>`).join('');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="color-scheme" content="light dark">
<title>${esc(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<header>
<h1>${esc(title)}</h1>
<p class="meta">CPU ${esc(h.cpu ?? 'unknown')} · IOMMU ${esc(h.iommu)} · ${data.devices.length} PCI functions · ${data.groups.length} IOMMU groups · generated ${esc(data.generatedAt)}${h.root !== '/' ? ` from ${esc(h.root)}` : ''}</p>
<div class="controls" role="search">
<label>Search <input id="search" type="search" placeholder="name, vendor:device or address" autocomplete="off"></label>
<label><input id="only-candidates" type="checkbox"> only what I can pass</label>
<button type="button" id="theme" aria-label="switch light/dark theme">theme: auto</button>
<span id="count" aria-live="polite">${data.devices.length} of ${data.devices.length} functions</span>
</div>
<ul class="legend" aria-label="group colours">${legend}<li><span class="badge vfio">vfio-pci</span> bound to vfio-pci</li><li><span class="badge needed">host</span> the host needs it</li></ul>
</header>
<main>
<section id="pass"><h2>What can I pass</h2>${renderCandidates(data)}</section>
<section id="topology-section"><h2>PCI topology and IOMMU groups</h2><div class="svgwrap">${renderSvg(data)}</div></section>
<section id="table-section"><h2>Devices</h2>${renderTable(data)}</section>
<section id="check-section"><h2>Readiness</h2>${renderCheck(data)}</section>
<section id="status-section"><h2>Transactions and status</h2>${renderStatusSection(data)}</section>
${data.warnings.length ? `<section id="warnings"><h2>What could not be read</h2><ul>${data.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></section>` : ''}
</main>
<aside id="details" hidden aria-live="polite"><button type="button" id="close-details" aria-label="close details">×</button><div id="details-body"></div></aside>
<script type="application/json" id="vfiokit-data">${scriptJson(data)}</script>
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
