// The root-disk and default-NIC guards on the layouts real hosts have: LVM,
// dm-crypt, md RAID, /dev/root, btrfs RAID, NVMe multipath, ZFS; Proxmox's
// vmbr0 over eno1, bonds, VLANs, USB NICs, VPNs, IPv6-only routes. The fake
// sysfs trees are laid out as the kernel lays them out (test/helpers/fake-host.ts):
// the expected PCI functions are written down here, never computed by vfiokit.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostRoot } from '../../src/host/root.js';
import { inspect } from '../../src/host/inspect.js';
import { assembleBootPlan } from '../../src/plan/boot-plan.js';
import { planBind } from '../../src/plan/runtime-plan.js';
import { buildFakeHost, type FakeHost, type FakePci } from '../helpers/fake-host.js';
import { desktopNvidia } from '../helpers/hosts.js';
import { runCli } from '../helpers/run-cli.js';

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});

// desktopNvidia has AHCI at 00:17.0, NVMe at 02:00.0 and e1000e at 00:1f.6; add a second NVMe
// (04:00.0), an ASMedia SATA controller (05:00.0) and an i210 NIC (03:00.0), each behind its own root port.
const extra: FakePci[] = [
  { addr: '00:1c.0', id: '8086:a33c', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 8 },
  { addr: '03:00.0', id: '8086:1533', class: 0x020000, parent: '00:1c.0', driver: 'igb', group: 9 },
  { addr: '00:1c.4', id: '8086:a33e', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 10 },
  { addr: '04:00.0', id: '144d:a80a', class: 0x010802, parent: '00:1c.4', driver: 'nvme', group: 11 },
  { addr: '00:1d.0', id: '8086:a330', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 12 },
  { addr: '05:00.0', id: '1b21:1164', class: 0x010601, parent: '00:1d.0', driver: 'ahci', group: 13 },
];

function host(over: Partial<FakeHost>): HostRoot {
  const dir = buildFakeHost({ ...desktopNvidia, pci: [...desktopNvidia.pci, ...extra], ...over });
  roots.push(dir);
  return new HostRoot(dir);
}

const nvme0 = { name: 'nvme0n1', dev: '259:0', pci: '02:00.0', parts: { nvme0n1p1: '259:1', nvme0n1p2: '259:2', nvme0n1p3: '259:3' } };
const nvme1 = { name: 'nvme1n1', dev: '259:4', pci: '04:00.0', parts: { nvme1n1p1: '259:5', nvme1n1p2: '259:6' } };
const sda = { name: 'sda', dev: '8:0', pci: '00:17.0', parts: { sda1: '8:1', sda2: '8:2' } };
const sdb = { name: 'sdb', dev: '8:16', pci: '05:00.0', parts: { sdb1: '8:17' } };

describe('root-disk guard', () => {
  const cases: [string, Partial<FakeHost>, string[]][] = [
    ['a plain partition', { blocks: [nvme0], rootMount: { source: '/dev/nvme0n1p2' } }, ['0000:02:00.0']],
    ['LVM on an NVMe partition (/dev/mapper/vg-root)', { blocks: [nvme0, { name: 'dm-0', dev: '253:0', dmName: 'vg-root', slaves: ['nvme0n1p3'] }], rootMount: { source: '/dev/mapper/vg-root' } }, ['0000:02:00.0']],
    [
      'LVM inside dm-crypt (LUKS) on NVMe',
      { blocks: [nvme0, { name: 'dm-0', dev: '253:0', dmName: 'luks-0b7c', slaves: ['nvme0n1p3'] }, { name: 'dm-1', dev: '253:1', dmName: 'vg-root', slaves: ['dm-0'] }], rootMount: { source: '/dev/mapper/vg-root' } },
      ['0000:02:00.0'],
    ],
    [
      'dm-crypt on LVM on md RAID1 across two SATA controllers',
      {
        blocks: [sda, sdb, { name: 'md0', dev: '9:0', slaves: ['sda1', 'sdb1'] }, { name: 'dm-0', dev: '253:0', dmName: 'vg-root_crypt', slaves: ['md0'] }, { name: 'dm-1', dev: '253:1', dmName: 'root', slaves: ['dm-0'] }],
        rootMount: { source: '/dev/mapper/root' },
      },
      ['0000:00:17.0', '0000:05:00.0'],
    ],
    ['/dev/root (no initramfs): mountinfo has the device number', { blocks: [sda], rootMount: { source: '/dev/root', dev: '8:2' } }, ['0000:00:17.0']],
    [
      '/dev/root with only /proc/mounts: root=PARTUUID= through /dev/disk/by-partuuid',
      { blocks: [sda], rootMount: { source: '/dev/root', dev: null }, cmdline: 'BOOT_IMAGE=/vmlinuz root=PARTUUID=5e1c-02 ro', links: { '/dev/disk/by-partuuid/5e1c-02': '../../sda2' } },
      ['0000:00:17.0'],
    ],
    [
      'btrfs RAID1 over two NVMe drives (anonymous device number)',
      { blocks: [nvme0, nvme1], rootMount: { source: '/dev/nvme0n1p2', fstype: 'btrfs', dev: '0:31' }, links: { '/sys/fs/btrfs/8d1f/devices/nvme0n1p2': '../../../../devices/pci0000:00/0000:00:1b.0/0000:02:00.0/nvme/nvme0/nvme0n1/nvme0n1p2', '/sys/fs/btrfs/8d1f/devices/nvme1n1p2': '../../../../devices/pci0000:00/0000:00:1c.4/0000:04:00.0/nvme/nvme1/nvme1n1/nvme1n1p2' } },
      ['0000:02:00.0', '0000:04:00.0'],
    ],
    ['an NVMe multipath head over two controllers', { blocks: [{ name: 'nvme0n1', dev: '259:0', multipath: [{ name: 'nvme0c0n1', pci: '02:00.0' }, { name: 'nvme0c1n1', pci: '04:00.0' }] }], rootMount: { source: '/dev/nvme0n1' } }, ['0000:02:00.0', '0000:04:00.0']],
    ['a USB disk (the xHCI controller holds it)', { blocks: [{ name: 'sdc', dev: '8:32', pci: '00:14.0', transport: 'usb', parts: { sdc1: '8:33' } }], rootMount: { source: '/dev/sdc1' } }, ['0000:00:14.0']],
  ];
  it.each(cases)('%s', (_name, over, want) => {
    const snap = inspect(host(over));
    expect(snap.boot.rootStorage).toEqual(want);
    expect(snap.boot.guardWarnings.rootStorage).toEqual([]);
  });

  it('refuses a boot plan and a runtime bind of a controller under LVM-on-LUKS, and lets the other NVMe go', () => {
    const snap = inspect(host({ blocks: [nvme0, nvme1, { name: 'dm-0', dev: '253:0', dmName: 'luks-0b7c', slaves: ['nvme0n1p3'] }, { name: 'dm-1', dev: '253:1', dmName: 'vg-root', slaves: ['dm-0'] }], rootMount: { source: '/dev/mapper/vg-root' } }));
    expect(assembleBootPlan(snap, { selectors: ['02:00.0'] }).problems.map((p) => p.code)).toContain('E_ROOT_STORAGE');
    expect(planBind(snap, ['02:00.0']).problems.map((p) => p.code)).toContain('E_ROOT_STORAGE');
    const other = assembleBootPlan(snap, { selectors: ['04:00.0'] });
    expect(other.problems).toEqual([]);
    expect(other.warnings.join('\n')).not.toMatch(/root file system/);
  });

  it('a ZFS root (Proxmox rpool) is a warning naming the pool, in plans that take a storage controller only', () => {
    const snap = inspect(host({ blocks: [nvme0], rootMount: { source: 'rpool/ROOT/pve-1', fstype: 'zfs', dev: '0:25' } }));
    expect(snap.boot.rootStorage).toEqual([]);
    expect(snap.boot.guardWarnings.rootStorage.join('\n')).toMatch(/ZFS dataset rpool\/ROOT\/pve-1.*zpool status rpool/);
    expect(assembleBootPlan(snap, { selectors: ['04:00.0'] }).warnings.join('\n')).toMatch(/zpool status rpool/);
    expect(assembleBootPlan(snap, { selectors: ['03:00.0'] }).warnings.join('\n')).not.toMatch(/zpool/);
  });

  it.each([
    ['a device-mapper device without slaves', { blocks: [{ name: 'dm-0', dev: '253:0', dmName: 'vg-root' }], rootMount: { source: '/dev/mapper/vg-root' } }, /dm-0 \(device-mapper vg-root\) lists no slaves/],
    ['a root on NFS', { rootMount: { source: '10.0.0.1:/srv/root', fstype: 'nfs', dev: '0:52' } }, /10\.0\.0\.1:\/srv\/root \(nfs\)/],
    ['no mount table', { blocks: undefined, rootMount: undefined }, /no \/proc\/self\/mountinfo or \/proc\/mounts/],
  ] as [string, Partial<FakeHost>, RegExp][])('%s: a warning, never silence', (_n, over, re) => {
    const snap = inspect(host(over));
    expect(snap.boot.rootStorage).toEqual([]);
    expect(snap.boot.guardWarnings.rootStorage.join('\n')).toMatch(re);
    expect(assembleBootPlan(snap, { selectors: ['04:00.0'] }).warnings.join('\n')).toMatch(re);
  });
});

describe('default-NIC guard', () => {
  const eno1 = { name: 'eno1', pci: '00:1f.6' };
  const enp3s0 = { name: 'enp3s0', pci: '03:00.0' };
  const cases: [string, Partial<FakeHost>, string[]][] = [
    ['the NIC itself', { nets: [eno1], defaultRoutes: [{ iface: 'eno1' }] }, ['0000:00:1f.6']],
    ['Proxmox vmbr0 over eno1', { nets: [eno1, enp3s0, { name: 'vmbr0', bridge: ['eno1'] }], defaultRoutes: [{ iface: 'vmbr0' }] }, ['0000:00:1f.6']],
    ['a bridge over a bond of two NICs (brif/ and bonding/slaves only, no lower_* links)', { nets: [eno1, enp3s0, { name: 'bond0', bond: ['eno1', 'enp3s0'], noLowerLinks: true }, { name: 'vmbr0', bridge: ['bond0'], noLowerLinks: true }], defaultRoutes: [{ iface: 'vmbr0' }] }, ['0000:00:1f.6', '0000:03:00.0']],
    ['a VLAN on a bridge port', { nets: [enp3s0, { name: 'enp3s0.100', lower: 'enp3s0' }, { name: 'vmbr100', bridge: ['enp3s0.100'] }], defaultRoutes: [{ iface: 'vmbr100' }] }, ['0000:03:00.0']],
    ['a USB NIC (its xHCI controller)', { nets: [{ name: 'enx00e04c680001', pci: '00:14.0', usb: true }], defaultRoutes: [{ iface: 'enx00e04c680001' }] }, ['0000:00:14.0']],
  ];
  it.each(cases)('%s', (_name, over, want) => {
    const snap = inspect(host(over));
    expect(snap.boot.defaultRouteNics).toEqual(want);
    expect(snap.boot.guardWarnings.defaultRouteNics).toEqual([]);
  });

  it('an IPv6-only default route counts (and the kernel\'s unreachable entry on lo does not)', () => {
    const dir = buildFakeHost({ ...desktopNvidia, pci: [...desktopNvidia.pci, ...extra], nets: [eno1, enp3s0], defaultRoutes: [{ iface: 'enp3s0', v6: true }] });
    roots.push(dir);
    fs.writeFileSync(path.join(dir, 'proc/net/route'), 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n');
    const snap = inspect(new HostRoot(dir));
    expect(snap.boot.defaultRouteNics).toEqual(['0000:03:00.0']);
  });

  it('plan and bind refuse the card under vmbr0', async () => {
    const root = host({ nets: [eno1, enp3s0, { name: 'vmbr0', bridge: ['enp3s0'] }], defaultRoutes: [{ iface: 'vmbr0' }] });
    const snap = inspect(root);
    expect(assembleBootPlan(snap, { selectors: ['03:00.0'] }).problems.map((p) => p.code)).toEqual(['E_DEFAULT_ROUTE_NIC']);
    expect(planBind(snap, ['03:00.0']).problems.map((p) => p.code)).toEqual(['E_DEFAULT_ROUTE_NIC']);
    const r = await runCli(['plan', '03:00.0', '--root', root.dir]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/03:00\.0 is the network card carrying the default route/);
  });

  it.each([
    ['a WireGuard default route', { nets: [eno1, { name: 'wg0' }], defaultRoutes: [{ iface: 'wg0' }] }, /wg0 is a virtual interface/],
    ['a bridge with no ports', { nets: [eno1, { name: 'vmbr0', bridge: [] }], defaultRoutes: [{ iface: 'vmbr0' }] }, /vmbr0 is a bridge with no ports/],
    ['a route over an interface sysfs does not have', { nets: [eno1], defaultRoutes: [{ iface: 'ppp0' }] }, /ppp0 is not in \/sys\/class\/net/],
  ] as [string, Partial<FakeHost>, RegExp][])('%s: a warning in plans that take a network card', (_n, over, re) => {
    const snap = inspect(host(over));
    expect(snap.boot.guardWarnings.defaultRouteNics.join('\n')).toMatch(re);
    expect(assembleBootPlan(snap, { selectors: ['03:00.0'] }).warnings.join('\n')).toMatch(re);
    expect(assembleBootPlan(snap, { selectors: ['04:00.0'] }).warnings.join('\n')).not.toMatch(re);
  });
});

describe('mounts the next boot needs, and mounts in use now', () => {
  // The root is on nvme0 (02:00.0) in every case; the other mounts sit on nvme1 (04:00.0) or sdb (05:00.0).
  const base = { blocks: [nvme0, nvme1, sda, sdb], rootMount: { source: '/dev/nvme0n1p2' } };
  const byUuid = { '/dev/disk/by-uuid/7a3e-boot': '../../nvme1n1p1', '/dev/disk/by-label/data': '../../sdb1', '/dev/disk/by-partuuid/c0ffee-01': '../../nvme1n1p2' };
  const codes = (p: { problems: { code: string }[] }) => p.problems.map((x) => x.code);
  const bootPlan = (over: Partial<FakeHost>, sel: string) => assembleBootPlan(inspect(host({ ...base, links: byUuid, ...over })), { selectors: [sel] });

  it('/boot by UUID= on the other NVMe: a boot plan for it is refused naming /boot, the chain and the fix; the SATA controller stays free', () => {
    const over = { fstab: '# <file system> <mount point> <type> <options> <dump> <pass>\nUUID=9f1e-root / ext4 errors=remount-ro 0 1\nUUID=7a3e-boot\t/boot\text4\tdefaults\t0\t2\n' };
    const p = bootPlan(over, '04:00.0');
    expect(codes(p)).toEqual(['E_BOOT_MOUNT_STORAGE']);
    expect(p.problems[0]!.message).toContain('04:00.0 holds /boot (UUID=7a3e-boot → nvme1n1p1 → nvme1n1 → 0000:04:00.0)');
    expect(p.problems[0]!.hint).toMatch(/move \/boot to a disk on another controller/);
    expect(codes(bootPlan(over, '05:00.0'))).toEqual([]);
  });

  it('/boot and the ESP count whatever their options say, and when mounted without an fstab line', () => {
    expect(codes(bootPlan({ fstab: 'UUID=7a3e-boot /boot ext4 defaults,nofail 0 2\n' }, '04:00.0'))).toEqual(['E_BOOT_MOUNT_STORAGE']);
    const esp = bootPlan({ mounts: [{ source: '/dev/nvme1n1p2', target: '/boot/efi', fstype: 'vfat' }] }, '04:00.0');
    expect(codes(esp)).toEqual(['E_BOOT_MOUNT_STORAGE']);
    expect(esp.problems[0]!.message).toContain('holds /boot/efi (nvme1n1p2 → nvme1n1 → 0000:04:00.0)');
    expect(codes(bootPlan({ fstab: 'PARTUUID=c0ffee-01 /efi vfat umask=0077,noauto 0 1\n' }, '04:00.0'))).toEqual(['E_BOOT_MOUNT_STORAGE']);
  });

  it('a data mount by LABEL= without nofail is refused with the nofail fix; with nofail, noauto or x-systemd.automount it is not', () => {
    const p = bootPlan({ fstab: 'LABEL=data /srv/data xfs defaults 0 0\n' }, '05:00.0');
    expect(codes(p)).toEqual(['E_BOOT_MOUNT_STORAGE']);
    expect(p.problems[0]!.message).toContain('05:00.0 holds /srv/data (LABEL=data → sdb1 → sdb → 0000:05:00.0), which /etc/fstab mounts at every boot');
    expect(p.problems[0]!.hint).toMatch(/add `nofail` to the options of \/srv\/data in \/etc\/fstab/);
    for (const opt of ['defaults,nofail', 'noauto,user', 'x-systemd.automount,x-systemd.idle-timeout=60']) {
      const q = bootPlan({ fstab: `LABEL=data /srv/data xfs ${opt} 0 0\n` }, '05:00.0');
      expect(codes(q), opt).toEqual([]);
      expect(q.warnings.join('\n'), opt).not.toMatch(/srv\/data/);
    }
  });

  it('a nofail mount in use now is a warning for a boot plan and a refusal for a runtime bind', () => {
    const over = { fstab: 'LABEL=data /srv/data xfs defaults,nofail 0 0\n', mounts: [{ source: '/dev/sdb1', target: '/srv/data', fstype: 'xfs' }] };
    const p = bootPlan(over, '05:00.0');
    expect(codes(p)).toEqual([]);
    expect(p.warnings.join('\n')).toContain('05:00.0 holds /srv/data (LABEL=data → sdb1 → sdb → 0000:05:00.0), mounted now but not needed at boot');
    const b = planBind(inspect(host({ ...base, links: byUuid, ...over })), ['05:00.0']);
    expect(codes(b)).toEqual(['E_MOUNTED_STORAGE']);
    expect(b.problems[0]!.hint).toMatch(/umount \/srv\/data/);
  });

  it('a mount the user made by hand (not in fstab) blocks a runtime bind only; an escaped mount point is named as it is', () => {
    const over = { mounts: [{ source: '/dev/sdb1', target: '/media/me/My Disk', fstype: 'exfat' }] };
    const snap = inspect(host({ ...base, ...over }));
    expect(snap.boot.storageMounts?.map((m) => m.target)).toEqual(['/media/me/My Disk']);
    expect(codes(assembleBootPlan(snap, { selectors: ['05:00.0'] }))).toEqual([]);
    const b = planBind(snap, ['05:00.0']);
    expect(codes(b)).toEqual(['E_MOUNTED_STORAGE']);
    expect(b.problems[0]!.message).toContain('05:00.0 holds /media/me/My Disk (sdb1 → sdb → 0000:05:00.0), which is mounted now');
    expect(codes(planBind(snap, ['04:00.0']))).toEqual([]);
  });

  it('swap on LVM on md RAID1 across both SATA controllers: each is refused at boot; an active swap partition blocks a bind with the swapoff fix', () => {
    const blocks = [nvme0, nvme1, sda, sdb, { name: 'md1', dev: '9:1', slaves: ['sda1', 'sdb1'] }, { name: 'dm-2', dev: '253:2', dmName: 'vg-swap', slaves: ['md1'] }];
    const snap = inspect(host({ blocks, rootMount: base.rootMount, fstab: '/dev/mapper/vg-swap none swap sw 0 0\n' }));
    for (const [sel, chain] of [['00:17.0', 'sda1 → sda → 0000:00:17.0'], ['05:00.0', 'sdb1 → sdb → 0000:05:00.0']]) {
      const p = assembleBootPlan(snap, { selectors: [sel!] });
      expect(codes(p)).toEqual(['E_BOOT_MOUNT_STORAGE']);
      expect(p.problems[0]!.message).toContain(`holds the swap area /dev/mapper/vg-swap (/dev/mapper/vg-swap → dm-2 (vg-swap) → md1 → ${chain})`);
    }
    const live = inspect(host({ ...base, swaps: [{ filename: '/dev/sdb1', type: 'partition' }, { filename: '/swap file', type: 'file' }] }));
    const b = planBind(live, ['05:00.0']);
    expect(codes(b)).toEqual(['E_MOUNTED_STORAGE']);
    expect(b.problems[0]!.hint).toMatch(/swapoff \/dev\/sdb1/);
  });

  it('network and memory file systems are no disk; an fstab UUID with no udev link is a warning in plans that take a storage controller only', () => {
    const snap = inspect(host({ ...base, links: byUuid, fstab: 'nas:/export /mnt/nas nfs defaults 0 0\ntmpfs /tmp tmpfs size=2G 0 0\nUUID=gone-0000 /srv/old ext4 defaults 0 2\n' }));
    expect(snap.boot.storageMounts).toBeUndefined();
    expect(snap.boot.guardWarnings.storageMounts).toEqual(['/srv/old (UUID=gone-0000) could not be followed to a block device in /sys/class/block (no udev link for it under /dev/disk)']);
    expect(assembleBootPlan(snap, { selectors: ['05:00.0'] }).warnings.join('\n')).toMatch(/\/srv\/old \(UUID=gone-0000\)/);
    expect(assembleBootPlan(snap, { selectors: ['03:00.0'] }).warnings.join('\n')).not.toMatch(/srv\/old/);
  });

  it('zram swap and snap loop mounts sit on no controller: no refusal, no warning', () => {
    const snap = inspect(host({ ...base, blocks: [...base.blocks, { name: 'zram0', dev: '252:0' }, { name: 'loop3', dev: '7:3' }], swaps: [{ filename: '/dev/zram0', type: 'partition' }], mounts: [{ source: '/dev/loop3', target: '/snap/core22/1122', fstype: 'squashfs' }] }));
    expect(snap.boot.storageMounts).toBeUndefined();
    expect(snap.boot.guardWarnings.storageMounts).toBeUndefined();
    expect(planBind(snap, ['05:00.0']).warnings.join('\n')).not.toMatch(/zram|loop/);
  });

  it('`vfiokit plan` and `apply` refuse with exit 3 naming the mount, and write nothing', async () => {
    const root = host({ ...base, links: byUuid, fstab: 'UUID=7a3e-boot /boot ext4 defaults 0 2\n' });
    const before = fs.readFileSync(path.join(root.dir, 'etc/fstab'));
    for (const cmd of ['plan', 'apply']) {
      const r = await runCli([cmd, '04:00.0', ...(cmd === 'apply' ? ['--yes'] : []), '--root', root.dir]);
      expect(r.code, cmd).toBe(3);
      expect(r.stderr).toMatch(/04:00\.0 holds \/boot \(UUID=7a3e-boot → nvme1n1p1 → nvme1n1 → 0000:04:00\.0\)/);
    }
    expect(fs.readFileSync(path.join(root.dir, 'etc/fstab'))).toEqual(before);
    expect(fs.existsSync(path.join(root.dir, 'var/lib/vfiokit'))).toBe(false);
  });
});
