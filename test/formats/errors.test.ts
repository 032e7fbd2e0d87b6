// Bad input: every parser/editor reports FileFormatError naming file:line, what was expected,
// and a hint. Invalid arguments from the caller are VfioErrors, not file errors.

import { describe, expect, it } from 'vitest';
import { FileFormatError, VfioError } from '../../src/errors.js';
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

function fileError(fn: () => unknown): FileFormatError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FileFormatError);
    const err = e as FileFormatError;
    expect(err.hint, 'every file error has a hint').toBeTruthy();
    expect(err.message.startsWith(`${err.file}:${err.line}: `)).toBe(true);
    return err;
  }
  throw new Error('expected a FileFormatError');
}

const CASES: [string, () => unknown, string, number, RegExp][] = [
  ['kernel cmdline quote', () => kc.parse('root=/dev/sda1 "quiet', '/proc/cmdline'), '/proc/cmdline', 1, /unterminated double quote/],
  ['grub quote on line 3', () => grub.parse('A=1\n\nGRUB_CMDLINE_LINUX_DEFAULT="quiet\n', '/etc/default/grub'), '/etc/default/grub', 3, /unterminated double quote/],
  ['grub $( )', () => grub.parse('X=$(echo\n', '/etc/default/grub'), '/etc/default/grub', 1, /unterminated \$\( command substitution/],
  ['grub backtick', () => grub.parse('A=1\nX=`date\n', '/etc/default/grub'), '/etc/default/grub', 2, /unterminated ` command substitution/],
  ['grub command substitution refused', () => grub.addKernelArgs(grub.parse('\nGRUB_CMDLINE_LINUX_DEFAULT="`cat /x`"\n', 'g'), ['iommu=pt']), 'g', 2, /not a static value.*`cat \/x`/],
  ['grub sourced file', () => grub.addKernelArgs(grub.parse('GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n. /etc/default/grub.local\n', 'g'), ['iommu=pt']), 'g', 2, /sources another file/],
  ['grub other variable', () => grub.addKernelArgs(grub.parse('EXTRA="x"\nGRUB_CMDLINE_LINUX_DEFAULT="$EXTRA quiet"\n', 'g'), ['iommu=pt']), 'g', 2, /uses \$EXTRA/],
  ['grub single quote in single-quoted value', () => grub.addKernelArgs(grub.parse("GRUB_CMDLINE_LINUX_DEFAULT='quiet'\n", 'g'), ["acpi_osi='Linux'"]), 'g', 1, /single-quoted/],
  ['modprobe unknown command on line 2', () => modprobe.parse('# x\nremove_me vfio\n', '/etc/modprobe.d/a.conf'), '/etc/modprobe.d/a.conf', 2, /unknown modprobe.d command "remove_me"/],
  ['modprobe alias arity', () => modprobe.parse('alias vfio-pci\n', 'm'), 'm', 1, /`alias` expects <wildcard> <module>/],
  ['modprobe options without module', () => modprobe.parse('options\n', 'm'), 'm', 1, /`options` expects/],
  ['modprobe continuation at EOF', () => modprobe.parse('blacklist a\noptions vfio-pci \\', 'm'), 'm', 2, /continuation/],
  ['initramfs bad module line', () => itm.parse('vfio\nvfio_pci ids=1\n@foo\n', 'i'), 'i', 3, /expected "module_name \[args...\]"/],
  ['initramfs end without begin', () => itm.parse('# vfiokit end\n', 'i'), 'i', 1, /end marker without a begin/],
  ['dracut unterminated array', () => dracut.parse('add_drivers+=( vfio\n', 'd'), 'd', 1, /unterminated array/],
  ['mkinitcpio bad array item', () => mk.parse('MODULES=(a | b)\n', 'm'), 'm', 1, /unexpected "\|" inside array/],
  ['mkinitcpio unquoted scalar list', () => mk.prependModules(mk.parse('MODULES=amdgpu\n', 'm'), ['vfio_pci']), 'm', 1, /not a quoted list/],
  ['mkinitcpio conditional', () => mk.prependModules(mk.parse('if true; then\nMODULES=(amdgpu)\nfi\n', 'm'), ['vfio_pci']), 'm', 2, /conditional/],
  ['booster tab indentation', () => booster.parse('network:\n\tdhcp: on\n', 'b'), 'b', 2, /tab used for indentation/],
  ['booster empty value', () => booster.ensureForceLoad(booster.parse('a: 1\nmodules_force_load:\n', 'b'), ['vfio']), 'b', 2, /is empty/],
  ['booster stale marker', () => booster.removeOwned(booster.parse('modules_force_load: amdgpu # vfiokit: prepend vfio\n', 'b')), 'b', 1, /no longer starts with it/],
  ['bls key=value', () => bls.parse('title A\nlinux=/vmlinuz\n', 'e'), 'e', 2, /expected "key value"/],
  ['kernel cmdline file with two lines', () => bls.parseCmdlineFile('root=/dev/sda1\nquiet\n', '/etc/kernel/cmdline'), '/etc/kernel/cmdline', 2, /on one line/],
  ['kernelstub trailing comma', () => ks.parse('{\n  "user": {\n    "kernel_options": ["a",]\n  }\n}', 'k'), 'k', 3, /invalid JSON at column 28/],
  ['kernelstub not an object', () => ks.parse('[1, 2]', 'k'), 'k', 1, /expected a JSON object/],
  ['kernelstub user not object', () => ks.parse('{\n"user": 3}', 'k'), 'k', 2, /"user" must be an object/],
  ['refind text after quote', () => refind.parse('"a""b"\n', 'r'), 'r', 1, /directly after a closing quote/],
  ['refind one string', () => refind.parse('# c\n"only label"\n', 'r'), 'r', 2, /expected two strings/],
  ['limine v7 line', () => limine.parse('timeout: 5\n/Arch\n    KERNEL_PATH=boot:///vmlinuz\n', 'l'), 'l', 3, /expected "key: value"/],
  ['limine defaults quote', () => limine.parseDefaults('KERNEL_CMDLINE[default]+=" quiet\n', 'l'), 'l', 1, /unterminated double quote/],
];

describe('FileFormatError on bad input', () => {
  for (const [name, fn, file, line, msg] of CASES) {
    it(name, () => {
      const e = fileError(fn);
      expect(e.file).toBe(file);
      expect(e.line).toBe(line);
      expect(e.message).toMatch(msg);
    });
  }

  it('every parser rejects CRLF line endings at the first CR', () => {
    const parsers: [string, (t: string, f: string) => unknown][] = [
      ['kernel-cmdline', kc.parse],
      ['grub', grub.parse],
      ['modprobe', modprobe.parse],
      ['initramfs', itm.parse],
      ['dracut', dracut.parse],
      ['mkinitcpio', mk.parse],
      ['booster', booster.parse],
      ['bls', bls.parse],
      ['kernelstub', ks.parse],
      ['refind', refind.parse],
      ['limine', limine.parse],
      ['limine defaults', limine.parseDefaults],
    ];
    for (const [name, p] of parsers) {
      const e = fileError(() => p('# ok\n# still ok\nx\r\n', `/f/${name}`));
      expect(e.line, name).toBe(3);
      expect(e.message, name).toMatch(/carriage return/);
    }
  });
});

describe('invalid arguments are VfioErrors (caller bugs), not file errors', () => {
  const bad: [string, () => unknown][] = [
    ['arg with a space', () => kc.addKernelArgs(kc.parse(''), ['a b'])],
    ['separator as arg', () => kc.addKernelArgs(kc.parse(''), ['--'])],
    ['unbalanced quote arg', () => grub.addKernelArgs(grub.parse(''), ['a="b'])],
    ['module name', () => itm.ensureModules(itm.parse(''), ['vfio pci'])],
    ['pci id', () => modprobe.renderOwnedFile({ ids: ['10de-2204'], softdeps: [] })],
    ['bdf', () => modprobe.renderOverrideScript(['01:00.0'])],
    ['bdf injection', () => modprobe.renderOwnedFile({ softdeps: [], overrideAddresses: ['0000:01:00.0; rm -rf /'] })],
    ['option value', () => modprobe.renderOwnedFile({ softdeps: [], options: { disable_vga: '1 ids=x' } })],
    ['dracut path', () => dracut.renderOwnedFile({ forceDrivers: ['vfio'], installItems: ['relative/x'] })],
    ['mkinitcpio files path', () => mk.appendFiles(mk.parse(''), ['/a b'])],
    ['empty drop-in', () => grub.renderDropIn([])],
    ['limine index', () => limine.renderDefaultsDropIn(['quiet'], 'a]')],
  ];
  for (const [name, fn] of bad) {
    it(name, () => {
      expect(fn).toThrow(VfioError);
      expect(fn).not.toThrow(FileFormatError);
    });
  }
});

describe('modprobe.d regression', () => {
  it('a continuation that joins only blank text is a FileFormatError, not a crash (found by fast-check)', async () => {
    const modprobe = await import('../../src/formats/modprobe-d.js');
    const { FileFormatError } = await import('../../src/errors.js');
    expect(() => modprobe.parse('\\\n ', '/etc/modprobe.d/x.conf')).toThrow(FileFormatError);
  });
});
