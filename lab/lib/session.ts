// One test's life with a full guest: its own copy-on-write disk (and UEFI
// variable store) over a cached image, booted as many times as the test needs;
// the disk carries every change from one boot to the next, like a real machine.

import path from 'node:path';
import { copyVars, overlayDisk, runFull, type FullRun } from './full-guest.js';
import type { TestContext } from './harness.js';
import type { Image } from './images.js';
import { bootOutcome, type BootOptions, type IommuKind, type TopologyName } from './qemu.js';

/** Guest shell helpers for the boot-configuration tests (appended to each boot's script). */
export const BOOT_HELPERS = `
# lab_find VENDOR:DEVICE → addresses (0000:bb:dd.f), one per line
lab_find() {
  for _d in /sys/bus/pci/devices/*; do
    read -r _ven <"$_d/vendor"; read -r _dev <"$_d/device"
    [ "$_ven:$_dev" = "$1" ] && echo "\${_d##*/}"
  done
  return 0
}
# lab_bootstate NAME: checksums of every file that decides how the next boot binds drivers
lab_bootstate() {
  for _f in /etc/default/grub /etc/default/grub.d/* /boot/grub/grub.cfg /etc/kernel/cmdline \\
            /etc/modprobe.d/* /etc/modules-load.d/* /etc/modules /etc/initramfs-tools/modules \\
            /etc/initramfs-tools/conf.d/* /etc/initramfs-tools/hooks/* /etc/dracut.conf.d/* /boot/efi/loader/loader.conf \\
            /boot/efi/loader/entries/*; do
    [ -f "$_f" ] && sha256sum "$_f"
  done >"$LAB_OUT/$1.bootstate"
  # What would be in effect at the next boot, for the record.
  (cat /etc/default/grub 2>/dev/null; echo ---; cat /etc/kernel/cmdline 2>/dev/null; echo ---; grep -h -r . /etc/modprobe.d 2>/dev/null; echo ---; grep -h '^[[:space:]]*linux' /boot/grub/grub.cfg 2>/dev/null; cat /boot/efi/loader/entries/*.conf 2>/dev/null) >"$LAB_OUT/$1.bootconfig"
}
lab_vfio_devnodes() { ls /dev/vfio 2>/dev/null | tr '\\n' ' ' >"$LAB_OUT/$1.vfio"; }
`;

export interface SessionOptions {
  topology: TopologyName;
  iommu?: IommuKind;
  /** vCPUs of the guest (a declared test always says; default 1). */
  smp?: number;
  /** Memory in MiB (a declared test always says; default 1536). */
  memMb?: number;
}

export class GuestSession {
  private disk!: { file: string; format: 'qcow2' };
  private vars: string | undefined;
  private n = 0;
  constructor(
    readonly t: TestContext,
    readonly image: Image,
    readonly opts: SessionOptions,
  ) {}

  async init(): Promise<void> {
    this.disk = await overlayDisk(this.image.disk, path.join(this.t.workDir, 'disk.qcow2'));
    if (this.image.uefi) this.vars = copyVars(this.image.uefi.vars, path.join(this.t.workDir, 'efivars.fd'));
  }

  /** Boots once and runs `script`; requires that the guest came up and ran it, unless `allowUnfinished`. */
  async boot(name: string, script: string, o: { timeoutMs?: number; onLine?: BootOptions['onLine']; allowUnfinished?: boolean } = {}): Promise<FullRun> {
    const label = `${this.t.id}/${++this.n}-${name}`;
    const r = await runFull({
      label,
      workDir: this.t.bootDir(`${this.n}-${name}`),
      machine: {
        iommu: this.opts.iommu ?? 'intel',
        topology: this.opts.topology,
        smp: this.opts.smp ?? 1,
        memMb: this.opts.memMb ?? 1536,
        cpuVendor: (this.opts.iommu ?? 'intel') === 'amd' ? 'AuthenticAMD' : 'GenuineIntel',
        ...(this.image.uefi && this.vars ? { uefi: { code: this.image.uefi.code, vars: this.vars } } : {}),
      },
      disk: this.disk,
      script: BOOT_HELPERS + script,
      timeoutMs: o.timeoutMs ?? 30 * 60_000,
      onLine: o.onLine,
    });
    this.t.recordBoot(label, r.boot);
    if (!o.allowUnfinished)
      this.t.require(`boot ${this.n} (${name}) came up and ran its script`, r.finished === 'ok', r.boot.timedOut ? bootOutcome(r.boot) : `the lab service ${r.finished ? `finished "${r.finished}"` : 'never finished'}`);
    return r;
  }
}

/** Kept here for tests written before lab/lib/gpu.ts held it. */
export { driversOf } from './gpu.js';
