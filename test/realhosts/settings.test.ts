// Items: never lose a user's setting, refuse what cannot be right. Each case
// is a fixture host with one small real-world change, driven through the CLI
// as a user would.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { archGrubBooster, debianGrub, debianTwin, fedoraBls } from '../helpers/distros.js';
import { amdNoAcs, serverSwitchSriov } from '../helpers/hosts.js';
import { runCli } from '../helpers/run-cli.js';

const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

const TOOLS = ['update-initramfs', 'update-grub', 'grub-mkconfig', 'grub2-mkconfig', 'dracut', 'grubby', 'mkinitcpio', 'booster', 'regenerate_images', 'modprobe', 'kernel-install'];
function fakeBin(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bin-'));
  tmp.push(dir);
  for (const t of TOOLS) fs.writeFileSync(path.join(dir, t), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return dir;
}
const env = { VFIOKIT_FAKE_BIN: fakeBin() };

function host(h: FakeHost, change?: (root: string) => void): string {
  const root = buildFakeHost(h);
  tmp.push(root);
  change?.(root);
  return root;
}
const at = (root: string, p: string) => path.join(root, p);

/** Every regular file and link under dir, by relative path (sys/proc/dev/run excluded). */
function tree(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && ['sys', 'proc', 'dev', 'run'].includes(e.name)) continue;
    if (e.isSymbolicLink()) out.set(r, `-> ${fs.readlinkSync(path.join(dir, r))}`);
    else if (e.isDirectory()) for (const [k, v] of tree(dir, r)) out.set(k, v);
    else if (e.isFile()) out.set(r, fs.readFileSync(path.join(dir, r), 'latin1'));
  }
  return out;
}
const userFiles = (root: string) => new Map([...tree(root)].filter(([k]) => !k.startsWith('var/')));

async function planJson(root: string, args: string[]) {
  const r = await runCli(['plan', ...args, '--json', '--root', root], env);
  return { ...r, plan: JSON.parse(r.stdout) };
}
const codes = (p: { problems: { code: string }[] }) => p.problems.map((x) => x.code);

describe('passthrough accumulates; the user\'s vfio-pci ids are merged or refused, never overridden', () => {
  it('apply B after A keeps A; undo of B gives back exactly the state after A', async () => {
    // Root on the SATA disk, so the NVMe (02:00.0) can be passed.
    const root = host({ ...debianGrub, blocks: [{ name: 'sda', dev: '8:0', pci: '00:17.0', parts: { sda1: '8:1' } }], rootMount: { source: '/dev/sda1' } });
    const a = await runCli(['apply', '01:00.0', '--yes', '--root', root], env);
    expect(a.code).toBe(0);
    const afterA = userFiles(root);
    const b = await runCli(['apply', '02:00.0', '--yes', '--root', root], env);
    expect(b.stderr).not.toMatch(/vfiokit apply:/);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain('kept from earlier transactions: 01:00.0');
    const dropIn = fs.readFileSync(at(root, 'etc/default/grub.d/99-vfiokit.cfg'), 'utf8');
    expect(dropIn).toContain('vfio-pci.ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9,144d:a808"');
    expect(fs.readFileSync(at(root, 'etc/modprobe.d/vfiokit.conf'), 'utf8')).toContain('softdep nvidia pre: vfio-pci');
    // status verifies both devices (the newest transaction's intent holds them all)
    const st = await runCli(['status', '--json', '--root', root], env);
    const subjects = JSON.parse(st.stdout).lines.map((l: { subject: string }) => l.subject).join('\n');
    expect(subjects).toMatch(/01:00\.0/);
    expect(subjects).toMatch(/02:00\.0/);
    // applying B again changes nothing
    const again = await planJson(root, ['02:00.0']);
    expect(again.plan.steps).toEqual([]);
    const u = await runCli(['undo', '--yes', '--root', root], env);
    expect(u.code).toBe(0);
    expect(userFiles(root)).toEqual(afterA);
  }, 60_000);

  it('Debian: a user\'s vfio-pci.ids= in /etc/default/grub is never followed by a second one from the drop-in', async () => {
    const root = host(debianGrub, (r) => {
      const g = at(r, 'etc/default/grub');
      fs.writeFileSync(g, fs.readFileSync(g, 'utf8').replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet vfio-pci.ids=1002:67df"'));
    });
    const before = userFiles(root);
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_VFIO_IDS_CONFLICT', subject: '/etc/default/grub' })]);
    expect(plan.problems[0].hint).toMatch(/remove vfio-pci.ids= from \/etc\/default\/grub/);
    const a = await runCli(['apply', '01:00.0', '--yes', '--root', root], env);
    expect(a.code).toBe(3);
    expect(userFiles(root)).toEqual(before);
  });

  it('Arch GRUB: the user\'s vfio-pci.ids= is merged in place into one argument, and the plan says so', async () => {
    const root = host(archGrubBooster, (r) => {
      const g = at(r, 'etc/default/grub');
      fs.writeFileSync(g, fs.readFileSync(g, 'utf8').replace('GRUB_CMDLINE_LINUX_DEFAULT="loglevel=3 quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="loglevel=3 quiet vfio-pci.ids=10de:1b80"'));
    });
    const { code, plan } = await planJson(root, ['03:00.3']);
    expect(code).toBe(0);
    const step = plan.steps.find((s: { path?: string }) => s.path === '/etc/default/grub');
    const ids = [...step.after.content.matchAll(/vfio-pci\.ids=([^\s"]+)/g)].map((m) => m[1]);
    expect(ids).toEqual(['1022:149c,10de:1b80']);
    expect(plan.warnings.join('\n')).toMatch(/merged the vfio-pci ids already set on this host \(10de:1b80, in \/etc\/default\/grub\)/);
  });

  it('a user\'s `options vfio-pci ids=` in modprobe.d is merged into the kernel argument', async () => {
    const root = host(debianGrub, (r) => fs.writeFileSync(at(r, 'etc/modprobe.d/local.conf'), 'options vfio-pci ids=1002:67df\n'));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(0);
    expect(plan.intent.kernelArgs).toContain('vfio-pci.ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9,1002:67df');
    expect(plan.warnings.join('\n')).toMatch(/merged .*1002:67df, in \/etc\/modprobe.d\/local.conf/);
  });
});

describe('the user\'s softdeps and kernel arguments: merged and reported, or refused with the line to change', () => {
  it('a user softdep in a file after vfiokit.conf is carried on vfiokit\'s line (modprobe reads only the first)', async () => {
    const root = host(debianGrub, (r) => fs.writeFileSync(at(r, 'etc/modprobe.d/zz-local.conf'), 'softdep snd_hda_intel pre: snd_hda_codec_hdmi\n'));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(0);
    const conf = plan.steps.find((s: { path?: string }) => s.path === '/etc/modprobe.d/vfiokit.conf').after.content as string;
    expect(conf).toContain('softdep snd_hda_intel pre: vfio-pci snd_hda_codec_hdmi\n');
    expect(plan.warnings.join('\n')).toMatch(/zz-local.conf:1 has `softdep snd_hda_intel pre: snd_hda_codec_hdmi`/);
  });

  it('a user softdep in a file before vfiokit.conf would hide vfiokit\'s: refused with the line to write', async () => {
    const root = host(debianGrub, (r) => fs.writeFileSync(at(r, 'etc/modprobe.d/nvidia.conf'), 'softdep nvidia pre: nvidia-modeset\n'));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_MODPROBE_CONFLICT', subject: '/etc/modprobe.d/nvidia.conf' })]);
    expect(plan.problems[0].hint).toContain('softdep nvidia pre: nvidia-modeset vfio-pci');
  });

  it('a user softdep that already loads vfio-pci first makes vfiokit\'s line for it unnecessary', async () => {
    const root = host(debianGrub, (r) => fs.writeFileSync(at(r, 'etc/modprobe.d/nvidia.conf'), 'softdep nvidia pre: vfio-pci\n'));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(0);
    const conf = plan.steps.find((s: { path?: string }) => s.path === '/etc/modprobe.d/vfiokit.conf').after.content as string;
    expect(conf).not.toContain('softdep nvidia ');
    expect(conf).toContain('softdep nouveau pre: vfio-pci');
  });

  it('twin GPUs: a user\'s own `install vfio-pci` would fight vfiokit\'s hook: refused', async () => {
    const root = host(debianTwin, (r) => fs.writeFileSync(at(r, 'etc/modprobe.d/local.conf'), 'install vfio-pci /usr/local/bin/my-override.sh\n'));
    const { code, plan } = await planJson(root, ['0b:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_MODPROBE_CONFLICT', subject: '/etc/modprobe.d/local.conf' })]);
  });

  it('intel_iommu=off in the user\'s GRUB line is replaced on the normal entries, and the plan says so', async () => {
    const root = host(debianGrub, (r) => {
      const g = at(r, 'etc/default/grub');
      fs.writeFileSync(g, fs.readFileSync(g, 'utf8').replace('GRUB_CMDLINE_LINUX_DEFAULT="quiet"', 'GRUB_CMDLINE_LINUX_DEFAULT="quiet intel_iommu=off"'));
    });
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(0);
    expect(plan.warnings.join('\n')).toMatch(/\/etc\/default\/grub sets intel_iommu=off; vfiokit's intel_iommu=on takes its place/);
  });
});

describe('files that are not what they seem', () => {
  it('/etc/default/grub → /etc/shadow is refused naming the target; nothing of it is shown or written', async () => {
    const root = host(archGrubBooster, (r) => {
      fs.writeFileSync(at(r, 'etc/shadow'), 'root:$6$secret:19000:0:99999:7:::\n', { mode: 0o600 });
      fs.rmSync(at(r, 'etc/default/grub'));
      fs.symlinkSync('/etc/shadow', at(r, 'etc/default/grub'));
    });
    const before = userFiles(root);
    const r = await runCli(['plan', '03:00.3', '--root', root], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('/etc/default/grub is a symlink to /etc/shadow');
    expect(r.stdout + r.stderr).not.toContain('secret');
    expect((await runCli(['apply', '03:00.3', '--yes', '--root', root], env)).code).toBe(3);
    expect(userFiles(root)).toEqual(before);
  });

  it('a symlink to the same kind of file is edited through, and the plan names the real target', async () => {
    const root = host(archGrubBooster, (r) => {
      fs.renameSync(at(r, 'etc/default/grub'), at(r, 'etc/default/grub.local'));
      fs.symlinkSync('grub.local', at(r, 'etc/default/grub'));
    });
    const p = await runCli(['plan', '03:00.3', '--root', root], env);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('/etc/default/grub is a symlink: /etc/default/grub.local is the file that changes');
    expect((await runCli(['apply', '03:00.3', '--yes', '--root', root], env)).code).toBe(0);
    expect(fs.lstatSync(at(root, 'etc/default/grub')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(at(root, 'etc/default/grub.local'), 'utf8')).toContain('vfio-pci.ids=1022:149c');
  });

  it('snapshot keeps a config symlink as a link with its same-kind target, and never archives a foreign target', async () => {
    for (const [target, archived] of [['grub.local', true], ['/etc/shadow', false]] as const) {
      const root = host(archGrubBooster, (r) => {
        fs.writeFileSync(at(r, 'etc/shadow'), 'root:$6$secret:19000:0:99999:7:::\n', { mode: 0o600 });
        fs.renameSync(at(r, 'etc/default/grub'), at(r, 'etc/default/grub.local'));
        fs.symlinkSync(target, at(r, 'etc/default/grub'));
      });
      const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-snap-')), 'h.tar.gz');
      tmp.push(path.dirname(out));
      const r = await runCli(['snapshot', out, '--root', root], env);
      expect(r.stderr).not.toMatch(/internal error/);
      expect(r.code).toBe(0);
      const back = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-snap-back-'));
      tmp.push(back);
      execFileSync('tar', ['-xzf', out, '-C', back]);
      expect(fs.readlinkSync(at(back, 'etc/default/grub'))).toBe(target);
      expect(fs.existsSync(at(back, 'etc/default/grub.local'))).toBe(archived);
      expect(fs.existsSync(at(back, 'etc/shadow'))).toBe(false);
      // the extracted archive plans like the original
      const [p1, p2] = [await planJson(root, ['03:00.3']), await planJson(back, ['03:00.3'])];
      expect(codes(p2.plan)).toEqual(codes(p1.plan));
    }
  });

  it('a user-written /etc/modprobe.d/vfiokit.conf is not vfiokit\'s: refused, untouched', async () => {
    const root = host(debianGrub, (r) => fs.writeFileSync(at(r, 'etc/modprobe.d/vfiokit.conf'), 'options snd_hda_intel power_save=0\n'));
    const before = userFiles(root);
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_NOT_OURS', subject: '/etc/modprobe.d/vfiokit.conf' })]);
    expect((await runCli(['apply', '01:00.0', '--yes', '--root', root], env)).code).toBe(3);
    expect(userFiles(root)).toEqual(before);
  });

  const wrong: [string, (r: string) => void, string][] = [
    ['/etc/modprobe.d/vfiokit.conf as a directory', (r) => fs.mkdirSync(at(r, 'etc/modprobe.d/vfiokit.conf')), '/etc/modprobe.d/vfiokit.conf is a directory'],
    ['/etc/default/grub as a directory', (r) => (fs.rmSync(at(r, 'etc/default/grub')), fs.mkdirSync(at(r, 'etc/default/grub'))), '/etc/default/grub is a directory'],
    ['/etc/default/grub as a dangling link', (r) => (fs.rmSync(at(r, 'etc/default/grub')), fs.symlinkSync('grub.moved', at(r, 'etc/default/grub'))), '/etc/default/grub is a symlink to /etc/default/grub.moved, which does not exist'],
  ];
  for (const [what, change, says] of wrong) {
    it(`${what}: a refusal naming the path (exit 3), never "unknown bootloader"`, async () => {
      const root = host(debianGrub, change);
      const r = await runCli(['apply', '01:00.0', '--yes', '--root', root], env);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain(says);
      expect(r.stdout + r.stderr).not.toMatch(/unknown/);
      expect(fs.existsSync(at(root, 'etc/initramfs-tools/modules')) && fs.readFileSync(at(root, 'etc/initramfs-tools/modules'), 'utf8')).not.toContain('vfio');
    });
  }
});

describe('boot configuration that would never take effect', () => {
  it('Debian with an empty /boot (not mounted): refused with the fix, update-grub never runs', async () => {
    const root = host(debianGrub, (r) => fs.rmSync(at(r, 'boot'), { recursive: true, force: true }));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_BOOT_EMPTY', subject: '/boot' })]);
    expect(plan.problems[0].hint).toContain('mount /boot');
  });

  it('Fedora with GRUB_ENABLE_BLSCFG=true and no BLS entries: refused, /etc/default/grub is not edited', async () => {
    const root = host(fedoraBls, (r) => fs.rmSync(at(r, 'boot/loader/entries'), { recursive: true, force: true }));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_NO_BOOT_ENTRIES' })]);
    expect(plan.problems[0].message).toContain('GRUB_ENABLE_BLSCFG=true');
    expect(plan.problems[0].hint).toContain('mount /boot');
  });
});

describe('selection guards', () => {
  it('two identical GPUs: the fix is the non-boot card\'s address, and the warning is shown with the refusal', async () => {
    const root = host(debianTwin);
    const r = await runCli(['plan', '10de:2204', '--root', root], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/fix: select the identical card the host does not boot from by address .*: 0b:00\.0/);
    expect(r.stderr).not.toContain('--allow-boot-vga');
    expect(r.stderr).toMatch(/warning: '10de:2204' matches 2 devices/);
    const j = await runCli(['plan', '10de:2204', '--json', '--root', root], env);
    expect(JSON.parse(j.stderr.trim().split('\n').pop()!).error.warnings).toEqual([expect.stringContaining('matches 2 devices')]);
  });

  it('--with ADDR outside the selected groups is an error', async () => {
    const { code, plan } = await planJson(host(debianGrub), ['01:00.0', '--with', '02:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_WITH_OUTSIDE_GROUP', subject: '0000:02:00.0' })]);
    // the same selection rule holds for runtime binding and VM generation
    const bind = await runCli(['bind', '01:00.0', '--with', '02:00.0', '--dry-run', '--json', '--root', host(debianGrub)], env);
    expect(bind.code).toBe(3);
    expect(codes(JSON.parse(bind.stdout))).toEqual(['E_WITH_OUTSIDE_GROUP']);
    const vm = await runCli(['vm', 'xml', 'w', '--device', '01:00.0', '--with', '02:00.0', '--json', '--root', host(debianGrub)], env);
    expect(vm.code).toBe(3);
    expect(codes(JSON.parse(vm.stdout))).toEqual(['E_WITH_OUTSIDE_GROUP']);
  });

  it('the onboard NIC at 00:1f.6 does not take the ISA/LPC bridge and SMBus along: refused, or taken with --allow-chipset and a warning', async () => {
    // The default route on another NIC (a USB one), so 00:1f.6 itself may go.
    const root = host({ ...debianGrub, nets: [{ name: 'eno1', pci: '00:1f.6' }, { name: 'enx00e04c680001', pci: '00:14.0', usb: true, mac: '00:e0:4c:68:00:01' }], defaultRoutes: [{ iface: 'enx00e04c680001' }] });
    const { code, plan } = await planJson(root, ['00:1f.6']);
    expect(code).toBe(3);
    expect(plan.problems.filter((p: { code: string }) => p.code === 'E_CHIPSET_FUNCTION').map((p: { subject: string }) => p.subject)).toEqual(['0000:00:1f.0', '0000:00:1f.4']);
    const ok = await planJson(root, ['00:1f.6', '--allow-chipset']);
    expect(ok.code).toBe(0);
    expect(ok.plan.warnings.join('\n')).toMatch(/00:1f\.0 is an ISA\/LPC bridge.*--allow-chipset/);
    const bind = await runCli(['bind', '00:1f.6', '--dry-run', '--json', '--root', root], env);
    expect(bind.code).toBe(3);
    expect(codes(JSON.parse(bind.stdout))).toContain('E_CHIPSET_FUNCTION');
  });

  it('boot-time binding of an SR-IOV VF is refused with the pointer to runtime binding', async () => {
    const root = host({ ...debianGrub, pci: serverSwitchSriov.pci, cpu: serverSwitchSriov.cpu, cpus: serverSwitchSriov.cpus, blocks: undefined, rootMount: undefined, nets: undefined, defaultRoutes: undefined });
    const { code, plan } = await planJson(root, ['04:02.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_SRIOV_VF_BOOT', subject: '0000:04:02.0' })]);
    expect(plan.problems[0].hint).toContain('vfiokit bind 04:02.0');
  });
});

describe('small things', () => {
  it('--memory 0 does not suggest --memory 0M', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '01:00.0', '--memory', '0', '--root', host(debianGrub)], env);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/--memory 0[MG]/);
    expect(r.stderr).toContain('--memory 8G');
    expect(r.stderr).toContain('at least 128 MiB');
  });

  it('the --rom hint cites nothing the project does not ship', async () => {
    const root = host(debianGrub);
    const rom = path.join(root, 'junk.rom');
    fs.writeFileSync(rom, Buffer.alloc(4096, 0x41));
    const r = await runCli(['vm', 'xml', 'w', '--device', '01:00.0', '--rom', rom, '--json', '--root', root], env);
    expect(r.code).toBe(3);
    const hint = JSON.parse(r.stdout).problems[0].hint as string;
    expect(hint).not.toMatch(/reference|§/);
    expect(hint).toContain('vfiokit rom dump 01:00.0');
  });

  it('binary junk in /etc/default/grub is reported as binary data, not as CRLF', async () => {
    const root = host(archGrubBooster, (r) => {
      const g = at(r, 'etc/default/grub');
      fs.writeFileSync(g, Buffer.concat([fs.readFileSync(g), Buffer.from([0x00, 0x7f, 0x0d, 0xff, 0x0a])]));
    });
    const r = await runCli(['plan', '03:00.3', '--root', root], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/\/etc\/default\/grub:8: binary data/);
    expect(r.stderr).not.toMatch(/CRLF|dos2unix/);
  });

  it('a CRLF file is still reported as CRLF with dos2unix', async () => {
    const root = host(archGrubBooster, (r) => {
      const g = at(r, 'etc/default/grub');
      fs.writeFileSync(g, fs.readFileSync(g, 'utf8').replace(/\n/g, '\r\n'));
    });
    const r = await runCli(['plan', '03:00.3', '--root', root], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('dos2unix');
  });

  it('an unterminated quote opened on line 2 of /etc/default/grub is reported at line 2', async () => {
    const root = host(archGrubBooster, (r) => fs.writeFileSync(at(r, 'etc/default/grub'), 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet\nGRUB_TIMEOUT=5\n'));
    const r = await runCli(['plan', '03:00.3', '--root', root], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('/etc/default/grub:2:');
  });

  it('a group explanation gives each reason once', async () => {
    const r = await runCli(['groups', '--root', host(amdNoAcs)], env);
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('Group 1:'))!;
    expect(line.split('are not isolated from each other').length - 1).toBe(1);
    expect(line).toContain('00:01.1 does not enable ACS');
    expect(line).toContain('00:01.2 has no ACS');
  });

  it('a refusal that says nothing was written leaves no /var/lib/vfiokit behind', async () => {
    const root = host(debianGrub);
    fs.rmSync(at(root, 'var'), { recursive: true, force: true });
    const r = await runCli(['apply', '00:02.0', '--yes', '--root', root], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('nothing was changed');
    expect(fs.existsSync(at(root, 'var'))).toBe(false);
  });

  it('vm xml --json prints the problems on stdout on refusal, like plan --json', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '00:02.0', '--json', '--root', host(debianGrub)], env);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stdout).problems).toEqual([expect.objectContaining({ code: 'E_BOOT_VGA' })]);
  });
});

describe('modprobe.d in every directory kmod reads (/etc, /run, /usr/local/lib, /usr/lib, /lib)', () => {
  const put = (r: string, p: string, text: string) => {
    fs.mkdirSync(path.dirname(at(r, p)), { recursive: true });
    fs.writeFileSync(at(r, p), text);
  };

  it('a package\'s softdep under /usr/lib/modprobe.d that comes before vfiokit.conf is refused, with the /etc copy that hides it as the fix', async () => {
    const root = host(debianGrub, (r) => put(r, 'usr/lib/modprobe.d/nvidia.conf', '# from the driver package\nsoftdep nvidia pre: nvidia-modeset\n'));
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(3);
    expect(plan.problems).toEqual([expect.objectContaining({ code: 'E_MODPROBE_CONFLICT', subject: '/usr/lib/modprobe.d/nvidia.conf' })]);
    expect(plan.problems[0].message).toContain('/usr/lib/modprobe.d/nvidia.conf:2 has `softdep nvidia pre: nvidia-modeset`');
    expect(plan.problems[0].hint).toContain('copy it to /etc/modprobe.d/nvidia.conf, which hides it, with that line as `softdep nvidia pre: nvidia-modeset vfio-pci`');
  });

  it('the same name in an earlier directory hides it: an /etc copy that loads vfio-pci first, or an /etc link to /dev/null', async () => {
    const fixed = host(debianGrub, (r) => {
      put(r, 'usr/lib/modprobe.d/nvidia.conf', 'softdep nvidia pre: nvidia-modeset\n');
      put(r, 'etc/modprobe.d/nvidia.conf', 'softdep nvidia pre: nvidia-modeset vfio-pci\n');
    });
    const a = await planJson(fixed, ['01:00.0']);
    expect(a.code).toBe(0);
    expect(a.plan.problems).toEqual([]);
    const masked = host(debianGrub, (r) => {
      put(r, 'lib/modprobe.d/nvidia.conf', 'softdep nvidia pre: nvidia-modeset\n');
      fs.symlinkSync('/dev/null', at(r, 'etc/modprobe.d/nvidia.conf'));
    });
    const b = await planJson(masked, ['01:00.0']);
    expect(b.plan.problems).toEqual([]);
    expect(b.code).toBe(0);
    const conf = b.plan.steps.find((s: { path?: string }) => s.path === '/etc/modprobe.d/vfiokit.conf').after.content as string;
    expect(conf).toContain('softdep nvidia pre: vfio-pci\n');
  });

  it('a softdep after vfiokit.conf in /usr/local/lib is carried; vfio-pci ids in /run/modprobe.d are merged', async () => {
    const root = host(debianGrub, (r) => {
      put(r, 'usr/local/lib/modprobe.d/zz-audio.conf', 'softdep snd_hda_intel pre: snd_hda_codec_hdmi\n');
      put(r, 'run/modprobe.d/passthrough.conf', 'options vfio-pci ids=1002:67df\n');
    });
    const { code, plan } = await planJson(root, ['01:00.0']);
    expect(code).toBe(0);
    const conf = plan.steps.find((s: { path?: string }) => s.path === '/etc/modprobe.d/vfiokit.conf').after.content as string;
    expect(conf).toContain('softdep snd_hda_intel pre: vfio-pci snd_hda_codec_hdmi\n');
    expect(plan.intent.kernelArgs).toContain('vfio-pci.ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9,1002:67df');
    expect(plan.warnings.join('\n')).toMatch(/merged .*1002:67df, in \/run\/modprobe.d\/passthrough.conf/);
  });
});
