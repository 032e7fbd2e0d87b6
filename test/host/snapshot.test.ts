import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REDACTED_HOSTNAME, REDACTED_MACHINE_ID } from '../../src/host/capture.js';
import { inspect } from '../../src/host/inspect.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});
const mk = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  tmp.push(d);
  return d;
};

const MACHINE_ID = '4b1f0e9c2d7a4e1f9a3b5c7d9e1f3a5b';

/** `vfiokit snapshot` of `root`, extracted: the directory, and what the command printed. */
async function snapshotAndExtract(root: string): Promise<{ back: string; stdout: string }> {
  const out = path.join(mk('vfiokit-snap-out-'), 'host.tar.gz');
  const r = await runCli(['snapshot', out, '--root', root]);
  expect(r.code).toBe(0);
  const back = mk('vfiokit-snap-x-');
  execFileSync('tar', ['-xzf', out, '-C', back]);
  return { back, stdout: r.stdout };
}

/** Every path under `dir` whose name, link target or content `leaks` says gives something away. */
function leaksIn(dir: string, leaks: (seen: string) => boolean): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (leaks([e.name, e.isSymbolicLink() ? fs.readlinkSync(p) : '', e.isFile() ? fs.readFileSync(p, 'latin1') : ''].join('\n'))) found.push(p);
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return found;
}

describe('vfiokit snapshot', () => {
  it.each(Object.keys(FIXTURE_HOSTS))('%s: the extracted archive reads back to the same snapshot', async (name) => {
    const root = buildFakeHost(FIXTURE_HOSTS[name]);
    tmp.push(root);
    const out = path.join(mk('vfiokit-snap-out-'), 'host.tar.gz');
    const r = await runCli(['snapshot', out, '--root', root]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('wrote');
    const back = mk('vfiokit-snap-x-');
    execFileSync('tar', ['-xzf', out, '-C', back]);
    const a = inspect(root);
    const b = inspect(back);
    expect({ ...b, root: '' }).toEqual({ ...a, root: '' });
  });

  it('redacts serial numbers, MAC addresses, hostnames and machine IDs, and keeps files it never reads out', async () => {
    const base = FIXTURE_HOSTS['desktop-nvidia'];
    const root = buildFakeHost({
      ...base,
      pci: base.pci.map((d) => (d.addr === '02:00.0' ? { ...d, dsn: 0x0011223344556677n } : d)),
      cmdline: 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 ip=10.0.0.2::10.0.0.1:255.255.255.0:gamingrig:eth0:off:aa:bb:cc:dd:ee:ff intel_iommu=on',
      files: {
        '/etc/machine-id': `${MACHINE_ID}\n`,
        '/etc/hostname': 'gamingrig\n',
        '/etc/shadow': 'root:$6$secret:19000:0:99999:7:::\n',
        '/sys/class/dmi/id/product_serial': 'ABC123SERIAL\n',
      },
    });
    tmp.push(root);
    const { back, stdout } = await snapshotAndExtract(root);
    expect(stdout).toMatch(/redacted: .*device serial numbers/);
    expect(leaksIn(back, (t) => t.includes(MACHINE_ID) || t.includes('gamingrig') || t.includes('aa:bb:cc:dd:ee:ff') || t.includes('ABC123SERIAL'))).toEqual([]);
    const cmdline = fs.readFileSync(path.join(back, 'proc/cmdline'), 'utf8');
    expect(cmdline).toContain(REDACTED_HOSTNAME);
    expect(cmdline).toContain('00:00:5e:00:53:00');
    expect(fs.existsSync(path.join(back, 'etc/shadow'))).toBe(false);
    expect(fs.existsSync(path.join(back, 'etc/machine-id'))).toBe(false);
    const cfg = fs.readFileSync(path.join(back, 'sys/devices/pci0000:00/0000:00:1b.0/0000:02:00.0/config'));
    expect(cfg.includes(Buffer.from('7766554433221100', 'hex'))).toBe(false);
    const orig = fs.readFileSync(path.join(root, 'sys/devices/pci0000:00/0000:00:1b.0/0000:02:00.0/config'));
    expect(orig.includes(Buffer.from('7766554433221100', 'hex'))).toBe(true);
    expect(REDACTED_MACHINE_ID).toHaveLength(32);
  });

  it('replaces disk UUIDs by stand-ins of the same shape, the same in every file and link name, so UUID= mounts replay to their devices', async () => {
    const ROOT = '5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
    const ESP = 'ABCD-12EF';
    const PART = '7c0ffee1-02';
    const base = FIXTURE_HOSTS['desktop-nvidia'];
    const root = buildFakeHost({
      ...base,
      blocks: [{ name: 'sda', dev: '8:0', pci: '00:17.0', parts: { sda1: '8:1', sda2: '8:2', sda3: '8:3' } }],
      // The root as the kernel names it without an initramfs: found through root=UUID= and udev's link.
      rootMount: { source: '/dev/root', dev: null },
      cmdline: `BOOT_IMAGE=/vmlinuz root=UUID=${ROOT} ro intel_iommu=on`,
      fstab: `UUID=${ROOT} / ext4 errors=remount-ro 0 1\nUUID=${ESP} /boot/efi vfat umask=0077 0 1\nPARTUUID=${PART} /srv ext4 defaults 0 2\n`,
      links: { [`/dev/disk/by-uuid/${ROOT}`]: '../../sda2', [`/dev/disk/by-uuid/${ESP}`]: '../../sda1', [`/dev/disk/by-partuuid/${PART}`]: '../../sda3' },
    });
    tmp.push(root);
    const { back, stdout } = await snapshotAndExtract(root);
    expect(stdout).toMatch(/redacted: .*disk UUIDs/);
    expect(leaksIn(back, (t) => [ROOT, ESP, PART].some((u) => t.toLowerCase().includes(u.toLowerCase())))).toEqual([]);
    // Numbered in sorted order (5a1b…, 7c0f…, abcd…); shape and case are kept.
    const [rootX, partX, espX] = ['00000000-0000-0000-0000-000000000001', '00000000-02', '0000-0003'];
    expect(fs.readFileSync(path.join(back, 'proc/cmdline'), 'utf8')).toContain(`root=UUID=${rootX} `);
    expect(fs.readFileSync(path.join(back, 'etc/fstab'), 'utf8')).toBe(`UUID=${rootX} / ext4 errors=remount-ro 0 1\nUUID=${espX} /boot/efi vfat umask=0077 0 1\nPARTUUID=${partX} /srv ext4 defaults 0 2\n`);
    expect(fs.readlinkSync(path.join(back, `dev/disk/by-uuid/${rootX}`))).toBe('../../sda2');
    expect(fs.readlinkSync(path.join(back, `dev/disk/by-partuuid/${partX}`))).toBe('../../sda3');
    // The archive reads back to the same host: the root and every mount on the same controller.
    const a = inspect(root);
    const b = inspect(back);
    expect(b.boot.rootStorage).toEqual(['0000:00:17.0']);
    expect(b.boot.rootStorage).toEqual(a.boot.rootStorage);
    // (The same mounts, with the stand-ins where the UUIDs were.)
    const mounts = (x: typeof a) => (x.boot.storageMounts ?? []).map((m) => ({ ...m, source: undefined, chains: m.chains.map((c) => c.replace(/^\S+ → /, '')) }));
    expect(mounts(b)).toEqual(mounts(a));
    expect(mounts(a).length).toBeGreaterThan(0);
  });

  it('keeps sysfs symlinks relative and laid out as the kernel does', async () => {
    const root = buildFakeHost(FIXTURE_HOSTS['twin-gpus']);
    tmp.push(root);
    const out = path.join(mk('vfiokit-snap-out-'), 'host.tar.gz');
    await runCli(['snapshot', out, '--root', root]);
    const back = mk('vfiokit-snap-x-');
    execFileSync('tar', ['-xzf', out, '-C', back]);
    const link = fs.readlinkSync(path.join(back, 'sys/bus/pci/devices/0000:0b:00.0'));
    expect(link).toBe('../../../devices/pci0000:00/0000:00:03.2/0000:0b:00.0');
    expect(fs.readlinkSync(path.join(back, 'sys/kernel/iommu_groups/4/devices/0000:0b:00.1'))).toMatch(/^\.\.\/.*0000:0b:00\.1$/);
    expect(fs.existsSync(path.join(back, 'sys/devices/pci0000:00/0000:00:03.2/0000:0b:00.0/rom'))).toBe(true);
    // Both driver links: the device's own (runtime binding reads it) and the driver's link back (inspect lists those).
    expect(fs.readlinkSync(path.join(back, 'sys/devices/pci0000:00/0000:00:03.2/0000:0b:00.0/driver'))).toMatch(/bus\/pci\/drivers\/[^/]+$/);
    const drv = path.basename(fs.readlinkSync(path.join(root, 'sys/devices/pci0000:00/0000:00:03.2/0000:0b:00.0/driver')));
    expect(fs.readlinkSync(path.join(back, `sys/bus/pci/drivers/${drv}/0000:0b:00.0`))).toMatch(/0000:0b:00\.0$/);
  });

  it('refuses to replace an existing archive without --force (E_OUTPUT_EXISTS), and replaces it with', async () => {
    const root = buildFakeHost(FIXTURE_HOSTS['twin-gpus']);
    tmp.push(root);
    const out = path.join(mk('vfiokit-snap-out-'), 'host.tar.gz');
    fs.writeFileSync(out, 'mine');
    const r = await runCli(['snapshot', out, '--root', root]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${out} exists; nothing was written`);
    expect(r.stderr).toContain('--force to replace it');
    expect(fs.readFileSync(out, 'utf8')).toBe('mine');
    expect((await runCli(['snapshot', out, '--force', '--root', root])).code).toBe(0);
    expect(fs.readFileSync(out).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
  });

  it('rejects a bad archive name with a usage error and writes nothing', async () => {
    const dir = mk('vfiokit-snap-out-');
    const r = await runCli(['snapshot', path.join(dir, 'host.zip'), '--root', dir]);
    expect(r.code).toBe(2);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
