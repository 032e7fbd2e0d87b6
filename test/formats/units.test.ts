// Behaviour of the owned-file renderers and the analysis helpers the planner relies on.

import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isOwnedText } from '../../src/formats/common.js';
import * as bls from '../../src/formats/bls-entry.js';
import * as dracut from '../../src/formats/dracut-conf.js';
import * as grub from '../../src/formats/grub-default.js';
import * as kc from '../../src/formats/kernel-cmdline.js';
import * as ks from '../../src/formats/kernelstub-config.js';
import * as limine from '../../src/formats/limine.js';
import * as mk from '../../src/formats/mkinitcpio-conf.js';
import * as modprobe from '../../src/formats/modprobe-d.js';
import { expectExactGolden, FIXTURES } from './golden-exact.js';

const owned = (name: string) => path.join(FIXTURES, 'owned', name);
const raws = (a: kc.KernelArg[] | { reason: string }) => (Array.isArray(a) ? a.map((x) => x.raw) : a);

describe('vfiokit-owned files', () => {
  const files: [string, string][] = [
    ['modprobe-ids.conf', modprobe.renderOwnedFile({ ids: ['10de:2204', '10de:1aef'], softdeps: ['nouveau', 'nvidia', 'snd_hda_intel', 'vfio-pci'], options: { disable_vga: '1' } })],
    ['modprobe-install-hook.conf', modprobe.renderOwnedFile({ softdeps: ['amdgpu'], overrideAddresses: ['0000:0b:00.0', '0000:0b:00.1'] })],
    ['vfio-pci-override.sh', modprobe.renderOverrideScript(['0000:0b:00.0', '0000:0b:00.1'])],
    ['dracut.conf', dracut.renderOwnedFile({ forceDrivers: ['vfio_pci', 'vfio', 'vfio_iommu_type1'], installItems: [modprobe.OVERRIDE_SCRIPT_PATH] })],
    ['mkinitcpio.conf', mk.renderDropIn({ modules: ['vfio_pci', 'vfio', 'vfio_iommu_type1'], files: [modprobe.OVERRIDE_SCRIPT_PATH] })],
    ['grub.cfg', grub.renderDropIn(['amd_iommu=on', 'iommu=pt'])],
    ['limine-entry-tool.conf', limine.renderDefaultsDropIn(['intel_iommu=on', 'iommu=pt'])],
  ];
  for (const [name, text] of files) {
    it(`${name}: golden, names vfiokit and \`vfiokit undo\`, ends with a newline`, () => {
      expectExactGolden(owned(name), text);
      expect(isOwnedText(text)).toBe(true);
      expect(text).toContain('`vfiokit undo`');
      expect(text.endsWith('\n')).toBe(true);
    });
  }

  it('owned files parse back with their own parsers', () => {
    const mp = modprobe.analyseVfio([modprobe.parse(files[1][1], modprobe.OWNED_PATH)]);
    expect(mp.hooks).toEqual([{ file: modprobe.OWNED_PATH, line: 4, command: 'install', module: 'vfio-pci', shell: modprobe.OVERRIDE_SCRIPT_PATH }]);
    expect(mp.ids).toEqual([]);
    expect(mk.report(mk.parse(files[4][1])).files).toEqual([modprobe.OVERRIDE_SCRIPT_PATH]);
    expect(dracut.listValue(dracut.parse(files[3][1]), 'install_items')).toEqual([modprobe.OVERRIDE_SCRIPT_PATH]);
    expect(raws(limine.defaultsKernelArgs(limine.parseDefaults(files[6][1])))).toEqual(['intel_iommu=on', 'iommu=pt']);
    // the override script is plain static shell
    expect(grub.parse(files[2][1], 'script').statements.every((s) => s.kind !== 'assign')).toBe(true);
  });
});

describe('modprobe.d analysis across files', () => {
  it('later files override ids= of earlier ones, vfiokit files are recognised', () => {
    const a = modprobe.parse('options vfio_pci ids=10de:2204\n', '/etc/modprobe.d/a.conf');
    const b = modprobe.parse(modprobe.renderOwnedFile({ ids: ['1002:731f'], softdeps: [] }), '/etc/modprobe.d/vfiokit.conf');
    const f = modprobe.analyseVfio([a, b]);
    expect(f.effectiveIds).toEqual({ file: '/etc/modprobe.d/vfiokit.conf', line: 3, ids: ['1002:731f'] });
    expect(f.ownedFiles).toEqual(['/etc/modprobe.d/vfiokit.conf']);
    expect(f.problems.map((p) => `${p.file}:${p.line}`)).toEqual(['/etc/modprobe.d/a.conf:1']);
  });
  it('reports softdeps that load vfio-pci too late and vfio blacklists', () => {
    const f = modprobe.analyseVfio([modprobe.parse('softdep amdgpu post: vfio-pci\nblacklist vfio-pci\nsoftdep nvme pre: nvme_core\n', 'x')]);
    expect(f.softdeps.map((s) => s.module)).toEqual(['amdgpu']);
    expect(f.blacklists.map((s) => s.module)).toEqual(['vfio-pci']);
    expect(f.problems.map((p) => p.line)).toEqual([1, 2]);
  });
  it('keeps options with quoted values as one option', () => {
    const d = modprobe.directives(modprobe.parse('options foo bar="a b" baz\n', 'x'));
    expect(d[0]).toMatchObject({ command: 'options', module: 'foo', options: [{ name: 'bar', value: 'a b' }, { name: 'baz', value: null }] });
  });
});

describe('mkinitcpio target choice', () => {
  const main = mk.parse('MODULES=(btrfs)\nHOOKS=(base udev modconf)\n', '/etc/mkinitcpio.conf');
  it('drop-in when nothing loads a GPU driver early', () => {
    expect(mk.chooseTarget(main).target).toBe('drop-in');
  });
  it('main file when a drop-in appends a GPU driver (a later drop-in would load vfio after it)', () => {
    const gpu = mk.parse('MODULES+=(amdgpu)\n', '/etc/mkinitcpio.conf.d/gpu.conf');
    expect(mk.chooseTarget(main, [gpu])).toMatchObject({ target: 'main' });
  });
  it('unsupported when a drop-in replaces MODULES with a GPU driver in it', () => {
    const gpu = mk.parse('MODULES=(nvidia nvidia_drm)\n', '/etc/mkinitcpio.conf.d/nvidia.conf');
    expect(mk.chooseTarget(main, [gpu])).toMatchObject({ target: 'unsupported' });
  });
  it('reports modconf and evaluates += across files', () => {
    const drop = mk.parse(mk.renderDropIn({ modules: ['vfio_pci'] }));
    const r = mk.report(drop, new Map([['MODULES', { kind: 'array' as const, items: ['btrfs'], line: 1 }]]));
    expect(r.modules).toEqual(['btrfs', 'vfio_pci']);
    expect(mk.report(main).modconf).toBe(true);
    expect(mk.report(mk.parse('HOOKS=(base udev)')).modconf).toBe(false);
    expect(mk.report(mk.parse('HOOKS=($(x))')).modconf).toBe(null);
  });
});

describe('GRUB evaluation across main file and drop-ins', () => {
  it('a grub.d drop-in continues the main value; recovery entries only get GRUB_CMDLINE_LINUX', () => {
    const main = grub.parse('GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"\nGRUB_CMDLINE_LINUX="root=/dev/sda1"\n');
    const cloud = grub.parse('GRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT console=ttyS0"\n', '/etc/default/grub.d/50-cloudimg-settings.cfg');
    const ours = grub.parse(grub.renderDropIn(['intel_iommu=on', 'iommu=pt']), grub.DROP_IN_PATH);
    let env = grub.values(main);
    env = grub.values(cloud, env);
    const r = grub.bootArgs(ours, env);
    expect('reason' in r).toBe(false);
    if ('reason' in r) return;
    expect(raws(r.normal)).toEqual(['root=/dev/sda1', 'quiet', 'splash', 'console=ttyS0', 'intel_iommu=on', 'iommu=pt']);
    expect(raws(r.recovery)).toEqual(['root=/dev/sda1']);
  });
  it('edits the chain of assignments that build the value, appending to the last one', () => {
    const d = grub.parse('GRUB_CMDLINE_LINUX_DEFAULT="quiet iommu=1"\nGRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT splash"\n');
    expect(grub.render(grub.addKernelArgs(d, ['iommu=pt', 'amd_iommu=on']))).toBe(
      'GRUB_CMDLINE_LINUX_DEFAULT="quiet iommu=pt"\nGRUB_CMDLINE_LINUX_DEFAULT="$GRUB_CMDLINE_LINUX_DEFAULT splash amd_iommu=on"\n',
    );
  });
  it('escapes added args for a double-quoted value', () => {
    const d = grub.addKernelArgs(grub.parse('GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n'), ['acpi_osi="Windows 2015"', 'x=$y']);
    expect(grub.render(d)).toBe('GRUB_CMDLINE_LINUX_DEFAULT="quiet acpi_osi=\\"Windows 2015\\" x=\\$y"\n');
    expect(raws(grub.kernelArgs(d))).toEqual(['quiet', 'acpi_osi="Windows 2015"', 'x=$y']);
    expect(grub.render(grub.addKernelArgs(d, ['acpi_osi="Windows 2015"', 'x=$y']))).toBe(grub.render(d));
  });
});

describe('kernel command line rules', () => {
  it('repeatable keys are added beside other values, never collapsed', () => {
    const d = kc.addKernelArgs(kc.parse('console=tty0 rd.driver.pre=nvme'), ['console=ttyS0', 'rd.driver.pre=vfio_pci', 'rd.driver.pre=nvme']);
    expect(kc.render(d)).toBe('console=tty0 rd.driver.pre=nvme console=ttyS0 rd.driver.pre=vfio_pci');
  });
  it('removal by key=value removes only that value', () => {
    expect(kc.render(kc.removeKernelArgs(kc.parse('video=efifb:off video=vesafb:off quiet'), ['video=efifb:off']))).toBe('video=vesafb:off quiet');
  });
  it('/etc/kernel/cmdline keeps its single line and trailing newline', () => {
    const d = bls.parseCmdlineFile('root=ZFS=rpool/ROOT/pve-1 boot=zfs\n');
    expect(bls.renderCmdlineFile(kc.addKernelArgs(d, ['intel_iommu=on']))).toBe('root=ZFS=rpool/ROOT/pve-1 boot=zfs intel_iommu=on\n');
    expect(kc.kernelArgs(d)[0]).toEqual({ key: 'root', value: 'ZFS=rpool/ROOT/pve-1', raw: 'root=ZFS=rpool/ROOT/pve-1' });
  });
});

describe('kernelstub', () => {
  it('an edit that changes nothing keeps the document (and its exact text)', () => {
    const t = '{\n    "user": {\n        "kernel_options": ["quiet", "iommu=pt"]\n    }\n}';
    const d = ks.parse(t);
    expect(ks.addKernelArgs(d, ['iommu=pt'])).toBe(d);
    expect(ks.render(ks.addKernelArgs(d, ['iommu=pt']))).toBe(t);
    // a real change re-renders with the indent found (4) and no trailing newline
    expect(ks.render(ks.addKernelArgs(d, ['intel_iommu=on']))).toBe(
      '{\n    "user": {\n        "kernel_options": [\n            "quiet",\n            "iommu=pt",\n            "intel_iommu=on"\n        ]\n    }\n}',
    );
  });
});

describe('modprobe.d read order (kmod: first directory wins a name, then name order across directories)', () => {
  it('hides a later directory\'s file of the same name, ignores other suffixes, sorts by name whatever the directory', () => {
    expect(
      modprobe.readOrder({
        '/lib/modprobe.d': ['aliases.conf', 'nvidia.conf', 'zz.conf'],
        '/usr/lib/modprobe.d': ['nvidia.conf', 'systemd.conf', 'README'],
        '/etc/modprobe.d': ['nvidia.conf', 'vfiokit.conf', 'old.conf.bak'],
        '/run/modprobe.d': ['systemd.conf'],
        '/usr/local/lib/modprobe.d': ['a.conf'],
        '/opt/modprobe.d': ['0.conf'],
      }),
    ).toEqual(['/usr/local/lib/modprobe.d/a.conf', '/lib/modprobe.d/aliases.conf', '/etc/modprobe.d/nvidia.conf', '/run/modprobe.d/systemd.conf', '/etc/modprobe.d/vfiokit.conf', '/lib/modprobe.d/zz.conf']);
    expect(modprobe.readOrder({})).toEqual([]);
  });
});
