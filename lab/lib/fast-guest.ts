// Fast boots: the guest kernel + a small busybox initramfs that mounts this
// machine's / read-only over 9p under a tmpfs overlay and runs a script in it
// with the guest's own /proc, /sys and /dev. Node and the built project are
// therefore available in the guest at the same paths as here; nothing the
// guest writes reaches this machine except through the per-boot /lab share.

import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { cached } from './cache.js';
import { cpioNewc, type CpioEntry } from './cpio.js';
import { findGuestKernel, moduleLoadOrder, readBuiltinModules, readModulesDep, type GuestKernel } from './kernel.js';
import { GUEST_LIB } from './guest-script.js';
import { GUEST_KERNEL_ARGS, GUEST_SILENCE_MS } from './full-guest.js';
import { boot, qemuArgv, type BootResult, type MachineSpec } from './qemu.js';
import { fmtDuration, repoRoot, shq, sleep, which } from './util.js';

const INITRAMFS_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "LAB: insmod $m failed"; done
mkdir -p /mnt/host /mnt/rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro host /mnt/host || echo "LAB: mounting the host share failed"
mount -t tmpfs -o size=1g tmpfs /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work /newroot || echo "LAB: overlay mount failed"
mkdir -p /newroot/lab
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 lab /newroot/lab || echo "LAB: mounting the lab share failed"
mount -t proc proc /newroot/proc || echo "LAB: proc mount failed"
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs tmpfs /newroot/run
# /tmp stays the (writable) overlay: the project may live under the host's /tmp.
echo "LAB: fast guest up, running /lab/run.sh"
chroot /newroot /bin/sh /lab/run.sh
echo "LAB: guest script exited rc=$?"
sync
poweroff -f
`;

export interface FastImage {
  kernel: GuestKernel;
  initrd: string;
}

/** Builds (or takes from the cache) the fast-boot initramfs for the guest kernel. */
export async function fastImage(): Promise<FastImage> {
  const kernel = findGuestKernel();
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!busybox) throw new Error('lab: busybox not found; install busybox-static');
  const dep = readModulesDep(kernel.modulesDir);
  const order = moduleLoadOrder(dep, INITRAMFS_MODULES, readBuiltinModules(kernel.modulesDir));
  const recipe = {
    v: 1,
    kernel: kernel.version,
    vmlinuzSize: readFileSync(kernel.vmlinuz).length,
    modules: order.map((m) => m.name),
    init: INIT,
    busyboxSize: readFileSync(busybox).length,
  };
  const art = await cached('fast-initrd', recipe, async (dir) => {
    const entries: CpioEntry[] = [];
    for (const d of ['bin', 'dev', 'proc', 'sys', 'mnt', 'newroot', 'modules', 'tmp']) entries.push({ type: 'dir', path: d });
    entries.push({ type: 'file', path: 'bin/busybox', data: readFileSync(busybox), mode: 0o755 });
    entries.push({ type: 'symlink', path: 'bin/sh', target: 'busybox' });
    entries.push({ type: 'file', path: 'init', data: Buffer.from(INIT), mode: 0o755 });
    const names: string[] = [];
    for (const m of order) {
      let data = readFileSync(m.file);
      if (m.file.endsWith('.xz')) data = execFileSync('xz', ['-dc', m.file], { maxBuffer: 1 << 28 });
      else if (m.file.endsWith('.zst')) data = execFileSync('zstd', ['-dc', m.file], { maxBuffer: 1 << 28 });
      else if (m.file.endsWith('.gz')) data = execFileSync('gzip', ['-dc', m.file], { maxBuffer: 1 << 28 });
      entries.push({ type: 'file', path: `modules/${m.name}.ko`, data });
      names.push(`${m.name}.ko`);
    }
    entries.push({ type: 'file', path: 'modules.order', data: Buffer.from(names.join('\n') + '\n') });
    writeFileSync(path.join(dir, 'initrd.img'), gzipSync(cpioNewc(entries)));
  });
  return { kernel, initrd: path.join(art.dir, 'initrd.img') };
}

export interface FastRun {
  boot: BootResult;
  outDir: string;
  /** Reads a file the guest wrote under /lab/out (undefined when absent). */
  read: (name: string) => string | undefined;
  finished: string | undefined;
  /** What `whileUp` threw (the guest was then released all the same). */
  hostError?: Error;
}

/** What the host side sees of a guest that is up (see FastRunOptions.whileUp). */
export interface GuestLink {
  /** Resolves when the guest has written /lab/out/NAME (its text); rejects when the guest stopped first or after `timeoutMs`. */
  waitFor: (name: string, timeoutMs: number) => Promise<string>;
}

export interface FastRunOptions {
  label: string;
  /** Per-boot directory (under lab-results); becomes the guest's /lab. */
  workDir: string;
  /** memMb and smp default to 1024 MiB and 1 vCPU for tests not written as declarations (declarations always say). */
  machine: Omit<MachineSpec, 'shares' | 'kernel' | 'disk' | 'memMb' | 'smp'> & Partial<Pick<MachineSpec, 'memMb' | 'smp'>>;
  /** Extra kernel arguments (IOMMU switches). */
  append?: string;
  /** Shell body run as root in the guest after lib.sh is sourced. */
  script: string;
  timeoutMs?: number;
  /**
   * Host-side work while the guest is up (e.g. driving it over a forwarded
   * port). The guest script calls `lab_wait_host` where it hands over; it
   * returns when this function has settled (the host writes /lab/host-done).
   */
  whileUp?: (g: GuestLink) => Promise<void>;
}

/** Defined in run.sh when the host takes part (whileUp): blocks until /lab/host-done exists, with a console heartbeat. */
const WAIT_HOST = `lab_wait_host() {
  lab_say "waiting for the host"
  read -r _w0 _idle </proc/uptime; _w0=\${_w0%.*}; _next=$((_w0 + 30))
  while [ ! -e /lab/host-done ]; do
    sleep 1
    # The heartbeat goes by the clock: a busy guest runs this loop slowly.
    read -r _wu _idle </proc/uptime; _wu=\${_wu%.*}
    if [ "$_wu" -ge "$_next" ]; then lab_say "still waiting for the host ($((_wu - _w0)) s)"; _next=$((_wu + 30)); fi
  done
  lab_say "the host is done: $(cat /lab/host-done)"
}`;

/** Boots a fast guest, runs `script`, and returns what it wrote. */
export async function runFast(o: FastRunOptions): Promise<FastRun> {
  const img = await fastImage();
  const repo = repoRoot();
  const node = process.execPath;
  rmSync(o.workDir, { recursive: true, force: true });
  mkdirSync(path.join(o.workDir, 'out'), { recursive: true });
  writeFileSync(path.join(o.workDir, 'lib.sh'), GUEST_LIB);
  writeFileSync(
    path.join(o.workDir, 'run.sh'),
    [
      'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'export HOME=/root LANG=C.UTF-8',
      `LAB_VFIOKIT=${shq(`${node} ${repo}/bin/vfiokit.js`)}`,
      '. /lab/lib.sh',
      ...(o.whileUp ? [WAIT_HOST] : []),
      o.script,
      'lab_finish ok',
    ].join('\n') + '\n',
  );
  if (!which('qemu-system-x86_64')) throw new Error('lab: qemu-system-x86_64 not found; install qemu-system-x86');
  const argv = qemuArgv({
    ...o.machine,
    memMb: o.machine.memMb ?? 1024,
    smp: o.machine.smp ?? 1,
    shares: [
      { tag: 'host', hostPath: '/', readonly: true },
      { tag: 'lab', hostPath: o.workDir, readonly: false },
    ],
    kernel: { vmlinuz: img.kernel.vmlinuz, initrd: img.initrd, append: `console=ttyS0,115200 loglevel=4 ${GUEST_KERNEL_ARGS} ${o.append ?? ''}`.trim() },
  });
  const outDir = path.join(o.workDir, 'out');
  const running = boot(argv, { label: o.label, serialLog: path.join(o.workDir, 'serial.log'), timeoutMs: o.timeoutMs ?? 20 * 60_000, silenceMs: GUEST_SILENCE_MS, finishedFile: path.join(outDir, 'finished') });
  let hostError: Error | undefined;
  if (o.whileUp) {
    let stopped = false;
    void running.finally(() => (stopped = true));
    const waitFor = async (name: string, timeoutMs: number): Promise<string> => {
      const f = path.join(outDir, name);
      for (const t0 = Date.now(); !existsSync(f); await sleep(500)) {
        if (stopped) throw new Error(`the guest stopped before it wrote /lab/out/${name}`);
        if (Date.now() - t0 > timeoutMs) throw new Error(`the guest did not write /lab/out/${name} within ${fmtDuration(timeoutMs)}`);
      }
      return readFileSync(f, 'utf8');
    };
    try {
      await o.whileUp({ waitFor });
    } catch (e) {
      hostError = e instanceof Error ? e : new Error(String(e));
    }
    writeFileSync(path.join(o.workDir, 'host-done'), hostError ? `error: ${hostError.message.split('\n')[0]}\n` : 'ok\n');
  }
  const result = await running;
  const read = (name: string) => {
    const f = path.join(outDir, name);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  };
  return { boot: result, outDir, read, finished: read('finished')?.trim(), ...(hostError ? { hostError } : {}) };
}
