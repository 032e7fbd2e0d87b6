// Real user configuration files (/work/shared/corpus/D_configs, described by SOURCES.tsv):
// every file of a format vfiokit handles must parse and render back byte for byte; edit ops
// are pinned by goldens (test/fixtures/formats/corpus/) and must be idempotent on them.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as bls from '../../src/formats/bls-entry.js';
import * as booster from '../../src/formats/booster-yaml.js';
import * as dracut from '../../src/formats/dracut-conf.js';
import * as grub from '../../src/formats/grub-default.js';
import * as itm from '../../src/formats/initramfs-tools-modules.js';
import * as kc from '../../src/formats/kernel-cmdline.js';
import * as mk from '../../src/formats/mkinitcpio-conf.js';
import * as modprobe from '../../src/formats/modprobe-d.js';
import { expectExactGolden, FIXTURES } from './golden-exact.js';
import { OPS, runOp } from './ops.js';
import { CORPUS_DIR } from '../corpus/fixtures.js';

const CORPUS = CORPUS_DIR;
const DIR = path.join(CORPUS, 'D_configs');
const present = fs.existsSync(DIR) && fs.existsSync(path.join(CORPUS, 'SOURCES.tsv'));
if (!present) console.log(`skipping corpus tests: ${DIR} or SOURCES.tsv is absent`);

/** Format of a corpus file, from the path it had in its repository. */
function formatOf(repoPath: string): string | null {
  if (/^etc\/default\/grub(\.txt)?$/.test(repoPath)) return 'grub-default';
  if (repoPath.startsWith('etc/modprobe.d/')) return 'modprobe-d';
  if (/^etc\/(modules(\.txt)?|initramfs-tools\/modules(\.d\/.*)?|modules-load\.d\/.*)$/.test(repoPath)) return 'initramfs-tools-modules';
  if (repoPath.startsWith('etc/mkinitcpio.conf')) return 'mkinitcpio-conf';
  if (repoPath.startsWith('etc/dracut.conf.d/')) return 'dracut-conf';
  if (repoPath === 'etc/booster.yaml') return 'booster-yaml';
  if (repoPath === 'etc/kernel/cmdline') return 'kernel-cmdline';
  if (repoPath.startsWith('boot/loader/entries/')) return 'bls-entry';
  return null;
}

const ROUND_TRIP: Record<string, (text: string, file: string) => string> = {
  'grub-default': (t, f) => grub.render(grub.parse(t, f)),
  'modprobe-d': (t, f) => modprobe.render(modprobe.parse(t, f)),
  'initramfs-tools-modules': (t, f) => itm.render(itm.parse(t, f)),
  'mkinitcpio-conf': (t, f) => mk.render(mk.parse(t, f)),
  'dracut-conf': (t, f) => dracut.render(dracut.parse(t, f)),
  'booster-yaml': (t, f) => booster.render(booster.parse(t, f)),
  'kernel-cmdline': (t, f) => bls.renderCmdlineFile(bls.parseCmdlineFile(t, f)),
  'bls-entry': (t, f) => bls.render(bls.parse(t, f)),
};

/** Ops that produce a new file text (the others report JSON). */
const EDIT_OPS = new Set(['add', 'add-linux', 'remove', 'ensure', 'prepend', 'files']);

interface Row {
  file: string;
  repoPath: string;
  format: string | null;
}

const rows: Row[] = present
  ? fs
      .readFileSync(path.join(CORPUS, 'SOURCES.tsv'), 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t'))
      .filter((c) => c[0]?.startsWith('D_configs/'))
      .map((c) => ({ file: path.basename(c[0]), repoPath: c[2], format: formatOf(c[2]) }))
  : [];

describe.skipIf(!present)('corpus D_configs', () => {
  it('every listed file exists and only non-vfiokit formats are unrouted', () => {
    for (const r of rows) expect(fs.existsSync(path.join(DIR, r.file)), r.file).toBe(true);
    // a GRUB script (menuentry) is not one of the formats vfiokit edits
    expect(rows.filter((r) => r.format === null).map((r) => r.repoPath)).toEqual(['etc/grub.d/40_custom']);
    expect(rows.filter((r) => r.format !== null).length).toBeGreaterThanOrEqual(55);
  });

  for (const r of rows.filter((x) => x.format !== null)) {
    const text = () => fs.readFileSync(path.join(DIR, r.file), 'utf8');
    it(`${r.file} (${r.format}) round-trips byte for byte`, () => {
      const t = text();
      expect(ROUND_TRIP[r.format!](t, r.file)).toBe(t);
    });
    for (const [name, op] of Object.entries(OPS[r.format!]).filter(([n]) => EDIT_OPS.has(n))) {
      it(`${r.file} ${name}: golden, idempotent`, () => {
        const once = runOp(op, text(), r.file);
        expect(once.startsWith('ERROR')).toBe(false);
        expect(runOp(op, once, r.file)).toBe(once);
        expectExactGolden(path.join(FIXTURES, 'corpus', `${r.file}.${name}.out`), once);
      });
    }
  }

  it('modprobe.d analysis per repository (what the planner reports as conflicts)', () => {
    const byRepo = new Map<string, modprobe.ModprobeDoc[]>();
    for (const r of rows.filter((x) => x.format === 'modprobe-d')) {
      const repo = r.file.replace(/_\d+\..*$/, '');
      const doc = modprobe.parse(fs.readFileSync(path.join(DIR, r.file), 'utf8'), r.repoPath.replace(/^etc/, '/etc'));
      byRepo.set(repo, [...(byRepo.get(repo) ?? []), doc]);
    }
    const out = Object.fromEntries([...byRepo].sort(([a], [b]) => a.localeCompare(b)).map(([repo, docs]) => [repo, modprobe.analyseVfio(docs)]));
    expectExactGolden(path.join(FIXTURES, 'corpus', 'modprobe-analysis.json'), JSON.stringify(out, null, 2) + '\n');
  });

  it('facts the corpus is known for are found', () => {
    const read = (f: string) => fs.readFileSync(path.join(DIR, f), 'utf8');
    // iroger: six ids= lines, only the last one counts
    const iroger = modprobe.analyseVfio([modprobe.parse(read('iroger_2.conf'), 'iroger_2.conf')]);
    expect(iroger.ids).toHaveLength(5);
    expect(iroger.effectiveIds?.ids).toEqual(['14e4:43a0']);
    expect(iroger.problems.filter((p) => p.message.includes('overridden'))).toHaveLength(4);
    // madhavpcm: cmdline-style key inside options
    const madhav = modprobe.analyseVfio([modprobe.parse(read('madhavpcm_2.conf'), 'madhavpcm_2.conf')]);
    expect(madhav.ids).toHaveLength(0);
    expect(madhav.problems[0].message).toContain('vfio-pci.ids');
    // matsto641: modalias binding; chloecdn/skeen: install hooks
    expect(modprobe.analyseVfio([modprobe.parse(read('matsto641_2.conf'), 'm')]).aliases).toHaveLength(2);
    expect(modprobe.analyseVfio([modprobe.parse(read('skeen_1.conf'), 's')]).hooks[0].shell).toBe('/usr/sbin/vfio-pci-override');
    // joonaha: duplicate iommu= collapses to the requested value
    const j = grub.addKernelArgs(grub.parse(read('joonaha_1.grub'), 'j'), ['iommu=pt']);
    const args = grub.kernelArgs(j) as kc.KernelArg[];
    expect(args.filter((a) => a.key === 'iommu').map((a) => a.raw)).toEqual(['iommu=pt']);
    // gammaman88: backtick GRUB_DISTRIBUTOR is not static, the cmdline still is
    const gm = grub.values(grub.parse(read('gammaman88_1.grub'), 'g'));
    expect(gm.get('GRUB_DISTRIBUTOR')?.kind).toBe('dynamic');
    expect(gm.get('GRUB_CMDLINE_LINUX_DEFAULT')?.kind).toBe('scalar');
    // rmbl: amdgpu in MODULES after vfio; string syntax -> edit the main file
    const rm = mk.parse(read('rmbl_1.conf'), 'rmbl_1.conf');
    expect(mk.report(rm).gpuDrivers).toEqual(['amdgpu']);
    expect(mk.chooseTarget(rm).target).toBe('main');
    expect(mk.chooseTarget(mk.parse(read('chloecdn_1.conf'), 'c')).target).toBe('drop-in');
    // matsto641: custom hook, modconf present
    expect(mk.report(mk.parse(read('matsto641_3.conf'), 'm')).hooks).toContain('bind_vfio');
    // relm_2: dash and underscore names are the same module, amdgpu comes after vfio-pci
    expect(itm.ensureModules(itm.parse(read('relm_2.txt'), 'r'), ['vfio_pci', 'vfio', 'vfio_iommu_type1'])).toEqual(itm.parse(read('relm_2.txt'), 'r'));
    // booski_2: modprobe.d syntax and a template placeholder in an initramfs modules file
    expect(itm.lint(itm.parse(read('booski_2.txt'), 'b')).map((l) => l.line)).toEqual([2, 8]);
    // madhavpcm_4: dracut list with vfio_virqfd
    expect(dracut.lint(dracut.parse(read('madhavpcm_4.conf'), 'd')).map((l) => l.line)).toEqual([1]);
    // droserasprout_1: TAB separator is kept when editing options
    const d = bls.render(bls.addKernelArgs(bls.parse(read('droserasprout_1.conf'), 'd'), ['iommu=pt']));
    expect(d).toContain('options\troot=/dev/md0 rw intel_iommu=on');
    expect(d.endsWith('iommu=pt\n')).toBe(true);
  });
});
