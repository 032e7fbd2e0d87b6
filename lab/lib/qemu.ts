// Machines: the QEMU command line for a lab guest (machine type, IOMMU, PCI
// topology, shares, disk) and a runner that captures the serial console to a
// log file, enforces a timeout and reports progress from the console.

import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fmtDuration, log } from './util.js';

export type IommuKind = 'intel' | 'amd' | 'none';
export type TopologyName = 'rich' | 'gpu' | 'twin-gpu' | 'single-gpu';

export interface Share {
  tag: string;
  hostPath: string;
  readonly: boolean;
}

export interface MachineSpec {
  iommu: IommuKind;
  topology: TopologyName;
  /** Memory in MiB and vCPUs: every test says its own (declarations: `machine.memoryMiB`, `machine.smp`). */
  memMb: number;
  smp: number;
  /** CPU vendor the guest sees (`-cpu max,vendor=…`). */
  cpuVendor?: 'GenuineIntel' | 'AuthenticAMD';
  shares: Share[];
  /** A disk image (raw or qcow2) on virtio-blk. */
  disk?: { file: string; format: 'raw' | 'qcow2' };
  /** More disks on virtio-blk after the first (not bootable): /dev/vdb… */
  extraDisks?: { file: string; format: 'raw' | 'qcow2' }[];
  /** Direct kernel boot. */
  kernel?: { vmlinuz: string; initrd: string; append: string };
  /** UEFI firmware: code (read-only) and a writable copy of the variable store. */
  uefi?: { code: string; vars: string };
  /**
   * A virtio NIC on QEMU user networking, isolated from the outside
   * (`restrict=on`): the guest reaches nothing, and each forward opens a TCP
   * port on this machine's loopback to a guest port. Off by default.
   */
  net?: UserNet;
}

export interface UserNet {
  /** The NIC's MAC address, so the guest finds its interface by address. */
  mac: string;
  hostfwd: { hostPort: number; guestPort: number }[];
}

/** The guest address QEMU user networking gives (its built-in DHCP's first lease; the lab sets it statically). */
export const USER_NET_GUEST_ADDR = '10.0.2.15';
/** The NIC's slot on the root bus (free in every topology, below the shares' slots). */
const USER_NET_SLOT = 0xc;

/** Stable device addresses, so every boot of a topology numbers its buses alike. */
/** The boot display's address in every topology (slot 1 is left free: the AMD IOMMU's own PCI function takes the first free slot). */
export const BOOT_DISPLAY_ADDR = '0000:00:06.0';
/** Where the boot display sits in UEFI guests (see topologyDevices). */
export const UEFI_BOOT_DISPLAY_ADDR = '0000:00:01.0';

function topologyDevices(t: TopologyName, uefi: boolean): string[] {
  const d: string[] = [];
  // The boot display, which must keep its own driver in every scenario.
  // Under OVMF the kernel's efistub takes the first GOP with a linear
  // framebuffer in PCI enumeration order (virtio-gpu's GOP is blt-only), and
  // Linux marks the device holding that framebuffer boot_vga. So UEFI guests
  // get a qxl-vga display in slot 1, ahead of the GPU-like devices behind
  // root ports (UEFI guests use the Intel IOMMU, so slot 1 is free).
  // 'single-gpu' has none: the GPU-like device is the only display (the
  // firmware's VGA, bochs-drm's framebuffer and the console), as on a host
  // with one GPU.
  if (t === 'single-gpu') {
    /* no separate boot display */
  } else if (uefi) d.push('-device', 'qxl-vga,id=display,bus=pcie.0,addr=0x1');
  else d.push('-device', 'virtio-vga,id=display,bus=pcie.0,addr=0x6');
  const gpu = (port: string, chassis: number, addr: string, tag: string) => {
    d.push('-device', `pcie-root-port,id=${port},bus=pcie.0,chassis=${chassis},slot=${chassis},addr=${addr}`);
    // A GPU-like multifunction device: display function + HDMI-audio-like function, one IOMMU group.
    d.push('-device', `VGA,id=${tag}v,bus=${port},addr=0x0.0,multifunction=on`);
    d.push('-device', `ich9-intel-hda,id=${tag}a,bus=${port},addr=0x0.1`);
  };
  switch (t) {
    case 'gpu':
    case 'single-gpu':
      gpu('rp1', 1, '0x2.0', 'gpu1');
      d.push('-device', 'pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3.0');
      d.push('-device', 'e1000e,id=nic1,bus=rp2,addr=0x0');
      break;
    case 'twin-gpu':
      gpu('rp1', 1, '0x2.0', 'gpu1');
      gpu('rp2', 2, '0x3.0', 'gpu2');
      break;
    case 'rich':
      gpu('rp1', 1, '0x2.0', 'gpu1');
      // A PCIe switch: upstream port + two downstream ports, an endpoint on each.
      d.push('-device', 'pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3.0');
      d.push('-device', 'x3130-upstream,id=swup,bus=rp2,addr=0x0');
      d.push('-device', 'xio3130-downstream,id=swd1,bus=swup,chassis=3,slot=3,addr=0x0');
      d.push('-device', 'xio3130-downstream,id=swd2,bus=swup,chassis=4,slot=4,addr=0x1');
      d.push('-device', 'nvme,id=nvme1,bus=swd1,addr=0x0,serial=vfiokitlab1');
      d.push('-device', 'e1000e,id=nic1,bus=swd2,addr=0x0');
      // A PCIe-to-PCI bridge with two conventional devices behind it.
      d.push('-device', 'pcie-root-port,id=rp3,bus=pcie.0,chassis=5,slot=5,addr=0x4.0');
      d.push('-device', 'pcie-pci-bridge,id=pcib,bus=rp3,addr=0x0');
      d.push('-device', 'e1000,id=nic2,bus=pcib,addr=0x1');
      d.push('-device', 'virtio-rng-pci,id=rng1,bus=pcib,addr=0x2');
      // A multifunction endpoint on the root bus (two NIC functions, no ACS).
      d.push('-device', 'e1000e,id=nic3,bus=pcie.0,addr=0x5.0,multifunction=on');
      d.push('-device', 'e1000e,id=nic4,bus=pcie.0,addr=0x5.1');
      // A root port with nothing behind it.
      d.push('-device', 'pcie-root-port,id=rp4,bus=pcie.0,chassis=6,slot=6,addr=0x8.0');
      break;
  }
  return d;
}

export function accel(): string[] {
  const a = process.env.VFIOKIT_LAB_ACCEL || 'tcg';
  return a === 'tcg' ? ['-accel', 'tcg,thread=multi'] : ['-accel', a];
}

export function qemuArgv(m: MachineSpec): string[] {
  const a: string[] = ['qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot'];
  a.push(...accel());
  a.push('-M', m.iommu === 'none' ? 'q35' : 'q35,kernel-irqchip=split');
  // Under KVM the guest sees the real CPU (its vendor cannot be chosen).
  if ((process.env.VFIOKIT_LAB_ACCEL || 'tcg').startsWith('kvm')) a.push('-cpu', 'host');
  else a.push('-cpu', m.cpuVendor ? `max,vendor=${m.cpuVendor}` : 'max');
  a.push('-m', String(m.memMb), '-smp', String(m.smp));
  // The IOMMU must be created before the PCI devices it translates for.
  if (m.iommu === 'intel') a.push('-device', 'intel-iommu,intremap=on,caching-mode=on');
  if (m.iommu === 'amd') a.push('-device', 'amd-iommu,intremap=on');
  if (m.uefi) {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${m.uefi.code}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${m.uefi.vars}`);
  }
  a.push(...topologyDevices(m.topology, !!m.uefi));
  let slot = 0x10;
  m.shares.forEach((s, i) => {
    a.push('-fsdev', `local,id=fs${i},path=${s.hostPath},security_model=none${s.readonly ? ',readonly=on,multidevs=remap' : ''}`);
    a.push('-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${s.tag},bus=pcie.0,addr=0x${(slot++).toString(16)}`);
  });
  if (m.disk) {
    a.push('-drive', `if=none,id=disk0,format=${m.disk.format},file=${m.disk.file},cache=unsafe,discard=unmap`);
    a.push('-device', `virtio-blk-pci,drive=disk0,bus=pcie.0,addr=0x${(slot++).toString(16)},bootindex=1`);
  }
  (m.extraDisks ?? []).forEach((d, i) => {
    a.push('-drive', `if=none,id=disk${i + 1},format=${d.format},file=${d.file},cache=unsafe,discard=unmap`);
    a.push('-device', `virtio-blk-pci,drive=disk${i + 1},bus=pcie.0,addr=0x${(slot++).toString(16)}`);
  });
  a.push('-device', `virtio-rng-pci,bus=pcie.0,addr=0x${(slot++).toString(16)}`);
  if (m.net) {
    const fwd = m.net.hostfwd.map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-${USER_NET_GUEST_ADDR}:${f.guestPort}`).join('');
    a.push('-netdev', `user,id=net0,restrict=on${fwd}`);
    a.push('-device', `virtio-net-pci,netdev=net0,mac=${m.net.mac},bus=pcie.0,addr=0x${USER_NET_SLOT.toString(16)}`);
  }
  if (m.kernel) a.push('-kernel', m.kernel.vmlinuz, '-initrd', m.kernel.initrd, '-append', m.kernel.append);
  return a;
}

export interface BootResult {
  /** QEMU's exit code (null after SIGKILL; after the lab's SIGTERM it is QEMU's own, so read the flags below first). */
  code: number | null;
  timedOut: boolean;
  /** Why it was killed for taking too long (overall limit or a silent console); null otherwise. */
  timeoutReason: string | null;
  /** Killed on purpose by the caller (`kill()` from onLine). */
  killed: boolean;
  /**
   * The guest's script had finished (its results were written) but the guest
   * did not power off in time, so the lab stopped it; the boot's results stand.
   */
  stoppedAfterFinish: boolean;
  durationMs: number;
  serialLog: string;
  serial: string;
}

/** How a boot ended, in a few words (results, failure messages). */
export function bootOutcome(b: BootResult): string {
  if (b.timedOut) return b.timeoutReason ?? 'timed out';
  if (b.stoppedAfterFinish) return 'script finished; no power-off, stopped by the lab';
  if (b.killed) return 'power cut by the lab';
  return b.code === 0 ? 'powered off' : `qemu exit ${b.code}`;
}

export interface BootOptions {
  /** Log label, e.g. `s2/grub-itools/boot1`. */
  label: string;
  serialLog: string;
  timeoutMs: number;
  /**
   * Also kill the machine when its console stays silent this long. Guests
   * print a heartbeat while a lab command runs, so silence means a hang,
   * whereas a slow machine only takes longer: the overall limit can then be
   * generous without a hung guest blocking the lab for that long.
   */
  silenceMs?: number;
  /**
   * A file the guest writes (through its 9p share) when its script has
   * finished. If the guest has not powered off `afterFinishMs` (default 90 s)
   * later, QEMU is stopped gracefully: the results are in, and waiting for
   * the silence watchdog would only waste minutes. (Seen under emulation: the
   * serial console stalls and systemd's shutdown waits on it.)
   */
  finishedFile?: string;
  afterFinishMs?: number;
  /** Called for each console line; may kill the machine (power cut). */
  onLine?: (line: string, ctl: { kill: () => void }) => void;
}

/** Boots a machine and waits for QEMU to exit (the guest powers off, or the timeout kills it). */
export function boot(argv: string[], o: BootOptions): Promise<BootResult> {
  mkdirSync(path.dirname(o.serialLog), { recursive: true });
  const logStream = createWriteStream(o.serialLog);
  logStream.write(`# ${argv.map((x) => (/[\s,]/.test(x) ? JSON.stringify(x) : x)).join(' ')}\n`);
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let serial = '';
    let partial = '';
    let lastLine = '';
    let timedOut = false;
    let timeoutReason: string | null = null;
    let killed = false;
    let lastOutput = Date.now();
    const ctl = {
      kill: () => {
        killed = true;
        child.kill('SIGKILL');
      },
    };
    const onData = (chunk: Buffer) => {
      lastOutput = Date.now();
      const s = chunk.toString('utf8');
      serial += s;
      logStream.write(chunk);
      partial += s;
      const lines = partial.split(/\r?\n/);
      partial = lines.pop() ?? '';
      for (const raw of lines) {
        // Strip terminal escapes that GRUB and systemd write to the console.
        const line = raw.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r/g, '').trim();
        if (!line) continue;
        lastLine = line;
        if (o.onLine && !killed) o.onLine(line, ctl);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => {
      logStream.write(c);
      serial += c.toString('utf8');
    });
    child.on('error', reject);
    const progress = setInterval(() => {
      const l = lastLine.length > 110 ? lastLine.slice(0, 107) + '...' : lastLine;
      log(`  … ${o.label}: ${fmtDuration(Date.now() - t0)}${l ? ` | ${l}` : ''}`);
    }, 20_000);
    // SIGTERM first: QEMU then closes its disks cleanly (qcow2 metadata
    // written), so the next boot of the same disk sees what the guest synced.
    let exited = false;
    const terminate = () => {
      child.kill('SIGTERM');
      setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, 15_000).unref();
    };
    const stop = (reason: string) => {
      if (timedOut || killed || stoppedAfterFinish) return;
      timedOut = true;
      timeoutReason = reason;
      terminate();
    };
    let stoppedAfterFinish = false;
    let finishedAt: number | null = null;
    const finishWatch = o.finishedFile
      ? setInterval(() => {
          if (finishedAt === null) {
            if (existsSync(o.finishedFile!)) finishedAt = Date.now();
          } else if (Date.now() - finishedAt > (o.afterFinishMs ?? 90_000) && !timedOut && !killed && !stoppedAfterFinish) {
            stoppedAfterFinish = true;
            terminate();
          }
        }, Math.min(2_000, (o.afterFinishMs ?? 90_000) / 4))
      : undefined;
    const timer = setTimeout(() => stop(`killed after the ${fmtDuration(o.timeoutMs)} timeout`), o.timeoutMs);
    const silenceMs = o.silenceMs;
    const watchdog = silenceMs
      ? setInterval(() => {
          if (Date.now() - lastOutput > silenceMs) stop(`killed: the console was silent for ${fmtDuration(silenceMs)}`);
        }, Math.min(5_000, silenceMs / 4))
      : undefined;
    child.on('close', (code) => {
      exited = true;
      clearTimeout(timer);
      clearInterval(progress);
      if (watchdog) clearInterval(watchdog);
      if (finishWatch) clearInterval(finishWatch);
      const durationMs = Date.now() - t0;
      const how = timedOut ? timeoutReason : killed ? 'powered off by the lab (simulated power cut)' : stoppedAfterFinish ? `stopped by the lab: the script had finished but the guest did not power off within ${fmtDuration(o.afterFinishMs ?? 90_000)}` : `code ${code}`;
      logStream.end(`\n# qemu exited: ${how} after ${fmtDuration(durationMs)}\n`);
      logStream.on('finish', () => resolve({ code, timedOut, timeoutReason, killed, stoppedAfterFinish, durationMs, serialLog: o.serialLog, serial }));
    });
    child.stdin!.end();
  });
}
