// The vfiokit.passthrough collection under a real ansible-playbook: built into
// its tarball, installed, and played over an inventory of fixture roots
// (Debian GRUB, Fedora BLS, Arch systemd-boot, plus a host without the GPU and
// a root that --root ): check mode → apply → again (no change) →
// status → state: absent, after which every tree is byte-identical to the
// start (vfiokit's own journal under /var/lib/vfiokit aside). The
// regeneration commands are fakes (VFIOKIT_FAKE_BIN).
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { archGrubBooster, archSdboot, debianGrub, fedoraBls } from '../helpers/distros.js';

const REPO = path.resolve(__dirname, '../..');
const have = spawnSync('ansible-playbook', ['--version']).status === 0;
if (!have && process.env.CI) throw new Error('ansible-playbook is missing: install ansible-core (.ci/run does)');
if (!have) console.warn('skipping the Ansible tests: ansible-playbook is not installed (apt-get install ansible-core)');

const tmp: string[] = [];
afterAll(() => tmp.forEach((t) => fs.rmSync(t, { recursive: true, force: true })));
const mkd = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  tmp.push(d);
  return d;
};

/** Every file, link and directory under root (mode, bytes, link target), vfiokit's state directory (and the parents made for it) aside. */
function treeOf(root: string): Map<string, string> {
  const m = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      const rel = path.relative(root, p);
      if (rel === 'var/lib/vfiokit') continue;
      const st = fs.lstatSync(p);
      if (e.isDirectory() && (rel === 'var' || rel === 'var/lib')) {
        walk(p);
        continue;
      }
      if (e.isSymbolicLink()) m.set(rel, `link ${fs.readlinkSync(p)}`);
      else if (e.isDirectory()) {
        m.set(rel, `dir ${st.mode.toString(8)}`);
        walk(p);
      } else m.set(rel, `file ${st.mode.toString(8)} ${fs.readFileSync(p).toString('base64')}`);
    }
  };
  walk(root);
  return m;
}

interface HostResult {
  changed?: boolean;
  failed?: boolean;
  skipped?: boolean;
  msg?: string;
  error_code?: string;
  fix?: string;
  reboot_required?: boolean;
  diff?: { before: string; after: string; before_header: string; after_header: string }[];
  in_effect?: boolean;
  [k: string]: unknown;
}

describe.skipIf(!have)('ansible-playbook over fixture roots', () => {
  const roots: Record<string, string> = {};
  let dir: string;
  let calls: string;
  const start = new Map<string, Map<string, string>>();

  beforeAll(() => {
    dir = mkd('vfiokit-ansible-');
    // The collection as users get it: the tarball, installed.
    execFileSync(path.join(REPO, 'scripts/build-ansible-collection.sh'), [path.join(dir, 'dist')], { stdio: 'pipe' });
    const tarball = fs.readdirSync(path.join(dir, 'dist')).find((f) => f.endsWith('.tar.gz'))!;
    execFileSync('ansible-galaxy', ['collection', 'install', path.join(dir, 'dist', tarball), '-p', path.join(dir, 'collections')], { stdio: 'pipe' });
    // Fake regeneration commands: they only log.
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    calls = path.join(dir, 'calls.log');
    for (const t of ['update-initramfs', 'update-grub', 'grub-mkconfig', 'grub2-mkconfig', 'dracut', 'mkinitcpio', 'bootctl', 'kernel-install', 'grubby', 'modprobe'])
      fs.writeFileSync(path.join(bin, t), `#!/bin/sh\necho "$(basename "$0") $*" >> ${calls}\n`, { mode: 0o755 });
    roots.debian = buildFakeHost(debianGrub);
    roots.fedora = buildFakeHost(fedoraBls);
    roots.arch = buildFakeHost(archSdboot);
    roots.nogpu = buildFakeHost(archGrubBooster);
    roots.broken = mkd('vfiokit-notroot-');
    fs.mkdirSync(path.join(roots.broken, 'etc'));
    tmp.push(roots.debian, roots.fedora, roots.arch, roots.nogpu);
    for (const [h, r] of Object.entries(roots)) start.set(h, treeOf(r));
    fs.writeFileSync(
      path.join(dir, 'inventory.ini'),
      ['[gpu_hosts]', ...Object.entries(roots).map(([h, r]) => `${h} vfiokit_root=${r}`), '', '[gpu_hosts:vars]', 'ansible_connection=local', `ansible_python_interpreter=${execFileSync('sh', ['-c', 'command -v python3']).toString().trim()}`, ''].join('\n'),
    );
    const common = `    root: "{{ vfiokit_root }}"\n    executable: "node ${path.join(REPO, 'bin/vfiokit.js')}"\n`;
    fs.writeFileSync(
      path.join(dir, 'play.yml'),
      `- hosts: gpu_hosts\n  gather_facts: false\n  environment:\n    VFIOKIT_FAKE_BIN: ${bin}\n  tasks:\n` +
        `    - name: passthrough\n      vfiokit.passthrough.device:\n        state: "{{ want }}"\n        mode: "{{ mode | default('boot') }}"\n        devices:\n          - vendor_device: "10de:1f08"\n            subsystem: "1458:3fc2"\n${common.replace(/^ {4}/gm, '        ')}      register: vfio\n` +
        `    - name: status\n      vfiokit.passthrough.status:\n${common.replace(/^ {4}/gm, '        ')}      when: want == 'present'\n`,
    );
  });

  /** One ansible-playbook run, asynchronously (a synchronous wait of this length starves vitest's worker RPC on a loaded machine). */
  async function play(want: 'present' | 'absent', extra: string[] = []): Promise<{ tasks: Record<string, Record<string, HostResult>>; stats: Record<string, { failures: number; ok: number; changed: number }>; code: number }> {
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile(
        'ansible-playbook',
        ['-i', path.join(dir, 'inventory.ini'), path.join(dir, 'play.yml'), '-e', `want=${want}`, ...extra],
        {
          env: { ...process.env, ANSIBLE_COLLECTIONS_PATH: path.join(dir, 'collections'), ANSIBLE_STDOUT_CALLBACK: 'json', ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'), ANSIBLE_HOME: path.join(dir, 'home'), ANSIBLE_NOCOLOR: '1', ANSIBLE_FORKS: '2' },
          encoding: 'utf8',
          timeout: 240_000,
          maxBuffer: 64 << 20,
        },
        (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      ),
    );
    let out;
    try {
      out = JSON.parse(r.stdout);
    } catch {
      throw new Error(`ansible-playbook printed no JSON (exit ${r.status}): ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
    }
    const tasks: Record<string, Record<string, HostResult>> = {};
    for (const t of out.plays[0].tasks) tasks[t.task.name] = t.hosts;
    return { tasks, stats: out.stats, code: r.status ?? -1 };
  }

  const good = ['debian', 'fedora', 'arch'];

  it('check mode → apply → again → absent; failing hosts report why and do not stop the others', async () => {
    // 1. Check mode with diffs: the plan only.
    const check = await play('present', ['--check', '--diff']);
    for (const h of good) {
      const r = check.tasks.passthrough[h];
      expect(r.failed, `${h}: ${r.msg}`).toBeFalsy();
      expect(r.changed).toBe(true);
      expect(r.reboot_required).toBe(true);
      expect(r.diff!.length).toBeGreaterThan(0);
      expect(r.diff!.some((d) => d.after_header === '/etc/modprobe.d/vfiokit.conf' && d.after.includes('softdep'))).toBe(true);
      expect(treeOf(roots[h])).toEqual(start.get(h));
    }
    expect(fs.existsSync(calls)).toBe(false);
    // Nothing silent: the companion functions of the GPU's group are listed.
    expect(check.tasks.passthrough.debian.companions).toEqual(['0000:01:00.1', '0000:01:00.2', '0000:01:00.3']);
    expect((check.tasks.passthrough.debian.devices as { vendor_device: string }[]).map((d) => d.vendor_device)).toEqual(['10de:1f08', '10de:10f9', '10de:1ad8', '10de:1ad9']);
    // The host without the GPU and the root that is not Linux fail, each with its reason.
    expect(check.tasks.passthrough.nogpu).toMatchObject({ failed: true, error_code: 'E_UNKNOWN_DEVICE' });
    expect(check.tasks.passthrough.nogpu.msg).toContain('no PCI device on this host matches 10de:1f08 subsystem 1458:3fc2');
    expect(check.tasks.passthrough.broken).toMatchObject({ failed: true, error_code: 'E_ROOT_INVALID' });
    expect(check.tasks.passthrough.broken.msg).toContain('--root ');
    expect(check.tasks.passthrough.broken.fix).toContain('/proc');
    expect(check.stats.debian.failures).toBe(0);
    expect(check.code).not.toBe(0);

    // 2. For real.
    const real = await play('present');
    for (const h of good) {
      const r = real.tasks.passthrough[h];
      expect(r.failed, `${h}: ${r.msg}`).toBeFalsy();
      expect(r).toMatchObject({ changed: true, reboot_required: true });
      expect(typeof r.txid).toBe('string');
      expect(treeOf(roots[h])).not.toEqual(start.get(h));
      // Not rebooted yet: status reports "not in effect" without failing.
      expect(real.tasks.status[h]).toMatchObject({ changed: false, in_effect: false });
    }
    expect(fs.readFileSync(calls, 'utf8')).toMatch(/update-initramfs -u -k all/);
    expect(fs.readFileSync(calls, 'utf8')).toMatch(/mkinitcpio -P/);
    expect(fs.readFileSync(path.join(roots.debian, 'etc/default/grub.d/99-vfiokit.cfg'), 'utf8')).toContain('vfio-pci.ids=10de:1f08,10de:10f9,10de:1ad8,10de:1ad9');

    // 3. Again: nothing to do.
    const again = await play('present');
    for (const h of good) expect(again.tasks.passthrough[h]).toMatchObject({ changed: false, reboot_required: false });

    // 4. Absent, in check mode first (nothing changes), then for real: trees as at the start.
    const before = new Map(good.map((h) => [h, treeOf(roots[h])]));
    const absentCheck = await play('absent', ['--check', '--diff']);
    for (const h of good) {
      expect(absentCheck.tasks.passthrough[h]).toMatchObject({ changed: true, reboot_required: true });
      expect(treeOf(roots[h])).toEqual(before.get(h));
    }
    // --diff: each file from its bytes now to what undo puts back, which is the tree at the start.
    const undoDiff = absentCheck.tasks.passthrough.debian.diff!;
    expect(undoDiff.map((d) => d.after_header).sort()).toEqual(['/dev/null', '/dev/null', '/etc/initramfs-tools/modules']);
    const startFile = (h: string, p: string) => Buffer.from(start.get(h)!.get(p.slice(1))!.split(' ')[2]!, 'base64').toString('utf8');
    const nowFile = (h: string, p: string) => fs.readFileSync(path.join(roots[h], p), 'utf8');
    for (const d of undoDiff) {
      const p = d.after_header === '/dev/null' ? d.before_header : d.after_header;
      expect(d.before).toBe(nowFile('debian', p));
      expect(d.after).toBe(d.after_header === '/dev/null' ? '' : startFile('debian', p));
      if (d.after_header === '/dev/null') expect(start.get('debian')!.has(p.slice(1))).toBe(false);
    }
    expect(undoDiff.find((d) => d.before_header === '/etc/modprobe.d/vfiokit.conf')?.after_header).toBe('/dev/null');
    const absent = await play('absent');
    for (const h of good) {
      expect(absent.tasks.passthrough[h], String(absent.tasks.passthrough[h].msg)).toMatchObject({ changed: true, reboot_required: true });
      expect(treeOf(roots[h])).toEqual(start.get(h));
    }
    const absentAgain = await play('absent');
    for (const h of good) expect(absentAgain.tasks.passthrough[h]).toMatchObject({ changed: false });
    expect(absentAgain.tasks.passthrough.broken).toMatchObject({ failed: true, error_code: 'E_ROOT_INVALID' });

    // 5. mode: runtime over trees with no kernel behind them: check mode plans the bind (drivers before → vfio-pci);
    //    for real it is refused with vfiokit's reason, and nothing changes.
    const rtCheck = await play('present', ['--check', '--diff', '-e', 'mode=runtime']);
    const rd = rtCheck.tasks.passthrough.debian;
    expect(rd, String(rd.msg)).toMatchObject({ changed: true, reboot_required: false, mode: 'runtime', companions: ['0000:01:00.1', '0000:01:00.2', '0000:01:00.3'] });
    expect((rd.diff as unknown as { before: string; after: string }).before).toContain('0000:01:00.0 nvidia\n');
    expect((rd.diff as unknown as { before: string; after: string }).after).toContain('0000:01:00.3 vfio-pci\n');
    const rtReal = await play('present', ['-e', 'mode=runtime']);
    for (const h of good) {
      expect(rtReal.tasks.passthrough[h]).toMatchObject({ failed: true, error_code: 'E_NOT_LIVE' });
      expect(rtReal.tasks.passthrough[h].fix).toContain('without --root');
      expect(treeOf(roots[h])).toEqual(start.get(h));
    }
  }, 600_000);

  it('the install role is part of the built collection and passes ansible-playbook --syntax-check', () => {
    expect(fs.existsSync(path.join(dir, 'collections/ansible_collections/vfiokit/passthrough/roles/install/tasks/main.yml'))).toBe(true);
    fs.writeFileSync(path.join(dir, 'install.yml'), '- hosts: gpu_hosts\n  roles:\n    - vfiokit.passthrough.install\n');
    const r = spawnSync('ansible-playbook', ['--syntax-check', '-i', path.join(dir, 'inventory.ini'), path.join(dir, 'install.yml')], {
      env: { ...process.env, ANSIBLE_COLLECTIONS_PATH: path.join(dir, 'collections'), ANSIBLE_HOME: path.join(dir, 'home') },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    // The check can fail: a role the collection does not have is refused.
    fs.writeFileSync(path.join(dir, 'missing.yml'), '- hosts: gpu_hosts\n  roles:\n    - vfiokit.passthrough.nosuchrole\n');
    const bad = spawnSync('ansible-playbook', ['--syntax-check', '-i', path.join(dir, 'inventory.ini'), path.join(dir, 'missing.yml')], {
      env: { ...process.env, ANSIBLE_COLLECTIONS_PATH: path.join(dir, 'collections'), ANSIBLE_HOME: path.join(dir, 'home') },
      encoding: 'utf8',
    });
    expect(bad.status).not.toBe(0);
  });
});
