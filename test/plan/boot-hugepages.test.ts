import * as fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { applyPlan, recordingRunner, undoLatest } from '../../src/apply/index.js';
import { inspect } from '../../src/host/inspect.js';
import { assembleBootPlan } from '../../src/plan/boot-plan.js';
import { treeFingerprint } from '../apply/_tree.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { debianGrub } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';

const roots: string[] = [];
afterAll(async () => {
  if (process.env.KEEP_TMP !== '1') await Promise.all(roots.map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
const G = 1024 * 1024;
const build = (more: Partial<FakeHost> = {}) => {
  const r = buildFakeHost({ ...debianGrub, cpu: { vendor: 'intel', flags: ['fpu', 'vmx', 'pdpe1gb'] }, ...more } as FakeHost);
  roots.push(r);
  return r;
};
const grubOf = (plan: ReturnType<typeof assembleBootPlan>) => (plan.steps.find((s) => s.kind === 'write-file' && s.path.startsWith('/etc/default/grub')) as { after: { content: string } } | undefined)?.after.content ?? '';

describe('boot-time huge pages (plan/apply --hugepages SIZE[:PAGE])', () => {
  it('alone, 2 MiB (the default page): hugepagesz=2M hugepages=N on the normal entries only; undo restores every byte', async () => {
    const root = build();
    const before = treeFingerprint(root);
    const plan = assembleBootPlan(inspect(root, { names: false }), { selectors: [], hugepages: { sizeKb: 8 * G, pageKb: 2048 } });
    expect(plan.problems).toEqual([]);
    expect((plan.intent as { kernelArgs: string[] }).kernelArgs).toEqual(['hugepagesz=2M', 'hugepages=4096']);
    expect(grubOf(plan)).toMatch(/GRUB_CMDLINE_LINUX_DEFAULT=.*hugepagesz=2M hugepages=4096/);
    expect(grubOf(plan)).not.toMatch(/GRUB_CMDLINE_LINUX="[^"]*hugepages/);
    expect(plan.steps.filter((s) => s.kind === 'write-file').every((s) => (s as { path: string }).path.startsWith('/etc/default/grub'))).toBe(true);
    const runner = recordingRunner();
    await applyPlan(plan, { root, runner });
    await undoLatest({ root, runner });
    const after = treeFingerprint(root);
    for (const k of Object.keys(after)) if (!(k in before) && /^var(\/lib)?$/.test(k)) delete after[k];
    expect(after).toEqual(before);
  });

  it('1 GiB pages (not the default): default_hugepagesz=1G first; with a device the passthrough arguments stay', () => {
    const plan = assembleBootPlan(inspect(build(), { names: false }), { selectors: ['01:00.0'], hugepages: { sizeKb: 16 * G, pageKb: G } });
    expect(plan.problems).toEqual([]);
    const args = (plan.intent as { kernelArgs: string[] }).kernelArgs;
    expect(args).toContain('iommu=pt');
    expect(args.slice(-3)).toEqual(['default_hugepagesz=1G', 'hugepagesz=1G', 'hugepages=16']);
  });

  it('refuses 1G without pdpe1gb, a size that is not a multiple, and the user\'s own different hugepages=; nothing planned', () => {
    const noGb = inspect(build({ cpu: { vendor: 'intel', flags: ['fpu', 'vmx'] } }), { names: false });
    expect(assembleBootPlan(noGb, { selectors: [], hugepages: { sizeKb: 8 * G, pageKb: G } }).problems.map((p) => p.code)).toEqual(['E_HUGEPAGE_SIZE_UNSUPPORTED']);
    expect(assembleBootPlan(noGb, { selectors: [], hugepages: { sizeKb: 8 * G + 1024, pageKb: 2048 } }).problems.map((p) => p.code)).toEqual(['E_HUGEPAGES_NOT_MULTIPLE']);
    const userGrub = debianGrub.files!['/etc/default/grub'].replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet hugepagesz=1G hugepages=4"');
    const own = inspect(build({ files: { ...debianGrub.files, '/etc/default/grub': userGrub } }), { names: false });
    const p = assembleBootPlan(own, { selectors: [], hugepages: { sizeKb: 8 * G, pageKb: 2048 } });
    expect(p.problems.map((x) => x.code)).toEqual(['E_HUGEPAGES_ARG_CONFLICT']);
    expect(p.problems[0].message).toContain('/etc/default/grub: hugepagesz=1G');
    expect(p.problems[0].hint).toMatch(/remove your huge page arguments .* or keep yours and drop --hugepages/);
    expect(p.steps).toEqual([]);
    // The same arguments already there: nothing to refuse.
    const same = assembleBootPlan(own, { selectors: [], hugepages: { sizeKb: 4 * G, pageKb: G } });
    expect(same.problems).toEqual([]);
    // Arguments an applied vfiokit transaction put there are vfiokit's own to replace.
    const mine = assembleBootPlan(own, { selectors: [], hugepages: { sizeKb: 8 * G, pageKb: G }, previous: [{ txid: 't1', devices: [], kernelArgs: ['hugepagesz=1G', 'hugepages=4'] }] });
    expect(mine.problems).toEqual([]);
  });

  it('the CLI: a malformed --hugepages is a usage error (exit 2), nothing written', async () => {
    const root = build();
    const r = await runCli(['plan', '--hugepages', '8G:4M', '--root', root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--hugepages "8G:4M" is not SIZE\[:PAGE\]/);
    const ok = await runCli(['plan', '--hugepages', '8G', '--root', root]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/hugepages=4096/);
    // Neither a device nor kernel arguments: the hint names both ways.
    const none = await runCli(['plan', '--root', root]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('fix: name at least one device: a PCI address (01:00.0) or vendor:device (10de:2204); or only kernel arguments: --isolate LIST, --hugepages SIZE[:PAGE]');
  });
});
