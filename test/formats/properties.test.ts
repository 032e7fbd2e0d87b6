// Property tests (fast-check): round-trip on generated inputs (quoting variants, comments,
// duplicate keys, with and without a trailing newline; LF only), idempotence of every edit,
// removal of vfiokit's own edits restoring the input, and lines vfiokit does not own keeping
// their content and order.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileFormatError } from '../../src/errors.js';
import { GPU_DRIVERS, normModule } from '../../src/formats/common.js';
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
import { evaluate, parseShell } from '../../src/formats/shell.js';

const RUNS = { numRuns: 150 };
const ARGS = ['intel_iommu=on', 'iommu=pt', 'vfio-pci.ids=10de:2204,10de:1aef', 'rd.driver.pre=vfio_pci'];
const ADDED_KEYS = ['intel_iommu', 'iommu', 'vfio_pci.ids'];
const VFIO = ['vfio_pci', 'vfio', 'vfio_iommu_type1'];

/** Lines joined with LF, with or without a final newline. */
function file(line: fc.Arbitrary<string>, max = 12): fc.Arbitrary<string> {
  return fc.tuple(fc.array(line, { maxLength: max }), fc.boolean()).map(([ls, nl]) => (ls.length === 0 ? '' : ls.join('\n') + (nl ? '\n' : '')));
}

const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/);
const comment = fc.stringMatching(/^[a-zA-Z0-9 =.,:'"()-]{0,30}$/).map((s) => `#${s}`);
const blank = fc.constantFrom('', ' ', '\t');

// ---- kernel command line -------------------------------------------------------------------

const argKey = fc.constantFrom('quiet', 'splash', 'iommu', 'intel_iommu', 'intel-iommu', 'amd_iommu', 'vfio-pci.ids', 'vfio_pci.ids', 'root', 'rd.driver.pre', 'console', 'ro');
const argValue = fc.constantFrom(null, 'on', 'off', 'pt', '1', '10de:2204,10de:1aef', '1002:731f', 'UUID=ab-cd', '"a b"', 'ttyS0,115200');
const kArg = fc.tuple(argKey, argValue).map(([k, v]) => (v === null ? k : `${k}=${v}`));
const ws = fc.constantFrom(' ', '  ', '\t', ' \t ');
const cmdline = fc
  .tuple(fc.constantFrom('', ' '), fc.array(fc.tuple(kArg, ws), { maxLength: 10 }), fc.option(fc.array(kArg, { maxLength: 3 })), fc.constantFrom('', '\n', '  '))
  .map(([lead, args, init, tail]) => lead + args.map(([a, s]) => a + s).join('').trimEnd() + (init ? ` -- ${init.join(' ')}` : '') + tail);

const keyOf = (a: kc.KernelArg) => a.key.replace(/-/g, '_');
/** The arg is on the command line (keys compare with '-' == '_', as the kernel does). */
function hasArg(raws: readonly string[], arg: string): boolean {
  const want = kc.parseArg(arg);
  return raws.some((r) => {
    const got = kc.parseArg(r);
    return kc.sameKey(got.key, want.key) && got.value === want.value;
  });
}

describe('kernel-cmdline properties', () => {
  it('round-trips', () =>
    fc.assert(
      fc.property(cmdline, (t) => {
        expect(kc.render(kc.parse(t))).toBe(t);
      }),
      RUNS,
    ));
  it('add is idempotent, sets each key once, keeps other args in order and init args untouched', () =>
    fc.assert(
      fc.property(cmdline, (t) => {
        const d = kc.parse(t);
        const once = kc.addKernelArgs(d, ARGS);
        expect(kc.render(kc.addKernelArgs(once, ARGS))).toBe(kc.render(once));
        const args = kc.kernelArgs(once);
        for (const a of ARGS.slice(0, 3)) {
          const k = kc.parseArg(a);
          // set: every occurrence has the value (identical duplicates the user had are left alone)
          const vals = args.filter((x) => keyOf(x) === k.key.replace(/-/g, '_')).map((x) => x.value);
          expect(vals.length).toBeGreaterThanOrEqual(1);
          expect(new Set(vals)).toEqual(new Set([k.value]));
        }
        expect(args.some((x) => x.key === 'rd.driver.pre' && x.value === 'vfio_pci')).toBe(true);
        const others = (xs: kc.KernelArg[]) => xs.filter((x) => !ADDED_KEYS.includes(keyOf(x)) && x.key !== 'rd.driver.pre').map((x) => x.raw);
        expect(others(args)).toEqual(others(kc.kernelArgs(d)));
        expect(kc.initArgs(once)).toEqual(kc.initArgs(d));
      }),
      RUNS,
    ));
  it('remove is idempotent and removes exactly the matching args', () =>
    fc.assert(
      fc.property(cmdline, (t) => {
        const d = kc.parse(t);
        const once = kc.removeKernelArgs(d, ['iommu', 'vfio_pci.ids', 'quiet']);
        expect(kc.render(kc.removeKernelArgs(once, ['iommu', 'vfio_pci.ids', 'quiet']))).toBe(kc.render(once));
        const keep = (xs: kc.KernelArg[]) => xs.filter((x) => !['iommu', 'vfio_pci.ids', 'quiet'].includes(keyOf(x))).map((x) => x.raw);
        expect(kc.kernelArgs(once).map((x) => x.raw)).toEqual(keep(kc.kernelArgs(d)));
        expect(kc.initArgs(once)).toEqual(kc.initArgs(d));
      }),
      RUNS,
    ));
});

// ---- GRUB ----------------------------------------------------------------------------------

const inner = fc.array(kArg.filter((a) => !a.includes('"')), { maxLength: 6 }).map((xs) => xs.join(' '));
const grubValue = fc.oneof(
  inner.map((s) => `"${s}"`),
  inner.map((s) => `'${s}'`),
  fc.constantFrom('', 'quiet', 'iommu=pt'),
  inner.map((s) => `"$GRUB_CMDLINE_LINUX_DEFAULT ${s}"`),
  inner.map((s) => `"${s.replace(' ', ' \\\n  ')}"`),
);
const grubLine = fc.oneof(
  comment,
  blank,
  fc.tuple(fc.constantFrom('GRUB_CMDLINE_LINUX_DEFAULT', 'GRUB_CMDLINE_LINUX'), grubValue, fc.constantFrom('', ' ', ' # note')).map(([k, v, c]) => `${k}=${v}${c}`),
  fc.tuple(fc.constantFrom('GRUB_TIMEOUT', 'GRUB_DEFAULT', 'export GRUB_GFXMODE'), fc.constantFrom('5', '"0"', "'saved'", 'auto', '$GRUB_TIMEOUT')).map(([k, v]) => `${k}=${v}`),
  fc.constant('GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`'),
  fc.constant('GRUB_DISTRIBUTOR="$(lsb_release -is)"'),
);
const grubFile = file(grubLine);

function nonTarget(doc: grub.GrubDefaultDoc, key: string): string[] {
  return doc.statements.filter((s) => s.assign?.name !== key).map((s) => s.raw);
}

describe('grub-default properties', () => {
  it('round-trips', () =>
    fc.assert(
      fc.property(grubFile, (t) => {
        expect(grub.render(grub.parse(t))).toBe(t);
      }),
      RUNS,
    ));
  for (const key of ['GRUB_CMDLINE_LINUX_DEFAULT', 'GRUB_CMDLINE_LINUX'] as const) {
    it(`add/remove on ${key}: idempotent, other statements unchanged, args present`, () =>
      fc.assert(
        fc.property(grubFile, (t) => {
          const d = grub.parse(t);
          let once: grub.GrubDefaultDoc;
          try {
            once = grub.addKernelArgs(d, ARGS, { key });
          } catch (e) {
            // refused (not static / uses another variable): removal must refuse the same way
            expect(e).toBeInstanceOf(FileFormatError);
            expect(() => grub.removeKernelArgs(d, ['iommu'], { key })).toThrow(FileFormatError);
            return;
          }
          expect(grub.render(grub.addKernelArgs(once, ARGS, { key }))).toBe(grub.render(once));
          expect(nonTarget(once, key)).toEqual(nonTarget(d, key));
          const args = grub.kernelArgs(once, key) as kc.KernelArg[];
          for (const a of ARGS) expect(hasArg(args.map((x) => x.raw), a), a).toBe(true);
          const removed = grub.removeKernelArgs(once, ['intel_iommu', 'iommu', 'vfio_pci.ids', 'rd.driver.pre'], { key });
          expect(grub.render(grub.removeKernelArgs(removed, ['intel_iommu', 'iommu', 'vfio_pci.ids', 'rd.driver.pre'], { key }))).toBe(grub.render(removed));
          expect((grub.kernelArgs(removed, key) as kc.KernelArg[]).filter((x) => [...ADDED_KEYS, 'rd.driver.pre'].includes(keyOf(x)))).toEqual([]);
        }),
        RUNS,
      ));
  }
  it('the drop-in parses back and appends the args to the inherited value', () =>
    fc.assert(
      fc.property(grubFile, (t) => {
        const main = grub.parse(t);
        const before = grub.kernelArgs(main);
        fc.pre(Array.isArray(before));
        const drop = grub.parse(grub.renderDropIn(ARGS), grub.DROP_IN_PATH);
        const after = grub.kernelArgs(drop, undefined, grub.values(main)) as kc.KernelArg[];
        expect(after.map((a) => a.raw)).toEqual([...(before as kc.KernelArg[]).map((a) => a.raw), ...ARGS]);
      }),
      RUNS,
    ));
});

// ---- modprobe.d ----------------------------------------------------------------------------

const mod = fc.constantFrom('vfio-pci', 'vfio_pci', 'nvidia', 'amdgpu', 'snd_hda_intel', 'kvm', 'vfio_iommu_type1');
const ids = fc.array(fc.constantFrom('10de:2204', '10de:1aef', '1002:731f'), { minLength: 1, maxLength: 3 }).map((x) => x.join(','));
const mpLine = fc.oneof(
  comment,
  blank,
  fc.tuple(ws, ids).map(([s, i]) => `options${s}vfio-pci ids=${i}`),
  fc.tuple(mod, fc.constantFrom('disable_vga=1', 'ignore_msrs=1', 'a=1 b=2')).map(([m, o]) => `options ${m} ${o}`),
  fc.tuple(mod, fc.constantFrom('pre:', 'post:')).map(([m, p]) => `softdep ${m} ${p} vfio-pci`),
  mod.map((m) => `blacklist ${m}`),
  fc.constant('install vfio-pci /usr/local/bin/override.sh'),
  fc.constant('alias pci:v000010DEd*sv*sd*bc03sc*i* vfio-pci'),
  fc.constant('options snd_hda_intel \\\n  enable_msi=1'),
);

describe('modprobe-d properties', () => {
  it('round-trips and finds every ids= line', () =>
    fc.assert(
      fc.property(fc.array(mpLine, { maxLength: 12 }), fc.boolean(), (ls, nl) => {
        const t = ls.length === 0 ? '' : ls.join('\n') + (nl ? '\n' : '');
        const d = modprobe.parse(t);
        expect(modprobe.render(d)).toBe(t);
        const facts = modprobe.analyseVfio([d]);
        expect(facts.ids.length).toBe(ls.filter((l) => /^options\s+vfio-pci ids=/.test(l)).length);
        expect(facts.blacklists.length).toBe(ls.filter((l) => /^blacklist vfio[-_](pci|iommu_type1)$/.test(l)).length);
      }),
      RUNS,
    ));
  it('renders an owned file that parses and analyses back to the intent', () =>
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('10de:2204', '10de:1aef', '1002:731f', '8086:a0ed'), { maxLength: 4 }),
        fc.uniqueArray(fc.constantFrom('nvidia', 'nouveau', 'amdgpu', 'snd_hda_intel', 'xhci_pci'), { maxLength: 5 }),
        (i, soft) => {
          const text = modprobe.renderOwnedFile({ ids: i, softdeps: soft, options: { disable_vga: '1' } });
          const f = modprobe.analyseVfio([modprobe.parse(text)]);
          expect(f.ownedFiles).toHaveLength(1);
          expect(f.effectiveIds?.ids ?? []).toEqual(i);
          expect(f.softdeps.map((s) => s.module)).toEqual(soft);
          expect(f.problems).toEqual([]);
        },
      ),
      RUNS,
    ));
});

// ---- initramfs-tools modules ---------------------------------------------------------------

const modName = fc.constantFrom('vfio', 'vfio-pci', 'vfio_pci', 'vfio_iommu_type1', 'amdgpu', 'nouveau', 'nvme', 'virtio-net', 'dm_crypt');
const itmLine = fc.oneof(comment, fc.constant(''), modName, fc.tuple(modName, fc.constantFrom('debug=1', 'a b')).map(([m, a]) => `${m} ${a}`));
const itmFile = file(itmLine);

describe('initramfs-tools-modules properties', () => {
  it('round-trips; ensure is idempotent, reversible, keeps other lines, puts vfio before GPU drivers', () =>
    fc.assert(
      fc.property(itmFile, (t) => {
        const d = itm.parse(t);
        expect(itm.render(d)).toBe(t);
        const once = itm.ensureModules(d, VFIO);
        expect(itm.render(itm.ensureModules(once, VFIO))).toBe(itm.render(once));
        expect(itm.render(itm.removeOwned(once))).toBe(t);
        expect(once.lines.filter((l) => !l.owned).map((l) => l.raw)).toEqual(d.lines.map((l) => l.raw));
        const names = itm.modules(once).map((m) => normModule(m.name));
        const gpu = names.findIndex((n) => GPU_DRIVERS.includes(n));
        for (const v of VFIO) {
          const at = names.indexOf(v);
          expect(at).toBeGreaterThanOrEqual(0);
          if (gpu >= 0) expect(at).toBeLessThan(gpu);
        }
      }),
      RUNS,
    ));
});

// ---- mkinitcpio ----------------------------------------------------------------------------

const mkItems = fc.array(fc.constantFrom('amdgpu', 'nvidia', 'i915', 'btrfs', 'ext4', 'vfio_pci', 'vfio', 'crc32c'), { maxLength: 5 });
const mkModules = fc.oneof(
  fc.tuple(mkItems, fc.constantFrom(' ', '  ', '\n  ')).map(([xs, s]) => `MODULES=(${s === ' ' ? '' : s}${xs.join(s)}${s === ' ' ? '' : s})`),
  mkItems.map((xs) => `MODULES="${xs.join(' ')}"`),
  mkItems.map((xs) => `MODULES='${xs.join(' ')}'`),
);
const mkLine = fc.oneof(
  comment,
  fc.constant(''),
  mkModules,
  fc.constantFrom('HOOKS=(base udev autodetect modconf block filesystems fsck)', 'HOOKS="base systemd autodetect block"', 'FILES=()', 'FILES=(/etc/x)', 'FILES=""', 'BINARIES=()', 'COMPRESSION="zstd"'),
);
const mkFile = file(mkLine);

describe('mkinitcpio-conf properties', () => {
  it('round-trips; prepend/appendFiles are idempotent and reversible, vfio ends up before GPU drivers', () =>
    fc.assert(
      fc.property(mkFile, (t) => {
        const d = mk.parse(t);
        expect(mk.render(d)).toBe(t);
        const once = mk.appendFiles(mk.prependModules(d, VFIO), ['/usr/local/lib/vfiokit/x.sh']);
        const twice = mk.appendFiles(mk.prependModules(once, VFIO), ['/usr/local/lib/vfiokit/x.sh']);
        expect(mk.render(twice)).toBe(mk.render(once));
        expect(mk.render(mk.removeOwned(once))).toBe(t);
        const keep = (x: mk.MkinitcpioDoc) => x.statements.filter((s) => !['MODULES', 'FILES'].includes(s.assign?.name ?? '')).map((s) => s.raw);
        expect(keep(once)).toEqual(keep(d));
        // the edited (last) MODULES statement lists vfio before any GPU driver
        const r = mk.report(once);
        const mods = r.modules!;
        const gpu = mods.findIndex((m) => GPU_DRIVERS.includes(m));
        for (const v of VFIO) {
          expect(mods).toContain(v);
          if (gpu >= 0) expect(mods.indexOf(v)).toBeLessThan(gpu);
        }
        expect(r.files).toContain('/usr/local/lib/vfiokit/x.sh');
      }),
      RUNS,
    ));
});

// ---- dracut --------------------------------------------------------------------------------

describe('dracut-conf properties', () => {
  it('round-trips generated files and += lists concatenate like bash', () =>
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('add_drivers', 'force_drivers'), fc.boolean(), fc.array(word, { maxLength: 3 })), { maxLength: 6 }), fc.boolean(), (assigns, nl) => {
        const lines = assigns.map(([n, app, xs]) => `${n}${app ? '+' : ''}=" ${xs.join(' ')} "`);
        const t = lines.length === 0 ? '' : lines.join('\n') + (nl ? '\n' : '');
        const d = dracut.parse(t);
        expect(dracut.render(d)).toBe(t);
        for (const name of ['add_drivers', 'force_drivers']) {
          let model: string[] = [];
          for (const [n, app, xs] of assigns) if (n === name) model = app ? [...model, ...xs] : [...xs];
          expect(dracut.listValue(d, name)).toEqual(model);
        }
      }),
      RUNS,
    ));
  it('the owned file parses back to the same drivers', () =>
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 5 }), (xs) => {
        const d = dracut.parse(dracut.renderOwnedFile({ forceDrivers: xs }));
        expect(dracut.listValue(d, 'force_drivers')).toEqual(xs);
        expect(dracut.lint(d)).toEqual([]);
      }),
      RUNS,
    ));
});

// ---- booster -------------------------------------------------------------------------------

const boosterFile = fc
  .tuple(
    fc.uniqueArray(fc.constantFrom('compression: zstd', 'universal: false', 'modules: -*,+ext4', 'network:', '  dhcp: on', '# comment', ''), { maxLength: 5 }),
    fc.option(fc.tuple(fc.array(fc.constantFrom('nvme', 'amdgpu', 'vfio', 'vfio-pci'), { minLength: 1, maxLength: 3 }), fc.constantFrom('', ' # c', '  '), fc.boolean())),
    fc.nat(),
    fc.boolean(),
  )
  .map(([ls, fl, at, nl]) => {
    const lines = [...ls.filter((l) => !(l === '  dhcp: on'))];
    if (fl) {
      const v = fl[0].join(',');
      lines.splice(at % (lines.length + 1), 0, `modules_force_load: ${fl[2] ? `"${v}"` : v}${fl[1]}`);
    }
    return lines.length === 0 ? '' : lines.join('\n') + (nl ? '\n' : '');
  });

describe('booster-yaml properties', () => {
  it('round-trips; ensure is idempotent and reversible, other lines untouched', () =>
    fc.assert(
      fc.property(boosterFile, (t) => {
        const d = booster.parse(t);
        expect(booster.render(d)).toBe(t);
        const once = booster.ensureForceLoad(d, VFIO);
        expect(booster.render(booster.ensureForceLoad(once, VFIO))).toBe(booster.render(once));
        expect(booster.render(booster.removeOwned(once))).toBe(t);
        const others = (x: booster.BoosterDoc) => x.lines.filter((l) => l.key !== 'modules_force_load').map((l) => l.raw);
        expect(others(once)).toEqual(others(d));
        const have = booster.forceLoad(once).map(normModule);
        for (const v of VFIO) expect(have).toContain(v);
      }),
      RUNS,
    ));
});

// ---- BLS, rEFInd, Limine, kernelstub -------------------------------------------------------

const optsText = fc.array(kArg.filter((a) => !a.includes('"')), { maxLength: 5 }).map((xs) => xs.join(' '));
const blsFile = fc
  .tuple(fc.array(fc.oneof(fc.constantFrom('title Linux', 'linux /vmlinuz', 'initrd /initrd.img', 'version 6.8', '# c', ''), optsText.map((o) => `options ${o}`), optsText.map((o) => `options\t${o}`)), { maxLength: 7 }), fc.boolean())
  .map(([ls, nl]) => (ls.length === 0 ? '' : ls.join('\n') + (nl ? '\n' : '')));

describe('bls-entry properties', () => {
  it('round-trips; add idempotent; non-options lines unchanged; all args present once', () =>
    fc.assert(
      fc.property(blsFile, (t) => {
        const d = bls.parse(t);
        expect(bls.render(d)).toBe(t);
        const once = bls.addKernelArgs(d, ARGS);
        expect(bls.render(bls.addKernelArgs(once, ARGS))).toBe(bls.render(once));
        const others = (x: bls.BlsEntryDoc) => x.lines.filter((l) => l.key !== 'options' && l.raw !== '# vfiokit').map((l) => l.raw);
        expect(others(once)).toEqual(others(d));
        const args = bls.kernelArgs(once);
        for (const a of ARGS.slice(0, 3)) {
          const want = kc.parseArg(a);
          const vals = args.filter((x) => kc.sameKey(x.key, want.key)).map((x) => x.value);
          expect(new Set(vals)).toEqual(new Set([want.value]));
        }
        const back = bls.removeKernelArgs(once, ['intel_iommu', 'iommu', 'vfio_pci.ids', 'rd.driver.pre']);
        expect(bls.kernelArgs(back).filter((a) => [...ADDED_KEYS, 'rd.driver.pre'].includes(keyOf(a)))).toEqual([]);
      }),
      RUNS,
    ));
});

const refindFile = fc
  .tuple(
    fc.array(
      fc.oneof(
        fc.tuple(fc.constantFrom('Boot with standard options', 'Boot to single-user mode', 'Boot with minimal options', 'Arch (fallback)', 'Debug'), optsText, fc.constantFrom(' ', '  ', '\t')).map(([l, o, s]) => `"${l}"${s}"${o}"`),
        comment,
        fc.constant(''),
      ),
      { maxLength: 6 },
    ),
    fc.boolean(),
  )
  .map(([ls, nl]) => (ls.length === 0 ? '' : ls.join('\n') + (nl ? '\n' : '')));

describe('refind-linux-conf properties', () => {
  it('round-trips; add idempotent; rescue entries and other lines untouched', () =>
    fc.assert(
      fc.property(refindFile, (t) => {
        const d = refind.parse(t);
        expect(refind.render(d)).toBe(t);
        const once = refind.addKernelArgs(d, ARGS);
        expect(refind.render(refind.addKernelArgs(once, ARGS))).toBe(refind.render(once));
        once.lines.forEach((l, i) => {
          if (l.kind !== 'entry' || /single|minimal|fallback/.test(l.label!)) expect(l.raw).toBe(d.lines[i].raw);
        });
        for (const e of refind.entries(once).filter((x) => !x.rescue)) for (const a of ARGS) expect(hasArg(e.options.map((o) => o.raw), a), a).toBe(true);
      }),
      RUNS,
    ));
});

const limineFile = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.constantFrom('/Arch', '/Arch (fallback)', '//Sub', '/+Group'),
        fc.constantFrom('linux', 'efi', 'limine'),
        fc.option(fc.tuple(fc.constantFrom('cmdline', 'kernel_cmdline', 'CMDLINE'), optsText)),
        fc.constantFrom('', '  ', '    '),
      ),
      { maxLength: 4 },
    ),
    fc.boolean(),
  )
  .map(([es, nl]) => {
    const lines = ['timeout: 5'];
    for (const [title, proto, cmd, ind] of es) {
      lines.push(title, `${ind}protocol: ${proto}`, `${ind}path: boot():/vmlinuz`);
      if (cmd) lines.push(`${ind}${cmd[0]}: ${cmd[1]}`);
    }
    return lines.join('\n') + (nl ? '\n' : '');
  });

describe('limine properties', () => {
  it('round-trips; add idempotent; remove undoes an added cmdline line; non-cmdline lines kept', () =>
    fc.assert(
      fc.property(limineFile, (t) => {
        const d = limine.parse(t);
        expect(limine.render(d)).toBe(t);
        const once = limine.addKernelArgs(d, ARGS);
        expect(limine.render(limine.addKernelArgs(once, ARGS))).toBe(limine.render(once));
        const others = (x: limine.LimineDoc) => x.lines.filter((l) => !['cmdline', 'kernel_cmdline'].includes(l.key ?? '') && l.raw.trim() !== '# vfiokit').map((l) => l.raw);
        expect(others(once)).toEqual(others(d));
        const before = limine.entries(d);
        limine.entries(once).forEach((e, i) => {
          if (e.protocol === 'linux' && !e.rescue) for (const a of ARGS) expect(hasArg(e.cmdline.map((x) => x.raw), a), a).toBe(true);
          else expect(e.cmdline).toEqual(before[i].cmdline);
        });
        // entries that had no cmdline get exactly their marked line back out
        const noCmd = limine.entries(d).every((e) => e.cmdline.length === 0) && !/cmdline/i.test(t);
        if (noCmd) expect(limine.render(limine.removeKernelArgs(once, ['intel_iommu', 'iommu', 'vfio_pci.ids', 'rd.driver.pre']))).toBe(t);
      }),
      RUNS,
    ));
  it('/etc/default/limine: ensure is idempotent and reversible', () =>
    fc.assert(
      fc.property(file(fc.oneof(comment, fc.constant(''), optsText.map((o) => `KERNEL_CMDLINE[default]+=" ${o}"`), fc.constant('ESP_PATH="/boot"'))), (t) => {
        const d = limine.parseDefaults(t);
        expect(limine.renderDefaults(d)).toBe(t);
        const once = limine.ensureDefaultsArgs(d, ARGS);
        expect(limine.renderDefaults(limine.ensureDefaultsArgs(once, ARGS))).toBe(limine.renderDefaults(once));
        expect(limine.renderDefaults(limine.removeDefaultsOwned(once))).toBe(t);
        const args = (limine.defaultsKernelArgs(once) as kc.KernelArg[]).map((a) => a.raw);
        for (const a of ARGS) expect(hasArg(args, a), a).toBe(true);
      }),
      RUNS,
    ));
});

const ksValue = fc.record({
  default: fc.record({ kernel_options: fc.array(kArg.filter((a) => !a.includes('"')), { maxLength: 3 }), esp_path: fc.constant('/boot/efi') }),
  user: fc.record({ kernel_options: fc.array(kArg, { maxLength: 6 }), esp_path: fc.constant('/boot/efi'), setup_loader: fc.boolean(), config_rev: fc.nat(5) }),
});

describe('kernelstub-config properties', () => {
  it('round-trips; add is idempotent, re-renders in the file style, keeps other keys', () =>
    fc.assert(
      fc.property(ksValue, fc.constantFrom(2, 4), fc.boolean(), (v, indent, nl) => {
        const t = JSON.stringify(v, null, indent) + (nl ? '\n' : '');
        const d = ks.parse(t);
        expect(ks.render(d)).toBe(t);
        const once = ks.addKernelArgs(d, ARGS);
        expect(ks.render(ks.addKernelArgs(once, ARGS))).toBe(ks.render(once));
        const back = JSON.parse(ks.render(once));
        expect(back.default).toEqual(v.default);
        expect({ ...back.user, kernel_options: [] }).toEqual({ ...v.user, kernel_options: [] });
        for (const a of ARGS) expect(hasArg(back.user.kernel_options, a), a).toBe(true);
        // same layout as the input: re-serialising the result the same way gives the same text
        expect(ks.render(once)).toBe(JSON.stringify(back, null, indent) + (nl ? '\n' : ''));
      }),
      RUNS,
    ));
});

// ---- bad input never escapes as anything but FileFormatError --------------------------------

describe('parsers reject garbage only with FileFormatError', () => {
  const parsers: [string, (t: string) => unknown][] = [
    ['kernel-cmdline', (t) => kc.parse(t)],
    ['grub-default', (t) => grub.parse(t)],
    ['modprobe-d', (t) => modprobe.parse(t)],
    ['initramfs-tools-modules', (t) => itm.parse(t)],
    ['mkinitcpio-conf', (t) => mk.parse(t)],
    ['booster-yaml', (t) => booster.parse(t)],
    ['bls-entry', (t) => bls.parse(t)],
    ['kernelstub-config', (t) => ks.parse(t)],
    ['refind-linux-conf', (t) => refind.parse(t)],
    ['limine', (t) => limine.parse(t)],
  ];
  const noise = fc.string({ unit: fc.constantFrom('a', '=', '"', "'", '\\', '\n', ' ', '#', '(', ')', '$', '`', '{', '}', ':', '/', '[', ']', ',', '\t'), maxLength: 40 });
  for (const [name, p] of parsers) {
    it(`${name}: parse either succeeds and round-trips or throws FileFormatError`, () =>
      fc.assert(
        fc.property(noise, (t) => {
          try {
            p(t);
          } catch (e) {
            expect(e).toBeInstanceOf(FileFormatError);
            expect((e as FileFormatError).line).toBeGreaterThanOrEqual(1);
          }
        }),
        { numRuns: 300 },
      ));
  }
});

// ---- shell words: a word and the same word with "" appended mean the same --------------------
// (`w""` is `w` in the shell; the appended empty string takes the parser off its one-literal
// fast path, so both ways of reading a word must give the same value.)

describe('shell word reading', () => {
  const piece = fc.oneof(
    fc.stringMatching(/^[a-z0-9_.\/=:-]{1,6}$/),
    fc.stringMatching(/^[a-z0-9 =#]{0,6}$/).map((x) => `"${x}"`),
    fc.stringMatching(/^[a-z0-9 "$\\=#]{0,6}$/).map((x) => `'${x}'`),
    fc.constantFrom('$HOME', '${A}', '\\ ', '"a\\"b"', '"$A"', "'x'y", '"a b"c'),
  );
  const word = fc.array(piece, { minLength: 1, maxLength: 3 }).map((p) => p.join(''));
  const valueOf = (text: string) => {
    try {
      const env = evaluate(parseShell(text, 't'), new Map([['A', { kind: 'scalar' as const, value: 'v', line: 0 }]]));
      const v = env.get('X');
      return v?.kind === 'scalar' ? v.value : v?.kind === 'array' ? v.items : v?.kind;
    } catch (e) {
      return (e as Error).constructor.name;
    }
  };
  it('scalars and array items: w and w"" evaluate alike, and the literal ones keep their style', () =>
    fc.assert(
      fc.property(word, word, (w, w2) => {
        expect(valueOf(`X=${w}\n`)).toEqual(valueOf(`X=${w}""\n`));
        expect(valueOf(`X=(${w} ${w2})\n`)).toEqual(valueOf(`X=(${w}"" ${w2}"")\n`));
        const d = parseShell(`X=${w}\n`, 't').statements[0]!;
        const sc = d.assign?.scalar;
        if (sc && /^[a-z0-9_.\/=:-]+$/.test(w)) expect([sc.style, sc.raw, sc.parts]).toEqual(['none', w, [{ kind: 'lit', text: w }]]);
        if (sc && /^"[a-z0-9 =#]*"$/.test(w)) expect([sc.style, sc.parts]).toEqual(['double', w.length > 2 ? [{ kind: 'lit', text: w.slice(1, -1) }] : []]);
      }),
      RUNS,
    ));
});
