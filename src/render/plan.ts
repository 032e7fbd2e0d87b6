// Renders a Plan for people: summary, unified diffs per file, commands.

import { createTwoFilesPatch } from 'diff';
import type { Plan } from '../model/plan.js';
import type { StatusReport } from '../analysis/status.js';

/**
 * Plan content strings are bytes (one char per byte, as read). For people, valid UTF-8
 * sequences are shown as text and any other byte >= 0x80 visibly as `\xNN`; characters
 * above U+00FF (text a planner wrote) are shown as they are.
 */
function displayBytes(s: string): string {
  let out = '';
  let i = 0;
  const n = s.length;
  const cont = (k: number) => k < n && (s.charCodeAt(k) & 0xc0) === 0x80;
  while (i < n) {
    const b = s.charCodeAt(i);
    if (b < 0x80 || b > 0xff) {
      out += s[i++];
      continue;
    }
    let len = 0;
    let cp = 0;
    if (b >= 0xc2 && b <= 0xdf) { len = 2; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { len = 3; cp = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { len = 4; cp = b & 0x07; }
    let ok = len > 0;
    for (let k = 1; ok && k < len; k++) {
      if (!cont(i + k)) ok = false;
      else cp = (cp << 6) | (s.charCodeAt(i + k) & 0x3f);
    }
    // overlong, surrogate and out-of-range forms are not valid UTF-8
    if (ok && ((len === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len === 4 && (cp < 0x10000 || cp > 0x10ffff)))) ok = false;
    if (ok) {
      out += String.fromCodePoint(cp);
      i += len;
    } else {
      out += '\\x' + b.toString(16).toUpperCase().padStart(2, '0');
      i++;
    }
  }
  return out;
}

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
      out.push(createTwoFilesPatch(st.before ? `a${st.path}` : '/dev/null', `b${st.path}`, displayBytes(st.before?.content ?? ''), displayBytes(st.after.content), '', '', { context: 3 }).split('\n').slice(1).map((l) => (l.startsWith('---') || l.startsWith('+++') ? l.trimEnd() : l)).join('\n').trimEnd());
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
    out.push(`${!l.ok ? '[FAIL]' : l.warn ? '[warn]' : '[ ok ]'} ${l.subject}: ${l.observed}${l.ok ? '' : ` (expected ${l.expected})`}`);
    if (l.cause) out.push(`       ${l.warn ? 'note' : 'likely cause'}: ${l.cause}`);
  }
  out.push('');
  out.push(r.inEffect ? 'In effect.' : 'Not in effect: see the likely causes above.');
  return out.join('\n');
}
