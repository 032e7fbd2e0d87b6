// A fake host for CPU isolation: cgroup v2 (or v1 / hybrid) laid out like the
// kernel's (cgroup.controllers, cgroup.subtree_control, cpuset.cpus and
// cpuset.cpus.effective per unit, present only while the parent enables
// cpuset), /proc/irq with smp_affinity_list per IRQ, the default IRQ mask,
// the unbound workqueue cpumask and cpufreq governors; plus
//   - IsolationKernel: a SysfsWriter that reacts to writes as the kernel does
//     (managed IRQs answer EIO; a list without an online CPU EINVAL; masks and
//     lists read back in the kernel's own format; governors only from
//     scaling_available_governors);
//   - a fake `systemctl` (onCall for recordingRunner) that records and applies
//     `set-property --runtime -- UNIT AllowedCPUs=LIST` the way systemd does:
//     the runtime drop-in written, cpuset enabled top-down in
//     cgroup.subtree_control while any unit sets it and disabled when none
//     does, cpuset.cpus / .effective updated — except that, like systemd, a
//     property reset to "not set" leaves the cgroup's old cpuset.cpus while
//     another unit keeps the controller enabled; `daemon-reload` re-reads the
//     drop-ins; `show -p AllowedCPUs --value UNIT` prints the loaded value.
//   - writes to a unit's cpuset.cpus through IsolationKernel, as cgroupfs takes them.
// Written independently of the code under test (its own list/mask formatting).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SysfsWriter } from '../../src/apply/sysfs-writer.js';
import { buildFakeHost, fakeCpuList, type FakeCpu, type FakeHost } from './fake-host.js';

export interface IsolationHostOptions {
  /** Number of CPUs; SMT pairs (n, n + cpus/2) like Intel numbering when smt. */
  cpus?: number;
  smt?: boolean;
  layout?: 'v2' | 'v1' | 'hybrid';
  systemd?: boolean;
  /** cpuset in the v2 root's cgroup.controllers (default true). */
  cpusetController?: boolean;
  /** AllowedCPUs already set by a runtime drop-in (value per unit). */
  preset?: Record<string, string>;
  /** IRQ number → affinity list; those in `managed` refuse writes with EIO. */
  irqs?: Record<number, string>;
  managed?: number[];
  governors?: { current: string; available: string[] } | null;
  /** CPUs present but offline. */
  offline?: number[];
  /** More of the host (PCI devices, IOMMU, libvirt, files, links, executables), merged in. */
  extra?: Partial<FakeHost>;
}

export const UNITS = ['init.scope', 'system.slice', 'user.slice', 'machine.slice'];
// Scopes are transient units: systemd keeps their drop-ins in /run/systemd/transient.
export const DROPIN = (u: string) => `run/systemd/${u.endsWith('.scope') ? 'transient' : 'system.control'}/${u}.d/50-AllowedCPUs.conf`;
const dropInText = (v: string) => `# This is a drop-in unit file extension, created via "systemctl set-property"\n# or an equivalent operation. Do not edit.\n[Slice]\nAllowedCPUs=${v}\n`;

/** Parse "0-3,6" (the fake's own parser). */
export function fakeParseList(t: string): number[] {
  const out: number[] = [];
  for (const p of t.trim().split(',').filter(Boolean)) {
    const [a, b] = p.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.push(i);
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

function fakeMask(ids: number[], nbits: number): string {
  let v = 0n;
  for (const i of ids) v |= 1n << BigInt(i);
  const digits = Math.ceil(nbits / 4);
  const hex = v.toString(16).padStart(digits, '0');
  const groups: string[] = [];
  for (let end = hex.length; end > 0; end -= 8) groups.unshift(hex.slice(Math.max(0, end - 8), end));
  return groups.join(',');
}

function fakeParseMask(t: string): number[] {
  const v = BigInt('0x' + t.trim().replace(/,/g, ''));
  const out: number[] = [];
  for (let i = 0; i < 256; i++) if ((v >> BigInt(i)) & 1n) out.push(i);
  return out;
}

const errno = (code: string, msg: string) => Object.assign(new Error(`${code}: ${msg}`), { code });

export function buildIsolationHost(o: IsolationHostOptions = {}): { dir: string; online: number[] } {
  const n = o.cpus ?? 8;
  const half = n / 2;
  const cpus: FakeCpu[] = Array.from({ length: n }, (_, id) => ({
    id,
    core: o.smt === false ? id : id % half,
    siblings: o.smt === false ? [id] : [id % half, (id % half) + half],
    l3: Array.from({ length: n }, (_, i) => i),
    online: !(o.offline ?? []).includes(id),
  }));
  const online = cpus.filter((c) => c.online !== false).map((c) => c.id);
  const files: Record<string, string> = { '/etc/os-release': 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' };
  const layout = o.layout ?? 'v2';
  files['/proc/mounts'] =
    'sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n' +
    (layout === 'v2'
      ? 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n'
      : 'tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0\n' +
        (layout === 'hybrid' ? 'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0\n' : '') +
        'cgroup /sys/fs/cgroup/cpuset cgroup rw,nosuid,nodev,noexec,relatime,cpuset 0 0\n');
  if (o.systemd !== false) files['/run/systemd/system/.keep'] = '';
  const ctrl = ['cpu', 'io', 'memory', 'pids', ...(o.cpusetController === false ? [] : ['cpuset'])].sort();
  if (layout === 'v2') {
    files['/sys/fs/cgroup/cgroup.controllers'] = ctrl.join(' ') + '\n';
    files['/sys/fs/cgroup/cgroup.subtree_control'] = 'cpu io memory pids\n';
    for (const u of UNITS) {
      files[`/sys/fs/cgroup/${u}/cgroup.controllers`] = 'cpu io memory pids\n';
      files[`/sys/fs/cgroup/${u}/cgroup.procs`] = u === 'init.scope' ? '1\n' : '';
    }
  } else {
    files['/sys/fs/cgroup/cpuset/cpuset.cpus'] = fakeCpuList(online) + '\n';
  }
  const irqs = o.irqs ?? { 0: '0', 1: '0-7', 9: '0-7', 24: '3', 25: '0-7', 30: '5' };
  for (const [irq, aff] of Object.entries(irqs)) {
    files[`/proc/irq/${irq}/smp_affinity_list`] = aff + '\n';
    files[`/proc/irq/${irq}/smp_affinity`] = fakeMask(fakeParseList(aff), n) + '\n';
  }
  files['/proc/irq/default_smp_affinity'] = fakeMask(online, n) + '\n';
  files['/sys/devices/virtual/workqueue/cpumask'] = fakeMask(online, n) + '\n';
  const g = o.governors === undefined ? { current: 'schedutil', available: ['performance', 'schedutil', 'powersave'] } : o.governors;
  if (g) for (const c of online) {
    files[`/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_governor`] = g.current + '\n';
    files[`/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_available_governors`] = g.available.join(' ') + ' \n';
  }
  for (const [u, v] of Object.entries(o.preset ?? {})) files[`/${DROPIN(u)}`] = dropInText(v);
  const x = o.extra ?? {};
  const host: FakeHost = { pci: [], cpu: { vendor: 'intel', threads: n }, ...x, cpus: { cpus }, files: { ...files, ...x.files } };
  const dir = buildFakeHost(host);
  fs.rmSync(path.join(dir, 'run/systemd/system/.keep'), { force: true });
  fs.mkdirSync(path.join(dir, 'sys/bus/pci/devices'), { recursive: true });
  fs.writeFileSync(path.join(dir, '.managed-irqs'), JSON.stringify(o.managed ?? [0]));
  if (layout === 'v2') new FakeSystemd(dir).realize();
  return { dir, online };
}

/** cpuset.cpus (requested) and cpuset.cpus.effective (granted: the request within the online CPUs, else all of them). */
function writeCpuset(d: string, req: number[], online: number[]): void {
  const eff = req.filter((c) => online.includes(c));
  fs.writeFileSync(path.join(d, 'cpuset.cpus'), (req.length ? fakeCpuList(req) : '') + '\n');
  fs.writeFileSync(path.join(d, 'cpuset.cpus.effective'), fakeCpuList(eff.length ? eff : online) + '\n');
}

/** systemd's side: units' AllowedCPUs from the runtime drop-ins, realized into the cgroup tree. */
export class FakeSystemd {
  readonly calls: string[][] = [];
  /** Loaded AllowedCPUs per unit ("" = not set). */
  private loaded = new Map<string, string>();

  constructor(readonly dir: string) {
    this.reload();
  }

  private p(rel: string) {
    return path.join(this.dir, rel);
  }

  private online(): number[] {
    return fakeParseList(fs.readFileSync(this.p('sys/devices/system/cpu/online'), 'utf8'));
  }

  /** daemon-reload: AllowedCPUs= of each unit from its runtime drop-in (the last assignment wins). */
  reload(): void {
    this.loaded.clear();
    for (const u of UNITS) {
      const f = this.p(DROPIN(u));
      if (!fs.existsSync(f)) continue;
      const m = [...fs.readFileSync(f, 'utf8').matchAll(/^AllowedCPUs=(.*)$/gm)].pop();
      if (m) this.loaded.set(u, m[1]);
    }
  }

  /** Write the cgroup files: cpuset enabled on the root while any unit sets AllowedCPUs (systemd's controller mask). */
  realize(): void {
    const sub = this.p('sys/fs/cgroup/cgroup.subtree_control');
    const want = [...this.loaded.values()].some((v) => v !== '');
    const cur = fs.readFileSync(sub, 'utf8').trim().split(/\s+/).filter(Boolean);
    const next = want ? [...new Set([...cur, 'cpuset'])].sort() : cur.filter((c) => c !== 'cpuset');
    fs.writeFileSync(sub, next.join(' ') + '\n');
    const online = this.online();
    for (const u of UNITS) {
      const d = this.p(`sys/fs/cgroup/${u}`);
      if (!fs.existsSync(d)) continue;
      const ctl = path.join(d, 'cgroup.controllers');
      fs.writeFileSync(ctl, next.join(' ') + '\n');
      const files = ['cpuset.cpus', 'cpuset.cpus.effective', 'cpuset.mems', 'cpuset.mems.effective', 'cpuset.cpus.partition'];
      if (!want) {
        for (const f of files) fs.rmSync(path.join(d, f), { force: true });
        continue;
      }
      const v = this.loaded.get(u) ?? '';
      const cpusFile = path.join(d, 'cpuset.cpus');
      // Not set while the controller stays on: systemd does not rewrite the cgroup (the old value stays).
      const stale = !v && fs.existsSync(cpusFile) ? fs.readFileSync(cpusFile, 'utf8').trim() : '';
      const req = v ? fakeParseList(v) : stale ? fakeParseList(stale) : [];
      writeCpuset(d, req, online);
      if (fs.existsSync(path.join(d, 'cpuset.mems'))) continue;
      fs.writeFileSync(path.join(d, 'cpuset.mems'), '\n');
      fs.writeFileSync(path.join(d, 'cpuset.mems.effective'), '0\n');
      fs.writeFileSync(path.join(d, 'cpuset.cpus.partition'), 'member\n');
    }
  }

  /** The recordingRunner onCall: apply systemctl set-property --runtime / daemon-reload. */
  onCall = (argv: string[]): { code?: number; stderr?: string; stdout?: string } | undefined => {
    if (argv[0] !== 'systemctl') return undefined;
    this.calls.push([...argv]);
    if (argv[1] === 'show') {
      const unit = argv[argv.length - 1];
      return { code: 0, stdout: `${this.loaded.get(unit) ?? ''}\n` };
    }
    if (argv[1] === 'daemon-reload') {
      this.reload();
      this.realize();
      return undefined;
    }
    if (argv[1] === 'set-property') {
      const args = argv.slice(2).filter((a) => a !== '--runtime' && a !== '--');
      const [unit, assign] = args;
      const m = /^AllowedCPUs=(.*)$/.exec(assign ?? '');
      if (!UNITS.includes(unit) || !m) return { code: 1, stderr: `Failed to set unit properties on ${unit}: Unit ${unit} not found.` };
      if (m[1] !== '' && fakeParseList(m[1]).some((c) => Number.isNaN(c))) return { code: 1, stderr: 'Failed to parse AllowedCPUs' };
      const f = this.p(DROPIN(unit));
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, dropInText(m[1]));
      this.loaded.set(unit, m[1]);
      this.realize();
      return undefined;
    }
    return { code: 1, stderr: `fake systemctl: unhandled ${argv.join(' ')}` };
  };
}

/** The kernel's side of IRQ, workqueue and governor writes. */
export class IsolationKernel implements SysfsWriter {
  readonly writes: string[] = [];
  private count = 0;
  constructor(
    readonly dir: string,
    private readonly opts: { failAtWrite?: number; failCode?: string } = {},
  ) {}

  private nbits(): number {
    return fakeParseList(fs.readFileSync(path.join(this.dir, 'sys/devices/system/cpu/present'), 'utf8')).length;
  }

  private online(): number[] {
    return fakeParseList(fs.readFileSync(path.join(this.dir, 'sys/devices/system/cpu/online'), 'utf8'));
  }

  write(hostPath: string, value: string): void {
    this.count++;
    this.writes.push(`${hostPath} ← ${JSON.stringify(value)}`);
    if (this.opts.failAtWrite === this.count) throw errno(this.opts.failCode ?? 'EIO', `injected failure at write ${this.count}`);
    const f = path.join(this.dir, hostPath);
    if (!fs.existsSync(f)) throw errno('ENOENT', hostPath);
    const online = this.online();
    let m = /^\/proc\/irq\/(\d+)\/smp_affinity_list$/.exec(hostPath);
    if (m) {
      const managed: number[] = JSON.parse(fs.readFileSync(path.join(this.dir, '.managed-irqs'), 'utf8'));
      if (managed.includes(Number(m[1]))) throw errno('EIO', 'managed IRQ');
      const want = fakeParseList(value);
      if (!want.some((c) => online.includes(c))) throw errno('EINVAL', 'no online CPU');
      fs.writeFileSync(f, fakeCpuList(want) + '\n');
      fs.writeFileSync(path.join(this.dir, `proc/irq/${m[1]}/smp_affinity`), fakeMask(want, this.nbits()) + '\n');
      return;
    }
    if (hostPath === '/proc/irq/default_smp_affinity' || hostPath === '/sys/devices/virtual/workqueue/cpumask') {
      const want = fakeParseMask(value);
      if (!want.some((c) => online.includes(c))) throw errno('EINVAL', 'no online CPU in the mask');
      fs.writeFileSync(f, fakeMask(want, this.nbits()) + '\n');
      return;
    }
    m = /^\/sys\/fs\/cgroup\/([^/]+)\/cpuset\.cpus$/.exec(hostPath);
    if (m) {
      // cgroup v2 refuses an empty cpuset.cpus on a cgroup with processes.
      if (!value.trim() && fs.readFileSync(path.join(path.dirname(f), 'cgroup.procs'), 'utf8').trim()) throw errno('ENOSPC', 'populated cgroup');
      writeCpuset(path.dirname(f), fakeParseList(value), online);
      return;
    }
    m = /^\/sys\/devices\/system\/cpu\/cpu(\d+)\/cpufreq\/scaling_governor$/.exec(hostPath);
    if (m) {
      const avail = fs.readFileSync(path.join(path.dirname(f), 'scaling_available_governors'), 'utf8').trim().split(/\s+/);
      if (!avail.includes(value.trim())) throw errno('EINVAL', 'no such governor');
      fs.writeFileSync(f, value.trim() + '\n');
      return;
    }
    throw new Error(`isolation fake: not handled write ${hostPath} ← ${JSON.stringify(value)}`);
  }
}
