import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { applyPlan, recordingRunner, undoLatest } from '../../src/apply/index.js';
import { inspect } from '../../src/host/inspect.js';
import { assembleBootPlan } from '../../src/plan/boot-plan.js';
import { treeFingerprint } from '../apply/_tree.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { debianGrub } from '../helpers/distros.js';

const roots: string[] = [];
afterAll(async () => {
  if (process.env.KEEP_TMP !== '1') await Promise.all(roots.map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
// 8 CPUs, SMT pairs (n, n+4).
const host = (): FakeHost => ({ ...debianGrub, cpus: { cpus: Array.from({ length: 8 }, (_, id) => ({ id, core: id % 4, siblings: [id % 4, (id % 4) + 4], l3: [0, 1, 2, 3, 4, 5, 6, 7] })) } });
const build = () => {
  const r = buildFakeHost(host());
  roots.push(r);
  return r;
};

describe('boot-time isolation (plan/apply --isolate LIST)', () => {
  it('alone: only isolcpus/nohz_full/rcu_nocbs/irqaffinity on the normal GRUB entries; undo restores every byte', async () => {
    const root = build();
    const before = treeFingerprint(root);
    const plan = assembleBootPlan(inspect(root, { names: false }), { selectors: [], isolate: [2, 3, 6, 7] });
    expect(plan.problems).toEqual([]);
    const args = (plan.intent as { kernelArgs: string[] }).kernelArgs;
    expect(args).toEqual(['isolcpus=managed_irq,domain,2-3,6-7', 'nohz_full=2-3,6-7', 'rcu_nocbs=2-3,6-7', 'irqaffinity=0-1,4-5']);
    const files = plan.steps.filter((s) => s.kind === 'write-file').map((s) => (s as { path: string }).path);
    expect(files.every((f) => f.startsWith('/etc/default/grub'))).toBe(true); // no modprobe.d, no initramfs
    const grubStep = plan.steps.find((s) => s.kind === 'write-file')! as { after: { content: string } };
    expect(grubStep.after.content).toMatch(/GRUB_CMDLINE_LINUX_DEFAULT=.*isolcpus=managed_irq,domain,2-3,6-7 nohz_full=2-3,6-7 rcu_nocbs=2-3,6-7 irqaffinity=0-1,4-5/);
    expect(grubStep.after.content).not.toMatch(/GRUB_CMDLINE_LINUX=[^_]*isolcpus/); // the recovery entry stays without it
    const runner = recordingRunner();
    await applyPlan(plan, { root, runner });
    await undoLatest({ root, runner });
    const after = treeFingerprint(root);
    // vfiokit's own state dir may be new (the journal lives there); nothing else differs.
    for (const k of Object.keys(after)) if (!(k in before) && /^var(\/lib)?$/.test(k)) delete after[k];
    expect(after).toEqual(before);
  });

  it('with a device: the isolation arguments join the passthrough ones', () => {
    const root = build();
    const plan = assembleBootPlan(inspect(root, { names: false }), { selectors: ['01:00.0'], isolate: [2, 3, 6, 7] });
    const args = (plan.intent as { kernelArgs?: string[] }).kernelArgs ?? [];
    expect(plan.problems).toEqual([]);
    expect(args).toContain('iommu=pt');
    expect(args).toContain('nohz_full=2-3,6-7');
  });

  it('refuses CPUs that do not exist, all CPUs, and split SMT siblings; nothing planned', () => {
    const snap = inspect(build(), { names: false });
    for (const [cpus, code] of [[[0, 999], 'E_CPU_NOT_PRESENT'], [[0, 1, 2, 3, 4, 5, 6, 7], 'E_NO_HOST_CPU'], [[2, 3], 'E_SMT_SPLIT']] as const) {
      const plan = assembleBootPlan(snap, { selectors: [], isolate: [...cpus] });
      expect(plan.problems.map((p) => p.code)).toContain(code);
      expect(plan.steps).toEqual([]);
    }
  });
});
