// Memory sizes as users type them (`--memory 8G`), in binary units as QEMU's
// `-m` reads them: K/M/G/T = KiB/MiB/GiB/TiB, with optional "iB"/"B".
// The result is whole KiB (libvirt's <memory unit='KiB'>). Pure.

import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = { k: 1, m: 1024, g: 1024 ** 2, t: 1024 ** 3 };
const SIZE = /^(\d{1,15})(?:\.(\d{1,6}))?\s*([kmgt])(?:i?b)?$/i;

export const MIN_GUEST_KIB = 128 * 1024;

/**
 * Parse "8G", "8GiB", "8192M", "1.5G" → KiB. Throws UsageError naming the
 * text and the accepted forms; `flag` names where the size was given and
 * `example` how the hints write one (`--hugepages 8G`, `vfiokit hugepages reserve 8G`).
 */
export function parseMemorySize(text: string, flag = '--memory', example = flag): number {
  const t = text.trim();
  const m = SIZE.exec(t);
  if (!m) {
    const bare = /^\d+$/.test(t);
    throw new UsageError(
      `${flag} '${text}' is not a memory size`,
      bare && Number(t) * 1024 < MIN_GUEST_KIB
        ? `a size needs a unit, and a guest needs at least ${MIN_GUEST_KIB / 1024} MiB: e.g. ${example} ${Number(t) >= 1 ? t : 8}G`
        : bare
        ? `a bare number is ambiguous (QEMU reads MiB, libvirt KiB): add a unit, e.g. ${example} ${t}M or ${example} ${Math.max(1, Math.round(Number(t) / 1024))}G`
        : 'give a number with a binary unit: 8G, 8GiB, 8192M, 1.5G (K, M, G, T = KiB, MiB, GiB, TiB)',
      'E_BAD_MEMORY',
    );
  }
  const unit = UNITS[m[3].toLowerCase()];
  const frac = m[2] ?? '';
  // Exact arithmetic: whole part × unit + fraction × unit / 10^digits, which must come out in whole KiB.
  const whole = BigInt(m[1]) * BigInt(unit);
  const scale = 10n ** BigInt(frac.length);
  const fracPart = BigInt(frac || '0') * BigInt(unit);
  if (fracPart % scale !== 0n) {
    throw new UsageError(`${flag} '${text}' is not a whole number of KiB`, `use a smaller unit, e.g. ${example} 1536M instead of 1.5G`, 'E_BAD_MEMORY');
  }
  const kib = whole + fracPart / scale;
  if (kib > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`${flag} '${text}' is too large`, `give a size that fits the host, e.g. ${example} 16G`, 'E_BAD_MEMORY');
  const n = Number(kib);
  if (n < MIN_GUEST_KIB) throw new UsageError(`${flag} '${text}' is below ${MIN_GUEST_KIB / 1024} MiB`, `a guest with a passed-through GPU needs at least a few GiB, e.g. ${example} 8G`, 'E_BAD_MEMORY');
  return n;
}

/** Shortest exact binary form: 8388608 → "8G", 1572864 → "1536M", 1000 → "1000K". */
export function formatMemorySize(kib: number): string {
  for (const [u, f] of [['T', 1024 ** 3], ['G', 1024 ** 2], ['M', 1024]] as const) if (kib % f === 0) return `${kib / f}${u}`;
  return `${kib}K`;
}

/** Human form with one decimal where needed: "7.8 GiB". */
export function describeMemory(kib: number): string {
  if (kib >= 1024 ** 2) return `${trim(kib / 1024 ** 2)} GiB`;
  if (kib >= 1024) return `${trim(kib / 1024)} MiB`;
  return `${kib} KiB`;
}

const trim = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));
