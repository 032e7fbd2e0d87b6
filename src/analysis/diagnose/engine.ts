// The streaming diagnoser: feed it lines (any source, any order), then ask for
// ranked findings. Memory is bounded whatever the input size: each finding
// keeps its first evidence lines and a count, lines are cut at MAX_LINE, and
// the "looked at" sample for unmatched input is capped.

import { CAUSES, type CauseId } from './catalogue.js';
import { normalizeLine } from './normalize.js';
import { INTERESTING, RULES, type Confidence, type Rule } from './rules.js';

export const MAX_LINE = 4096;
const MAX_EVIDENCE = 6;
const MAX_LOOKED_AT = 40;
const MAX_DEVICES = 8;

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
}

const escape = (w: string) => w.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** One pass over the lower-cased raw line: does any rule's needle occur? (Needles are message text, so they survive normalising.) */
const ANY_NEEDLE = new RegExp([...new Set(RULES.map((r) => r.needle))].map(escape).join('|'));
const ANY_INTERESTING = new RegExp(INTERESTING.map(escape).join('|'));

const TIER: Record<Confidence, number> = { high: 3, medium: 2, low: 1 };
const DOWN: Record<Confidence, Confidence> = { high: 'medium', medium: 'low', low: 'low' };

const PCI_ADDR = /(?<![0-9a-f:.])((?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?![0-9a-f])/i;
const GROUP_NUM = /(?:group |\/dev\/vfio\/)(\d{1,6})\b/;

/** Which causes are explained by which: [consequence, root] pairs. */
const EXPLAINS: [CauseId, CauseId][] = [
  ['device_busy', 'reset_failed'],
  ['device_busy', 'detach_hang'],
  ['device_busy', 'group_not_viable'],
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

export function normalizeAddress(a: string): string {
  const s = a.toLowerCase();
  return s.length === 7 ? `0000:${s}` : s;
}

export class Diagnoser {
  private readonly byCause = new Map<CauseId, RawFinding>();
  private order = 0;
  private lines = 0;
  private relevant = 0;
  private readonly looked: LookedAt[] = [];

  feed(raw: string, source: string, lineNo: number): void {
    this.lines++;
    const cut = raw.length > MAX_LINE ? raw.slice(0, MAX_LINE) : raw;
    // Rules are unanchored message texts, so they run on the raw line; only
    // the lines kept (evidence, the looked-at sample) are normalised.
    const lower = cut.toLowerCase();
    if (ANY_NEEDLE.test(lower)) {
      let matched = false;
      for (const rule of RULES) {
        if (!lower.includes(rule.needle)) continue;
        const m = rule.re.exec(cut);
        if (!m) continue;
        this.record(rule, m, cut, source, lineNo);
        matched = true;
      }
      if (matched) return;
    }
    if (ANY_INTERESTING.test(lower)) {
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
    f.matches++;
    if (TIER[rule.confidence] > TIER[f.confidence]) f.confidence = rule.confidence;
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
    return { findings: rank([...this.byCause.values()].map((f) => ({ ...f, devices: [...f.devices], groups: [...f.groups], evidence: [...f.evidence] }))), linesRead: this.lines, lookedAt: [...this.looked], relevantLines: this.relevant };
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
