// `vfiokit snapshot` redacts identifiers by field (hostname files, machine-id,
// MAC-bearing attributes, serials) and by pattern only for real identifiers:
// every spelling planted here must be gone from the archive (contents and
// names), while `inspect` and `plan` read from the extracted archive equal
// those on the original — with exactly the planted identifiers replaced, as
// written down in this file — and hostnames that are also the system's own
// words (debian, pve) never touch os-release, the kernel release or cmdlines.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostRoot } from '../../src/host/root.js';
import { inspect } from '../../src/host/inspect.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { debianGrub, proxmox } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(async () => {
  await Promise.all(tmp.map((t) => fs.promises.rm(t, { recursive: true, force: true })));
});
const mk = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  tmp.push(d);
  return d;
};

async function snapshotOf(root: string): Promise<{ back: string; stdout: string }> {
  const out = path.join(mk('vfiokit-red-out-'), 'host.tar.gz');
  const r = await runCli(['snapshot', out, '--root', root]);
  expect(r.code, r.stderr).toBe(0);
  const back = mk('vfiokit-red-x-');
  execFileSync('tar', ['-xzf', out, '-C', back]);
  return { back, stdout: r.stdout };
}

/** Every file's content and every path name under `dir`, for leak searches. */
function everything(dir: string): { name: string; text: string }[] {
  const out: { name: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      out.push({ name: rel, text: e.isSymbolicLink() ? fs.readlinkSync(p) : e.isFile() ? fs.readFileSync(p, 'latin1') : '' });
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

const strip = (v: unknown, root: string) => JSON.parse(JSON.stringify(v).split(root).join('<root>')) as unknown;

async function planText(root: string, sel: string[]): Promise<string> {
  const r = await runCli(['plan', ...sel, '--root', root]);
  return `${r.code}\n${r.stdout}\n${r.stderr}`.split(root).join('<root>');
}

describe('snapshot redaction', () => {
  const HOST_MAC = '52:54:00:a1:b2:c3';
  const USB_MAC = '00e04c680001';
  const MID = '4b1f0e9c2d7a4e1f9a3b5c7d9e1f3a5b';
  const MID_DASHED_UPPER = '4B1F0E9C-2D7A-4E1F-9A3B-5C7D9E1F3A5B';
  // What each planted spelling must become (the replacement keeps the spelling: separator, case, prefix).
  const PLANTED: [string, string][] = [
    ['GAMINGRIG.example.org', 'redacted-hostname'],
    ['GAMINGRIG', 'redacted-hostname'],
    ['GamingRig', 'redacted-hostname'],
    ['gamingrig', 'redacted-hostname'],
    ['52:54:00:a1:b2:c3', '00:00:5e:00:53:00'],
    ['52:54:00:A1:B2:C3', '00:00:5E:00:53:00'],
    ['01-52-54-00-a1-b2-c3', '01-00-00-5e-00-53-00'],
    ['5254.00a1.b2c3', '0000.5e00.5300'],
    ['525400A1B2C3', '00005E005300'],
    ['a4-bb-6d-01-02-03', '00-00-5e-00-53-00'],
    ['A4:BB:6D:0F:0E:0D', '00:00:5E:00:53:00'],
    [USB_MAC, '00005e005300'],
    [MID_DASHED_UPPER, '00000000-0000-0000-0000-000000000000'],
    [MID.toUpperCase(), '00000000000000000000000000000000'],
    [MID, '00000000000000000000000000000000'],
  ];
  const host: FakeHost = {
    ...debianGrub,
    cmdline: `BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=/dev/nvme0n1p2 ro quiet ip=10.0.0.2::10.0.0.1:255.255.255.0:GAMINGRIG:eno1:off:${HOST_MAC} BOOTIF=01-52-54-00-a1-b2-c3 ifname=lan0:A4:BB:6D:0F:0E:0D systemd.machine_id=${MID_DASHED_UPPER}`,
    nets: [
      { name: 'eno1', pci: '00:1f.6', mac: HOST_MAC },
      { name: `enx${USB_MAC}`, pci: '00:14.0', usb: true, mac: '00:e0:4c:68:00:01' },
    ],
    defaultRoutes: [{ iface: `enx${USB_MAC}` }],
    files: {
      ...debianGrub.files,
      '/etc/hostname': 'GamingRig.example.org\n',
      '/proc/sys/kernel/hostname': 'GamingRig\n',
      '/etc/machine-id': `${MID}\n`,
      '/etc/default/grub': `${debianGrub.files!['/etc/default/grub']}# set up on gamingrig (GAMINGRIG.example.org) for 5254.00a1.b2c3 / 525400A1B2C3, PXE a4-bb-6d-01-02-03\n# machine ${MID.toUpperCase()}\n`,
      [`/boot/loader/entries/${MID}-6.1.0-18-amd64.conf`]: `title Debian\nlinux /vmlinuz-6.1.0-18-amd64\noptions root=/dev/nvme0n1p2 ro\n`,
    },
  };

  it('plants every spelling; none survives in the archive, names included; inspect and plan read the same', async () => {
    const root = buildFakeHost(host);
    tmp.push(root);
    const orig = inspect(new HostRoot(root));
    // The planted identifiers are read: the test would prove nothing if the archive never held them.
    const origText = JSON.stringify(orig);
    for (const s of ['GAMINGRIG', '01-52-54-00-a1-b2-c3', MID_DASHED_UPPER, MID.toUpperCase(), '5254.00a1.b2c3', MID]) expect(origText).toContain(s);
    // The USB NIC's name (enx + its MAC) is in the tree's paths, which the archive keeps (the default route goes through it).
    expect(fs.existsSync(path.join(root, `sys/class/net/enx${USB_MAC}`))).toBe(true);
    const { back, stdout } = await snapshotOf(root);
    for (const what of ['hostname', 'MAC addresses', 'machine ID']) expect(stdout).toMatch(new RegExp(`redacted: .*${what}`));
    const leaks = everything(back).flatMap((f) =>
      PLANTED.filter(([s]) => f.name.toLowerCase().includes(s.toLowerCase()) || f.text.toLowerCase().includes(s.toLowerCase())).map(([s]) => `${f.name}: ${s}`),
    );
    expect(leaks).toEqual([]);
    // The original's view with exactly the planted identifiers replaced (longest spellings first).
    const replaced = (t: string) => PLANTED.reduce((acc, [s, r]) => acc.split(s).join(r), t);
    const want = JSON.parse(replaced(JSON.stringify(strip(orig, root))));
    expect(strip(inspect(new HostRoot(back)), back)).toEqual(want);
    // The guards still follow the renamed USB NIC (enx<MAC> in names and in the route table alike).
    expect(inspect(new HostRoot(back)).boot.defaultRouteNics).toEqual(['0000:00:14.0']);
    expect(await planText(back, ['01:00.0'])).toBe(replaced(await planText(root, ['01:00.0'])));
  });

  it.each([
    ['debian', debianGrub, ['01:00.0']],
    ['pve', { ...proxmox, blocks: [{ name: 'sda', dev: '8:0', pci: '0a:00.0', transport: 'ata' as const, parts: { sda3: '8:3' } }, { name: 'dm-1', dev: '253:1', dmName: 'pve-root', slaves: ['sda3'] }], rootMount: { source: '/dev/mapper/pve-root' } }, ['0b:00.0']],
  ] as [string, FakeHost, string[]][])('hostname %s (also the system\'s own word) leaves os-release, the kernel release and the cmdlines alone', async (name, base, sel) => {
    const files = { ...base.files, '/etc/hostname': `${name}\n`, '/etc/kernel/cmdline': `root=/dev/mapper/pve-root ro quiet ${name === 'pve' ? 'boot=pve' : ''}\n` };
    const root = buildFakeHost({ ...base, files, cmdline: `BOOT_IMAGE=/boot/vmlinuz-${base.release ?? '6.1.0-18-amd64'} root=/dev/mapper/pve-root ro quiet` });
    tmp.push(root);
    const { back } = await snapshotOf(root);
    for (const f of ['etc/os-release', 'proc/sys/kernel/osrelease', 'proc/cmdline', 'etc/kernel/cmdline'])
      if (fs.existsSync(path.join(root, f))) expect(fs.readFileSync(path.join(back, f), 'latin1'), f).toBe(fs.readFileSync(path.join(root, f), 'latin1'));
    expect(fs.existsSync(path.join(back, 'etc/hostname'))).toBe(false);
    expect(strip(inspect(new HostRoot(back)), back)).toEqual(strip(inspect(new HostRoot(root)), root));
    expect(await planText(back, sel)).toBe(await planText(root, sel));
  });
});
