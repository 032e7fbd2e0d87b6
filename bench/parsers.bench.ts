// `npm run bench:parsers` (also part of `npm run bench`): throughput of every
// config-file parser on 1 MB and 16 MB inputs made of lines typical of the
// format. Parsing must be linear: MB/s stays about the same from 1 MB to
// 16 MB. Yardstick: splitting the same text into lines (the least any line
// parser does). Target: >= 20 MB/s for each parser on an idle machine.

import * as bls from '../src/formats/bls-entry.js';
import * as booster from '../src/formats/booster-yaml.js';
import * as dracut from '../src/formats/dracut-conf.js';
import * as grub from '../src/formats/grub-default.js';
import * as itm from '../src/formats/initramfs-tools-modules.js';
import * as cmdline from '../src/formats/kernel-cmdline.js';
import * as limine from '../src/formats/limine.js';
import * as mkinitcpio from '../src/formats/mkinitcpio-conf.js';
import * as modprobe from '../src/formats/modprobe-d.js';
import * as refind from '../src/formats/refind-linux-conf.js';

const FORMATS: { name: string; lines: string[]; sep?: string; parse: (t: string) => unknown }[] = [
  { name: 'grub-default (shell)', lines: ['# GRUB_TERMINAL=console', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash intel_iommu=on"', 'GRUB_TIMEOUT=5', ''], parse: (t) => grub.parse(t) },
  { name: 'dracut-conf (shell)', lines: ['add_drivers+=" vfio vfio_pci "', '# hostonly', 'force_drivers+=" vfio_iommu_type1 "'], parse: (t) => dracut.parse(t) },
  { name: 'mkinitcpio-conf (shell)', lines: ['# MODULES', 'HOOKS=(base udev autodetect modconf block filesystems fsck)', 'COMPRESSION="zstd"'], parse: (t) => mkinitcpio.parse(t) },
  { name: 'limine defaults (shell)', lines: ['KERNEL_CMDLINE[default]+="quiet"', 'TARGET_OS_NAME="Arch"', '# comment'], parse: (t) => limine.parseDefaults(t) },
  { name: 'modprobe-d', lines: ['options vfio-pci ids=10de:2204,10de:1aef', 'softdep nvidia pre: vfio-pci', '# comment', 'blacklist nouveau'], parse: (t) => modprobe.parse(t) },
  { name: 'initramfs-tools-modules', lines: ['# List of modules', 'vfio_pci', 'raid1', ''], parse: (t) => itm.parse(t) },
  { name: 'bls-entry', lines: ['title Fedora Linux', 'options root=UUID=0b7c5e0e rw quiet', 'linux /vmlinuz-6.5', '# note'], parse: (t) => bls.parse(t) },
  { name: 'refind-linux-conf', lines: ['"Boot with standard options"  "root=UUID=0b7c5e0e rw quiet"', '# comment'], parse: (t) => refind.parse(t) },
  { name: 'booster-yaml', lines: ['key{i}: zstd', '# comment', 'other{i}: false'], parse: (t) => booster.parse(t) },
  { name: 'kernel-cmdline', lines: ['quiet', 'root=UUID=0b7c5e0e-1111', 'rd.driver.pre=vfio-pci'], sep: ' ', parse: (t) => cmdline.parse(t) },
];

function make(lines: string[], bytes: number, sep: string): string {
  const out: string[] = [];
  let n = 0;
  for (let i = 0; n < bytes; i++) {
    const l = lines[i % lines.length].replace('{i}', String(i));
    out.push(l);
    n += l.length + 1;
  }
  return out.join(sep) + '\n';
}

function mbps(fn: () => unknown, bytes: number): number {
  fn(); // warm up
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    fn();
    runs.push(performance.now() - t0);
  }
  runs.sort((a, b) => a - b);
  return bytes / 1048576 / (runs[1] / 1000);
}

const SIZES = [1, 16];
console.log(`parser throughput (MB/s, median of 3), yardstick = text.split('\\n'); target >= 20 MB/s`);
console.log(['format'.padEnd(26), ...SIZES.map((s) => `${s} MB`.padStart(10)), ...SIZES.map((s) => `split ${s} MB`.padStart(14)), '  ok'].join(''));
let failed = false;
for (const f of FORMATS) {
  const row: string[] = [f.name.padEnd(26)];
  const yard: string[] = [];
  let worst = Infinity;
  for (const s of SIZES) {
    const text = make(f.lines, s * 1048576, f.sep ?? '\n');
    const v = mbps(() => f.parse(text), text.length);
    worst = Math.min(worst, v);
    row.push(v.toFixed(1).padStart(10));
    yard.push(mbps(() => text.split('\n'), text.length).toFixed(0).padStart(14));
  }
  if (worst < 20) failed = true;
  console.log([...row, ...yard, worst >= 20 ? '  yes' : '  NO'].join(''));
}
console.log(failed ? 'some parser is below 20 MB/s on this machine (run on an idle machine to compare)' : 'all parsers >= 20 MB/s');
