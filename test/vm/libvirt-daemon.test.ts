// Every profile × fixture host through a real libvirt with the QEMU driver:
// a libvirtd (or virtqemud) in session mode that this file starts itself,
// with its own HOME/XDG_* directories under a temp dir (qemu:///session,
// never the system daemon). `virsh define` must accept the XML and
// `virsh domxml-to-native qemu-argv` must turn it into a QEMU command line
// against the installed QEMU's capabilities — the check libvirt runs before
// it starts a VM. As root the daemon runs as nobody (with the kvm group), as
// session daemons must not be root.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { runCli } from '../helpers/run-cli.js';
import { GAMING_HOSTS } from './hosts.js';
import { profileCases } from './profile-cases.js';

const which = (cmd: string) => {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};
const daemon = which('virtqemud') ?? which('libvirtd') ?? (fs.existsSync('/usr/sbin/virtqemud') ? '/usr/sbin/virtqemud' : fs.existsSync('/usr/sbin/libvirtd') ? '/usr/sbin/libvirtd' : null);
const missing = [!daemon && 'libvirtd/virtqemud (Debian: libvirt-daemon-system)', !which('virsh') && 'virsh (libvirt-clients)', !which('qemu-system-x86_64') && 'qemu-system-x86_64 (qemu-system-x86)', !which('swtpm') && 'swtpm (swtpm, swtpm-tools)'].filter(Boolean) as string[];
const skip = missing.length > 0 && !process.env.CI;
if (skip) console.warn(`[vm tests] skipping the real libvirt daemon: missing ${missing.join(', ')}`);

const hugetlbfsMounted = /^\S+ \S+ hugetlbfs /m.test(fs.readFileSync('/proc/mounts', 'utf8'));
let dir = '';
let env: NodeJS.ProcessEnv = {};
let prefix: string[] = [];
let child: ChildProcess | null = null;
const roots: Record<string, string> = {};

function virsh(...args: string[]): { status: number | null; out: string } {
  const argv = [...prefix, 'virsh', '-c', 'qemu:///session', ...args];
  const r = spawnSync(argv[0], argv.slice(1), { env, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

describe.skipIf(skip)('real libvirt (session daemon started by this test)', () => {
  beforeAll(async () => {
    if (missing.length) throw new Error(`CI=1 and the real libvirt check cannot run: missing ${missing.join(', ')}`);
    for (const [n, h] of Object.entries(GAMING_HOSTS)) roots[n] = buildFakeHost(h);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-libvirt-'));
    for (const d of ['home', 'run', 'config', 'cache', 'xml']) fs.mkdirSync(path.join(dir, d));
    env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: path.join(dir, 'home'), XDG_RUNTIME_DIR: path.join(dir, 'run'), XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache') };
    if (process.getuid?.() === 0) {
      const kvm = /^kvm:[^:]*:(\d+):/m.exec(fs.readFileSync('/etc/group', 'utf8'));
      prefix = ['setpriv', '--reuid=65534', '--regid=65534', kvm ? `--groups=${kvm[1]}` : '--clear-groups'];
      fs.chmodSync(dir, 0o755);
      spawnSync('chown', ['-R', '65534:65534', dir]);
    }
    const argv = [...prefix, daemon!];
    child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (b) => (log += b));
    const sock = path.join(dir, 'run', 'libvirt', daemon!.endsWith('virtqemud') ? 'virtqemud-sock' : 'libvirt-sock');
    for (let i = 0; i < 200 && !fs.existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
    if (!fs.existsSync(sock)) throw new Error(`${daemon} did not create ${sock}: ${log.slice(-500)}`);
  }, 60_000);
  afterAll(() => {
    if (child?.pid) child.kill('SIGTERM');
    for (const r of Object.values(roots)) fs.rmSync(r, { recursive: true, force: true });
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it.each(profileCases())('$os on $host: define accepts it, domxml-to-native gives QEMU arguments with the vfio-pci functions', async ({ host, os: profile, args }) => {
    const name = `${profile}-${host}`;
    const r = await runCli(['vm', 'xml', name, ...args, '--root', roots[host]]);
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(dir, 'xml', `${name}.xml`);
    fs.writeFileSync(file, r.stdout, { mode: 0o644 });
    const def = virsh('define', file);
    expect(def.out).toMatch(new RegExp(`Domain '${name}' defined`));
    // domxml-to-native turns every <interface> into a tap device, which an
    // unprivileged daemon cannot create: convert the same XML without it.
    // It also checks facts of the machine running the tests, not of the
    // fixture host: a hugetlbfs mount and the NUMA nodes named in <numatune>.
    let nativeXml = r.stdout.replace(/\s*<interface [\s\S]*?<\/interface>/, '');
    if (!hugetlbfsMounted) nativeXml = nativeXml.replace(/\s*<memoryBacking>[\s\S]*?<\/memoryBacking>/, '');
    const nodeset = /<numatune>\s*<memory mode='\w+' nodeset='(\d+)'/.exec(nativeXml);
    if (nodeset && !fs.existsSync(`/sys/devices/system/node/node${nodeset[1]}`)) nativeXml = nativeXml.replace(/\s*<numatune>[\s\S]*?<\/numatune>/, '');
    const native = path.join(dir, 'xml', `${name}.native.xml`);
    fs.writeFileSync(native, nativeXml, { mode: 0o644 });
    const q = virsh('domxml-to-native', 'qemu-argv', native);
    expect(q.status, q.out).toBe(0);
    const hostdevs = [...r.stdout.matchAll(/<source>\s*<address domain='0x(\w+)' bus='0x(\w+)' slot='0x(\w+)' function='0x(\w+)'/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}.${m[4]}`);
    expect(hostdevs.length).toBeGreaterThan(0);
    for (const h of hostdevs) expect(q.out).toContain(`"driver":"vfio-pci","host":"${h}"`);
    if (profile === 'win11') {
      expect(q.out).toContain('"driver":"tpm-crb"');
      expect(q.out).toContain('-tpmdev emulator');
      expect(q.out).toMatch(/smm=on/);
      expect(q.out).toContain('driver=cfi.pflash01,property=secure,value=on');
    } else expect(q.out).not.toContain('tpm-crb');
    if (profile === 'linux') expect(q.out).not.toContain('hv-');
    else expect(q.out).toContain('hv-relaxed');
    if (args.includes('--looking-glass')) expect(q.out).toContain('ivshmem-plain');
    if (args.includes('--input')) expect(q.out).toContain('"qom-type":"input-linux"');
    if (args.includes('--audio')) expect(q.out).toContain('"driver":"pa"');
    const u = virsh('undefine', '--nvram', name);
    expect(u.status, u.out).toBe(0);
  }, 60_000);
});
