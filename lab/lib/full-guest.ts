// Full boots: a Debian disk image booted through its own bootloader (GRUB on
// BIOS, systemd-boot on UEFI). A systemd unit baked into the image mounts the
// per-boot /lab share and this machine's / (read-only, at /host) over 9p and
// runs /lab/run.sh; vfiokit runs with this machine's node binary (through its
// dynamic loader) from /host, against the guest's own /etc, /boot and /sys.

import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GUEST_LIB } from './guest-script.js';
import { boot, qemuArgv, type BootResult, type MachineSpec, type BootOptions } from './qemu.js';
import { repoRoot, runOk, shq } from './util.js';

/**
 * Kernel arguments for every lab guest (fast and full). Under software
 * emulation on a loaded machine a vCPU can stall long enough for the
 * kernel's IO-APIC timer check to fail ("timer doesn't work through
 * Interrupt-remapped IO-APIC", a panic seen in the lab): no_timer_check skips
 * that check, as cloud images do. panic=-1 turns any panic into an immediate
 * power-off (QEMU runs with -no-reboot) instead of a hang until the timeout.
 * mitigations=off: the emulated CPU is not the attack surface here, and page
 * table isolation makes every guest syscall slower under TCG.
 */
export const GUEST_KERNEL_ARGS = 'no_timer_check panic=-1 mitigations=off';

/**
 * A test boot whose console is silent this long is hung (lab_run prints a
 * heartbeat every minute; boots print as they go), so it is killed then; the
 * overall limits are generous, for a machine slowed by other work.
 */
export const GUEST_SILENCE_MS = 6 * 60_000;

/** Installed into images as /usr/local/sbin/vfiokit-lab-driver, run by vfiokit-lab.service. */
export const GUEST_DRIVER = `#!/bin/sh
# vfiokit lab: run the per-boot script from the lab share, if there is one.
modprobe -q 9pnet_virtio 2>/dev/null; modprobe -q 9p 2>/dev/null
mkdir -p /lab /host
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 lab /lab 2>/dev/null; then
  echo "LAB: no lab share; normal boot"
  exit 0
fi
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro host /host || echo "LAB: host share missing"
udevadm settle -t 60 || true
echo "LAB: full guest up ($(uname -r)); cmdline: $(cat /proc/cmdline)"
sh /lab/run.sh
echo "LAB: run.sh exited rc=$?"
`;

export const GUEST_UNIT = `[Unit]
Description=vfiokit lab driver (runs /lab/run.sh from the lab share)
After=local-fs.target systemd-udev-trigger.service systemd-modules-load.service
Wants=systemd-udev-trigger.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vfiokit-lab-driver
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
`;

/** How the host's node runs inside a full guest: its own loader and libraries from /host. */
export function guestVfiokitCommand(): string {
  const node = process.execPath;
  const repo = repoRoot();
  const loader = ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'].find((p) => existsSync(p));
  if (!loader) throw new Error('lab: cannot find the x86-64 dynamic loader to run node in the guest');
  const libs = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/usr/local/lib'].map((p) => `/host${p}`).join(':');
  return `/host${loader} --library-path ${libs} /host${node} /host${repo}/bin/vfiokit.js`;
}

export type EndAction = 'poweroff' | 'none';

export function fullRunScript(body: string, end: EndAction = 'poweroff'): string {
  return (
    [
      'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'export HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive',
      `LAB_VFIOKIT=${shq(guestVfiokitCommand())}`,
      '. /lab/lib.sh',
      body,
      'lab_finish ok',
      end === 'poweroff' ? 'systemctl poweroff --no-block' : '',
    ].join('\n') + '\n'
  );
}

export interface FullRunOptions {
  label: string;
  workDir: string;
  machine: Omit<MachineSpec, 'shares' | 'disk' | 'memMb' | 'smp'> & Partial<Pick<MachineSpec, 'memMb' | 'smp'>>;
  disk: { file: string; format: 'raw' | 'qcow2' };
  script: string;
  timeoutMs?: number;
  onLine?: BootOptions['onLine'];
  /** Do not append the poweroff (the script ends the boot itself). */
  end?: EndAction;
}

export interface FullRun {
  boot: BootResult;
  read: (name: string) => string | undefined;
  finished: string | undefined;
  outDir: string;
}

export async function runFull(o: FullRunOptions): Promise<FullRun> {
  rmSync(o.workDir, { recursive: true, force: true });
  mkdirSync(path.join(o.workDir, 'out'), { recursive: true });
  writeFileSync(path.join(o.workDir, 'lib.sh'), GUEST_LIB);
  writeFileSync(path.join(o.workDir, 'run.sh'), fullRunScript(o.script, o.end));
  const argv = qemuArgv({
    ...o.machine,
    memMb: o.machine.memMb ?? 1536,
    smp: o.machine.smp ?? 1,
    disk: o.disk,
    shares: [
      { tag: 'host', hostPath: '/', readonly: true },
      { tag: 'lab', hostPath: o.workDir, readonly: false },
    ],
  });
  const result = await boot(argv, { label: o.label, serialLog: path.join(o.workDir, 'serial.log'), timeoutMs: o.timeoutMs ?? 30 * 60_000, silenceMs: GUEST_SILENCE_MS, finishedFile: path.join(o.workDir, 'out', 'finished'), onLine: o.onLine });
  const outDir = path.join(o.workDir, 'out');
  const read = (name: string) => {
    const f = path.join(outDir, name);
    return existsSync(f) ? readFileSync(f, 'utf8') : undefined;
  };
  return { boot: result, read, finished: read('finished')?.trim(), outDir };
}

/** A copy-on-write disk for one test on top of a cached base image (the base never changes). */
export async function overlayDisk(base: string, file: string): Promise<{ file: string; format: 'qcow2' }> {
  mkdirSync(path.dirname(file), { recursive: true });
  rmSync(file, { force: true });
  await runOk(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, file]);
  return { file, format: 'qcow2' };
}

/** A writable copy of a UEFI variable store for one test. */
export function copyVars(from: string, to: string): string {
  mkdirSync(path.dirname(to), { recursive: true });
  copyFileSync(from, to);
  return to;
}
