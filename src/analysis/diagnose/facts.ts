// Facts the fixes use, read from the log lines themselves: the guest memory
// (a QEMU command line's -m, as libvirt's per-domain log carries it) and the
// memlock limit (ulimit -l / limits output, or the kernel's RLIMIT_MEMLOCK
// warning from vfio_iommu_type1).

export interface LogFacts {
  /** Guest memory from a QEMU command line (-m) in the input, in MiB. */
  guestMemoryMiB: number | null;
  /** A memlock limit seen in the input (ulimit -l, limits, the kernel), in KiB; 'unlimited' as Infinity. */
  memlockKiB: number | null;
}

/** Lower-case words one of which a line must hold for `FactCollector.feed` to find anything in it. */
export const FACT_KEYS = [' -m ', 'locked memory', 'memlock'] as const;

const QEMU_MEM = / -m (?:size=)?(\d{1,12})([kKmMgG]?)\b/;
const LIMIT = /max locked memory\s{0,40}\(kbytes, -l\)\s{1,40}(\d{1,15}|unlimited)|memlock[\s=:]{1,10}(\d{1,15}|unlimited)\b/i;
// drivers/vfio/vfio_iommu_type1.c: pr_warn("%s: RLIMIT_MEMLOCK (%ld) exceeded\n", __func__, limit << PAGE_SHIFT) — bytes
const KERNEL_LIMIT = /RLIMIT_MEMLOCK \((\d{1,20})\) exceeded/;

export class FactCollector {
  readonly facts: LogFacts = { guestMemoryMiB: null, memlockKiB: null };
  feed(line: string): void {
    if (line.length > 4096) line = line.slice(0, 4096);
    if (line.includes(' -m ')) {
      const m = QEMU_MEM.exec(line);
      if (m) {
        const n = Number(m[1]);
        const u = m[2].toLowerCase();
        this.facts.guestMemoryMiB = u === 'k' ? Math.round(n / 1024) : u === 'g' ? n * 1024 : n;
      }
    }
    const k = KERNEL_LIMIT.exec(line);
    if (k) {
      this.facts.memlockKiB = Math.floor(Number(k[1]) / 1024);
      return;
    }
    if (!line.includes('locked memory') && !line.includes('memlock')) return;
    const l = LIMIT.exec(line);
    if (l) {
      const v = l[1] ?? l[2];
      this.facts.memlockKiB = v === 'unlimited' ? Infinity : Number(v);
    }
  }
}
