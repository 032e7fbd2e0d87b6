// Text for handoff and hook plans (dry runs) and the display verification. Pure.

import { formatArgv } from '../formats/shell-quote.js';
import type { Plan, Step } from '../model/plan.js';
import type { VerifyLine } from '../analysis/handoff-verify.js';

function describePlanStep(s: Step): string {
  switch (s.kind) {
    case 'run-command': return `run ${formatArgv(s.argv)}${s.undoArgv ? ` (undo: ${formatArgv(s.undoArgv)})` : ''}`;
    case 'wait': {
      const c = s.condition;
      const what = c.type === 'no-open-files' ? `nothing holds ${c.paths.join(' ') || '(no device node)'}` : c.type === 'group-viable' ? `IOMMU group ${c.group} viable` : `${c.type} ${c.path}`;
      return `wait ≤ ${(s.timeoutMs / 1000).toFixed(0)} s until ${what}`;
    }
    case 'write-attr': return `write ${JSON.stringify(s.value)} to ${s.path}${s.restore ? ` (undo: ${JSON.stringify(s.restore.value)})` : ''}${s.optional ? ' (skipped if the kernel refuses)' : ''}${s.oneShot ? ' (a one-shot trigger: nothing to restore)' : ''}`;
    case 'module': return `${s.action === 'load' ? 'modprobe' : 'modprobe -r'} ${s.action === 'unload' ? [...(s.also ?? []), s.module].join(' ') : s.module}`;
    case 'bind-driver': return `${s.address}: ${s.before.driver ?? 'unbound'} → ${s.driver ?? "kernel's default driver"}`;
    case 'install-file': return `install ${s.path} (mode ${s.mode.toString(8)})${s.beforeSha256 ? ' replacing the previous vfiokit hook' : ''}`;
    case 'remove-file': return `remove ${s.path}`;
    case 'write-file': return `write ${s.path}`;
    case 'domain': return `virsh ${s.action} ${s.name}`;
    case 'copy-attr': return `copy ${s.from} to ${s.path}`;
    case 'unit-property': return `systemctl set-property --runtime -- ${s.unit} ${s.property}=${s.value} (undo: ${s.property}=${s.before.value ?? ''}${s.before.value ? '' : ', not set'}; drop-in ${s.before.dropIn === null ? 'removed' : 'put back'})`;
  }
}

export function renderStepPlan(title: string, plan: Plan): string {
  const out = [title];
  for (const l of plan.summary) out.push(`  ${l}`);
  if (plan.steps.length) out.push('', 'Steps:');
  plan.steps.forEach((s, i) => out.push(`  ${String(i + 1).padStart(2)}. ${describePlanStep(s)}`, `      ${s.reason}`));
  for (const w of plan.warnings) out.push(`warning: ${w}`);
  for (const p of plan.problems) out.push(`refused: ${p.message}${p.hint ? `\n  fix: ${p.hint}` : ''}`);
  return out.join('\n') + '\n';
}

export function renderVerify(lines: VerifyLine[]): string {
  return lines.map((l) => `  ${l.ok ? 'ok  ' : 'FAIL'} ${l.what}${l.fix ? `\n       fix: ${l.fix}` : ''}`).join('\n') + '\n';
}
