// `vfiokit rom check|strip|dump|install` on fake hosts: verdicts and exit
// codes, bad input (not a ROM, empty, 1 GB, a directory, no ROM BAR, the boot
// display, an existing output) refused with the thing, the rule and the fix,
// and nothing written.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRomResource } from '../../src/host/pci.js';
import { apparmorReadDirs } from '../../src/host/system.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { chooseRomDir, planRomDump, planRomInstall, romPathProblem } from '../../src/plan/rom-plan.js';
import { buildFakeHost, makeTempDir } from '../helpers/fake-host.js';
import { runCli } from '../helpers/run-cli.js';
import { ryzenDesktop } from '../vm/hosts.js';
import { buildRom, gpuRom } from '../vm/rom-builder.js';

let root: string;
let files: string;
beforeAll(() => {
  root = buildFakeHost(ryzenDesktop);
  files = makeTempDir('vfiokit-romfiles-');
  fs.writeFileSync(path.join(files, 'gpu.rom'), gpuRom(0x10de, 0x2204));
  fs.writeFileSync(path.join(files, 'legacy.rom'), buildRom([{ codeType: 0, vendor: 0x10de, device: 0x2204, blocks: 2, last: true }]));
  fs.writeFileSync(path.join(files, 'nvflash.rom'), buildRom([], new Uint8Array(0x680).fill(0x20), gpuRom(0x10de, 0x2204)));
  fs.writeFileSync(path.join(files, 'notarom.bin'), 'this is a text file, not a ROM\n');
  fs.writeFileSync(path.join(files, 'empty.rom'), '');
  fs.writeFileSync(path.join(files, 'ones.rom'), new Uint8Array(65536).fill(0xff));
  fs.mkdirSync(path.join(files, 'adir'));
}, 60_000);
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(files, { recursive: true, force: true });
});

const rom = (...args: string[]) => runCli(['rom', ...args, '--root', root]);
const f = (n: string) => path.join(files, n);

/** Every path and content hash under a directory (to show nothing was written). */
function treeHash(dir: string): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      h.update(p);
      if (e.isSymbolicLink()) h.update(fs.readlinkSync(p));
      else if (e.isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
}

describe('rom check', () => {
  it('gives the verdict and exits 0 for usable ROMs, 3 otherwise', async () => {
    const ok = await rom('check', f('gpu.rom'));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/image 0 @0x00000: 10de:2204 class 030000, 2 KiB, legacy x86 \(PC-AT\), checksum ok\n/);
    expect(ok.stdout).toMatch(/image 1 EFI header: signature 0x0EF1 ok, subsystem 0x0b, machine 0x8664 \(x64\), compression none, PE image at \+0x60/);
    expect(ok.stdout).toMatch(/verdict: usable with OVMF: image 1 is an x64 UEFI boot-service driver/);
    expect((await rom('check', f('legacy.rom'))).stdout).toMatch(/verdict: legacy BIOS only/);
    const strip = await rom('check', f('nvflash.rom'));
    expect(strip.code).toBe(3);
    expect(strip.stdout).toMatch(/verdict: needs strip: 1664 bytes of vendor header before the ROM at offset 0x680/);
    expect(strip.stdout).toMatch(/would be: usable with OVMF/);
    const bad = await rom('check', f('notarom.bin'));
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/verdict: broken at offset 0x0: no ROM signature at offset 0 \(expected 55 aa, found 74 68\)/);
    const ones = await rom('check', f('ones.rom'));
    expect(ones.stdout).toMatch(/all-ones[\s\S]*D3/);
  });

  it('--device: the IDs must match the device; --json carries the images and the verdict', async () => {
    expect((await rom('check', f('gpu.rom'), '--device', '01:00.0')).code).toBe(0);
    const wrong = await rom('check', f('gpu.rom'), '--device', '0b:00.0');
    expect(wrong.code).toBe(3);
    expect(wrong.stdout).toMatch(/verdict: wrong device: the ROM is for 10de:2204, not 1002:73bf \(0b:00\.0\)/);
    const j = JSON.parse((await rom('check', f('gpu.rom'), '--json', '--device', '10de:2204')).stdout);
    expect(j.verdict.kind).toBe('usable-ovmf');
    expect(j.images.map((i: { codeType: string; offset: number }) => [i.codeType, i.offset])).toEqual([['x86', 0], ['efi', 2048]]);
    expect((await rom('check', f('gpu.rom'), '--device', '99:00.0')).stderr).toMatch(/no PCI device 99:00\.0 on this host\n  fix: list the devices/);
  });

  it('bad input: a directory, an empty file, a 1 GB file, a missing file, no file', async () => {
    const dir = await rom('check', f('adir'));
    expect([dir.code, dir.stderr]).toEqual([3, expect.stringMatching(/adir is a directory, not a ROM file\n  fix: give the ROM file itself/)]);
    expect((await rom('check', f('empty.rom'))).stderr).toMatch(/empty\.rom is empty\n  fix: dump the ROM again/);
    const big = f('big.rom');
    fs.writeFileSync(big, '');
    fs.truncateSync(big, 1024 ** 3);
    const b = await rom('check', big);
    fs.rmSync(big);
    expect([b.code, b.stderr]).toEqual([3, expect.stringMatching(/big\.rom is 1024 MiB: larger than any PCI expansion ROM \(at most 16 MiB\)/)]);
    expect((await rom('check', f('nothere.rom'))).stderr).toMatch(/cannot read .*nothere\.rom \(ENOENT\)/);
    expect((await rom('check')).code).toBe(2);
    expect((await rom('frob')).stderr).toMatch(/unknown rom subcommand 'frob'/);
    for (const r of [dir, b]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('rom strip', () => {
  it('removes a vendor header and gives the ROM back byte for byte; a clean ROM is copied unchanged and says so', async () => {
    const o = f('out-stripped.rom');
    const r = await rom('strip', f('nvflash.rom'), '-o', o);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/removed 1664 bytes of vendor header/);
    expect(Buffer.compare(fs.readFileSync(o), Buffer.from(gpuRom(0x10de, 0x2204)))).toBe(0);
    const o2 = f('out-same.rom');
    const same = await rom('strip', f('gpu.rom'), '-o', o2);
    expect(same.stdout).toMatch(/nothing to strip: .* copied unchanged/);
    expect(Buffer.compare(fs.readFileSync(o2), fs.readFileSync(f('gpu.rom')))).toBe(0);
  });

  it('refuses an existing output unless --force, a non-ROM, a directory output; writes nothing then; --dry-run writes nothing', async () => {
    const o = f('exists.rom');
    fs.writeFileSync(o, 'mine');
    const r = await rom('strip', f('nvflash.rom'), '-o', o);
    expect([r.code, r.stderr]).toEqual([3, expect.stringMatching(/exists\.rom exists; nothing was written\n  fix: give another -o path, or --force/)]);
    expect(fs.readFileSync(o, 'utf8')).toBe('mine');
    expect((await rom('strip', f('nvflash.rom'), '-o', o, '--force')).code).toBe(0);
    expect(fs.statSync(o).size).toBe(gpuRom().length);
    const none = f('none.rom');
    const bad = await rom('strip', f('notarom.bin'), '-o', none);
    expect([bad.code, bad.stderr]).toEqual([3, expect.stringMatching(/holds no PCI option ROM to strip/)]);
    expect(fs.existsSync(none)).toBe(false);
    expect((await rom('strip', f('nvflash.rom'), '-o', f('adir'))).stderr).toMatch(/adir is a directory; nothing was written/);
    const dry = await rom('strip', f('nvflash.rom'), '-o', none, '--dry-run');
    expect(dry.stdout).toMatch(/dry run: would write/);
    expect(fs.existsSync(none)).toBe(false);
    expect((await rom('strip', f('nvflash.rom'))).code).toBe(2);
  });
});

describe('rom dump: plan and preconditions', () => {
  it('--dry-run shows the three engine steps; nothing changes', async () => {
    const before = treeHash(root);
    const r = await rom('dump', '01:00.0', '-o', '/tmp/gpu.rom', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('1. write "1" to /sys/bus/pci/devices/0000:01:00.0/rom');
    expect(r.stdout).toContain('2. copy /sys/bus/pci/devices/0000:01:00.0/rom to /tmp/gpu.rom (at most 524288 bytes, mode 644)');
    expect(r.stdout).toContain('3. write "0" to /sys/bus/pci/devices/0000:01:00.0/rom');
    expect(treeHash(root)).toBe(before);
  });

  it('`rom check SELECTOR` plans the same dump into the state directory', async () => {
    const r = await rom('check', '01:00.0', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2\. copy \/sys\/bus\/pci\/devices\/0000:01:00\.0\/rom to \/var\/lib\/vfiokit\/rom-dumps\/0000_01_00\.0-10de-2204-\d{8}T\d{6}\.rom/);
    expect((await rom('check', '01:00.1')).stderr).toMatch(/no expansion ROM BAR/);
  });

  it('the planner: enable with undo to "0", copy at most the BAR size, disable', () => {
    const snap = inspect(new HostRoot(root));
    const p = planRomDump(snap, { selector: '10de:2204', output: '/srv/gpu.rom', outputExists: false, force: false, romAttr: (a) => `/sys/bus/pci/devices/${a}/rom` });
    expect(p.problems).toEqual([]);
    expect(p.steps).toEqual([
      { kind: 'write-attr', path: '/sys/bus/pci/devices/0000:01:00.0/rom', value: '1', before: null, restore: { value: '0' }, reason: expect.any(String) },
      { kind: 'copy-attr', from: '/sys/bus/pci/devices/0000:01:00.0/rom', path: '/srv/gpu.rom', maxBytes: 0x80000, mode: 0o644, reason: expect.any(String) },
      { kind: 'write-attr', path: '/sys/bus/pci/devices/0000:01:00.0/rom', value: '0', before: null, restore: null, reason: expect.any(String) },
    ]);
  });

  it('refuses a device without a ROM BAR, the boot display and an existing output, with the fix; nothing changes', async () => {
    const before = treeHash(root);
    const noBar = await rom('dump', '01:00.1', '--yes');
    expect(noBar.code).toBe(3);
    expect(noBar.stderr).toMatch(/01:00\.1 \(10de:1aef\) has no expansion ROM BAR[\s\S]*fix: the device keeps no option ROM of its own/);
    const boot = await rom('dump', '0b:00.0', '--yes');
    expect(boot.code).toBe(3);
    expect(boot.stderr).toMatch(/0b:00\.0 is the host's boot display: its `rom` attribute returns the shadow copy[\s\S]*fix: dump it from a secondary slot[\s\S]*or use the vendor image/);
    fs.mkdirSync(path.join(root, 'srv'), { recursive: true });
    fs.writeFileSync(path.join(root, 'srv/gpu.rom'), 'old');
    const exists = await rom('dump', '01:00.0', '-o', '/srv/gpu.rom', '--yes');
    expect([exists.code, exists.stderr]).toEqual([3, expect.stringMatching(/\/srv\/gpu\.rom exists; nothing was changed\n  fix: give another -o path, or --force/)]);
    fs.rmSync(path.join(root, 'srv'), { recursive: true });
    expect(treeHash(root)).toBe(before);
    expect((await rom('dump')).code).toBe(2);
    expect((await rom('dump', 'not-a-selector')).code).toBe(2);
  });

  it('a device in D3 gets a warning that its ROM may read as all-ones', async () => {
    const dev = fs.realpathSync(path.join(root, 'sys/bus/pci/devices/0000:01:00.0'));
    fs.writeFileSync(path.join(dev, 'power_state'), 'D3hot\n');
    try {
      const r = await rom('dump', '01:00.0', '-o', '/tmp/gpu.rom', '--dry-run');
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/warning: 01:00\.0 is in D3hot: a suspended device returns all-ones instead of its ROM; wake it first/);
    } finally {
      fs.rmSync(path.join(dev, 'power_state'));
    }
  });

  it('the shadowed ROM BAR of a boot display is recognised from `resource` even when boot_vga is not set', () => {
    const dir = buildFakeHost({ ...ryzenDesktop, pci: ryzenDesktop.pci.map((d) => (d.addr === '01:00.0' ? { ...d, rom: { shadowed: true } } : d)) });
    try {
      const snap = inspect(new HostRoot(dir));
      expect(snap.pci.find((d) => d.address === '0000:01:00.0')!.romBar).toEqual({ size: 0x20000, shadowed: true, powerState: null });
      const p = planRomDump(snap, { selector: '01:00.0', output: '/x.rom', outputExists: false, force: false, romAttr: (a) => a });
      expect(p.problems.map((x) => x.code)).toEqual(['E_ROM_BOOT_VGA']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the ROM BAR and the confinement facts', () => {
  it('parses the ROM line of a resource file', () => {
    const line = (s: string, e: string, fl: string) => `0x${s.padStart(16, '0')} 0x${e.padStart(16, '0')} 0x${fl.padStart(16, '0')}`;
    const file = (rom: string) => [...Array(6).fill(line('0', '0', '0')), rom, ...Array(6).fill(line('0', '0', '0'))].join('\n') + '\n';
    expect(parseRomResource(file(line('fb000000', 'fb07ffff', '46200')))).toEqual({ size: 0x80000, shadowed: false, powerState: null });
    expect(parseRomResource(file(line('c0000', 'dffff', '212')))).toEqual({ size: 0x20000, shadowed: true, powerState: null });
    expect(parseRomResource(file(line('0', '0', '46200')))).toEqual({ size: 0, shadowed: false, powerState: null });
    expect(parseRomResource('garbage')).toBeNull();
    expect(parseRomResource(undefined)).toBeNull();
  });

  it('reads the directories an AppArmor abstraction lets QEMU read', () => {
    const text = ['  # access to firmware\'s etc', '  /usr/share/AAVMF/** rk,', '  /usr/share/misc/sgabios.bin r,', '  /usr/share/vgabios/** r,', '  owner /var/lib/libvirt/qemu/nvram/*_VARS.fd rwk,', '  /usr/share/qemu/** r,  # comment', '  deny /usr/share/secret/** w,'].join('\n');
    expect(apparmorReadDirs(text)).toEqual(['/usr/share/AAVMF', '/usr/share/vgabios', '/usr/share/qemu']);
  });

  const conf = (over: Partial<ReturnType<typeof inspect>['libvirt']['confinement']>) => ({ apparmor: { enabled: null, abstraction: null, readDirs: [] }, selinux: null, installDirs: ['/usr/share/vgabios', '/usr/share/qemu', '/usr/share/kvm'], installedRoms: {}, ...over });
  it('chooses the install directory the confinement allows, and says why', () => {
    expect(chooseRomDir(conf({})).dir).toBe('/usr/share/vgabios');
    const aa = chooseRomDir(conf({ apparmor: { enabled: true, abstraction: '/etc/apparmor.d/abstractions/libvirt-qemu', readDirs: ['/usr/share/OVMF', '/usr/share/qemu'] } }));
    expect(aa.dir).toBe('/usr/share/qemu');
    expect(aa.why[0]).toMatch(/^AppArmor: \/etc\/apparmor\.d\/abstractions\/libvirt-qemu lets every libvirt QEMU read \/usr\/share\/qemu\/\*\*/);
    const se = chooseRomDir(conf({ selinux: { mode: 'enforcing', policy: 'targeted' } }));
    expect(se.dir).toBe('/usr/share/vgabios');
    expect(se.why[0]).toMatch(/SELinux \(enforcing, targeted\): files under \/usr\/share carry usr_t/);
  });
});

describe('rom install: plan and preconditions', () => {
  it('--dry-run names the target the AppArmor abstraction allows; nothing changes', async () => {
    fs.mkdirSync(path.join(root, 'etc/apparmor.d/abstractions'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/apparmor.d/abstractions/libvirt-qemu'), '  /usr/share/qemu/** r,\n  /usr/share/vgabios/** r,\n');
    const before = treeHash(root);
    const r = await rom('install', f('gpu.rom'), '--device', '01:00.0', '--dry-run');
    expect(r.code).toBe(0);
    const sha = createHash('sha256').update(fs.readFileSync(f('gpu.rom'))).digest('hex');
    expect(r.stdout).toContain(`would install ${f('gpu.rom')} as /usr/share/vgabios/vfiokit-10de-2204-${sha.slice(0, 12)}.rom (mode 644)`);
    expect(r.stdout).toMatch(/AppArmor: .*libvirt-qemu lets every libvirt QEMU read \/usr\/share\/vgabios/);
    expect(treeHash(root)).toBe(before);
  });

  it('the planner: one install-file step, 0644, nothing when the same ROM is there; refuses a wrong, unstripped or broken ROM', () => {
    const bytes = new Uint8Array(fs.readFileSync(f('gpu.rom')));
    const input = { source: f('gpu.rom'), bytes, base64: Buffer.from(bytes).toString('base64'), sha256: 'ab'.repeat(32) };
    const snap = inspect(new HostRoot(root));
    const p = planRomInstall(snap, '01:00.0', input);
    expect(p.problems).toEqual([]);
    expect(p.steps).toEqual([{ kind: 'install-file', path: `/usr/share/vgabios/vfiokit-10de-2204-${'ab'.repeat(6)}.rom`, contentBase64: input.base64, mode: 0o644, beforeSha256: null, reason: expect.any(String) }]);
    const again = planRomInstall({ ...snap, libvirt: { ...snap.libvirt, confinement: { ...snap.libvirt.confinement, installedRoms: { [p.target!]: input.sha256 } } } }, '01:00.0', input);
    expect([again.already, again.steps]).toEqual([true, []]);
    expect(planRomInstall(snap, '0b:00.0', input).problems.map((x) => x.code)).toEqual(['E_ROM_WRONG_DEVICE']);
    const hdr = new Uint8Array(fs.readFileSync(f('nvflash.rom')));
    expect(planRomInstall(snap, '01:00.0', { ...input, bytes: hdr }).problems.map((x) => x.code)).toEqual(['E_ROM_NEEDS_STRIP']);
    expect(planRomInstall(snap, '01:00.0', { ...input, bytes: new Uint8Array(512).fill(0xff) }).problems.map((x) => x.code)).toEqual(['E_ROM_INVALID']);
  });

  it('refuses bad input with the fix and writes nothing', async () => {
    const before = treeHash(root);
    const wrong = await rom('install', f('gpu.rom'), '--device', '0b:00.0', '--yes');
    expect([wrong.code, wrong.stderr]).toEqual([3, expect.stringMatching(/wrong device: the ROM is for 10de:2204, not 1002:73bf/)]);
    expect((await rom('install', f('nvflash.rom'), '--device', '01:00.0', '--yes')).stderr).toMatch(/needs strip[\s\S]*fix: vfiokit rom strip/);
    expect((await rom('install', f('adir'), '--device', '01:00.0', '--yes')).stderr).toMatch(/is a directory/);
    expect((await rom('install', f('gpu.rom'), '--yes')).code).toBe(2);
    expect(treeHash(root)).toBe(before);
  });
});

describe('ROM paths users give libvirt (corpus domain XMLs), against the confinement', () => {
  const debianAbstraction = { enabled: true, abstraction: '/etc/apparmor.d/abstractions/libvirt-qemu', readDirs: ['/usr/share/AAVMF', '/usr/share/OVMF', '/usr/share/qemu', '/usr/share/seabios', '/usr/share/vgabios'] };
  const conf = (over: object) => ({ apparmor: { enabled: null, abstraction: null, readDirs: [] as string[] }, selinux: null, installDirs: ['/usr/share/vgabios', '/usr/share/qemu', '/usr/share/kvm'], installedRoms: {}, ...over });
  // <rom file='…'/> values as the users wrote them (read here with a regex, not with vfiokit).
  const corpusRoms = (): { source: string; file: string }[] => {
    const dir = path.join(process.env.VFIOKIT_CORPUS ?? '/work/shared/corpus', 'E_libvirt');
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir).filter((n) => n.endsWith('.xml')).flatMap((n) => [...fs.readFileSync(path.join(dir, n), 'utf8').matchAll(/<rom\b[^>]*\bfile=["']([^"']+)["']/g)].map((m) => ({ source: n, file: m[1] })));
  };
  it.runIf(corpusRoms().length > 0 || !!process.env.CI)('under AppArmor only /usr/share/vgabios of the users\' paths is readable; SELinux denies the home directory', () => {
    const roms = corpusRoms();
    expect(roms.length).toBeGreaterThanOrEqual(4);
    const aa = conf({ apparmor: debianAbstraction });
    const verdicts = Object.fromEntries(roms.map((r) => [r.file, romPathProblem(aa, r.file)]));
    expect(verdicts['/usr/share/vgabios/patched.rom']).toBeNull();
    expect(verdicts['/home/skeen/Desktop/GF100_updGOP.rom']).toMatch(/outside the directories .*libvirt-qemu lets libvirt's QEMU read.*rom install FILE --device …` copies it to \/usr\/share\/vgabios/);
    expect(verdicts['/var/lib/libvirt/graphics-card-drivers/168973.rom']).toMatch(/outside the directories/);
    expect(verdicts['6800xt.rom']).toMatch(/relative name: QEMU looks it up in its own data directory/);
    const se = conf({ selinux: { mode: 'enforcing', policy: 'targeted' } });
    expect(romPathProblem(se, '/home/skeen/Desktop/GF100_updGOP.rom')).toMatch(/SELinux label/);
    expect(romPathProblem(se, '/usr/share/vgabios/patched.rom')).toBeNull();
    expect(romPathProblem(conf({}), '/home/skeen/Desktop/GF100_updGOP.rom')).toBeNull();
  });
});

describe('properties of the ROM BAR and AppArmor readers', () => {
  it('parseRomResource: any text gives null or a BAR; generated resource files give back start/end/flags', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(fc.property(fc.string({ maxLength: 400 }), (t) => {
      const r = parseRomResource(t);
      if (r) expect(r.size).toBeGreaterThanOrEqual(0);
    }), { numRuns: 500 });
    const h = (n: bigint) => `0x${n.toString(16).padStart(16, '0')}`;
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 0xffffffffn }), fc.integer({ min: 11, max: 24 }), fc.bigInt({ min: 0n, max: 0xffffffn }), (start, bits, flags) => {
        const size = 1n << BigInt(bits);
        const base = start & ~(size - 1n);
        const lines = Array.from({ length: 13 }, () => `${h(0n)} ${h(0n)} ${h(0n)}`);
        lines[6] = `${h(base)} ${h(base + size - 1n)} ${h(flags)}`;
        const r = parseRomResource(lines.join('\n') + '\n');
        expect(r).toEqual({ size: Number(size), shadowed: (flags & 2n) !== 0n || base === 0xc0000n, powerState: null });
      }),
      { numRuns: 300 },
    );
  });

  it('apparmorReadDirs: any text is read without an exception; generated rules are found, others not', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(fc.property(fc.string({ maxLength: 600 }), (t) => void apparmorReadDirs(t)), { numRuns: 500 });
    const seg = fc.stringMatching(/^[a-zA-Z0-9_.-]{1,10}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(seg, { minLength: 1, maxLength: 3 }), fc.constantFrom('r', 'rk', 'w', 'mr', 'rw')), { maxLength: 8 }), (rules) => {
        const text = rules.map(([p, perm]) => `  /${p.join('/')}/** ${perm},`).join('\n');
        const want = [...new Set(rules.filter(([, perm]) => perm.includes('r')).map(([p]) => `/${p.join('/')}`))];
        expect(apparmorReadDirs(text)).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });
});
