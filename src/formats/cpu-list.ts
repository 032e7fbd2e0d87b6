// The kernel's CPU list format ("0-7,16-23", used by cpulist, core_cpus_list,
// shared_cpu_list, local_cpulist, and by libvirt's cpuset attributes).
// Pure: shared by the topology reader and the pinning planner.

/** Parse "0-3,8,10-11" → [0,1,2,3,8,10,11]. Returns null for malformed text; "" → []. */
export function parseCpuList(text: string): number[] | null {
  const t = text.trim();
  if (t === '') return [];
  const out = new Set<number>();
  for (const part of t.split(',')) {
    const m = /^(\d+)(?:-(\d+))?(?::(\d+)\/(\d+))?$/.exec(part.trim());
    if (!m) return null;
    const a = Number(m[1]);
    const b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a || b - a > 65536) return null;
    // Kernel group syntax "0-15:2/4" (used in isolcpus); accept it for completeness.
    const used = m[3] !== undefined ? Number(m[3]) : 1;
    const group = m[4] !== undefined ? Number(m[4]) : 1;
    if (group === 0 || used > group) return null;
    for (let i = a; i <= b; i++) if ((i - a) % group < used) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

/** Format ascending-or-not CPU ids as the kernel does: "0-3,8,10-11". */
export function formatCpuList(cpus: Iterable<number>): string {
  const s = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(j === i ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/**
 * Parse the kernel's hex CPU mask ("f", "ff,ffffffff": 32-bit groups,
 * comma-separated, most significant first; /proc/irq/default_smp_affinity,
 * workqueue cpumask). Returns null for malformed text.
 */
export function parseCpuMask(text: string): number[] | null {
  const t = text.trim().replace(/,/g, '');
  if (!/^[0-9a-fA-F]+$/.test(t)) return null;
  const out: number[] = [];
  const digits = t.toLowerCase();
  for (let i = 0; i < digits.length; i++) {
    const v = parseInt(digits[digits.length - 1 - i], 16);
    for (let b = 0; b < 4; b++) if (v & (1 << b)) out.push(i * 4 + b);
  }
  return out;
}

/**
 * Format CPUs as the kernel prints a mask of `nbits` CPUs (bitmap "%*pb"):
 * 32-bit groups of 8 hex digits, the leading group only as wide as its bits need.
 */
export function formatCpuMask(cpus: Iterable<number>, nbits: number): string {
  const set = new Set(cpus);
  const width = Math.max(nbits, Math.max(0, ...set) + 1);
  const nDigits = Math.ceil(width / 4);
  let hex = '';
  for (let d = nDigits - 1; d >= 0; d--) {
    let v = 0;
    for (let b = 0; b < 4; b++) if (set.has(d * 4 + b)) v |= 1 << b;
    hex += v.toString(16);
    if (d % 8 === 0 && d !== 0) hex += ',';
  }
  return hex;
}

/** The number of CPUs a kernel mask text covers (its width in bits), to print a new mask the same way. */
export const cpuMaskBits = (text: string): number => text.trim().replace(/,/g, '').length * 4;
