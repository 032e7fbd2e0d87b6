// Text report of `vfiokit diagnose`: ranked findings, each with its cause,
// what the host shows, the fix and the evidence lines (source:line).

import type { Diagnosis } from '../analysis/diagnose/correlate.js';

const clip = (s: string, n = 200) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

export function renderDiagnosis(d: Diagnosis): string {
  const out: string[] = [];
  if (!d.findings.length) {
    out.push(`No known passthrough failure found in ${d.linesRead} line${d.linesRead === 1 ? '' : 's'}.`);
    if (d.lookedAt.length) {
      out.push('', `Lines that mention vfio/iommu/pci/kvm (${d.relevantLines}${d.relevantLines > d.lookedAt.length ? `, first ${d.lookedAt.length} shown` : ''}):`);
      for (const l of d.lookedAt) out.push(`  ${l.source}:${l.line}: ${clip(l.text)}`);
    } else out.push('None of them mentions vfio, iommu, pci or kvm: is this the right log?');
    return out.join('\n') + '\n';
  }
  d.findings.forEach((f, i) => {
    const devs = f.devices.map((x) => (x.name ? `${x.address} (${x.name}${x.driver ? `, driver ${x.driver}` : ''})` : x.address));
    const where = [devs.length ? devs.join(', ') : '', f.groups.length ? `group ${f.groups.join(', ')}` : ''].filter(Boolean).join('; ');
    out.push(`${i + 1}. ${f.cause} [${f.confidence}]${i === 0 ? ' — most likely root cause' : ''}${f.consequenceOf ? ` — a consequence of ${f.consequenceOf}` : ''}`);
    out.push(`   ${f.meaning}`);
    if (where) out.push(`   device: ${where}`);
    for (const h of f.host) out.push(`   host: ${h}`);
    out.push(`   fix: ${f.fix}`);
    out.push(`   evidence${f.matches > f.evidence.length ? ` (${f.evidence.length} of ${f.matches} lines)` : ''}:`);
    for (const e of f.evidence) out.push(`     ${e.source}:${e.line}: ${clip(e.text)}`);
    out.push('');
  });
  out.push(`${d.findings.length} finding${d.findings.length === 1 ? '' : 's'} in ${d.linesRead} lines${d.correlated ? ', checked against this host' : ''}.`);
  return out.join('\n') + '\n';
}
