// Guest disk images, built once and cached. An image is a list of features
// (the base system and bootloader, an initramfs generator, extra packages, an
// LVM root…); the recipe composed from them — every package, file and script
// that goes into the image — is hashed into the cache key, so a changed
// feature builds a new image and the others stay cached:
//
//   grub-itools       Debian, BIOS, GRUB + initramfs-tools
//   grub-dracut       Debian, BIOS, GRUB + dracut
//   uefi-sdboot       Debian, UEFI (OVMF), systemd-boot + /etc/kernel/cmdline, initramfs-tools
//   grub-itools-lvm   grub-itools with its root file system on LVM (volume group labvg, LV root)
//
// Build: debootstrap into a directory (natively, fast), write the lab's
// configuration files into it, make the partition table and an ext4 file
// system from the directory (mkfs.ext4 -d, no loop devices), then a first
// boot with the image's own kernel and initrd installs the bootloader from
// inside the guest, and a second boot through that bootloader proves the image
// boots on its own. Only then is the image cached. An LVM root needs
// device-mapper, which the build machine may not have: the first boot makes
// the physical volume, volume group and logical volume on a second, empty disk
// (the guest kernel has dm-mod), copies the system into it and installs the
// bootloader there; that disk becomes the image.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync, symlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { cached, cacheKey, cacheRoot } from './cache.js';
import { buildGpt, buildMbr, GPT_ESP, GPT_LINUX, SECTOR_SIZE, writeTable } from './disk.js';
import { GUEST_DRIVER, GUEST_KERNEL_ARGS, GUEST_UNIT, runFull } from './full-guest.js';
import { boot, qemuArgv } from './qemu.js';
import { GUEST_LIB } from './guest-script.js';
import { fullRunScript } from './full-guest.js';
import { log, run, runOk, sha256, which, withProgress, fmtDuration } from './util.js';

export type ImageName = 'grub-itools' | 'grub-dracut' | 'uefi-sdboot' | 'grub-itools-lvm';

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

export interface Recipe {
  v: number;
  name: ImageName;
  driver: string;
  unit: string;
  cmdline: string;
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
  /** The root file system's volume group and logical volume (made on the first boot). */
  lvm?: { vg: string; lv: string };
  /** The features this recipe was composed from (absent for the first three images, whose cache keys predate features). */
  features?: string[];
}

/** What a feature knows about the image it goes into. */
interface FeatureContext {
  name: ImageName;
  rootUuid: string;
  espUuid: string;
}

/** One piece of an image: it adds packages, files and scripts to the recipe composed so far. */
export interface Feature {
  id: string;
  apply(r: Recipe, c: FeatureContext): Recipe;
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

const ITOOLS_CONF = { '/etc/initramfs-tools/conf.d/vfiokit-lab.conf': 'MODULES=dep\nCOMPRESS=gzip\n' };
const LISTING_VERIFY = 'cat /proc/cmdline >"$LAB_OUT/cmdline"\nlab_listing verify\n';

// The features. The key order of the recipe objects they produce is part of
// the cache key of the first three images: keep it.

/** The Debian base every image starts from (the boot mode is the firmware QEMU gets). */
const base = (bootMode: 'bios' | 'uefi'): Feature => ({
  id: `base-${bootMode}`,
  apply: (_r, c) => ({ v: 4, name: c.name, driver: GUEST_DRIVER, unit: GUEST_UNIT, cmdline: BASE_CMDLINE, boot: bootMode, packages: [...COMMON_PACKAGES], exclude: [], chroot: '', files: commonFiles(c.name, c.rootUuid), setup: '', verify: '' }),
});

/** GRUB for BIOS, installed on the first boot (its setup script then ends with the initramfs generator's). */
const grubBios: Feature = {
  id: 'grub-bios',
  apply: (r) => ({ ...r, packages: [...r.packages, 'grub-pc'], files: { ...r.files, '/etc/default/grub': GRUB_DEFAULT }, setup: GRUB_SETUP, verify: LISTING_VERIFY }),
};

/** initramfs-tools: only the modules this machine needs, gzip (an in-guest update-initramfs takes ~1 min instead of many). */
const initramfsTools: Feature = {
  id: 'initramfs-tools',
  apply: (r) => ({ ...r, packages: [...r.packages, 'initramfs-tools'], files: { ...r.files, ...ITOOLS_CONF }, setup: r.setup + 'update-initramfs -u -k all\n' }),
};

/** dracut instead of initramfs-tools (host-only, gzip). */
const dracut: Feature = {
  id: 'dracut',
  apply: (r) => ({
    ...r,
    // debootstrap resolves the kernel's initramfs dependency to initramfs-tools; dracut replaces it after.
    packages: [...r.packages, 'initramfs-tools'],
    chroot: `set -e
mkdir -p /etc/dracut.conf.d
printf 'hostonly="no"\\ncompress="gzip"\\n' >/etc/dracut.conf.d/10-vfiokit-lab-build.conf
apt-get update -q
apt-get install -y -q --no-install-recommends dracut
rm -f /etc/dracut.conf.d/10-vfiokit-lab-build.conf
apt-get clean
ls /boot
`,
    files: { ...r.files, '/etc/dracut.conf.d/90-vfiokit-lab.conf': 'hostonly="yes"\ncompress="gzip"\n' },
    setup: r.setup + 'dracut --force --regenerate-all\n',
  }),
};

/** systemd-boot on an EFI system partition made on the first boot, with /etc/kernel/cmdline and initramfs-tools. */
const systemdBoot: Feature = {
  id: 'systemd-boot',
  apply: (r, c) => ({
    ...r,
    packages: [...r.packages, 'systemd-boot', 'initramfs-tools', 'dosfstools'],
    files: {
      ...r.files,
      '/etc/kernel/cmdline': `root=UUID=${c.rootUuid} ro ${BASE_CMDLINE} loglevel=4\n`,
      ...ITOOLS_CONF,
    },
    setup: `
set -e
lab_say "making the EFI system partition and installing systemd-boot"
mkfs.vfat -F 32 -n ESP -i ${c.espUuid} /dev/vda1
# The ESP's fstab line only now that it exists (an earlier one would stop this boot in emergency mode).
echo "UUID=${c.espUuid.replace(/^(....)(....)$/, '$1-$2')} /boot/efi vfat umask=0077 0 1" >>/etc/fstab
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
  }),
};

/** Extra Debian packages installed by debootstrap. */
export const packages = (...names: string[]): Feature => ({ id: `packages:${names.join(',')}`, apply: (r) => ({ ...r, packages: [...r.packages, ...names] }) });

/**
 * The root file system on LVM (BIOS + GRUB images): the first boot runs from
 * the debootstrap disk with a second, empty disk (/dev/vdb, one MBR partition
 * of type 8e); it makes the volume group and logical volume there, copies the
 * system in, points fstab at /dev/mapper/VG-LV and runs the image's own setup
 * (bootloader, initramfs) in a chroot of the copy, aimed at /dev/vdb. The
 * second disk becomes the image, where it is /dev/vda.
 */
export const lvmRoot = (vg = 'labvg', lv = 'root'): Feature => ({
  id: `lvm-root:${vg}/${lv}`,
  apply: (r, c) => {
    if (r.boot !== 'bios') throw new Error(`lab: the LVM root feature needs a BIOS + GRUB image (${c.name} is ${r.boot})`);
    const inner = r.setup.replace(/^\s*set -e\n/, '').replace(/^lab_(say|listing) .*\n/gm, '').replace(/\/dev\/vda\b/g, '/dev/vdb');
    const lvUuid = stableUuid(`lv-${c.name}`);
    return {
      ...r,
      packages: [...r.packages, 'lvm2'],
      lvm: { vg, lv },
      // In a subshell: a failed step powers the guest off at once instead of leaving the build to its timeout.
      setup: `
( set -e
lab_say "LVM root: physical volume on /dev/vdb1, volume group ${vg}, logical volume ${lv}"
pvcreate -ff -y /dev/vdb1
vgcreate ${vg} /dev/vdb1
lvcreate -y -l 100%FREE -n ${lv} ${vg}
mkfs.ext4 -q -F -L root -U ${lvUuid} /dev/${vg}/${lv}
mkdir -p /mnt/lvroot
mount /dev/${vg}/${lv} /mnt/lvroot
lab_say "copying the system into /dev/${vg}/${lv}"
cp -ax /. /mnt/lvroot/
mkdir -p /mnt/lvroot/dev /mnt/lvroot/proc /mnt/lvroot/sys /mnt/lvroot/run /mnt/lvroot/tmp
echo "/dev/mapper/${vg}-${lv} / ext4 errors=remount-ro 0 1" >/mnt/lvroot/etc/fstab
for d in dev dev/pts proc sys run; do mount --bind /$d /mnt/lvroot/$d; done
lab_say "bootloader and initramfs of the LVM root (in a chroot, on /dev/vdb)"
chroot /mnt/lvroot /bin/sh -ec '${inner.replace(/'/g, `'\\''`)}
echo "grub-pc grub-pc/install_devices multiselect /dev/vda" | debconf-set-selections
grep -q "root=/dev/mapper/${vg}-${lv}" /boot/grub/grub.cfg
lsinitramfs /boot/initrd.img-* | grep -q "sbin/lvm"'
for d in run sys proc dev/pts dev; do umount /mnt/lvroot/$d; done
umount /mnt/lvroot
vgchange -an ${vg}
sync
lab_listing setup
) || { lab_say "LVM root setup failed"; systemctl poweroff --no-block; exit 1; }
`,
      verify: r.verify + `findmnt -no SOURCE / >"$LAB_OUT/rootsource"\n`,
    };
  },
});

/** Every image, as the features it is composed of (in order). */
export const IMAGES: Record<ImageName, Feature[]> = {
  'grub-itools': [base('bios'), grubBios, initramfsTools],
  'grub-dracut': [base('bios'), grubBios, dracut],
  'uefi-sdboot': [base('uefi'), systemdBoot],
  'grub-itools-lvm': [base('bios'), grubBios, initramfsTools, lvmRoot()],
};

/** Images whose cache keys predate features: their recipes carry no feature list (so the shared cache stays valid). */
const UNLISTED = new Set<ImageName>(['grub-itools', 'grub-dracut', 'uefi-sdboot']);

export function recipeFor(name: ImageName, rootUuid: string, espUuid: string): Recipe {
  const c = { name, rootUuid, espUuid };
  const r = IMAGES[name].reduce<Recipe>((acc, f) => f.apply(acc, c), {} as Recipe);
  return UNLISTED.has(name) ? r : { ...r, features: IMAGES[name].map((f) => f.id) };
}

/** What the image's cache key is computed from. */
export function imageCacheInput(name: ImageName): { kind: string; input: unknown; key: string } {
  const rootUuid = stableUuid(`root-${name}`);
  const espUuid = sha256(`esp-${name}`).slice(0, 8).toUpperCase();
  const recipe = recipeFor(name, rootUuid, espUuid);
  const fw = recipe.boot === 'uefi' ? ovmf() : undefined;
  const input = { recipe, suite: SUITE, mirror: MIRROR, disk: DISK_BYTES, ovmf: fw };
  return { kind: `image-${name}`, input, key: cacheKey(`image-${name}`, input) };
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
  const { kind, input } = imageCacheInput(name);
  const recipe = (input as { recipe: Recipe }).recipe;
  const fw = recipe.boot === 'uefi' ? ovmf() : undefined;
  const t0 = Date.now();
  const art = await cached(kind, input, async (dir) => {
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
  // LVM root: the debootstrap disk only runs the first boot; the image is the second disk it fills.
  const lvmDisk = recipe.lvm ? path.join(dir, 'disk-lvm.raw') : null;
  if (lvmDisk) writeTable(lvmDisk, DISK_BYTES, { head: buildMbr([{ start: 2048, sectors: totalSectors - 2048, type: 0x8e, bootable: true }], 0x6c766d31) });

  // First boot: the image's kernel and initrd given directly; install the bootloader from inside.
  const setupDir = path.join(dir, 'boot-setup');
  mkdirSync(setupDir, { recursive: true });
  writeFileSync(path.join(setupDir, 'lib.sh'), GUEST_LIB);
  writeFileSync(path.join(setupDir, 'run.sh'), fullRunScript(recipe.setup));
  mkdirSync(path.join(setupDir, 'out'), { recursive: true });
  // The build machine: one vCPU (more only make TCG boots slower), the full guests' memory.
  const machine = { iommu: 'intel' as const, topology: 'gpu' as const, cpuVendor: 'GenuineIntel' as const, memMb: 1536, smp: 1 };
  const setupArgv = qemuArgv({
    ...machine,
    disk: { file: disk, format: 'raw' },
    ...(lvmDisk ? { extraDisks: [{ file: lvmDisk, format: 'raw' as const }] } : {}),
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
  if (lvmDisk) renameSync(lvmDisk, disk);

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
  if (recipe.lvm && v.read('rootsource')?.trim() !== `/dev/mapper/${recipe.lvm.vg}-${recipe.lvm.lv}`)
    throw new ImageBuildError(name, `the root file system is ${v.read('rootsource')?.trim() || 'unknown'}, not the logical volume`, v.boot.serialLog);
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
