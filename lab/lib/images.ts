// Guest disk images, built once and cached (keyed on a hash of the recipe):
//
//   grub-itools   Debian, BIOS, GRUB + initramfs-tools
//   grub-dracut   Debian, BIOS, GRUB + dracut
//   uefi-sdboot   Debian, UEFI (OVMF), systemd-boot + /etc/kernel/cmdline, initramfs-tools
//
// Build: debootstrap into a directory (natively, fast), write the lab's
// configuration files into it, make the partition table and an ext4 file
// system from the directory (mkfs.ext4 -d, no loop devices), then a first
// boot with the image's own kernel and initrd installs the bootloader from
// inside the guest, and a second boot through that bootloader proves the image
// boots on its own. Only then is the image cached.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync, symlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { cached, cacheRoot } from './cache.js';
import { buildGpt, buildMbr, GPT_ESP, GPT_LINUX, SECTOR_SIZE, writeTable } from './disk.js';
import { GUEST_DRIVER, GUEST_KERNEL_ARGS, GUEST_UNIT, runFull } from './full-guest.js';
import { boot, qemuArgv } from './qemu.js';
import { GUEST_LIB } from './guest-script.js';
import { fullRunScript } from './full-guest.js';
import { log, run, runOk, sha256, which, withProgress, fmtDuration } from './util.js';

export type ImageName = 'grub-itools' | 'grub-dracut' | 'uefi-sdboot';

export interface Image {
  name: ImageName;
  dir: string;
  disk: string;
  boot: 'bios' | 'uefi';
  kernelVersion: string;
  /** UEFI: firmware code and the variable store template to copy per test. */
  uefi?: { code: string; vars: string };
  /** Built in this run (cold) and how long it took. */
  built: boolean;
}

const SUITE = 'bookworm';
const MIRROR = process.env.VFIOKIT_LAB_MIRROR || 'http://deb.debian.org/debian';
const DISK_BYTES = 4 * 1024 ** 3;
/**
 * The kernel command line every image boots with: serial console, IOMMU on
 * (as `vfiokit check` asks), and three settings for emulated CPUs on a busy
 * machine (see GUEST_KERNEL_ARGS).
 */
const BASE_CMDLINE = `console=ttyS0,115200 intel_iommu=on ${GUEST_KERNEL_ARGS}`;

interface Recipe {
  v: number;
  name: ImageName;
  boot: 'bios' | 'uefi';
  packages: string[];
  exclude: string[];
  /** Run natively in a chroot of the new system (with /proc) after debootstrap. */
  chroot: string;
  files: Record<string, string>;
  /** Run in the guest on the first boot (kernel + initrd given to QEMU directly). */
  setup: string;
  /** Run in the guest on the second boot, through the bootloader. */
  verify: string;
  driver: string;
  unit: string;
  cmdline: string;
}

const COMMON_PACKAGES = ['systemd-sysv', 'linux-image-amd64', 'kmod', 'pciutils', 'udev'];

function commonFiles(name: ImageName, rootUuid: string): Record<string, string> {
  return {
    '/etc/hostname': `vfiokit-lab-${name}\n`,
    '/etc/hosts': `127.0.0.1 localhost\n127.0.1.1 vfiokit-lab-${name}\n`,
    // A fixed machine id: systemd-boot's entries are named after it.
    '/etc/machine-id': sha256('vfiokit-lab-machine', name).slice(0, 32) + '\n',
    '/etc/fstab': `UUID=${rootUuid} / ext4 errors=remount-ro 0 1\n`,
    '/usr/local/sbin/vfiokit-lab-driver': GUEST_DRIVER,
    '/etc/systemd/system/vfiokit-lab.service': GUEST_UNIT,
    // Nothing should compete with the test for the (emulated) CPU.
    '/etc/systemd/system/apt-daily.timer': '',
    '/etc/systemd/system/apt-daily-upgrade.timer': '',
    '/etc/systemd/system/e2scrub_all.timer': '',
    '/etc/systemd/system/fstrim.timer': '',
  };
}

const GRUB_DEFAULT = `GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR="Debian"
GRUB_CMDLINE_LINUX_DEFAULT="loglevel=4"
GRUB_CMDLINE_LINUX="${BASE_CMDLINE}"
GRUB_TERMINAL="serial console"
GRUB_SERIAL_COMMAND="serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
GRUB_DISABLE_OS_PROBER=true
`;

const GRUB_SETUP = `
set -e
lab_say "installing GRUB on /dev/vda"
grub-install --target=i386-pc /dev/vda
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | debconf-set-selections
update-grub
lab_listing setup
`;

function recipeFor(name: ImageName, rootUuid: string, espUuid: string): Recipe {
  const files = commonFiles(name, rootUuid);
  // lib.sh is written per boot (not into the image), so it is not part of the recipe.
  const base = { v: 4, name, driver: GUEST_DRIVER, unit: GUEST_UNIT, cmdline: BASE_CMDLINE };
  switch (name) {
    case 'grub-itools':
      return {
        ...base,
        boot: 'bios',
        packages: [...COMMON_PACKAGES, 'grub-pc', 'initramfs-tools'],
        exclude: [],
        chroot: '',
        files: {
          ...files,
          '/etc/default/grub': GRUB_DEFAULT,
          // Only the modules this machine needs, gzip: an in-guest update-initramfs takes ~1 min instead of many.
          '/etc/initramfs-tools/conf.d/vfiokit-lab.conf': 'MODULES=dep\nCOMPRESS=gzip\n',
        },
        setup: GRUB_SETUP + 'update-initramfs -u -k all\n',
        verify: 'cat /proc/cmdline >"$LAB_OUT/cmdline"\nlab_listing verify\n',
      };
    case 'grub-dracut':
      return {
        ...base,
        boot: 'bios',
        // debootstrap resolves the kernel's initramfs dependency to initramfs-tools; dracut replaces it after.
        packages: [...COMMON_PACKAGES, 'grub-pc', 'initramfs-tools'],
        exclude: [],
        chroot: `set -e
mkdir -p /etc/dracut.conf.d
printf 'hostonly="no"\\ncompress="gzip"\\n' >/etc/dracut.conf.d/10-vfiokit-lab-build.conf
apt-get update -q
apt-get install -y -q --no-install-recommends dracut
rm -f /etc/dracut.conf.d/10-vfiokit-lab-build.conf
apt-get clean
ls /boot
`,
        files: {
          ...files,
          '/etc/default/grub': GRUB_DEFAULT,
          '/etc/dracut.conf.d/90-vfiokit-lab.conf': 'hostonly="yes"\ncompress="gzip"\n',
        },
        setup: GRUB_SETUP + 'dracut --force --regenerate-all\n',
        verify: 'cat /proc/cmdline >"$LAB_OUT/cmdline"\nlab_listing verify\n',
      };
    case 'uefi-sdboot':
      return {
        ...base,
        boot: 'uefi',
        packages: [...COMMON_PACKAGES, 'systemd-boot', 'initramfs-tools', 'dosfstools'],
        exclude: [],
        chroot: '',
        files: {
          ...files,
          '/etc/kernel/cmdline': `root=UUID=${rootUuid} ro ${BASE_CMDLINE} loglevel=4\n`,
          '/etc/initramfs-tools/conf.d/vfiokit-lab.conf': 'MODULES=dep\nCOMPRESS=gzip\n',
        },
        setup: `
set -e
lab_say "making the EFI system partition and installing systemd-boot"
mkfs.vfat -F 32 -n ESP -i ${espUuid} /dev/vda1
# The ESP's fstab line only now that it exists (an earlier one would stop this boot in emergency mode).
echo "UUID=${espUuid.replace(/^(....)(....)$/, '$1-$2')} /boot/efi vfat umask=0077 0 1" >>/etc/fstab
mkdir -p /boot/efi
mount /boot/efi
bootctl install --no-variables --esp-path=/boot/efi
printf 'timeout 0\\nconsole-mode keep\\n' >/boot/efi/loader/loader.conf
kver=$(ls /lib/modules | sort -V | tail -n 1)
update-initramfs -u -k "$kver"
# The initramfs hook of systemd-boot installs the entry; make sure it is there.
ls /boot/efi/loader/entries/*.conf >/dev/null 2>&1 || kernel-install add "$kver" "/boot/vmlinuz-$kver" "/boot/initrd.img-$kver"
cat /boot/efi/loader/entries/*.conf
bootctl --esp-path=/boot/efi list --no-pager || true
lab_listing setup
`,
        verify: 'cat /proc/cmdline >"$LAB_OUT/cmdline"\n[ -d /sys/firmware/efi ] && echo uefi >"$LAB_OUT/firmware"\nbootctl status --no-pager >"$LAB_OUT/bootctl" 2>&1 || true\nlab_listing verify\n',
      };
  }
}

function ovmf(): { code: string; vars: string } {
  const pairs = [
    ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'],
    ['/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'],
  ];
  const p = pairs.find(([c, v]) => existsSync(c!) && existsSync(v!));
  if (!p) throw new Error('lab: OVMF firmware not found; install the ovmf package');
  return { code: p[0]!, vars: p[1]! };
}

/** Unmounts anything left mounted under `dir` (an interrupted debootstrap). */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run(['umount', '-l', m]);
}

function stableUuid(seed: string): string {
  const h = sha256(seed);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const memo = new Map<ImageName, Promise<Image>>();
/** What this run did with each image (for results.json): taken from the cache, or built and how long it took. */
export const imageStats: Record<string, { dir: string; built: boolean; buildMs: number | null }> = {};
/** Image builds run one at a time (they share the package cache and both CPUs). */
let buildQueue: Promise<unknown> = Promise.resolve();

/** The cached image, built on first use (concurrent callers share one build). */
export function getImage(name: ImageName): Promise<Image> {
  let p = memo.get(name);
  if (!p) {
    p = buildQueue.then(() => buildImage(name));
    buildQueue = p.catch(() => undefined);
    memo.set(name, p);
  }
  return p;
}

async function buildImage(name: ImageName): Promise<Image> {
  const rootUuid = stableUuid(`root-${name}`);
  const espUuid = sha256(`esp-${name}`).slice(0, 8).toUpperCase();
  const recipe = recipeFor(name, rootUuid, espUuid);
  const fw = recipe.boot === 'uefi' ? ovmf() : undefined;
  const t0 = Date.now();
  const art = await cached(`image-${name}`, { recipe, suite: SUITE, mirror: MIRROR, disk: DISK_BYTES, ovmf: fw }, async (dir) => {
    log(`[image ${name}] not in the cache: building (debootstrap + first boots; several minutes)`);
    await build(name, recipe, dir, rootUuid, fw);
  });
  if (art.built) log(`[image ${name}] built in ${fmtDuration(Date.now() - t0)}: ${art.dir}`);
  imageStats[name] = { dir: art.dir, built: art.built, buildMs: art.built ? Date.now() - t0 : null };
  const info = JSON.parse(readFileSync(path.join(art.dir, 'info.json'), 'utf8')) as { kernelVersion: string };
  return {
    name,
    dir: art.dir,
    disk: path.join(art.dir, 'disk.raw'),
    boot: recipe.boot,
    kernelVersion: info.kernelVersion,
    ...(fw ? { uefi: { code: fw.code, vars: path.join(art.dir, 'efivars.fd') } } : {}),
    built: art.built,
  };
}

async function build(name: ImageName, recipe: Recipe, dir: string, rootUuid: string, fw: { code: string; vars: string } | undefined): Promise<void> {
  for (const tool of ['debootstrap', 'mkfs.ext4', 'qemu-img', 'qemu-system-x86_64'])
    if (!which(tool)) throw new Error(`lab: ${tool} not found (packages: debootstrap, e2fsprogs, qemu-utils, qemu-system-x86)`);
  const rootfs = path.join(dir, 'rootfs');
  const debs = path.join(cacheRoot(), 'debs');
  mkdirSync(debs, { recursive: true });
  try {
    await withProgress(`[image ${name}] debootstrap ${SUITE} (${recipe.packages.join(',')})`, (note) =>
      runOk(
        [
          'debootstrap',
          '--variant=minbase',
          `--include=${recipe.packages.join(',')}`,
          ...(recipe.exclude.length ? [`--exclude=${recipe.exclude.join(',')}`] : []),
          `--cache-dir=${debs}`,
          SUITE,
          rootfs,
          MIRROR,
        ],
        { timeoutMs: 30 * 60_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', LANG: 'C' }, onLine: note },
      ),
    );
  } finally {
    await unmountUnder(rootfs);
  }
  if (recipe.chroot) {
    await withProgress(`[image ${name}] chroot: ${recipe.chroot.split('\n').filter((l) => /^apt-get install/.test(l)).join('; ') || 'configure'}`, async (note) => {
      await runOk(['mount', '-t', 'proc', 'proc', path.join(rootfs, 'proc')]);
      try {
        await runOk(['chroot', rootfs, '/bin/sh', '-c', recipe.chroot], {
          timeoutMs: 20 * 60_000,
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LANG: 'C', HOME: '/root' },
          onLine: note,
        });
      } finally {
        await unmountUnder(rootfs);
      }
    });
  }
  // The lab's files.
  for (const [p, content] of Object.entries(recipe.files)) {
    const f = path.join(rootfs, p);
    mkdirSync(path.dirname(f), { recursive: true });
    rmSync(f, { force: true });
    if (content === '' && p.startsWith('/etc/systemd/system/') && p.endsWith('.timer')) symlinkSync('/dev/null', f);
    else writeFileSync(f, content);
  }
  chmodSync(path.join(rootfs, 'usr/local/sbin/vfiokit-lab-driver'), 0o755);
  const wants = path.join(rootfs, 'etc/systemd/system/multi-user.target.wants');
  mkdirSync(wants, { recursive: true });
  rmSync(path.join(wants, 'vfiokit-lab.service'), { force: true });
  symlinkSync('/etc/systemd/system/vfiokit-lab.service', path.join(wants, 'vfiokit-lab.service'));
  // No root password prompt is needed; a locked root keeps the console quiet.
  const kernels = readdirSync(path.join(rootfs, 'boot'))
    .filter((n) => n.startsWith('vmlinuz-'))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const kver = kernels[kernels.length - 1]?.slice('vmlinuz-'.length);
  if (!kver) throw new Error(`[image ${name}] debootstrap installed no kernel`);
  const initrd = path.join(rootfs, 'boot', `initrd.img-${kver}`);
  if (!existsSync(initrd)) throw new Error(`[image ${name}] no initrd for ${kver} after debootstrap`);
  // Kernel and initrd for the first boot.
  copyFileSync(path.join(rootfs, 'boot', `vmlinuz-${kver}`), path.join(dir, 'setup-vmlinuz'));
  copyFileSync(initrd, path.join(dir, 'setup-initrd'));
  // rootfs/lab and rootfs/host are created at boot by the driver.

  // Disk: partition table + ext4 made from the directory at the partition's offset.
  const disk = path.join(dir, 'disk.raw');
  const totalSectors = DISK_BYTES / SECTOR_SIZE;
  let rootStart: number;
  if (recipe.boot === 'bios') {
    rootStart = 2048;
    writeTable(disk, DISK_BYTES, { head: buildMbr([{ start: rootStart, sectors: totalSectors - rootStart, type: 0x83, bootable: true }]) });
  } else {
    const espStart = 2048;
    const espSectors = (128 * 1024 ** 2) / SECTOR_SIZE;
    rootStart = espStart + espSectors;
    const gpt = buildGpt(totalSectors, stableUuid(`disk-${name}`), [
      { start: espStart, sectors: espSectors, gptType: GPT_ESP, guid: stableUuid(`esp-part-${name}`), name: 'ESP' },
      { start: rootStart, sectors: totalSectors - 34 - rootStart, gptType: GPT_LINUX, guid: stableUuid(`root-part-${name}`), name: 'root' },
    ]);
    writeTable(disk, DISK_BYTES, gpt);
  }
  const rootBytes = (recipe.boot === 'bios' ? totalSectors - rootStart : totalSectors - 34 - rootStart) * SECTOR_SIZE;
  await withProgress(`[image ${name}] mkfs.ext4 -d (root file system from the directory)`, () =>
    runOk(['mkfs.ext4', '-q', '-F', '-L', 'root', '-U', rootUuid, '-d', rootfs, '-E', `offset=${rootStart * SECTOR_SIZE}`, disk, `${Math.floor(rootBytes / 1024)}k`], {
      timeoutMs: 20 * 60_000,
    }),
  );
  rmSync(rootfs, { recursive: true, force: true });
  if (fw) copyFileSync(fw.vars, path.join(dir, 'efivars.fd'));

  // First boot: the image's kernel and initrd given directly; install the bootloader from inside.
  const setupDir = path.join(dir, 'boot-setup');
  mkdirSync(setupDir, { recursive: true });
  writeFileSync(path.join(setupDir, 'lib.sh'), GUEST_LIB);
  writeFileSync(path.join(setupDir, 'run.sh'), fullRunScript(recipe.setup));
  mkdirSync(path.join(setupDir, 'out'), { recursive: true });
  const machine = { iommu: 'intel' as const, topology: 'gpu' as const, cpuVendor: 'GenuineIntel' as const };
  const setupArgv = qemuArgv({
    ...machine,
    disk: { file: disk, format: 'raw' },
    shares: [
      { tag: 'host', hostPath: '/', readonly: true },
      { tag: 'lab', hostPath: setupDir, readonly: false },
    ],
    kernel: { vmlinuz: path.join(dir, 'setup-vmlinuz'), initrd: path.join(dir, 'setup-initrd'), append: `root=UUID=${rootUuid} rw ${BASE_CMDLINE}` },
    ...(fw ? { uefi: { code: fw.code, vars: path.join(dir, 'efivars.fd') } } : {}),
  });
  const setup = await withProgress(`[image ${name}] first boot: install the bootloader`, () =>
    boot(setupArgv, { label: `image ${name} setup`, serialLog: path.join(setupDir, 'serial.log'), timeoutMs: 20 * 60_000 }),
  );
  const setupDone = existsSync(path.join(setupDir, 'out', 'finished'));
  if (!setupDone) throw new ImageBuildError(name, 'first boot (bootloader installation) did not finish', setup.serialLog);

  // Second boot: through the bootloader, as every test will boot it.
  const verifyDir = path.join(dir, 'boot-verify');
  const v = await withProgress(`[image ${name}] second boot: through the bootloader`, () =>
    runFull({
      label: `image ${name} verify`,
      workDir: verifyDir,
      machine: { ...machine, ...(fw ? { uefi: { code: fw.code, vars: path.join(dir, 'efivars.fd') } } : {}) },
      disk: { file: disk, format: 'raw' },
      script: recipe.verify,
      timeoutMs: 10 * 60_000,
    }),
  );
  const cmdline = v.read('cmdline') ?? '';
  if (v.finished !== 'ok') throw new ImageBuildError(name, 'the boot through the bootloader did not reach the lab service', v.boot.serialLog);
  if (!cmdline.includes('intel_iommu=on')) throw new ImageBuildError(name, `booted with an unexpected command line: ${cmdline.trim()}`, v.boot.serialLog);
  if (recipe.boot === 'uefi' && v.read('firmware')?.trim() !== 'uefi') throw new ImageBuildError(name, 'did not boot through UEFI', v.boot.serialLog);
  writeFileSync(path.join(dir, 'info.json'), JSON.stringify({ kernelVersion: kver, rootUuid, boot: recipe.boot, diskBytes: statSync(disk).size }, null, 2));
  rmSync(path.join(dir, 'setup-vmlinuz'), { force: true });
  rmSync(path.join(dir, 'setup-initrd'), { force: true });
}

export class ImageBuildError extends Error {
  constructor(
    readonly image: string,
    what: string,
    readonly serialLog: string,
  ) {
    let t = '';
    try {
      t = readFileSync(serialLog, 'utf8').replace(/\r/g, '').split('\n').slice(-40).join('\n');
    } catch {
      /* no log */
    }
    super(`image ${image}: ${what}; serial log ${serialLog} ends:\n${t}`);
  }
}
