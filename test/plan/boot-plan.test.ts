import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyPlan, recordingRunner, undoLatest } from '../../src/apply/index.js';
import { inspect } from '../../src/host/inspect.js';
import { assembleBootPlan, type BootIntent } from '../../src/plan/boot-plan.js';
import { renderPlan } from '../../src/render/plan.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { DISTRO_HOSTS, debianGrub } from '../helpers/distros.js';
import { expectGolden, stableRoot } from '../helpers/golden.js';
import { FIXTURE_HOSTS } from '../helpers/hosts.js';
import { runCli } from '../helpers/run-cli.js';

const roots: string[] = [];
// Asynchronous removal keeps the worker's event loop free to answer vitest (a long synchronous
// rmSync of every tree times out its RPC on a loaded machine).
afterAll(async () => {
  if (process.env.KEEP_TMP !== '1') await Promise.all(roots.map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
const build = (h: FakeHost) => {
  const r = buildFakeHost(h);
  roots.push(r);
  return r;
};

function intentOf(select: string[]): BootIntent {
  const i: BootIntent = { selectors: [], with: [] };
  for (let k = 0; k < select.length; k++) {
    if (select[k] === '--with') i.with!.push(select[++k]);
    else if (select[k] === '--allow-boot-vga') i.allowBootVga = true;
    else i.selectors.push(select[k]);
  }
  return i;
}

/** Every file under the root with content hash, mode and symlink target (state vfiokit may touch). */
function treeState(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      if (r.startsWith('sys') || r.startsWith('proc')) continue;
      const st = fs.lstatSync(path.join(root, r));
      if (e.isSymbolicLink()) out[r] = `link ${fs.readlinkSync(path.join(root, r))}`;
      else if (e.isDirectory()) walk(r);
      else out[r] = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${crypto.createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex')}`;
    }
  };
  walk('.');
  return out;
}

describe.each(Object.keys(DISTRO_HOSTS))('boot-time passthrough on %s', (name) => {
  const { host, select } = DISTRO_HOSTS[name];

  it('plan output matches its golden', async () => {
    const root = build(host);
    const r = await runCli(['plan', ...select, '--root', root]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expectGolden(`plan/${name}.txt`, stableRoot(r.stdout, root));
  });

  it('apply records the expected commands; a second plan is empty; undo restores every byte', async () => {
    const root = build(host);
    const before = treeState(root);
    const plan = assembleBootPlan(inspect(root), intentOf(select));
    expect(plan.problems).toEqual([]);
    expect(plan.steps.length).toBeGreaterThan(0);
    const runner = recordingRunner();
    const res = await applyPlan(plan, { root, runner });
    expect(res.txid).toBeTruthy();
    expectGolden(`plan/${name}.commands.txt`, runner.calls.map((c) => c.argv.join(' ')).join('\n') || '(no commands)');
    // Idempotence: the host is configured now, so the same request plans nothing.
    const again = assembleBootPlan(inspect(root), intentOf(select));
    expect(again.problems).toEqual([]);
    expect(again.steps).toEqual([]);
    expect(renderPlan(again)).toContain('Nothing to do');
    const undoRunner = recordingRunner();
    await undoLatest({ root, runner: undoRunner });
    const after = treeState(root);
    // The journal under /var/lib/vfiokit is the only new state.
    for (const k of Object.keys(after)) if (k.startsWith('var/lib/vfiokit')) delete after[k];
    expect(after).toEqual(before);
    expect(undoRunner.calls.map((c) => c.argv)).toEqual(runner.calls.map((c) => c.argv));
  });
});

describe('fault injection', () => {
  it.each(['debian-grub', 'fedora-bls', 'debian-twin', 'arch-sdboot'])('%s: a failure at every step k leaves the tree byte-identical', async (name) => {
    const { host, select } = DISTRO_HOSTS[name];
    const probeRoot = build(host);
    const n = assembleBootPlan(inspect(probeRoot), intentOf(select)).steps.length;
    expect(n).toBeGreaterThan(2);
    for (let k = 0; k < n; k++) {
      const root = build(host);
      const before = treeState(root);
      const plan = assembleBootPlan(inspect(root), intentOf(select));
      const isCmd = plan.steps[k].kind === 'run-command';
      const cmdIndex = plan.steps.slice(0, k + 1).filter((s) => s.kind === 'run-command').length - 1;
      // Fail either a command (the real failure mode) or the file step itself.
      const runner = recordingRunner(isCmd ? { failAt: cmdIndex + 1, failStderr: 'E: mkinitramfs failure cpio 141' } : {});
      const err = await applyPlan(plan, { root, runner, ...(isCmd ? {} : { failAt: k }) }).then(
        () => null,
        (e) => e,
      );
      expect(err?.exitCode, `step ${k}`).toBe(4);
      expect(err.message).toContain(`step ${k + 1}`);
      const after = treeState(root);
      for (const key of Object.keys(after)) if (key.startsWith('var/lib/vfiokit')) delete after[key];
      expect(after, `tree after failing step ${k}`).toEqual(before);
    }
  });
});

describe('refusals: a clear error and nothing written', () => {
  const refuse = async (host: FakeHost, args: string[], code: number, ...expected: RegExp[]) => {
    const root = build(host);
    const before = treeState(root);
    const r = await runCli(['apply', ...args, '--yes', '--root', root]);
    expect(r.code).toBe(code);
    for (const e of expected) expect(r.stderr).toMatch(e);
    expect(treeState(root)).toEqual(before);
    return r;
  };
  it('IOMMU not active: the error gives the fix', async () => {
    await refuse({ ...debianGrub, ...FIXTURE_HOSTS['iommu-off'], files: debianGrub.files, execs: debianGrub.execs, blocks: undefined, rootMount: undefined, nets: undefined, defaultRoutes: undefined }, ['01:00.0'], 3, /IOMMU is not active/, /intel_iommu=on/);
  });
  it('a group shared with foreign endpoints lists them and why; --with takes them', async () => {
    const host: FakeHost = { ...DISTRO_HOSTS['arch-grub-booster'].host };
    const r = await refuse(host, ['02:00.0', '--allow-boot-vga'], 3, /group 1 of 02:00\.0 also holds 01:00\.0/, /--with 01:00\.0/);
    expect(r.stderr).toMatch(/root port 00:01\.\d/);
  });
  it('the boot VGA device needs --allow-boot-vga', async () => {
    await refuse(DISTRO_HOSTS['debian-twin'].host, ['0a:00.0'], 3, /boot display/, /--allow-boot-vga/);
  });
  it('unknown and malformed selectors', async () => {
    await refuse(debianGrub, ['05:00.0'], 3, /no PCI device matches '05:00\.0'/);
    await refuse(debianGrub, ['gpu0'], 2, /'gpu0' is not a device selector/);
    await refuse(debianGrub, ['01:00.0', '--with', 'x'], 2, /--with 'x' is not a PCI address/);
  });
  it('a bridge cannot be selected', async () => {
    await refuse(debianGrub, ['00:01.0'], 3, /00:01\.0 is a PCI bridge/);
  });
  it('a config file the parser cannot understand names file:line', async () => {
    const host: FakeHost = {
      ...DISTRO_HOSTS['arch-grub-booster'].host,
      pci: FIXTURE_HOSTS['desktop-nvidia'].pci,
      files: { ...DISTRO_HOSTS['arch-grub-booster'].host.files, '/etc/default/grub': 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="$(cat /etc/extra-args) quiet"\n' },
    };
    await refuse(host, ['01:00.0'], 3, /\/etc\/default\/grub:2/);
  });
  it('the root filesystem storage and the default-route NIC need explicit flags', async () => {
    const host: FakeHost = {
      ...debianGrub,
      blocks: [{ name: 'nvme0n1', dev: '259:0', pci: '02:00.0', parts: { nvme0n1p1: '259:1', nvme0n1p2: '259:2' } }],
      rootMount: { source: '/dev/nvme0n1p2' },
      nets: [{ name: 'enp0s31f6', pci: '00:1f.6' }],
      defaultRoutes: [{ iface: 'enp0s31f6' }],
    };
    await refuse(host, ['02:00.0'], 3, /holds the root filesystem's disk/, /--allow-root-storage/);
    await refuse(host, ['00:1f.6', '--with', '00:1f.0', '--with', '00:1f.3', '--with', '00:1f.4'], 3, /default route/, /--allow-default-nic/);
  });
  it('without a terminal, apply requires --yes', async () => {
    const root = build(debianGrub);
    const before = treeState(root);
    const r = await runCli(['apply', '01:00.0', '--root', root]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--yes');
    expect(treeState(root)).toEqual(before);
  });
});

describe('strategies and kernel arguments', () => {
  it('twin GPUs bind by address: no vfio-pci.ids, an install hook listing only the chosen card', () => {
    const root = build(DISTRO_HOSTS['debian-twin'].host);
    const plan = assembleBootPlan(inspect(root), { selectors: ['0b:00.0'] });
    const text = JSON.stringify(plan.steps);
    expect(text).not.toContain('vfio-pci.ids');
    const script = plan.steps.find((s) => s.kind === 'write-file' && s.path.endsWith('vfio-pci-override.sh'));
    expect(script && script.kind === 'write-file' && script.after.content).toContain('0000:0b:00.0 0000:0b:00.1');
    expect(script && script.kind === 'write-file' && script.after.content).not.toContain('0000:0a:00');
  });
  it('AMD hosts never get amd_iommu=on; Intel hosts get intel_iommu=on', () => {
    const amd = assembleBootPlan(inspect(build(DISTRO_HOSTS['arch-grub-booster'].host)), intentOf(DISTRO_HOSTS['arch-grub-booster'].select));
    expect(JSON.stringify(amd.intent)).not.toContain('amd_iommu=on');
    expect(amd.warnings.join('\n')).toContain('amd_iommu=on, which is not a kernel option');
    const intel = assembleBootPlan(inspect(build(debianGrub)), { selectors: ['01:00.0'] });
    expect((intel.intent as any).kernelArgs).toEqual(['intel_iommu=on', 'iommu=pt', 'vfio-pci.ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9']);
  });
  it('the recovery entries stay without passthrough', () => {
    const fedora = assembleBootPlan(inspect(build(DISTRO_HOSTS['fedora-bls'].host)), { selectors: ['01:00.0'] });
    const paths = fedora.steps.filter((s) => s.kind === 'write-file').map((s) => (s as any).path);
    expect(paths.some((p: string) => p.includes('rescue'))).toBe(false);
    expect(paths.filter((p: string) => p.startsWith('/boot/loader/entries/')).length).toBe(2);
    const refind = assembleBootPlan(inspect(build(DISTRO_HOSTS['refind-arch'].host)), { selectors: ['01:00.0'] });
    const conf = refind.steps.find((s) => s.kind === 'write-file' && s.path === '/boot/refind_linux.conf') as any;
    expect(conf.after.content).toMatch(/"Boot to single-user mode"\s+"root=UUID=\S+ rw single"\n/);
  });
  it('built-in vfio-pci: kernel command line only', () => {
    const plan = assembleBootPlan(inspect(build(DISTRO_HOSTS['ubuntu-builtin'].host)), { selectors: ['01:00.0'] });
    const paths = plan.steps.map((s) => (s.kind === 'run-command' ? s.argv[0] : s.path));
    expect(paths).toEqual(['/etc/default/grub.d/99-vfiokit.cfg', 'update-grub']);
  });
  it('unknown bootloader: arguments printed, IDs go to modprobe.d, the bootloader is untouched', () => {
    const plan = assembleBootPlan(inspect(build(DISTRO_HOSTS['unknown-loader'].host)), { selectors: ['01:00.0'] });
    expect(plan.warnings.join('\n')).toMatch(/add these arguments to your normal boot entry yourself.*intel_iommu=on iommu=pt vfio-pci\.ids=/);
    const mp = plan.steps.find((s) => s.kind === 'write-file' && s.path === '/etc/modprobe.d/vfiokit.conf') as any;
    expect(mp.after.content).toContain('options vfio-pci ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9');
  });
});

describe('softdeps name modules, not drivers', () => {
  it('a GPU on bochs-drm gets `softdep bochs pre: vfio-pci` (regression: the lab twin-GPU scenario)', () => {
    const host: FakeHost = {
      ...debianGrub,
      pci: debianGrub.pci.map((d) => (d.addr === '01:00.0' ? { ...d, driver: 'bochs-drm' } : d)),
      hostModules: ['snd_hda_intel'],
    };
    const plan = assembleBootPlan(inspect(build(host)), { selectors: ['01:00.0'] });
    const mp = plan.steps.find((s) => s.kind === 'write-file' && s.path === '/etc/modprobe.d/vfiokit.conf') as any;
    expect(mp.after.content).toContain('softdep bochs pre: vfio-pci');
    expect(mp.after.content).not.toContain('bochs_drm');
    expect(mp.after.content).toContain('softdep xhci_pci pre: vfio-pci');
  });
});

describe('regenerate commands that rewrite files vfiokit wrote', () => {
  it('undo is not refused when the initramfs hook regenerated a loader entry (regression: lab 2.uefi-sdboot)', async () => {
    const { host, select } = DISTRO_HOSTS['arch-sdboot'];
    const root = build(host);
    const before = treeState(root);
    const entry = path.join(root, 'boot/loader/entries/arch.conf');
    const plan = assembleBootPlan(inspect(root), intentOf(select));
    // Like Debian's post-update hook calling kernel-install: the entry is rewritten from scratch.
    const runner = recordingRunner({
      onCall: (argv) => {
        if (argv[0] === 'mkinitcpio') fs.writeFileSync(entry, fs.readFileSync(entry, 'utf8').replace(/^options\s+/m, 'options  ') + '# regenerated\n');
      },
    });
    await applyPlan(plan, { root, runner });
    expect(fs.readFileSync(entry, 'utf8')).toContain('# regenerated');
    const undo = await undoLatest({ root, runner: recordingRunner() });
    expect(undo.restored).toContain('/boot/loader/entries/arch.conf');
    const after = treeState(root);
    for (const k of Object.keys(after)) if (k.startsWith('var/lib/vfiokit')) delete after[k];
    expect(after).toEqual(before);
  });
});
