// End to end through the CLI: plan → apply (fake update-initramfs/update-grub
// on VFIOKIT_FAKE_BIN) → status before reboot → a simulated reboot → status → undo.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost, driverDir } from '../helpers/fake-host.js';
import { debianGrub } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

function fakeBin(): { dir: string; log: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bin-'));
  tmp.push(dir);
  const log = path.join(dir, 'calls.log');
  for (const t of ['update-initramfs', 'update-grub']) fs.writeFileSync(path.join(dir, t), `#!/bin/sh\necho "${t} $*" >> ${log}\n`, { mode: 0o755 });
  return { dir, log };
}

/** What the kernel does at the next boot when the configuration worked. */
function simulateReboot(root: string, opts: { args: string[]; bindVfio: boolean }): void {
  const cmdline = path.join(root, 'proc/cmdline');
  fs.writeFileSync(cmdline, fs.readFileSync(cmdline, 'utf8').trim() + ' ' + opts.args.join(' ') + '\n');
  fs.writeFileSync(path.join(root, 'proc/stat'), `cpu 1 2 3 4\nbtime ${Math.floor(Date.now() / 1000) + 60}\n`);
  if (!opts.bindVfio) return;
  driverDir(root, 'vfio-pci');
  for (const fn of ['0', '1', '2', '3']) {
    const addr = `0000:01:00.${fn}`;
    const dev = path.join(root, `sys/devices/pci0000:00/0000:00:01.0/${addr}`);
    // Both links the kernel keeps: the device's driver link and the driver's link back.
    const old = path.basename(fs.readlinkSync(path.join(dev, 'driver')));
    fs.rmSync(path.join(dev, 'driver'), { force: true });
    fs.rmSync(path.join(root, `sys/bus/pci/drivers/${old}/${addr}`), { force: true });
    fs.symlinkSync('../../../../bus/pci/drivers/vfio-pci', path.join(dev, 'driver'));
    fs.symlinkSync(`../../../../devices/pci0000:00/0000:00:01.0/${addr}`, path.join(root, `sys/bus/pci/drivers/vfio-pci/${addr}`));
  }
  fs.mkdirSync(path.join(root, 'dev/vfio'), { recursive: true });
  fs.writeFileSync(path.join(root, 'dev/vfio/1'), '');
}

describe('apply → reboot → status → undo through the CLI', () => {
  it('works end to end and status names causes when it does not', async () => {
    const root = buildFakeHost(debianGrub);
    tmp.push(root);
    const bin = fakeBin();
    const env = { VFIOKIT_FAKE_BIN: bin.dir };
    const none = await runCli(['status', '--root', root], env);
    expect(none.code).toBe(3);
    expect(none.stdout).toContain('No boot-time passthrough is applied');

    const applied = await runCli(['apply', '01:00.0', '--yes', '--root', root], env);
    expect(applied.stderr).not.toMatch(/error/i);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/Applied as transaction \S+: 3 file\(s\) changed, 2 command\(s\) run/);
    expect(fs.readFileSync(bin.log, 'utf8')).toBe('update-initramfs -u -k all\nupdate-grub \n');
    const again = await runCli(['apply', '01:00.0', '--yes', '--root', root], env);
    expect(again.stdout).toContain('Nothing to do');

    const before = await runCli(['status', '--root', root], env);
    expect(before.code).toBe(3);
    expect(before.stdout).toContain('has not been rebooted since');

    const args = ['intel_iommu=on', 'iommu=pt', 'vfio-pci.ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9'];
    simulateReboot(root, { args, bindVfio: false });
    const raced = await runCli(['status', '--json', '--root', root], env);
    expect(raced.code).toBe(3);
    const r = JSON.parse(raced.stdout);
    const gpu = r.lines.find((l: any) => l.subject.startsWith('01:00.0'));
    expect(gpu).toMatchObject({ ok: false, observed: 'driver nvidia' });
    expect(gpu.cause).toMatch(/nvidia claimed it before vfio-pci/);

    simulateReboot(root, { args: [], bindVfio: true });
    const ok = await runCli(['status', '--root', root], env);
    expect(ok.stdout).toContain('In effect.');
    expect(ok.code).toBe(0);

    const undone = await runCli(['undo', '--yes', '--root', root], env);
    expect(undone.code).toBe(0);
    expect(undone.stdout).toContain('Reboot to give the devices back');
    expect(fs.existsSync(path.join(root, 'etc/modprobe.d/vfiokit.conf'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'etc/default/grub.d/99-vfiokit.cfg'))).toBe(false);
    expect(fs.readFileSync(bin.log, 'utf8').split('\n').filter(Boolean)).toHaveLength(4);
    const after = await runCli(['status', '--root', root], env);
    expect(after.stdout).toContain('No boot-time passthrough is applied');
  });

  it('a failing regenerate command rolls everything back and exits 4 with the output tail', async () => {
    const root = buildFakeHost(debianGrub);
    tmp.push(root);
    const bin = fakeBin();
    fs.writeFileSync(path.join(bin.dir, 'update-initramfs'), '#!/bin/sh\necho "update-initramfs: Generating /boot/initrd.img" ; echo "E: /usr/share/initramfs-tools/hooks/zz failed with return 1." >&2\nexit 1\n', { mode: 0o755 });
    const grubBefore = fs.readdirSync(path.join(root, 'etc/default/grub.d'));
    const r = await runCli(['apply', '01:00.0', '--yes', '--root', root], { VFIOKIT_FAKE_BIN: bin.dir });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('hooks/zz failed with return 1');
    expect(fs.readdirSync(path.join(root, 'etc/default/grub.d'))).toEqual(grubBefore);
    expect(fs.existsSync(path.join(root, 'etc/modprobe.d/vfiokit.conf'))).toBe(false);
  });
});
