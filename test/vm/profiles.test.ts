// Guest profiles (--os) on fixture hosts laid out as Arch, Ubuntu and Fedora
// install firmware, swtpm, virtio-win, input devices and desktop sessions:
// goldens per profile × host, libvirt's RelaxNG schema, and every refusal.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { expectGolden, stableRoot } from '../helpers/golden.js';
import { runCli } from '../helpers/run-cli.js';
import { lookingGlassMib } from '../../src/vm/profile.js';
import { GAMING_HOSTS, alderLakeGaming, ryzenGaming } from './hosts.js';
import { profileCases } from './profile-cases.js';
import { printSkip, validateSchema, virtXmlValidate } from './validate.js';

const GOLDEN = path.resolve(__dirname, '../fixtures/vm/profiles');
const roots: Record<string, string> = {};
const extra: string[] = [];
const build = (h: FakeHost) => {
  const r = buildFakeHost(h);
  extra.push(r);
  return r;
};
beforeAll(() => {
  for (const [n, h] of Object.entries(GAMING_HOSTS)) roots[n] = buildFakeHost(h);
}, 60_000);
afterAll(() => {
  for (const r of [...Object.values(roots), ...extra]) fs.rmSync(r, { recursive: true, force: true });
});

describe.each(profileCases())('$os on $host', ({ host, os, args }) => {
  it('xml: golden, schema-valid', async () => {
    const root = roots[host];
    const r = await runCli(['vm', 'xml', os, ...args, '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expectGolden(`${os}-${host}.xml`, stableRoot(r.stdout, root), GOLDEN);
    expectGolden(`${os}-${host}.xml.notes`, stableRoot(r.stderr, root), GOLDEN);
    if (virtXmlValidate.ok) {
      const v = validateSchema(r.stdout);
      expect(v.output).toMatch(/validates/);
      expect(v.status).toBe(0);
    } else if (process.env.CI) throw new Error(`virt-xml-validate missing under CI: ${virtXmlValidate.reason}`);
    else printSkip('virt-xml-validate', virtXmlValidate.reason);
  });
  it('qemu: golden', async () => {
    const root = roots[host];
    const r = await runCli(['vm', 'qemu', os, ...args, '--root', root]);
    expect(r.code, r.stderr).toBe(0);
    expectGolden(`${os}-${host}.qemu.sh`, stableRoot(r.stdout, root), GOLDEN);
    expectGolden(`${os}-${host}.qemu.notes`, stableRoot(r.stderr, root), GOLDEN);
  });
});

describe('profile choices', () => {
  it('win11 on Ubuntu: Secure Boot chosen by descriptor features, TPM CRB emulator, SMM, every enlightenment, evdev input with grab toggle', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '03:00.0', '--os', 'win11', '--input', 'auto', '--root', roots['i9-12900k']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("<feature enabled='yes' name='secure-boot'/>");
    expect(r.stdout).toContain("<feature enabled='yes' name='enrolled-keys'/>");
    expect(r.stdout).toContain("<smm state='on'/>");
    expect(r.stdout).toMatch(/<tpm model='tpm-crb'>\s*<backend type='emulator' version='2.0'\/>/);
    for (const hv of ['relaxed', 'vapic', 'vpindex', 'runtime', 'synic', 'stimer', 'reset', 'frequencies', 'tlbflush', 'ipi']) expect(r.stdout).toContain(`<${hv} state='on'/>`);
    expect(r.stdout).toContain("<timer name='hypervclock' present='yes'/>");
    expect(r.stdout).toContain("<source dev='/dev/input/by-id/usb-Keychron_K8-event-kbd' grab='all' grabToggle='ctrl-ctrl' repeat='on'/>");
    expect(r.stdout).toContain("<source dev='/dev/input/by-id/usb-Razer_DeathAdder-event-mouse'/>");
    expect(r.stderr).toMatch(/no virtio-win driver ISO found/);
  });
  it('win11 on Fedora without descriptors: the Secure Boot files named explicitly, secure loader, NVRAM from the secboot template', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '81:00.0', '--os', 'win11', '--root', roots['dual-xeon']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("<loader readonly='yes' secure='yes' type='pflash'>/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd</loader>");
    expect(r.stdout).toContain("<nvram template='/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd'>/var/lib/libvirt/qemu/nvram/w_VARS.fd</nvram>");
    expect(r.stdout).toContain("<source file='/usr/share/virtio-win/virtio-win.iso'/>");
  });
  it('linux: no Hyper-V, no TPM, no Secure Boot firmware, virtio disk and network', async () => {
    const r = await runCli(['vm', 'xml', 'l', '--device', '03:00.0', '--os', 'linux', '--disk', '/dev/nvme1n1', '--root', roots['i9-12900k']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('<hyperv');
    expect(r.stdout).not.toContain('hypervclock');
    expect(r.stdout).not.toContain('<tpm');
    expect(r.stdout).toContain("<feature enabled='no' name='secure-boot'/>");
    expect(r.stdout).toContain("<target dev='vda' bus='virtio'/>");
    expect(r.stdout).toMatch(/<interface type='network'>[\s\S]*<model type='virtio'\/>/);
    const tpm = await runCli(['vm', 'xml', 'l', '--device', '03:00.0', '--os', 'linux', '--tpm', 'on', '--root', roots['i9-12900k']]);
    expect(tpm.stdout).toContain("<tpm model='tpm-crb'>");
  });
  it('overrides: win11 with --tpm off --secure-boot off --hyperv off', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '03:00.0', '--os', 'win11', '--tpm', 'off', '--secure-boot', 'off', '--hyperv', 'off', '--root', roots['i9-12900k']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('<tpm');
    expect(r.stdout).not.toContain('<smm');
    expect(r.stdout).not.toContain('<hyperv');
  });
  it('every hostdev carries the explicit vfio driver', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '81:00.0', '--os', 'win10', '--root', roots['dual-xeon']]);
    expect(r.stdout.match(/<hostdev /g)).toHaveLength(4);
    expect(r.stdout.match(/<hostdev [^>]*>\s*<driver name='vfio'\/>/g)).toHaveLength(4);
  });
  it('Looking Glass: kvmfr device through qemu:commandline when loaded, sized by the reference formula', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '10de:2204', '--os', 'win11', '--looking-glass', '3840x2160', '--root', roots['ryzen-5950x']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'");
    expect(r.stdout.replace(/&quot;/g, '"')).toContain(`"mem-path":"/dev/kvmfr0","size":${128 * 1048576}`);
    expect(r.stderr).toContain('looking-glass-client -f /dev/kvmfr0');
    expect(r.stderr).toContain("options kvmfr static_size_mb=128");
    const shm = await runCli(['vm', 'xml', 'w', '--device', '03:00.0', '--looking-glass', '1920x1080', '--root', roots['i9-12900k']]);
    expect(shm.stdout).toMatch(/<shmem name='looking-glass'>\s*<model type='ivshmem-plain'\/>\s*<size unit='M'>32<\/size>/);
    expect(shm.stderr).toContain('f /dev/shm/looking-glass 0660 alex kvm -');
  });
  it('--looking-glass without a value means auto (1920x1080, 32 MiB), at the end or before another option; a name after it stays the name', async () => {
    const shm = /<shmem name='looking-glass'>\s*<model type='ivshmem-plain'\/>\s*<size unit='M'>32<\/size>/;
    for (const args of [['w', '--device', '03:00.0', '--looking-glass'], ['w', '--looking-glass', '--device', '03:00.0'], ['--looking-glass', 'w', '--device', '03:00.0']]) {
      const r = await runCli(['vm', 'xml', ...args, '--root', roots['i9-12900k']]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(shm);
      expect(r.stdout).toContain('<name>w</name>');
      expect(r.stderr).toContain('32 MiB IVSHMEM for 1920x1080');
    }
    const big = await runCli(['vm', 'xml', 'w', '--device', '03:00.0', '--looking-glass', '2560x1440', '--root', roots['i9-12900k']]);
    expect(big.stdout).toMatch(/<size unit='M'>64<\/size>/);
  });
  it('the size formula matches the reference table (1080p 32/64, 1440p 64/128, 2160p 128/256 MiB)', () => {
    expect([lookingGlassMib(1920, 1080), lookingGlassMib(1920, 1080, true)]).toEqual([32, 64]);
    expect([lookingGlassMib(2560, 1440), lookingGlassMib(2560, 1440, true)]).toEqual([64, 128]);
    expect([lookingGlassMib(3840, 2160), lookingGlassMib(3840, 2160, true)]).toEqual([128, 256]);
  });
  it('audio: PipeWire through its PulseAudio server in the user runtime dir', async () => {
    const r = await runCli(['vm', 'xml', 'w', '--device', '10de:2204', '--audio', 'pipewire', '--root', roots['ryzen-5950x']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("<audio id='1' type='pulseaudio' serverName='unix:/run/user/1000/pulse/native'/>");
    expect(r.stdout).toMatch(/<sound model='ich9'>\s*<audio id='1'\/>/);
  });
  it('qemu: swtpm started separately, VARS copied from the Secure Boot template, SMM and secure pflash', async () => {
    const r = await runCli(['vm', 'qemu', 'w', '--device', '03:00.0', '--os', 'win11', '--root', roots['i9-12900k']]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('-machine q35,accel=kvm,vmport=off,smm=on');
    expect(r.stdout).toContain('-global driver=cfi.pflash01,property=secure,value=on');
    expect(r.stdout).toContain('-tpmdev emulator,id=tpm0,chardev=chrtpm');
    expect(r.stderr).toContain('swtpm socket --tpm2 --tpmstate dir=/var/lib/vfiokit/vms/w/tpm');
    expect(r.stderr).toContain('install -D -m 0600 /usr/share/OVMF/OVMF_VARS_4M.ms.fd /var/lib/vfiokit/vms/w/OVMF_VARS.fd');
  });
});

describe('bad input: a clear error, nothing generated', () => {
  const refuse = async (args: string[], root: string, code: string, text: RegExp, exit = 3) => {
    const r = await runCli(['vm', 'xml', 'w', ...args, '--root', root]);
    expect(r.code, r.stderr).toBe(exit);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(text);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // The code, from the error line --json adds.
    const j = await runCli(['vm', 'xml', 'w', ...args, '--json', '--root', root]);
    const last = JSON.parse(j.stderr.trim().split('\n').pop()!) as { error: { code: string; problems: { code: string }[] } };
    expect([last.error.code, ...last.error.problems.map((p) => p.code)]).toContain(code);
  };
  it('no Secure Boot firmware: names the package for the distribution', async () => {
    const root = build({ ...alderLakeGaming, files: { ...alderLakeGaming.files, '/usr/share/qemu/firmware/40-edk2-x86_64-secure-enrolled.json': '{}' } });
    await refuse(['--device', '03:00.0', '--os', 'win11'], root, 'E_NO_SECURE_BOOT_FIRMWARE', /apt install ovmf/);
  });
  it('swtpm missing: the install command', async () => {
    const root = build({ ...alderLakeGaming, execs: [] });
    await refuse(['--device', '03:00.0', '--os', 'win11'], root, 'E_SWTPM_MISSING', /apt install swtpm swtpm-tools/);
  });
  it('a virtio-win path that is not an ISO', async () => {
    const f = path.join(roots['i9-12900k'], 'not-an.iso');
    fs.writeFileSync(f, 'hello');
    await refuse(['--device', '03:00.0', '--os', 'win11', '--virtio-win', f], roots['i9-12900k'], 'E_VIRTIO_WIN_NOT_ISO', /CD001/);
  });
  it('an input device that is not an event device', async () => {
    await refuse(['--device', '03:00.0', '--input', '/dev/input/by-id/usb-Logitech_G502_HERO-mouse'], roots['ryzen-5950x'], 'E_NOT_EVENT_DEVICE', /usb-Logitech_G502_HERO-event-mouse/);
    await refuse(['--device', '03:00.0', '--input', '/dev/input/by-id/usb-Nope-event-kbd'], roots['ryzen-5950x'], 'E_NOT_EVENT_DEVICE', /does not exist/);
  });
  it('a Looking Glass size too small for the resolution', async () => {
    await refuse(['--device', '03:00.0', '--looking-glass', '2560x1440', '--looking-glass-size', '32'], roots['i9-12900k'], 'E_LOOKING_GLASS_TOO_SMALL', /--looking-glass-size 64/);
  });
  it('--os unknown is a usage error', async () => {
    await refuse(['--device', '03:00.0', '--os', 'win95'], roots['i9-12900k'], 'E_BAD_OS', /win11, --os win10, --os linux/, 2);
  });
  it('--audio pipewire without a PipeWire session', async () => {
    await refuse(['--device', '03:00.0', '--audio', 'pipewire'], roots['i9-12900k'], 'E_NO_AUDIO_SESSION', /pipewire-pulse/);
  });
  it('define refuses before running virsh', async () => {
    const root = build({ ...alderLakeGaming, execs: [] });
    const r = await runCli(['vm', 'define', 'w', '--device', '03:00.0', '--os', 'win11', '--root', root]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/nothing was defined/);
  });
});

void ryzenGaming;
