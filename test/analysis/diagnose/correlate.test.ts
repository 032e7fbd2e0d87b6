// Correlation with fixture hosts: the fake sysfs trees say which driver each
// group member is on, what /proc/iomem holds and which reset methods exist.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost, makeTempDir } from '../../helpers/fake-host.js';
import { desktopNvidia } from '../../helpers/hosts.js';
import { runCli } from '../../helpers/run-cli.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function host(extra: Record<string, string> = {}): string {
  const iomem = [
    '00000000-00000fff : Reserved',
    'c0000000-d1ffffff : PCI Bus 0000:00',
    '  c0000000-d1ffffff : PCI Bus 0000:01',
    '    c0000000-cfffffff : 0000:01:00.0',
    '      c0000000-c07fffff : BOOTFB',
    '',
  ].join('\n');
  const d = buildFakeHost({ ...desktopNvidia, files: { ...desktopNvidia.files, '/proc/iomem': iomem, '/etc/default/grub': 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\n', ...extra }, execs: ['/usr/sbin/update-grub', '/usr/sbin/grub-mkconfig'] });
  dirs.push(d);
  return d;
}

function logFile(lines: string[]): string {
  const d = makeTempDir('vfiokit-diag-');
  dirs.push(d);
  const f = path.join(d, 'paste.log');
  fs.writeFileSync(f, lines.join('\n') + '\n');
  return f;
}

async function diagnose(root: string, lines: string[]) {
  const r = await runCli(['diagnose', logFile(lines), '--root', root, '--json']);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('diagnose correlated with the host', () => {
  it('"group N is not viable" names the members still on host drivers and the command that moves them', async () => {
    const j = await diagnose(host(), ['qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: group 1 is not viable']);
    const f = j.findings[0];
    expect(f.cause).toBe('group_not_viable');
    expect(f.host.join('\n')).toMatch(/0000:01:00\.1 .* is still on the host driver snd_hda_intel/);
    expect(f.host.join('\n')).toMatch(/0000:01:00\.2 .* is still on the host driver xhci_hcd/);
    expect(f.host.join('\n')).not.toMatch(/0000:00:01\.0 .*still on/); // the root port (pcieport) is fine
    expect(f.fix).toMatch(/vfiokit bind 0000:01:00\.0 0000:01:00\.1 0000:01:00\.2 0000:01:00\.3/);
  });
  it('"BAR 0: can\'t reserve" names the framebuffer in /proc/iomem and the kernel argument for GRUB', async () => {
    const j = await diagnose(host(), ["vfio-pci 0000:01:00.0: BAR 0: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]"]);
    const f = j.findings[0];
    expect(f.cause).toBe('bar_reserved_by_framebuffer');
    expect(f.host[0]).toMatch(/BOOTFB inside the memory of 0000:01:00\.0/);
    expect(f.fix).toMatch(/initcall_blacklist=sysfb_init to GRUB_CMDLINE_LINUX_DEFAULT in \/etc\/default\/grub/);
  });
  it('a reset failure lists the reset methods the device offers', async () => {
    const j = await diagnose(host(), ['vfio-pci 0000:01:00.0: not ready 65535ms after resume; giving up']);
    const f = j.findings[0];
    expect(f.cause).toBe('reset_failed');
    expect(f.host.join('\n')).toMatch(/offers reset methods: bus/);
    expect(f.devices[0].driver).toBe('nvidia');
    expect(f.fix).toMatch(/\/sys\/bus\/pci\/devices\/0000:01:00\.0\/power\/control/);
  });
  it('a memlock failure compares the limit with the guest memory', async () => {
    const j = await diagnose(host(), [
      'max locked memory           (kbytes, -l) 65536',
      '2024-06-04 07:25:13.123+0000: starting up libvirt version: 9.0.0',
      'LC_ALL=C /usr/bin/qemu-system-x86_64 -name guest=win -m 8192 -device vfio-pci,host=0000:01:00.0',
      'qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: VFIO_MAP_DMA failed: Cannot allocate memory',
    ]);
    const f = j.findings[0];
    expect(f.cause).toBe('memlock');
    expect(f.host).toContain('the guest has 8192 MiB of memory (from its QEMU command line)');
    expect(f.host).toContain('the limit is 8128 MiB below the guest memory');
    expect(f.fix).toMatch(/ulimit -l 9437184/);
  });
  it('the kernel\'s RLIMIT_MEMLOCK warning gives the limit (bytes) to compare with the guest memory', async () => {
    const j = await diagnose(host(), [
      'LC_ALL=C /usr/bin/qemu-system-x86_64 -name guest=win -m 4G -device vfio-pci,host=0000:01:00.0',
      '[   44.230103] vfio_pin_pages_remote: RLIMIT_MEMLOCK (67108864) exceeded',
    ]);
    const f = j.findings[0];
    expect(f.cause).toBe('memlock');
    expect(f.host).toContain('the memlock limit seen is 64 MiB (65536 KiB)');
    expect(f.host).toContain('the limit is 4032 MiB below the guest memory');
  });
  it('"/dev/vfio/N: No such file or directory" names the device\'s host driver and binds its group', async () => {
    const j = await diagnose(host(), ['qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: failed to open /dev/vfio/1: No such file or directory']);
    const f = j.findings[0];
    expect(f.cause).toBe('vfio_not_bound');
    expect(f.host.join('\n')).toMatch(/0000:01:00\.0 .* is on nvidia, IOMMU group 1/);
    expect(f.fix).toMatch(/^vfiokit bind 0000:01:00\.0 0000:01:00\.1 0000:01:00\.2 0000:01:00\.3 \(now\)/);
  });
  it('reads the host logs under --root when no file is given', async () => {
    const root = host({ '/var/log/kern.log': "Jun  4 07:25:13 h kernel: [    1.0] vfio-pci 0000:01:00.0: BAR 0: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]\n", '/var/log/libvirt/qemu/win.log': 'qemu-system-x86_64: vfio 0000:01:00.0: group 1 is not viable\n' });
    const r = await runCli(['diagnose', '--root', root, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.findings.map((f: { cause: string }) => f.cause).sort()).toEqual(['bar_reserved_by_framebuffer', 'group_not_viable']);
    expect(j.sources.map((s: { source: string }) => s.source)).toEqual(expect.arrayContaining(['/var/log/kern.log', '/var/log/libvirt/qemu/win.log']));
    expect(j.findings[0].evidence[0].source).toMatch(/^\/var\/log\//);
  });
  it('text that matches nothing says so and shows the lines it looked at', async () => {
    const r = await runCli(['diagnose', logFile(['pci 0000:00:01.0: Adding to iommu group 1', 'hello'])]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/No known passthrough failure found in 2 lines/);
    expect(r.stdout).toMatch(/paste.log:1: pci 0000:00:01.0: Adding to iommu group 1/);
  });
  it('a missing file is a usage error naming it, exit 2', async () => {
    const r = await runCli(['diagnose', '/nonexistent/x.log']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\/nonexistent\/x.log: no such file/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  });
});
