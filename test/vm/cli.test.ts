import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realRunner } from '../../src/apply/runner.js';
import { runVm, type ArgvRunner } from '../../src/cli/commands/vm.js';
import type { CommandContext } from '../../src/cli/context.js';
import { VfioError } from '../../src/errors.js';
import { HostRoot } from '../../src/host/root.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { runCli } from '../helpers/run-cli.js';
import { ryzenDesktop } from './hosts.js';
import { buildRom } from './rom-builder.js';
import { printSkip, virshTest } from './validate.js';

let root: string;
beforeAll(() => {
  root = buildFakeHost(ryzenDesktop);
  fs.writeFileSync(path.join(root, 'notarom.bin'), 'this is a text file, not a ROM\n');
  fs.writeFileSync(path.join(root, 'nvflash.rom'), buildRom([{ codeType: 0, vendor: 0x10de, device: 0x2204, blocks: 2, last: true }], new Uint8Array(0x400).fill(0x20)));
}, 60_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const vm = (...args: string[]) => runCli(['vm', ...args, '--root', root]);

/** A virsh stand-in: records argv, keeps defined domains in memory, never touches libvirtd. */
function fakeVirsh(domains: Record<string, string> = {}) {
  const calls: string[][] = [];
  const runner: ArgvRunner = {
    async run(argv) {
      calls.push(argv);
      const res = (code: number, stdout: string, stderr: string) => ({ argv, code, stdout, stderr, durationMs: 1, signal: null });
      const args = argv.slice(argv[1] === '-c' ? 3 : 1);
      if (args[0] === 'domuuid') return domains[args[1]] ? res(0, 'uuid\n', '') : res(1, '', `error: failed to get domain '${args[1]}'`);
      if (args[0] === 'dumpxml') {
        const x = domains[args[args.length - 1]];
        return x ? res(0, x, '') : res(1, '', 'error: failed to get domain');
      }
      if (args[0] === 'define') {
        const xml = fs.readFileSync(args[1], 'utf8');
        const name = /<name>([^<]+)<\/name>/.exec(xml)![1];
        domains[name] = xml;
        return res(0, `Domain '${name}' defined from ${args[1]}\n`, '');
      }
      return res(1, '', `unexpected ${argv.join(' ')}`);
    },
  };
  return { runner, calls, domains };
}

function ctx(positionals: string[], values: CommandContext['values']) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = { positionals, values, root: new HostRoot(root), io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } } };
  return { c, out: () => stdout, err: () => stderr };
}

describe('vm: bad input is refused with the thing, the rule and the fix', () => {
  it('unknown selector → exit 3', async () => {
    const r = await vm('xml', 'g', '--device', '05:00.0');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no PCI device matches '05:00.0'/);
    expect(r.stderr).toMatch(/fix: list devices with `vfiokit groups`/);
    expect(r.stdout).toBe('');
  });
  it('memory larger than the host → exit 3', async () => {
    const r = await vm('xml', 'g', '--device', '01:00.0', '--memory', '96G');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--memory 96G is more than the host's 62\.7 GiB/);
    expect(r.stderr).toMatch(/fix: use at most --memory 47G/);
  });
  it('more vCPUs than host threads → exit 3', async () => {
    const r = await vm('xml', 'g', '--device', '01:00.0', '--vcpus', '48');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/--vcpus 48 is more than the host's 32 CPU threads/);
  });
  it('vCPUs that only fit by taking core 0 → exit 3 with --pin none as a way out', async () => {
    const r = await vm('xml', 'g', '--device', '01:00.0', '--vcpus', '32');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/leaves 30 host threads/);
    expect((await vm('xml', 'g', '--device', '01:00.0', '--vcpus', '32', '--pin', 'none')).code).toBe(0);
  });
  it('malformed --memory, --vcpus, --pin, name → exit 2', async () => {
    const m = await vm('xml', 'g', '--device', '01:00.0', '--memory', '8');
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/'8' is not a memory size[\s\S]*needs a unit[\s\S]*e\.g\. --memory 8G/);
    expect((await vm('xml', 'g', '--device', '01:00.0', '--vcpus', 'many')).code).toBe(2);
    expect((await vm('xml', 'g', '--device', '01:00.0', '--pin', 'some')).stderr).toMatch(/--pin 'some' is not a pinning mode/);
    expect((await vm('xml', 'my vm', '--device', '01:00.0')).stderr).toMatch(/'my vm' is not a usable VM name/);
    expect((await vm('frob', 'g')).stderr).toMatch(/unknown vm subcommand 'frob'/);
    expect((await vm('xml', 'g')).stderr).toMatch(/no device given/);
  });
  it('a ROM file that is not an option ROM → exit 3; a dump with a header says how to strip it', async () => {
    const r = await vm('xml', 'g', '--device', '01:00.0', '--rom', path.join(root, 'notarom.bin'));
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/notarom\.bin is not a PCI option ROM: no ROM signature at offset 0/);
    const h = await vm('xml', 'g', '--device', '01:00.0', '--rom', path.join(root, 'nvflash.rom'));
    expect(h.code).toBe(3);
    expect(h.stderr).toMatch(/fix: strip the vendor header: vfiokit rom strip '.*nvflash\.rom' -o gpu\.rom/);
    expect((await vm('xml', 'g', '--device', '01:00.0', '--rom', path.join(root, 'missing.rom'))).stderr).toMatch(/cannot read .*missing\.rom \(ENOENT\)/);
  });
  it('the boot GPU needs --allow-boot-vga, and without --rom a warning about its shadowed ROM', async () => {
    const r = await vm('xml', 'g', '--device', '0b:00.0');
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/boot display/);
    const ok = await vm('xml', 'g', '--device', '0b:00.0', '--allow-boot-vga');
    expect(ok.code).toBe(0);
    expect(ok.stderr).toMatch(/warning: 0b:00\.0 is the host's boot display and no --rom was given: its ROM BAR returns the shadow copy/);
    expect((await vm('xml', 'g', '--device', '01:00.0')).stderr).not.toMatch(/no --rom was given/);
  });
  it('a ROM for another device is refused, naming both IDs; a device-list entry matches', async () => {
    fs.writeFileSync(path.join(root, 'other.rom'), buildRom([{ codeType: 0, vendor: 0x10de, device: 0x1b80, blocks: 2, last: true }]));
    const r = await vm('xml', 'g', '--device', '01:00.0', '--rom', path.join(root, 'other.rom'));
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/ROM .*other\.rom: wrong device: the ROM is for 10de:1b80, not 10de:2204 \(01:00\.0\)/);
    fs.writeFileSync(path.join(root, 'listed.rom'), buildRom([{ codeType: 0, vendor: 0x10de, device: 0x1b80, blocks: 2, last: true, deviceList: [0x1b80, 0x2204] }]));
    expect((await vm('xml', 'g', '--device', '01:00.0', '--rom', path.join(root, 'listed.rom'))).code).toBe(0);
  });
  it('a legacy-only ROM is accepted with a warning about OVMF', async () => {
    fs.writeFileSync(path.join(root, 'legacy.rom'), buildRom([{ codeType: 0, vendor: 0x10de, device: 0x2204, blocks: 2, last: true }]));
    const r = await vm('xml', 'g', '--device', '01:00.0', '--rom', path.join(root, 'legacy.rom'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: ROM .* has no x64 UEFI \(GOP\) image/);
  });
});

describe('vm define / attach through the argv runner', () => {
  it('defines a new domain: checks it does not exist, then virsh define with the generated XML', async () => {
    const v = fakeVirsh();
    const { c, out } = ctx(['define', 'win'], { device: ['01:00.0'], memory: '16G', connect: 'test:///default' });
    expect(await runVm(c, v.runner)).toBe(0);
    expect(v.calls.map((a) => a.slice(0, 4))).toEqual([
      ['virsh', '-c', 'test:///default', 'domuuid'],
      ['virsh', '-c', 'test:///default', 'define'],
    ]);
    const xml = (await vm('xml', 'win', '--device', '01:00.0', '--memory', '16G')).stdout;
    expect(v.domains.win).toBe(xml);
    expect(out()).toMatch(/defined domain 'win' \(16 vCPUs, 16384 MiB, 01:00.0 \+ 01:00.1\)/);
  });

  it('refuses to replace an existing domain, and defines nothing on bad input', async () => {
    const v = fakeVirsh({ win: '<domain/>' });
    await expect(runVm(ctx(['define', 'win'], { device: ['01:00.0'] }).c, v.runner)).rejects.toThrow(/a domain named 'win' is already defined/);
    expect(v.calls.filter((a) => a.includes('define'))).toEqual([]);
    const w = fakeVirsh();
    await expect(runVm(ctx(['define', 'new'], { device: ['01:00.0'], memory: '512G' }).c, w.runner)).rejects.toThrow(VfioError);
    expect(w.calls).toEqual([]);
  });

  it('attach: dumpxml --inactive, add the hostdevs, redefine; again: nothing to do', async () => {
    const base = (await vm('xml', 'win', '--device', '0c:00.0')).stdout;
    const v = fakeVirsh({ win: base });
    const a = ctx(['attach', 'win'], { device: ['01:00.0'] });
    expect(await runVm(a.c, v.runner)).toBe(0);
    expect(v.calls[0]).toEqual(['virsh', 'dumpxml', '--inactive', 'win']);
    expect(a.out()).toMatch(/added 01:00.0 \(guest bus 2 function 0\), 01:00.1 \(guest bus 2 function 1\) to domain 'win'/);
    expect(v.domains.win).toMatch(/<controller type="pci" index="2" model="pcie-root-port"\/>/);
    const b = ctx(['attach', 'win'], { device: ['01:00.0'] });
    expect(await runVm(b.c, v.runner)).toBe(0);
    expect(b.out()).toMatch(/nothing to do: 01:00.0, 01:00.1 already in domain 'win'/);
    expect(v.calls.filter((x) => x.includes('define'))).toHaveLength(1);
    await expect(runVm(ctx(['attach', 'win'], { device: ['01:00.0'], memory: '8G' }).c, v.runner)).rejects.toThrow(/--memory does not apply/);
    await expect(runVm(ctx(['attach', 'nope'], { device: ['01:00.0'] }).c, v.runner)).rejects.toThrow(/cannot read domain 'nope'/);
  });

  it('--dry-run runs no virsh command', async () => {
    const v = fakeVirsh();
    const d = ctx(['define', 'win'], { device: ['01:00.0'], 'dry-run': true });
    expect(await runVm(d.c, v.runner)).toBe(0);
    expect(v.calls).toEqual([]);
    expect(d.out()).toMatch(/^<domain type='kvm'>/);
    expect(d.err()).toMatch(/dry run: would run virsh define/);
  });

  it('under --root, virsh never runs on this machine (the project runner chroots into the root or refuses)', async () => {
    const r = await vm('define', 'x', '--device', '01:00.0', '--connect', 'test:///default');
    // As root: chroot into the fake tree, whose /usr/bin/virsh is an empty file; otherwise E_RUN_OUTSIDE_ROOT.
    expect([1, 3]).toContain(r.code);
    expect(r.stderr).toMatch(/chroot|outside|root/i);
    expect(r.stdout).toBe('');
  });

  it('end to end with the real virsh (project runner on /) and the libvirt test driver', async () => {
    if (!virshTest.ok) return printSkip('virsh define end to end', virshTest.reason);
    const live = realRunner(new HostRoot('/'), { progress: null });
    const d = ctx(['define', 'e2e'], { device: ['01:00.0'], memory: '8G', connect: 'test:///default' });
    expect(await runVm(d.c, live)).toBe(0);
    expect(d.out()).toMatch(/defined domain 'e2e'/);
    // The test driver's own domain "test" is not q35: attach refuses it without changing anything.
    await expect(runVm(ctx(['attach', 'test'], { device: ['01:00.0'], connect: 'test:///default' }).c, live)).rejects.toThrow(/not q35/);
  });
});
