// The streaming diagnoser: feed it lines (any source, any order), then ask for
// ranked findings. Memory is bounded whatever the input size: each finding
// keeps its first evidence lines and a count, lines are cut at MAX_LINE, and
// the "looked at" sample for unmatched input is capped.

import { CAUSES, type CauseId } from './catalogue.js';
import { FACT_KEYS, FactCollector, type LogFacts } from './facts.js';
import { normalizeLine } from './normalize.js';
import { INTERESTING, RULES, type Confidence, type Rule } from './rules.js';

export const MAX_LINE = 4096;
const MAX_EVIDENCE = 6;
const MAX_LOOKED_AT = 40;
const MAX_DEVICES = 8;
/** Rule keys remembered per line; a line with more runs every rule. */
const MAX_KEYS = 64;

export interface Evidence {
  source: string;
  line: number;
  text: string;
  rule: string;
  says: string;
  confidence: Confidence;
}

export interface RawFinding {
  cause: CauseId;
  confidence: Confidence;
  devices: string[];
  groups: number[];
  evidence: Evidence[];
  matches: number;
  /** Order of the first matching line over the whole input. */
  first: number;
  /** Set when another finding explains this one. */
  consequenceOf: CauseId | null;
}

export interface LookedAt {
  source: string;
  line: number;
  text: string;
}

export interface DiagnoseResult {
  findings: RawFinding[];
  linesRead: number;
  /** Lines that mention vfio/iommu/pci/kvm…, shown when nothing matched. */
  lookedAt: LookedAt[];
  relevantLines: number;
  /** Guest memory and memlock limits the input shows. */
  facts: LogFacts;
}

const escape = (w: string) => w.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const ANY_INTERESTING = new RegExp(INTERESTING.map(escape).join('|'), 'i');

// The prefilter: one pass over the characters of the input, with no regular
// expression and no allocation for a line that can match nothing. Characters
// are folded to 32 classes (a-z case-insensitively, one class for digits,
// space, '-', '_', and one for everything else). Two codes roll along: the
// last four classes (20 bits, an exact index into SHORT) and the last six
// (30 bits, hashed into LONG). A rule's key is the six-character piece of its
// needle least common in healthy-host lines (four characters for a shorter
// needle): a line that holds the needle holds that piece. The words of
// INTERESTING and FACT_KEYS are keys by every four-character piece (a shorter
// word by every code it starts or ends). Only a line that hit a key is cut
// out and looked at, and the rules then run on it as before: the prefilter
// changes the speed, never the findings.
const HIT_RULE = 1;
const HIT_INTERESTING = 2;
const HIT_FACT = 4;
const MASK4 = 0xfffff;
const MASK6 = 0x3fffffff;
const LONG_BITS = 22;
const OTHER = 31;
const CLASS = new Uint8Array(128).fill(OTHER);
for (let c = 0; c < 128; c++) {
  if (c >= 97 && c <= 122) CLASS[c] = c - 96;
  else if (c >= 65 && c <= 90) CLASS[c] = c - 64;
  else if (c >= 48 && c <= 57) CLASS[c] = 27;
}
CLASS[32] = 28;
CLASS[45] = 29;
CLASS[95] = 30;
const cls = (c: number) => (c < 128 ? CLASS[c] : OTHER);
const longIndex = (h6: number) => Math.imul(h6, 0x9e3779b1) >>> (32 - LONG_BITS);
/** The codes of every `len`-character piece of `w`. */
const piecesOf = (w: string, len: 4 | 6): number[] => {
  const out: number[] = [];
  const mask = len === 4 ? MASK4 : MASK6;
  let h = 0;
  for (let i = 0; i < w.length; i++) {
    h = ((h << 5) | cls(w.charCodeAt(i))) & mask;
    if (i >= len - 1) out.push(h);
  }
  return out;
};
/** Lines as they fill a healthy host's logs: a needle's key is its piece least common here. */
const HEALTHY = [
  'pci 0000:00:01.0: Adding to iommu group 1',
  'pci 0000:01:00.0: reg 0x10: [mem 0xf6000000-0xf6ffffff]',
  'pci 0000:00:1c.0: PCI bridge to [bus 02]',
  'pci 0000:01:00.0: BAR 0: assigned [mem 0xc0000000-0xcfffffff 64bit pref]',
  'DMAR: IOMMU enabled',
  'DMAR-IR: Enabled IRQ remapping in x2apic mode',
  'vfio-pci 0000:01:00.0: enabling device (0000 -> 0003)',
  'vfio-pci 0000:01:00.0: vgaarb: changed VGA decodes: olddecodes=io+mem,decodes=io+mem:owns=none',
  'ACPI: PCI Interrupt Link [LNKA] (IRQs 5 *10 11)',
  'platform eisa.0: Cannot allocate resource for EISA slot 1',
  'usb 1-2: new high-speed USB device number 3 using xhci_hcd',
  'systemd[1]: Started libvirtd.service - libvirt legacy monolithic daemon.',
  'e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex',
  'kvm: already loaded vendor module, the device is ready, power management, reset, memory',
].join('\n');
const SHORT = new Uint8Array(MASK4 + 1);
const LONG = new Uint8Array(1 << LONG_BITS);
/** Which rules a key stands for: SHORT indexes as is, LONG indexes + 2^20 (so one map holds both). */
const RULES_OF_KEY = new Map<number, number[]>();
{
  const seen = new Map<number, number>();
  for (const len of [4, 6] as const) for (const g of piecesOf(HEALTHY, len)) seen.set(len * 2 ** 30 + g, (seen.get(len * 2 ** 30 + g) ?? 0) + 1);
  for (const r of RULES) {
    const len = r.needle.length >= 6 ? 6 : 4;
    const pieces = piecesOf(r.needle, len);
    if (!pieces.length) throw new Error(`rule ${r.id}: its needle must have at least four characters`);
    const count = (g: number) => seen.get(len * 2 ** 30 + g) ?? 0;
    const best = pieces.reduce((b, g) => (count(g) < count(b) ? g : b));
    const key = len === 6 ? longIndex(best) + MASK4 + 1 : best;
    if (len === 6) LONG[longIndex(best)] |= HIT_RULE;
    else SHORT[best] |= HIT_RULE;
    const list = RULES_OF_KEY.get(key) ?? [];
    list.push(RULES.indexOf(r));
    RULES_OF_KEY.set(key, list);
  }
  for (const [words, flag] of [[INTERESTING, HIT_INTERESTING], [FACT_KEYS, HIT_FACT]] as const) {
    for (const w of words) {
      if (w.length >= 4) for (const g of piecesOf(w, 4)) SHORT[g] |= flag;
      else {
        // class 0 before a word is the start of a line
        let c = 0;
        for (let i = 0; i < w.length; i++) c = (c << 5) | cls(w.charCodeAt(i));
        const spare = 5 * (4 - w.length);
        for (let k = 0; k < 1 << spare; k++) {
          SHORT[((k << (5 * w.length)) | c) & MASK4] |= flag;
          SHORT[((c << spare) | k) & MASK4] |= flag;
        }
      }
    }
  }
}

const TIER: Record<Confidence, number> = { high: 3, medium: 2, low: 1 };
const DOWN: Record<Confidence, Confidence> = { high: 'medium', medium: 'low', low: 'low' };

const PCI_ADDR = /(?<![0-9a-f:.])((?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?![0-9a-f])/i;
const GROUP_NUM = /(?:group |\/dev\/vfio\/)(\d{1,6})\b/;

/** Which causes are explained by which: [consequence, root] pairs. */
const EXPLAINS: [CauseId, CauseId][] = [
  ['device_busy', 'reset_failed'],
  ['device_busy', 'detach_hang'],
  ['device_busy', 'group_not_viable'],
  ['device_busy', 'msi_intx'],
  ['device_busy', 'vfio_not_bound'],
  ['vfio_not_bound', 'iommu_off'],
  ['dma_fault', 'reset_failed'],
  ['dma_fault', 'rmrr'],
  ['msi_intx', 'reset_failed'],
  ['code43', 'rom_unreadable'],
  ['code43', 'reset_failed'],
  ['code43', 'bar_reserved_by_framebuffer'],
  ['rom_unreadable', 'bar_reserved_by_framebuffer'],
  ['rom_unreadable', 'reset_failed'],
  ['iommu_off', 'iommu_option_unknown'],
  ['noiommu', 'iommu_off'],
  ['ir_xapic_mode', 'no_interrupt_remapping'],
];

function normalizeAddress(a: string): string {
  const s = a.toLowerCase();
  return s.length === 7 ? `0000:${s}` : s;
}

export class Diagnoser {
  private readonly byCause = new Map<CauseId, RawFinding>();
  private order = 0;
  private lines = 0;
  private relevant = 0;
  private readonly looked: LookedAt[] = [];
  private readonly factCollector = new FactCollector();
  /** The last line (source NUL line) each cause was recorded from. */
  private readonly lastLine = new Map<CauseId, string>();
  /** Keys the current line hit (rule keys only). */
  private readonly keys: number[] = [];

  /** One line (without its newline). */
  feed(raw: string, source: string, lineNo: number): void {
    this.feedText(`${raw.includes('\n') ? raw.replace(/\n/g, ' ') : raw}\n`, source, lineNo);
  }

  /**
   * Text of whole lines (a chunk of a stream; the last line may lack its
   * newline), the first being line `firstLine` of `source`. Returns the number
   * of lines it held.
   */
  feedText(text: string, source: string, firstLine: number): number {
    const n = text.length;
    let h4 = 0;
    let h6 = 0;
    let hit = 0;
    let start = 0;
    let line = firstLine;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) {
        if (hit !== 0) this.line(text, start, i, hit, source, line);
        this.keys.length = 0;
        line++;
        start = i + 1;
        hit = 0;
        h4 = 0;
        h6 = 0;
        continue;
      }
      const k = c < 128 ? CLASS[c] : OTHER;
      h4 = ((h4 << 5) | k) & MASK4;
      h6 = ((h6 << 5) | k) & MASK6;
      const s = SHORT[h4];
      const l = LONG[Math.imul(h6, 0x9e3779b1) >>> (32 - LONG_BITS)];
      if ((s | l) !== 0) {
        hit |= s | l;
        if (this.keys.length < MAX_KEYS) {
          if (s & HIT_RULE) this.keys.push(h4);
          if (l & HIT_RULE) this.keys.push((Math.imul(h6, 0x9e3779b1) >>> (32 - LONG_BITS)) + MASK4 + 1);
        }
      }
    }
    if (start < n) {
      if (hit !== 0) this.line(text, start, n, hit, source, line);
      this.keys.length = 0;
      line++;
    }
    this.lines += line - firstLine;
    return line - firstLine;
  }

  private line(text: string, start: number, end: number, hit: number, source: string, lineNo: number): void {
    if (text.charCodeAt(end - 1) === 13) end--;
    const cut = text.slice(start, Math.min(end, start + MAX_LINE));
    if (hit & HIT_FACT) this.factCollector.feed(cut);
    // Rules are unanchored message texts, so they run on the raw line; only
    // the lines kept (evidence, the looked-at sample) are normalised.
    if (hit & HIT_RULE) {
      const lower = cut.toLowerCase();
      let matched = false;
      // the rules whose key this line holds, in catalogue order
      const todo = new Set<number>();
      if (this.keys.length >= MAX_KEYS) RULES.forEach((_, i) => todo.add(i));
      else for (const k of this.keys) for (const i of RULES_OF_KEY.get(k) ?? []) todo.add(i);
      for (const i of [...todo].sort((a, b) => a - b)) {
        const rule = RULES[i];
        if (!lower.includes(rule.needle)) continue;
        const m = rule.re.exec(cut);
        if (!m) continue;
        this.record(rule, m, cut, source, lineNo);
        matched = true;
      }
      if (matched) return;
    }
    if (hit & HIT_INTERESTING && ANY_INTERESTING.test(cut)) {
      this.relevant++;
      if (this.looked.length < MAX_LOOKED_AT) this.looked.push({ source, line: lineNo, text: normalizeLine(cut) });
    }
  }

  private record(rule: Rule, m: RegExpExecArray, text: string, source: string, line: number): void {
    let f = this.byCause.get(rule.cause);
    if (!f) {
      f = { cause: rule.cause, confidence: rule.confidence, devices: [], groups: [], evidence: [], matches: 0, first: this.order++, consequenceOf: null };
      this.byCause.set(rule.cause, f);
    }
    if (TIER[rule.confidence] > TIER[f.confidence]) f.confidence = rule.confidence;
    // a second rule of the same cause on the same line: one line of evidence, the stronger reading
    const key = `${source}\0${line}`;
    if (this.lastLine.get(rule.cause) === key) {
      const same = f.evidence.findIndex((e) => e.line === line && e.source === source);
      if (same !== -1 && TIER[rule.confidence] > TIER[f.evidence[same].confidence]) f.evidence[same] = { ...f.evidence[same], rule: rule.id, says: rule.says, confidence: rule.confidence };
      return;
    }
    this.lastLine.set(rule.cause, key);
    f.matches++;
    const captured = m[1] && /^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(m[1]) ? m[1] : undefined;
    const addr = captured ?? PCI_ADDR.exec(text)?.[1];
    if (addr) {
      const a = normalizeAddress(addr);
      if (!f.devices.includes(a) && f.devices.length < MAX_DEVICES) f.devices.push(a);
    }
    const g = GROUP_NUM.exec(text)?.[1];
    if (g !== undefined && !f.groups.includes(Number(g)) && f.groups.length < MAX_DEVICES) f.groups.push(Number(g));
    if (f.evidence.length >= MAX_EVIDENCE && rule.confidence === 'low') return;
    const ev: Evidence = { source, line, text: normalizeLine(text), rule: rule.id, says: rule.says, confidence: rule.confidence };
    if (f.evidence.length < MAX_EVIDENCE) f.evidence.push(ev);
    else {
      // keep the strongest lines: replace the last weakest one when this one is stronger
      let weakest = f.evidence.length - 1;
      for (let i = f.evidence.length - 1; i >= 0; i--) if (TIER[f.evidence[i].confidence] < TIER[f.evidence[weakest].confidence]) weakest = i;
      if (TIER[rule.confidence] > TIER[f.evidence[weakest].confidence]) f.evidence[weakest] = ev;
    }
  }

  result(): DiagnoseResult {
    return { findings: rank([...this.byCause.values()].map((f) => ({ ...f, devices: [...f.devices], groups: [...f.groups], evidence: [...f.evidence] }))), linesRead: this.lines, lookedAt: [...this.looked], relevantLines: this.relevant, facts: { ...this.factCollector.facts } };
  }
}

/** Marks consequences, then orders: confidence, nearness to the root (catalogue rank), first appearance. */
export function rank(findings: RawFinding[]): RawFinding[] {
  const present = new Map(findings.map((f) => [f.cause, f]));
  for (const f of findings) {
    const root = EXPLAINS.find(([c, r]) => c === f.cause && present.has(r) && TIER[present.get(r)!.confidence] >= TIER[DOWN[f.confidence]]);
    if (root) {
      f.consequenceOf = root[1];
      f.confidence = DOWN[f.confidence];
    }
  }
  return findings.sort((a, b) => TIER[b.confidence] - TIER[a.confidence] || CAUSES.get(a.cause)!.rank - CAUSES.get(b.cause)!.rank || a.first - b.first);
}

export function diagnoseLines(lines: Iterable<string>, source = '-'): DiagnoseResult {
  const d = new Diagnoser();
  let n = 0;
  for (const l of lines) d.feed(l, source, ++n);
  return d.result();
}
