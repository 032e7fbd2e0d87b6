// The operations each golden fixture directory is run through. Every `<case>.in` in
// test/fixtures/formats/<format>/ is run through every op of its format and compared with
// `<case>.<op>.out`. An op that throws FileFormatError produces "ERROR ...\nHINT ...\n".

import { FileFormatError } from '../../src/errors.js';
import * as bls from '../../src/formats/bls-entry.js';
import * as booster from '../../src/formats/booster-yaml.js';
import * as dracut from '../../src/formats/dracut-conf.js';
import * as grub from '../../src/formats/grub-default.js';
import * as itm from '../../src/formats/initramfs-tools-modules.js';
import * as kc from '../../src/formats/kernel-cmdline.js';
import * as ks from '../../src/formats/kernelstub-config.js';
import * as limine from '../../src/formats/limine.js';
import * as mk from '../../src/formats/mkinitcpio-conf.js';
import * as modprobe from '../../src/formats/modprobe-d.js';
import * as refind from '../../src/formats/refind-linux-conf.js';

export type Op = (text: string, file: string) => string;

export const ARGS = ['intel_iommu=on', 'iommu=pt', 'vfio-pci.ids=10de:2204,10de:1aef'];
export const REMOVE = ['iommu', 'vfio_pci.ids', 'quiet'];
export const VFIO_MODULES = ['vfio_pci', 'vfio', 'vfio_iommu_type1'];

const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';
const raws = (a: kc.KernelArg[] | { reason: string; line: number }) => (Array.isArray(a) ? a.map((x) => x.raw) : a);

export const OPS: Record<string, Record<string, Op>> = {
  'kernel-cmdline': {
    add: (t, f) => kc.render(kc.addKernelArgs(kc.parse(t, f), ARGS)),
    remove: (t, f) => kc.render(kc.removeKernelArgs(kc.parse(t, f), REMOVE)),
    args: (t, f) => {
      const d = kc.parse(t, f);
      return json({ kernel: kc.kernelArgs(d), init: kc.initArgs(d) });
    },
  },
  'grub-default': {
    add: (t, f) => grub.render(grub.addKernelArgs(grub.parse(t, f), ARGS)),
    'add-linux': (t, f) => grub.render(grub.addKernelArgs(grub.parse(t, f), ['console=ttyS0,115200'], { key: 'GRUB_CMDLINE_LINUX' })),
    remove: (t, f) => grub.render(grub.removeKernelArgs(grub.parse(t, f), REMOVE)),
    'boot-args': (t, f) => {
      const r = grub.bootArgs(grub.parse(t, f));
      return json('reason' in r ? r : { normal: raws(r.normal), recovery: raws(r.recovery) });
    },
  },
  'modprobe-d': {
    analyse: (t, f) => json(modprobe.analyseVfio([modprobe.parse(t, f)])),
    directives: (t, f) => json(modprobe.directives(modprobe.parse(t, f))),
  },
  'initramfs-tools-modules': {
    ensure: (t, f) => itm.render(itm.ensureModules(itm.parse(t, f), VFIO_MODULES)),
    remove: (t, f) => itm.render(itm.removeOwned(itm.parse(t, f))),
    lint: (t, f) => json({ modules: itm.modules(itm.parse(t, f)), lint: itm.lint(itm.parse(t, f)) }),
  },
  'dracut-conf': {
    lists: (t, f) => {
      const d = dracut.parse(t, f);
      const lists = Object.fromEntries(['add_drivers', 'force_drivers', 'omit_drivers', 'install_items', 'hostonly'].map((n) => [n, dracut.listValue(d, n)]));
      return json({ lists, lint: dracut.lint(d) });
    },
  },
  'mkinitcpio-conf': {
    prepend: (t, f) => mk.render(mk.prependModules(mk.parse(t, f), VFIO_MODULES)),
    files: (t, f) => mk.render(mk.appendFiles(mk.parse(t, f), [modprobe.OVERRIDE_SCRIPT_PATH])),
    remove: (t, f) => mk.render(mk.removeOwned(mk.parse(t, f))),
    report: (t, f) => {
      const d = mk.parse(t, f);
      return json({ report: mk.report(d), choice: mk.chooseTarget(d) });
    },
  },
  'booster-yaml': {
    ensure: (t, f) => booster.render(booster.ensureForceLoad(booster.parse(t, f), VFIO_MODULES)),
    remove: (t, f) => booster.render(booster.removeOwned(booster.parse(t, f))),
    list: (t, f) => json(booster.forceLoad(booster.parse(t, f))),
  },
  'bls-entry': {
    add: (t, f) => bls.render(bls.addKernelArgs(bls.parse(t, f), ARGS)),
    remove: (t, f) => bls.render(bls.removeKernelArgs(bls.parse(t, f), REMOVE)),
    args: (t, f) => {
      const d = bls.parse(t, f);
      return json({ title: bls.field(d, 'title'), args: raws(bls.kernelArgs(d)) });
    },
  },
  'kernelstub-config': {
    add: (t, f) => ks.render(ks.addKernelArgs(ks.parse(t, f), ARGS)),
    remove: (t, f) => ks.render(ks.removeKernelArgs(ks.parse(t, f), REMOVE)),
  },
  'refind-linux-conf': {
    add: (t, f) => refind.render(refind.addKernelArgs(refind.parse(t, f), ARGS)),
    remove: (t, f) => refind.render(refind.removeKernelArgs(refind.parse(t, f), REMOVE)),
    entries: (t, f) => json(refind.entries(refind.parse(t, f)).map((e) => ({ ...e, options: raws(e.options) }))),
  },
  limine: {
    add: (t, f) => limine.render(limine.addKernelArgs(limine.parse(t, f), ARGS)),
    remove: (t, f) => limine.render(limine.removeKernelArgs(limine.parse(t, f), REMOVE)),
    entries: (t, f) => json(limine.entries(limine.parse(t, f)).map((e) => ({ ...e, cmdline: raws(e.cmdline) }))),
  },
  'limine-defaults': {
    ensure: (t, f) => limine.renderDefaults(limine.ensureDefaultsArgs(limine.parseDefaults(t, f), ARGS)),
    remove: (t, f) => limine.renderDefaults(limine.removeDefaultsOwned(limine.parseDefaults(t, f))),
    args: (t, f) => json(raws(limine.defaultsKernelArgs(limine.parseDefaults(t, f)))),
  },
};

/** Run an op; a FileFormatError becomes the golden text, anything else propagates. */
export function runOp(op: Op, text: string, file: string): string {
  try {
    return op(text, file);
  } catch (e) {
    if (e instanceof FileFormatError) return `ERROR ${e.message}\nHINT ${e.hint ?? ''}\n`;
    throw e;
  }
}
