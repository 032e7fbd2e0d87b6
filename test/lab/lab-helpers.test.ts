// Fast unit tests of the lab's pure helpers (no QEMU): the initramfs writer,
// partition tables, the listing parser and comparisons, test selection, and
// the adaptation of `vfiokit vm qemu` output for a nested guest.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cpioNewc } from '../../lab/lib/cpio.js';
import { buildGpt, buildMbr, crc32, guidBytes, GPT_ESP } from '../../lab/lib/disk.js';
import { parseListing } from '../../lab/lib/guest-script.js';
import { compareGroups, compareInspect, richTopologyFacts } from '../../lab/lib/compare.js';
import { longestFirst, selectTests, summaryTable } from '../../lab/lib/select.js';
import { boot, bootOutcome } from '../../lab/lib/qemu.js';
import { adaptArgv, shellWords } from '../../lab/guest/nested-vm.js';
import { adaptForTcg } from '../../lab/guest/tcg-domain.js';
import { qemuArgv } from '../../lab/lib/qemu.js';
import { bootstateDiff } from '../../lab/lib/gpu.js';
import { moduleLoadOrder } from '../../lab/lib/kernel.js';
import type { TestDef } from '../../lab/lib/harness.js';
import { IMAGES, imageCacheInput, recipeFor } from '../../lab/lib/images.js';

describe('cpio newc', () => {
  it('writes headers, 4-byte alignment and the trailer', () => {
    const buf = cpioNewc([
      { type: 'dir', path: 'bin' },
      { type: 'file', path: '/init', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
      { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    ]);
    const text = buf.toString('latin1');
    expect(text.startsWith('070701')).toBe(true);
    expect(buf.length % 4).toBe(0);
    expect(text).toContain('init\0');
    expect(text).toContain('TRAILER!!!\0');
    // The file record: mode 0100755 and size 10.
    const i = text.indexOf('070701', 6);
    expect(text.slice(i + 14, i + 22)).toBe((0o100755).toString(16).padStart(8, '0'));
    expect(parseInt(text.slice(i + 54, i + 62), 16)).toBe(10);
  });
});

describe('partition tables', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });
  it('MBR: signature, type, LBA start and size', () => {
    const s = buildMbr([{ start: 2048, sectors: 1000, type: 0x83, bootable: true }]);
    expect(s.length).toBe(512);
    expect(s[510]).toBe(0x55);
    expect(s[511]).toBe(0xaa);
    expect(s[446]).toBe(0x80);
    expect(s[450]).toBe(0x83);
    expect(s.readUInt32LE(454)).toBe(2048);
    expect(s.readUInt32LE(458)).toBe(1000);
  });
  it('GPT: valid header CRCs, entries, backup at the end', () => {
    const total = 8 * 2048 * 1024; // 8 GiB in sectors
    const g = buildGpt(total, '11111111-2222-4333-8444-555555555555', [
      { start: 2048, sectors: 262144, gptType: GPT_ESP, guid: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', name: 'ESP' },
    ]);
    const hdr = g.head.subarray(512, 1024);
    expect(hdr.subarray(0, 8).toString('ascii')).toBe('EFI PART');
    const h = Buffer.from(hdr.subarray(0, 92));
    const crc = h.readUInt32LE(16);
    h.writeUInt32LE(0, 16);
    expect(crc32(h)).toBe(crc);
    const entries = g.head.subarray(1024, 1024 + 128 * 128);
    expect(crc32(entries)).toBe(hdr.readUInt32LE(88));
    expect(entries.subarray(0, 16).equals(guidBytes(GPT_ESP))).toBe(true);
    expect(entries.readBigUInt64LE(32)).toBe(2048n);
    expect(g.tailOffset + g.tail.length).toBe(total * 512);
    const backup = g.tail.subarray(g.tail.length - 512);
    expect(backup.readBigUInt64LE(24)).toBe(BigInt(total - 1));
    expect(g.head[450]).toBe(0xee);
  });
  it('GUIDs are stored mixed-endian', () => {
    expect(guidBytes('C12A7328-F81F-11D2-BA4B-00A0C93EC93B').toString('hex')).toBe('28732ac11ff8d211ba4b00a0c93ec93b');
  });
});

describe('kernel modules', () => {
  it('orders dependencies first and skips builtins', () => {
    const dep = new Map([
      ['9p', { file: '/m/9p.ko', deps: ['9pnet', 'netfs'] }],
      ['9pnet', { file: '/m/9pnet.ko', deps: [] }],
      ['9pnet_virtio', { file: '/m/9pnet_virtio.ko', deps: ['9pnet', 'virtio_ring'] }],
    ]);
    const order = moduleLoadOrder(dep, ['9pnet_virtio', '9p'], new Set(['virtio_ring', 'netfs']));
    expect(order.map((m) => m.name)).toEqual(['9pnet', '9pnet_virtio', '9p']);
    expect(() => moduleLoadOrder(dep, ['nope'], new Set())).toThrow(/nope/);
  });
});

const LISTING_GROUPS = '0 0000:00:00.0\n1 0000:00:02.0\n2 0000:01:00.0\n2 0000:01:00.1\n';
const LISTING_DEVICES = [
  '0000:00:00.0 0x8086 0x29c0 0x060000 - 0 -',
  '0000:00:02.0 0x1b36 0x000c 0x060400 pcieport 1 -',
  '0000:01:00.0 0x1234 0x1111 0x030000 bochs-drm 2 -',
  '0000:01:00.1 0x8086 0x293e 0x040300 snd_hda_intel 2 -',
].join('\n');

describe('listing and comparisons', () => {
  const k = parseListing(LISTING_GROUPS, LISTING_DEVICES);
  const pci = [
    { address: '0000:00:00.0', vendor: '8086', device: '29c0', class: '060000', driver: null, iommuGroup: 0, driverOverride: null },
    { address: '0000:00:02.0', vendor: '1b36', device: '000c', class: '060400', driver: 'pcieport', iommuGroup: 1, driverOverride: null },
    { address: '0000:01:00.0', vendor: '1234', device: '1111', class: '030000', driver: 'bochs-drm', iommuGroup: 2, driverOverride: null },
    { address: '0000:01:00.1', vendor: '8086', device: '293e', class: '040300', driver: 'snd_hda_intel', iommuGroup: 2, driverOverride: null },
  ];
  const groups = [
    { id: 0, devices: ['0000:00:00.0'] },
    { id: 1, devices: ['0000:00:02.0'] },
    { id: 2, devices: ['0000:01:00.1', '0000:01:00.0'] },
  ];
  it('parses the shell listing', () => {
    expect(k.groups.get(2)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(k.devices.get('0000:01:00.0')).toMatchObject({ vendor: '1234', device: '1111', driver: 'bochs-drm', group: 2, driverOverride: null });
    expect(k.devices.get('0000:00:00.0')!.driver).toBeNull();
  });
  it('agreeing output has no differences', () => {
    expect(compareInspect({ iommu: { active: true, groups }, pci }, k)).toEqual([]);
    expect(compareGroups({ iommuActive: true, groups: groups.map((g) => ({ ...g, members: g.devices.map((a) => ({ address: a, driver: k.devices.get(a)!.driver })) })) }, k)).toEqual([]);
  });
  it('names each disagreement', () => {
    const wrong = pci.map((d) => (d.address === '0000:01:00.1' ? { ...d, driver: 'vfio-pci', iommuGroup: 3 } : d));
    const d = compareInspect({ iommu: { active: true, groups: [groups[0]!, groups[1]!, { id: 2, devices: ['0000:01:00.0'] }, { id: 3, devices: ['0000:01:00.1'] }] }, pci: wrong.slice(1) }, k);
    expect(d.join('\n')).toMatch(/01:00.1 driver="vfio-pci", kernel says "snd_hda_intel"/);
    expect(d.join('\n')).toMatch(/iommuGroup=3/);
    expect(d.join('\n')).toMatch(/missing 0000:00:00.0/);
    expect(d.join('\n')).toMatch(/group 3 .* does not exist in the kernel/);
  });
  it('the rich-topology facts notice a poor topology', () => {
    expect(richTopologyFacts(k)).toContain('a PCIe-to-PCI bridge (1b36:000e)');
  });
  it('boot state differences by file', () => {
    const a = `${'a'.repeat(64)}  /etc/default/grub\n${'b'.repeat(64)}  /etc/modprobe.d/x.conf\n`;
    const b = `${'c'.repeat(64)}  /etc/default/grub\n${'d'.repeat(64)}  /etc/modprobe.d/vfio.conf\n`;
    expect(bootstateDiff(a, a)).toEqual([]);
    expect(bootstateDiff(a, b).sort()).toEqual(['/etc/default/grub (changed)', '/etc/modprobe.d/vfio.conf (added)', '/etc/modprobe.d/x.conf (removed)']);
  });
});

describe('test selection', () => {
  const defs = ['1.intel', '1.amd', '2.grub-itools', '10.x'].map((id) => ({ id, title: id, needs: [], run: async () => {} })) as TestDef[];
  it('selects scenarios and single tests', () => {
    expect(selectTests(defs, '1').map((t) => t.id)).toEqual(['1.intel', '1.amd']);
    expect(selectTests(defs, '1.amd,2').map((t) => t.id)).toEqual(['1.amd', '2.grub-itools']);
    expect(selectTests(defs, undefined)).toHaveLength(4);
    expect(() => selectTests(defs, '7')).toThrow(/unknown/);
  });
  it('summary table lists status, id and duration', () => {
    const t = summaryTable([{ id: '1.amd', title: 'x', status: 'skip', reason: 'not built', durationMs: 61_000, checks: [], boots: [] }]);
    expect(t).toMatch(/SKIP\s+1\.amd\s+1m01s\s+x — not built/);
  });
});

describe('domain XML adaptation for a guest without KVM (the lab\'s virsh wrapper)', () => {
  const xml = fs.readFileSync(path.join(__dirname, '../fixtures/vm/profiles/win11-dual-xeon.xml'), 'utf8');
  it('TCG changes only, each named; hostdevs, firmware, TPM and memory kept byte for byte', () => {
    const { xml: out, adaptations } = adaptForTcg(xml);
    expect(out).toMatch(/^<domain type='qemu'>/);
    expect(out).toContain("<cpu mode='maximum' check='none' migratable='on'>");
    expect(out).not.toMatch(/host-passthrough|<cache mode='passthrough'\/>|<ioapic driver='kvm'\/>|<kvm>|network='default'|<hyperv|hypervclock/);
    expect(out).toContain("<interface type='user'>\n      <model type='virtio'/>");
    for (const kept of [/<hostdev [\s\S]*?<\/hostdev>/g, /<tpm [\s\S]*?<\/tpm>/g, /<os>[\s\S]*?<\/os>/g, /<memoryBacking>[\s\S]*?<\/memoryBacking>/g]) expect(out.match(kept)).toEqual(xml.match(kept));
    expect(adaptations).toHaveLength(8);
    expect(out).toContain("<timer name='hpet' present='no'/>\n  </clock>");
    expect(adaptForTcg(out).adaptations).toEqual([]);
  });
});

describe('lab topologies', () => {
  it("'single-gpu': the GPU pair is the only display; 'gpu' keeps a separate boot display", () => {
    const argv = (topology: 'gpu' | 'single-gpu') => qemuArgv({ iommu: 'intel', topology, memMb: 1024, smp: 1, shares: [] }).join(' ');
    expect(argv('single-gpu')).not.toMatch(/virtio-vga|qxl-vga/);
    expect(argv('single-gpu')).toContain('-device VGA,id=gpu1v,bus=rp1,addr=0x0.0,multifunction=on -device ich9-intel-hda,id=gpu1a,bus=rp1,addr=0x0.1');
    expect(argv('gpu')).toContain('virtio-vga,id=display');
  });
});

describe('nested VM command adaptation', () => {
  const printed = `# VM lab-nested
qemu-system-x86_64 \\
  -name lab-nested \\
  -machine q35,accel=kvm,kernel_irqchip=on \\
  -enable-kvm \\
  -cpu host,kvm=off,hv_relaxed \\
  -m 256M \\
  -drive 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd' \\
  -device vfio-pci,host=0000:01:00.0,multifunction=on \\
  -display gtk \\
  -device "vfio-pci,host=0000:01:00.1"
`;
  it('splits shell words with quotes and continuations', () => {
    const w = shellWords(printed);
    expect(w[0]).toBe('qemu-system-x86_64');
    expect(w).toContain('if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd');
    expect(w[w.length - 1]).toBe('vfio-pci,host=0000:01:00.1');
  });
  it('keeps devices, drops KVM and display, adds TCG, -S and QMP', () => {
    const { argv, notes } = adaptArgv(shellWords(printed), '/run/q.sock');
    const s = argv.join(' ');
    expect(s).toContain('-device vfio-pci,host=0000:01:00.0,multifunction=on');
    expect(s).toContain('-device vfio-pci,host=0000:01:00.1');
    expect(s).toContain('-machine q35');
    expect(s).not.toMatch(/accel=kvm|-enable-kvm|gtk|kernel_irqchip/);
    expect(s).toContain('-cpu max');
    expect(s).toContain('-accel tcg -display none');
    expect(s).toContain('-qmp unix:/run/q.sock,server=on,wait=off');
    expect(notes.length).toBeGreaterThan(2);
  });
});

describe('boot(): how a guest run ends (a shell stands in for QEMU)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-boot-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  // `exec` makes the stand-in one process, as QEMU is (a child would hold the console pipe open).
  const sh = (script: string) => ['sh', '-c', script];

  it('a console silent for silenceMs is a hang: stopped, with the reason', async () => {
    const r = await boot(sh('echo up; exec sleep 30'), { label: 't', serialLog: path.join(dir, 'a.log'), timeoutMs: 60_000, silenceMs: 400 });
    expect(r.timedOut).toBe(true);
    expect(bootOutcome(r)).toMatch(/silent/);
    expect(r.durationMs).toBeLessThan(10_000);
  });
  it('output keeps a slow guest alive until the overall limit', async () => {
    const r = await boot(sh('for i in 1 2 3 4 5 6; do echo beat; sleep 0.2; done'), { label: 't', serialLog: path.join(dir, 'b.log'), timeoutMs: 60_000, silenceMs: 600 });
    expect(r.timedOut).toBe(false);
    expect(bootOutcome(r)).toBe('powered off');
  });
  it('a guest that finished its script but does not power off is stopped, and counts as finished', async () => {
    const done = path.join(dir, 'finished');
    const r = await boot(sh(`echo ok > ${done}; exec sleep 30`), { label: 't', serialLog: path.join(dir, 'c.log'), timeoutMs: 60_000, finishedFile: done, afterFinishMs: 300 });
    expect(r.stoppedAfterFinish).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(bootOutcome(r)).toMatch(/stopped by the lab/);
    expect(fs.readFileSync(r.serialLog, 'utf8')).toMatch(/did not power off/);
  });
});

describe('test order', () => {
  it('longest first, the listed order among equals', () => {
    const def = (id: string, cost: number) => ({ id, title: id, needs: [], cost, run: async () => {} }) as TestDef;
    expect(longestFirst([def('a', 1), def('b', 5), def('c', 1), def('d', 7)]).map((t) => t.id)).toEqual(['d', 'b', 'a', 'c']);
  });
});

describe('image recipes composed from features', () => {
  it('keeps the cache keys of the images built before features (the shared cache stays valid)', () => {
    // Keys of the recipes as written before they were composed from features (same mirror as the default).
    if (process.env.VFIOKIT_LAB_MIRROR) return;
    expect(imageCacheInput('grub-itools').key).toBe('13b61d102b8ef4f3');
    expect(imageCacheInput('grub-dracut').key).toBe('0a4f832125a4d33d');
  });
  it('the LVM image adds lvm2 and its LV setup to grub-itools, aimed at the second disk, and has its own key', () => {
    const base = recipeFor('grub-itools', 'r', 'e');
    const lvm = recipeFor('grub-itools-lvm', 'r', 'e');
    expect(IMAGES['grub-itools-lvm'].map((f) => f.id)).toEqual(['base-bios', 'grub-bios', 'initramfs-tools', 'lvm-root:labvg/root']);
    expect(lvm.features).toEqual(IMAGES['grub-itools-lvm'].map((f) => f.id));
    expect(lvm.packages).toEqual([...base.packages, 'lvm2']);
    expect(lvm.setup).toContain('grub-install --target=i386-pc /dev/vdb');
    expect(lvm.setup).not.toContain('grub-install --target=i386-pc /dev/vda');
    expect(lvm.setup).toContain('update-initramfs -u -k all');
    expect(lvm.lvm).toEqual({ vg: 'labvg', lv: 'root' });
    expect(imageCacheInput('grub-itools-lvm').key).not.toBe(imageCacheInput('grub-itools').key);
  });
});
