// Renders a Plan for people: summary, unified diffs per file, commands.

import { createTwoFilesPatch } from 'diff';
import type { Plan } from '../model/plan.js';
import type { StatusReport } from '../analysis/status.js';

export function renderProblems(plan: Plan): string {
  const out = ['vfiokit cannot plan this:'];
  for (const p of plan.problems) {
    out.push(`  - ${p.message}`);
    if (p.hint) out.push(`    fix: ${p.hint}`);
  }
  return out.join('\n');
}

export function renderPlan(plan: Plan): string {
  const out: string[] = [];
  for (const l of plan.summary) out.push(l);
  if (plan.warnings.length) {
    out.push('');
    for (const w of plan.warnings) out.push(`warning: ${w}`);
  }
  out.push('');
  if (!plan.steps.length) {
    out.push('Nothing to do: the host is already configured for this.');
    return out.join('\n');
  }
  for (const st of plan.steps) {
    if (st.kind === 'write-file') {
      const mode = st.before && st.before.mode !== st.after.mode ? ` (mode ${st.before.mode.toString(8)} → ${st.after.mode.toString(8)})` : st.before ? '' : ` (new file, mode ${st.after.mode.toString(8)})`;
      out.push(`# ${st.path}: ${st.reason}${mode}`);
      out.push(createTwoFilesPatch(st.before ? `a${st.path}` : '/dev/null', `b${st.path}`, st.before?.content ?? '', st.after.content, '', '', { context: 3 }).split('\n').slice(1).map((l) => (l.startsWith('---') || l.startsWith('+++') ? l.trimEnd() : l)).join('\n').trimEnd());
      out.push('');
    } else if (st.kind === 'remove-file') {
      out.push(`# ${st.path}: ${st.reason} (removed)`);
    }
  }
  const cmds = plan.steps.filter((s) => s.kind === 'run-command');
  if (cmds.length) {
    out.push('');
    out.push('Commands:');
    for (const c of cmds) if (c.kind === 'run-command') out.push(`  ${c.argv.join(' ')}    # ${c.reason}`);
  }
  return out.join('\n');
}

export function renderStatus(r: StatusReport): string {
  if (!r.txid) return 'No boot-time passthrough is applied (no vfiokit transaction in the journal).';
  const out = [`Transaction ${r.txid}, applied ${r.appliedAt}${r.rebootedSinceApply === false ? ' (not rebooted since)' : ''}:`];
  for (const l of r.lines) {
    out.push(`${l.ok ? '[ ok ]' : '[FAIL]'} ${l.subject}: ${l.observed}${l.ok ? '' : ` (expected ${l.expected})`}`);
    if (l.cause) out.push(`       likely cause: ${l.cause}`);
  }
  out.push('');
  out.push(r.inEffect ? 'In effect.' : 'Not in effect: see the likely causes above.');
  return out.join('\n');
}
