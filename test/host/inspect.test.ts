import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspect } from '../../src/host/inspect.js';
import { analyzeGroups } from '../../src/analysis/groups.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { expectGolden, stableRoot } from '../helpers/golden.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';
import { runCli } from '../helpers/run-cli.js';

const roots: string[] = [];
afterAll(async () => {
  if (process.env.KEEP_TMP !== '1') await Promise.all([...roots].map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
function build(name: string): string {
  const r = buildFakeHost(FIXTURE_HOSTS[name]);
  roots.push(r);
  return r;
}

describe.each(Object.keys(FIXTURE_HOSTS))('fixture host %s', (name) => {
  it('inspect --json matches its golden and the contract fields', async () => {
    const root = build(name);
    const r = await runCli(['inspect', '--json', '--root', root]);
    expect(r.code).toBe(0);
    const snap = JSON.parse(r.stdout);
    expect(typeof snap.iommu.active).toBe('boolean');
    for (const d of snap.pci) {
      expect(d.address).toMatch(/^[0-9a-f]{4,}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/);
      expect(d.vendor).toMatch(/^[0-9a-f]{4}$/);
      expect(d.device).toMatch(/^[0-9a-f]{4}$/);
      expect(d.class).toMatch(/^[0-9a-f]{6}$/);
      expect(typeof d.bootVga).toBe('boolean');
    }
    for (const g of snap.iommu.groups) expect(typeof g.id).toBe('number');
    expectGolden(`inspect/${name}.json`, stableRoot(r.stdout, root));
    const text = await runCli(['inspect', '--root', root]);
    expect(text.code).toBe(0);
    expectGolden(`inspect/${name}.txt`, stableRoot(text.stdout, root));
  });

  it('groups text and JSON match their goldens; the prediction equals the kernel groups', async () => {
    const root = build(name);
    const text = await runCli(['groups', '--root', root]);
    expect(text.code).toBe(0);
    expectGolden(`groups/${name}.txt`, stableRoot(text.stdout, root));
    const js = await runCli(['groups', '--json', '--root', root]);
    const report = JSON.parse(js.stdout);
    for (const g of report.groups) {
      expect(typeof g.id).toBe('number');
      expect(Array.isArray(g.devices)).toBe(true);
      expect(typeof g.explanation).toBe('string');
    }
    if (report.iommuActive) expect(report.prediction).toMatchObject({ available: true, matchesKernel: true, differences: [] });
    else expect(report.prediction.available).toBe(false);
    expectGolden(`groups/${name}.json`, stableRoot(js.stdout, root));
  });

  it('check output matches its golden', async () => {
    const root = build(name);
    const r = await runCli(['check', '--root', root]);
    expect([0, 3]).toContain(r.code);
    expectGolden(`check/${name}.txt`, stableRoot(r.stdout, root) + `exit ${r.code}\n`);
  });
});

describe('group explanations', () => {
  it('desktop: the NVIDIA card and its four functions are one unit with the PEG root port', () => {
    const s = inspect(build('desktop-nvidia'));
    const g = analyzeGroups(s).groups.find((x) => x.devices.includes('0000:01:00.0'))!;
    expect(g.verdict).toBe('gpu-functions-only');
    expect(g.explanation).toMatch(/^GPU and its own functions only \(with 00:01\.0: bridges stay/);
    expect(g.devices).toEqual(['0000:00:01.0', '0000:01:00.0', '0000:01:00.1', '0000:01:00.2', '0000:01:00.3']);
  });
  it('AMD without ACS: the GPU shares with the NVMe and the verdict names the root ports', () => {
    const s = inspect(build('amd-no-acs'));
    const g = analyzeGroups(s).groups.find((x) => x.devices.includes('0000:02:00.0'))!;
    expect(g.verdict).toBe('shares');
    expect(g.sharesWith).toEqual(['0000:01:00.0']);
    expect(g.explanation).toContain('shares with 01:00.0 because');
    expect(g.explanation).toMatch(/root port 00:01\.1 does not enable ACS SV\/RR\/CR\/UF|root port 00:01\.2 has no ACS/);
    expect(g.explanation).toContain('the functions of 00:01 are not isolated from each other');
  });
  it('server: the BMC VGA behind a PCIe-to-PCI bridge is grouped with the bridge only', () => {
    const s = inspect(build('server-switch-sriov'));
    const r = analyzeGroups(s);
    const g = r.groups.find((x) => x.devices.includes('0000:06:00.0'))!;
    expect(g.devices).toEqual(['0000:05:00.0', '0000:06:00.0']);
    expect(g.verdict).toBe('isolated');
    const vf = s.pci.find((d) => d.address === '0000:04:02.1')!;
    expect(vf.physfn).toBe('0000:04:00.0');
    expect(vf.multifunction).toBe(false);
    expect(s.pci.find((d) => d.address === '0000:04:00.0')!.sriov).toEqual({ totalVfs: 64, numVfs: 2, vfs: ['0000:04:02.0', '0000:04:02.1'] });
  });
  it('a PCIe-to-PCI bridge merges everything behind it, and the explanation says so', () => {
    const root = buildFakeHost({
      iommu: 'intel',
      pci: [
        { addr: '00:1c.0', id: '8086:a190', class: 0x060400, pcie: 'root-port', acs: 'full', group: 0 },
        { addr: '01:00.0', id: '1b21:1080', class: 0x060400, pcie: 'pcie-to-pci-bridge', parent: '00:1c.0', group: 1 },
        { addr: '02:00.0', id: '10ec:8139', class: 0x020000, pcie: null, parent: '01:00.0', group: 1 },
        { addr: '02:01.0', id: '1102:0002', class: 0x040100, pcie: null, parent: '01:00.0', group: 1 },
      ],
    });
    roots.push(root);
    const r = analyzeGroups(inspect(root));
    expect(r.prediction.matchesKernel).toBe(true);
    const g = r.groups.find((x) => x.id === 1)!;
    expect(g.verdict).toBe('shares');
    expect(g.explanation).toContain('devices behind PCIe-to-PCI bridge 01:00.0 share its requester ID');
  });
  it('laptop: the 3D-controller dGPU is listed as a GPU (class 0302 has no boot_vga)', async () => {
    const root = build('laptop-3d-controller');
    const r = await runCli(['groups', '--gpu', '--root', root]);
    expect(r.stdout).toContain('01:00.0 [0302]');
    expect(r.stdout).toContain('Group 1: GPU and its own functions only');
    expect(r.stdout).not.toContain('02:00.0 [0108]');
  });
  it('a prediction that disagrees with the kernel is reported, not hidden', () => {
    const root = buildFakeHost({
      iommu: 'intel',
      pci: [
        // Root port without ACS, yet the kernel isolated the two devices (e.g. an ACS override).
        { addr: '00:1c.0', id: '8086:1234', class: 0x060400, pcie: 'root-port', acs: null, group: 0 },
        { addr: '01:00.0', id: '10de:2204', class: 0x030000, parent: '00:1c.0', group: 1 },
      ],
    });
    roots.push(root);
    const p = analyzeGroups(inspect(root)).prediction;
    expect(p.matchesKernel).toBe(false);
    expect(p.reason).toMatch(/quirk|override/);
    expect(p.differences.length).toBeGreaterThan(0);
  });
});

describe('check', () => {
  it('IOMMU off on Intel: exit 3 and the fix is intel_iommu=on', async () => {
    const r = await runCli(['check', '--root', build('iommu-off')]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/\[FAIL\] IOMMU: not active/);
    expect(r.stdout).toContain('add intel_iommu=on iommu=pt');
  });
  it('AMD: never advises amd_iommu=on, and flags it when present', async () => {
    const r = await runCli(['check', '--json', '--root', build('amd-no-acs')]);
    const report = JSON.parse(r.stdout);
    const args = report.lines.find((l: any) => l.id === 'iommu-args');
    expect(args.status).toBe('warn');
    expect(args.fix).toBe('remove amd_iommu=on from the kernel command line');
    const off = buildFakeHost({ ...FIXTURE_HOSTS['amd-no-acs'], iommu: null, pci: FIXTURE_HOSTS['amd-no-acs'].pci.map(({ group: _g, ...d }) => d) });
    roots.push(off);
    const r2 = await runCli(['check', '--json', '--root', off]);
    expect(r2.code).toBe(3);
    const iommu = JSON.parse(r2.stdout).lines.find((l: any) => l.id === 'iommu');
    expect(iommu.fix).toContain('AMD-Vi');
    expect(iommu.fix).toContain('drop amd_iommu=on');
    expect(iommu.fix).not.toMatch(/add amd_iommu=on/);
  });
  it('a GPU sharing its group fails the check with the explanation', async () => {
    const r = await runCli(['check', '--json', '--root', build('amd-no-acs')]);
    expect(r.code).toBe(3);
    const gpu = JSON.parse(r.stdout).lines.find((l: any) => l.id === 'gpu:0000:02:00.0');
    expect(gpu.status).toBe('fail');
    expect(gpu.detail).toContain('shares with 01:00.0');
  });
  it('a ready desktop exits 0', async () => {
    const r = await runCli(['check', '--root', build('desktop-nvidia')]);
    expect(r.stdout).toContain('Ready for passthrough.');
    expect(r.code).toBe(0);
  });
});

describe('broken input gives a report, never a stack trace', () => {
  const base = FIXTURE_HOSTS['desktop-nvidia'];
  it('missing /sys/kernel/iommu_groups', async () => {
    const root = build('desktop-nvidia');
    fs.rmSync(path.join(root, 'sys/kernel/iommu_groups'), { recursive: true });
    const r = await runCli(['inspect', '--json', '--root', root]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.iommu.active).toBe(false);
    expect(s.warnings.map((w: any) => w.code)).toContain('W_NO_IOMMU_GROUPS');
    // The devices' own iommu_group links still tell their group.
    expect(s.pci.find((d: any) => d.address === '0000:01:00.0').iommuGroup).toBe(1);
    const c = await runCli(['check', '--root', root]);
    expect(c.code).toBe(3);
    expect(c.stderr).toBe('');
    expect(c.stdout).toContain('/sys/kernel/iommu_groups is missing');
  });
  it('unreadable config (non-root): capabilities unknown, prediction unavailable with the reason', async () => {
    const root = buildFakeHost({ ...base, pci: base.pci.map((d) => ({ ...d, config: 'short' as const })) });
    roots.push(root);
    const r = await runCli(['groups', '--json', '--root', root]);
    const g = JSON.parse(r.stdout);
    expect(g.prediction.available).toBe(false);
    expect(g.prediction.reason).toContain('run as root');
    expect(g.warnings.map((w: any) => w.code)).toContain('W_CONFIG_PARTIAL');
    const s = inspect(root);
    expect(s.pci.every((d) => d.caps === null)).toBe(true);
    expect(s.pci.find((d) => d.address === '0000:01:00.0')!.multifunction).toBe(true);
  });
  it('dangling device symlink', async () => {
    const root = build('desktop-nvidia');
    fs.rmSync(path.join(root, 'sys/devices/pci0000:00/0000:00:1b.0/0000:02:00.0'), { recursive: true });
    const r = await runCli(['inspect', '--json', '--root', root]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.pci.map((d: any) => d.address)).not.toContain('0000:02:00.0');
    expect(s.warnings.find((w: any) => w.code === 'W_DANGLING_DEVICE').message).toContain('0000:02:00.0');
  });
  it('garbage in attribute files: ignored with a warning, config space used when present', async () => {
    const root = build('desktop-nvidia');
    const gpu = path.join(root, 'sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0');
    fs.writeFileSync(path.join(gpu, 'numa_node'), 'not-a-number\n');
    fs.writeFileSync(path.join(gpu, 'vendor'), 'garbage\n');
    // A device whose config space is gone: IDs must come from attribute files.
    const nvme = path.join(root, 'sys/devices/pci0000:00/0000:00:1b.0/0000:02:00.0');
    fs.rmSync(path.join(nvme, 'config'));
    fs.writeFileSync(path.join(nvme, 'class'), '\x00\x01\x02');
    const audio = path.join(root, 'sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1');
    fs.rmSync(path.join(audio, 'config'));
    fs.writeFileSync(path.join(audio, 'subsystem_vendor'), '0xZZZZ\n');
    const r = await runCli(['inspect', '--json', '--root', root]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const s = JSON.parse(r.stdout);
    const d = s.pci.find((x: any) => x.address === '0000:01:00.0');
    expect(d.vendor).toBe('10de');
    expect(d.numaNode).toBeNull();
    expect(s.pci.map((x: any) => x.address)).not.toContain('0000:02:00.0');
    const a = s.pci.find((x: any) => x.address === '0000:01:00.1');
    expect(a).toMatchObject({ vendor: '10de', device: '10f9', class: '040300', subsystemVendor: null });
    const msgs = s.warnings.map((w: any) => w.message).join('\n');
    expect(msgs).toContain('class holds');
    expect(msgs).toContain('subsystem_vendor holds "0xZZZZ"');
    expect(s.warnings.find((w: any) => w.code === 'W_DEVICE_UNREADABLE').subject).toBe('0000:02:00.0');
  });
  it('unusual entries in /sys/bus/pci/devices are skipped with a warning', () => {
    const root = build('desktop-nvidia');
    fs.writeFileSync(path.join(root, 'sys/bus/pci/devices/README'), 'x');
    const s = inspect(root);
    expect(s.warnings.find((w) => w.code === 'W_UNUSUAL_ENTRY')?.subject).toBe('README');
  });
  it('drivers come from the drivers\' own directories, or from each device\'s link when those are incomplete', () => {
    const root = build('desktop-nvidia');
    const drivers = (r: string) => Object.fromEntries(inspect(r).pci.map((d) => [d.address, d.driver]));
    const want = drivers(root);
    expect(want['0000:01:00.0']).toBe('nvidia');
    // The kernel's back-link decides: a function missing from its driver's directory reads as unbound.
    fs.rmSync(path.join(root, 'sys/bus/pci/drivers/nvidia/0000:01:00.0'));
    expect(drivers(root)['0000:01:00.0']).toBeNull();
    // A driver directory without its uevent file is a partial capture: the device links are read instead.
    fs.rmSync(path.join(root, 'sys/bus/pci/drivers/nvidia/uevent'));
    expect(drivers(root)).toEqual(want);
  });
  it('SR-IOV: full config space without the SR-IOV capability rules a PF out; a 256-byte config does not', () => {
    const root = build('desktop-nvidia');
    const dev = fs.realpathSync(path.join(root, 'sys/bus/pci/devices/0000:01:00.0'));
    // A stray attribute the kernel would never create without the capability.
    fs.writeFileSync(path.join(dev, 'sriov_totalvfs'), '8\n');
    fs.writeFileSync(path.join(dev, 'sriov_numvfs'), '0\n');
    expect(inspect(root).pci.find((d) => d.address === '0000:01:00.0')!.sriov).toBeNull();
    // Without the extended config space (256 bytes), the attribute is what tells.
    fs.writeFileSync(path.join(dev, 'config'), fs.readFileSync(path.join(dev, 'config')).subarray(0, 256));
    expect(inspect(root).pci.find((d) => d.address === '0000:01:00.0')!.sriov).toEqual({ totalVfs: 8, numVfs: 0, vfs: [] });
  });
  it('no pci.ids: IDs are printed and the report says why', async () => {
    const root = buildFakeHost({ ...base, pciIds: false });
    roots.push(root);
    const r = await runCli(['groups', '--root', root]);
    expect(r.stdout).toContain('01:00.0 [0300] [10de:1f08]');
    const s = inspect(root);
    expect(s.pci.every((d) => d.deviceName === null)).toBe(true);
    expect(s.warnings.find((w) => w.code === 'W_NO_PCI_IDS')?.message).toContain('install pciutils or hwdata');
  });
  it('a root with /proc and /sys but no PCI bus', async () => {
    const root = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'vfiokit-empty-'));
    roots.push(root);
    fs.mkdirSync(path.join(root, 'proc'));
    fs.mkdirSync(path.join(root, 'sys'));
    const r = await runCli(['check', '--root', root]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('/sys/bus/pci/devices is missing');
  });
});
