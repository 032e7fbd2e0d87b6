// A fake kernel for sysfs writes over trees built by buildFakeHost.
//
// The plan (after libvirt's virpcimock):
//   - The tree stays the truth: device state is read back by the code under
//     test through HostRoot, exactly as on a real host. The fake only reacts
//     to writes, mutating the tree the way the kernel would.
//   - driver_override ← NAME sets the override (one trailing newline
//     stripped); ← "" or "\n" clears it (reads back "(null)"). Never unbinds.
//   - drivers/<d>/unbind ← BDF detaches when the device is bound to <d>
//     (ENODEV otherwise): removes <dev>/driver and drivers/<d>/<BDF>.
//   - drivers/<d>/bind ← BDF: EBUSY when already bound, ENODEV when <d> does
//     not match (override set to another name; vfio-pci matches only via the
//     override; other drivers match the device's default driver).
//   - drivers_probe ← BDF: nothing when bound; else the override's driver if
//     registered, else the device's default driver (recorded at construction
//     from the tree, or given in `defaults`) if registered.
//   - <dev>/rom ← "0…" disables ROM reads (the file reads empty, as an
//     unreadable attribute gives nothing); ← anything else enables them: the
//     file then holds the device's ROM (`roms[addr]`), as pci_read_rom
//     returns it. `romEnabled(addr)` tells the state.
//   - A group gains /dev/vfio/<N> with its first vfio-pci device and loses it
//     with its last.
//   - /sys/class/vtconsole/vtconN/bind ← 0|1: EINVAL for a system console
//     ("(S)" name) being unbound; else the value is stored.
//   - /sys/bus/platform/drivers/<d>/unbind ← DEV: removes the platform
//     device's driver link (ENODEV when it is not bound to <d>).
//   - modprobe(argv): `modprobe NAME` registers the driver, adds
//     /sys/module/NAME and /proc/modules, and probes unbound devices whose
//     default driver it is; `modprobe -r A B…` unbinds their devices and
//     removes them (EBUSY-style failure when `busy` names one).
//   - Huge pages (`hugepages` option): nr_hugepages ← N (global, or a node's)
//     grows the pool only by what each node's unfragmented memory
//     (`contiguousKb`) holds as whole pages — the global pool round-robin over
//     the nodes, as the kernel interleaves — and shrinks it by free pages only;
//     global and node files (nr, free) stay consistent. compact_memory ← 1
//     raises each node's unfragmented memory to `compactedKb`.
//   - Any other write (under sys/ or elsewhere) throws "not handled write",
//     so an unexpected write fails the test.
//   - Failure injection: fail the Nth write (1-based) or a matching write
//     with an errno-style error, before any effect.
// A "registered" driver is a directory under /sys/bus/pci/drivers;
// loadModule(name) registers one (what modprobe would do).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { SysfsWriter } from '../../src/apply/sysfs-writer.js';
import { driverDir } from './fake-host.js';

export interface KernelFakeOptions {
  /** Default driver per device address (what matching binds without an override). */
  defaults?: Record<string, string | null>;
  /** Fail the Nth write (1-based). */
  failAtWrite?: number;
  /** Fail writes for which this returns an errno code. */
  failWhen?: (hostPath: string, value: string) => string | undefined;
  /** errno code of an injected failure (default EIO). */
  failCode?: string;
  /** ROM content per device address, readable from its `rom` attribute once enabled. */
  roms?: Record<string, Uint8Array>;
  /** Unfragmented memory (KiB) per NUMA node that new huge pages can come from, and what compaction raises it to. */
  hugepages?: { contiguousKb: Record<number, number>; compactedKb?: Record<number, number> };
}

const errno = (code: string, msg: string) => Object.assign(new Error(`${code}: ${msg}`), { code });

export class KernelFake implements SysfsWriter {
  /** Every write, as "path ← value" (value JSON-quoted). */
  readonly writes: string[] = [];
  private readonly defaults = new Map<string, string | null>();
  private count = 0;
  private readonly romState = new Map<string, boolean>();

  /** Whether the device's `rom` attribute was last enabled ("1") rather than disabled ("0"). */
  romEnabled(addr: string): boolean {
    return this.romState.get(addr) ?? false;
  }

  constructor(
    readonly rootDir: string,
    private readonly opts: KernelFakeOptions = {},
  ) {
    for (const a of this.devices()) {
      const d = this.driverOf(a);
      this.defaults.set(a, d === 'vfio-pci' ? null : d);
    }
    for (const [a, d] of Object.entries(opts.defaults ?? {})) this.defaults.set(a, d);
    for (const g of new Set(this.devices().filter((a) => this.driverOf(a) === 'vfio-pci').map((a) => this.groupOf(a)))) if (g !== null) this.devVfio(g, true);
  }

  private p(hostPath: string): string {
    return path.join(this.rootDir, hostPath);
  }

  private devices(): string[] {
    try {
      return fs.readdirSync(this.p('/sys/bus/pci/devices'));
    } catch {
      return [];
    }
  }

  /** Host path of the device directory under /sys/devices. */
  private devDir(addr: string): string {
    const link = `/sys/bus/pci/devices/${addr}`;
    const t = fs.readlinkSync(this.p(link));
    return path.posix.resolve(path.posix.dirname(link), t);
  }

  driverOf(addr: string): string | null {
    try {
      return path.posix.basename(fs.readlinkSync(this.p(`${this.devDir(addr)}/driver`)));
    } catch {
      return null;
    }
  }

  overrideOf(addr: string): string | null {
    const t = fs.readFileSync(this.p(`${this.devDir(addr)}/driver_override`), 'utf8').trim();
    return t === '(null)' ? null : t;
  }

  groupOf(addr: string): number | null {
    try {
      return parseInt(path.posix.basename(fs.readlinkSync(this.p(`${this.devDir(addr)}/iommu_group`))), 10);
    } catch {
      return null;
    }
  }

  registered(driver: string): boolean {
    return fs.existsSync(this.p(`/sys/bus/pci/drivers/${driver}`));
  }

  /** What `modprobe <name>` does for a PCI driver: register it. */
  loadModule(name: string): void {
    driverDir(this.rootDir, name);
  }

  private devVfio(group: number, present: boolean): void {
    const f = this.p(`/dev/vfio/${group}`);
    if (present) {
      fs.mkdirSync(path.dirname(f), { recursive: true });
      if (!fs.existsSync(f)) fs.writeFileSync(f, '');
    } else fs.rmSync(f, { force: true });
  }

  private groupHasVfio(group: number): boolean {
    return this.devices().some((a) => this.groupOf(a) === group && this.driverOf(a) === 'vfio-pci');
  }

  private attach(addr: string, driver: string): void {
    const dev = this.devDir(addr);
    const drvDir = `/sys/bus/pci/drivers/${driver}`;
    const group = this.groupOf(addr);
    const first = driver === 'vfio-pci' && group !== null && !this.groupHasVfio(group);
    fs.symlinkSync(path.posix.relative(dev, drvDir), this.p(`${dev}/driver`));
    fs.symlinkSync(path.posix.relative(drvDir, dev), this.p(`${drvDir}/${addr}`));
    if (first) this.devVfio(group!, true);
  }

  private detach(addr: string): void {
    const dev = this.devDir(addr);
    const driver = this.driverOf(addr)!;
    fs.unlinkSync(this.p(`${dev}/driver`));
    fs.rmSync(this.p(`/sys/bus/pci/drivers/${driver}/${addr}`), { force: true });
    const group = this.groupOf(addr);
    if (driver === 'vfio-pci' && group !== null && !this.groupHasVfio(group)) this.devVfio(group, false);
  }

  private matches(addr: string, driver: string): boolean {
    const o = this.overrideOf(addr);
    if (o !== null) return o === driver;
    return driver !== 'vfio-pci' && this.defaults.get(addr) === driver;
  }

  private known(addr: string): string {
    if (!this.devices().includes(addr)) throw errno('ENODEV', `no PCI device ${addr}`);
    return addr;
  }

  /** Modules `modprobe -r` refuses ("Module X is in use"). */
  readonly busy = new Set<string>();

  private procModules(update: (names: string[]) => string[]): void {
    const f = this.p('/proc/modules');
    const lines = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : [];
    const names = update(lines.map((l) => l.split(' ')[0]));
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, names.map((n) => lines.find((l) => l.startsWith(`${n} `)) ?? `${n} 16384 0 - Live 0x0000000000000000`).join('\n') + '\n');
  }

  /** What modprobe does (a recording runner's onCall): returns an exit code and message on failure. */
  modprobe(argv: string[]): { code: number; stderr: string } | undefined {
    if (argv[0] !== 'modprobe') return undefined;
    if (argv[1] === '-r') {
      const mods = argv.slice(2);
      const b = mods.find((m) => this.busy.has(m));
      if (b) return { code: 1, stderr: `modprobe: FATAL: Module ${b} is in use.` };
      for (const m of mods) {
        for (const a of this.devices()) if (this.driverOf(a) === m) this.detach(a);
        fs.rmSync(this.p(`/sys/bus/pci/drivers/${m}`), { recursive: true, force: true });
        fs.rmSync(this.p(`/sys/module/${m.replace(/-/g, '_')}`), { recursive: true, force: true });
      }
      this.procModules((names) => names.filter((n) => !mods.includes(n)));
      return undefined;
    }
    const m = argv[1];
    this.loadModule(m);
    fs.mkdirSync(this.p(`/sys/module/${m.replace(/-/g, '_')}`), { recursive: true });
    this.procModules((names) => (names.includes(m) ? names : [...names, m]));
    for (const a of this.devices()) if (!this.driverOf(a) && this.overrideOf(a) === null && this.defaults.get(a) === m) this.attach(a, m);
    return undefined;
  }

  /** compact_memory writes seen. */
  compactions = 0;
  private readonly contiguous = new Map<number, number>();

  private contiguousOf(node: number): number {
    return this.contiguous.get(node) ?? this.opts.hugepages?.contiguousKb[node] ?? 0;
  }

  private nodeIds(): number[] {
    try {
      return fs.readdirSync(this.p('/sys/devices/system/node')).map((e) => /^node(\d+)$/.exec(e)?.[1]).filter((x): x is string => x !== undefined).map(Number).sort((a, b) => a - b);
    } catch {
      return [];
    }
  }

  private poolFile(sizeKb: number, node: number | null, f: string): string {
    return this.p(node === null ? `/sys/kernel/mm/hugepages/hugepages-${sizeKb}kB/${f}` : `/sys/devices/system/node/node${node}/hugepages/hugepages-${sizeKb}kB/${f}`);
  }

  private bump(sizeKb: number, node: number | null, nr: number, free: number): void {
    for (const [f, d] of [['nr_hugepages', nr], ['free_hugepages', free]] as const) {
      const file = this.poolFile(sizeKb, node, f);
      if (!fs.existsSync(file)) continue;
      fs.writeFileSync(file, `${Number(fs.readFileSync(file, 'utf8').trim()) + d}\n`);
    }
  }

  private count1(sizeKb: number, node: number | null, f: string): number {
    const file = this.poolFile(sizeKb, node, f);
    if (!fs.existsSync(file)) throw errno('ENOENT', `${file} does not exist`);
    return Number(fs.readFileSync(file, 'utf8').trim());
  }

  /** One page onto (or off) a node: its pool, the global pool and its unfragmented memory. */
  private page(sizeKb: number, node: number, delta: 1 | -1, withNodeFiles: boolean): void {
    if (withNodeFiles) this.bump(sizeKb, node, delta, delta);
    this.bump(sizeKb, null, delta, delta);
    this.contiguous.set(node, this.contiguousOf(node) - delta * sizeKb);
  }

  private resizePool(sizeKb: number, node: number | null, want: number): void {
    const nodes = this.nodeIds();
    const hasNodeFiles = nodes.length > 0 && fs.existsSync(this.poolFile(sizeKb, nodes[0], 'nr_hugepages'));
    const targets = node !== null ? [node] : hasNodeFiles ? nodes : [0];
    let cur = this.count1(sizeKb, node, 'nr_hugepages');
    if (want > cur) {
      let progress = true;
      while (cur < want && progress) {
        progress = false;
        for (const n of targets) {
          if (cur >= want || this.contiguousOf(n) < sizeKb) continue;
          this.page(sizeKb, n, 1, hasNodeFiles);
          cur++;
          progress = true;
        }
      }
      return;
    }
    for (const n of [...targets].reverse()) {
      while (cur > want && (hasNodeFiles ? this.count1(sizeKb, n, 'free_hugepages') : this.count1(sizeKb, null, 'free_hugepages')) > 0) {
        this.page(sizeKb, n, -1, hasNodeFiles);
        cur--;
      }
    }
  }

  write(hostPath: string, value: string): void {
    this.count++;
    this.writes.push(`${hostPath} ← ${JSON.stringify(value)}`);
    const injected = this.count === this.opts.failAtWrite ? (this.opts.failCode ?? 'EIO') : this.opts.failWhen?.(hostPath, value);
    if (injected) throw errno(injected, `injected failure of write #${this.count} to ${hostPath}`);
    let m: RegExpExecArray | null;
    if ((m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/driver_override$/.exec(hostPath))) {
      const addr = this.known(m[1]);
      const v = value.endsWith('\n') ? value.slice(0, -1) : value;
      if (v.includes('\n')) throw errno('EINVAL', 'driver_override takes one name');
      fs.writeFileSync(this.p(`${this.devDir(addr)}/driver_override`), `${v === '' ? '(null)' : v}\n`);
      return;
    }
    if ((m = /^\/sys\/bus\/pci\/drivers\/([^/]+)\/(unbind|bind)$/.exec(hostPath))) {
      const [, driver, op] = m;
      if (!this.registered(driver)) throw errno('ENOENT', `${hostPath} does not exist`);
      const addr = this.known(value.trim());
      const cur = this.driverOf(addr);
      if (op === 'unbind') {
        if (cur !== driver) throw errno('ENODEV', `${addr} is not bound to ${driver}`);
        this.detach(addr);
      } else {
        if (cur) throw errno('EBUSY', `${addr} is bound to ${cur}`);
        if (!this.matches(addr, driver)) throw errno('ENODEV', `${driver} does not match ${addr}`);
        this.attach(addr, driver);
      }
      return;
    }
    if ((m = /^\/sys\/bus\/pci\/devices\/([^/]+)\/rom$/.exec(hostPath))) {
      const addr = this.known(m[1]);
      const file = this.p(`${this.devDir(addr)}/rom`);
      if (!fs.existsSync(file)) throw errno('ENOENT', `${hostPath} does not exist (no ROM BAR)`);
      const enable = !value.startsWith('0');
      this.romState.set(addr, enable);
      fs.writeFileSync(file, enable ? (this.opts.roms?.[addr] ?? new Uint8Array(0)) : new Uint8Array(0));
      return;
    }
    if (hostPath === '/sys/bus/pci/drivers_probe') {
      const addr = this.known(value.trim());
      if (this.driverOf(addr)) return;
      const o = this.overrideOf(addr);
      const want = o ?? this.defaults.get(addr) ?? null;
      if (want && this.registered(want)) this.attach(addr, want);
      return;
    }
    if ((m = /^\/sys\/class\/vtconsole\/(vtcon\d+)\/bind$/.exec(hostPath))) {
      const name = fs.readFileSync(this.p(`/sys/class/vtconsole/${m[1]}/name`), 'utf8');
      if (name.startsWith('(S)') && value.trim() === '0') throw errno('EINVAL', `${m[1]} is a system console`);
      fs.writeFileSync(this.p(hostPath), `${value.trim()}\n`);
      return;
    }
    if ((m = /^\/sys\/bus\/platform\/drivers\/([^/]+)\/unbind$/.exec(hostPath))) {
      const link = this.p(`/sys/bus/platform/devices/${value.trim()}/driver`);
      let cur: string | null = null;
      try {
        cur = path.basename(fs.readlinkSync(link));
      } catch {
        /* unbound */
      }
      if (cur !== m[1]) throw errno('ENODEV', `${value.trim()} is not bound to ${m[1]}`);
      fs.unlinkSync(link);
      return;
    }
    if (hostPath === '/proc/sys/vm/compact_memory' && this.opts.hugepages) {
      if (value.trim() !== '1') throw errno('EINVAL', 'compact_memory takes 1');
      this.compactions++;
      for (const [n, kb] of Object.entries(this.opts.hugepages.compactedKb ?? {})) this.contiguous.set(Number(n), Math.max(this.contiguousOf(Number(n)), kb));
      return;
    }
    if ((m = /^\/sys\/(?:kernel\/mm|devices\/system\/node\/node(\d+))\/hugepages\/hugepages-(\d+)kB\/nr_hugepages$/.exec(hostPath)) && this.opts.hugepages) {
      if (!/^\d+\n?$/.test(value)) throw errno('EINVAL', `${hostPath} takes a number`);
      this.resizePool(Number(m[2]), m[1] === undefined ? null : Number(m[1]), Number(value.trim()));
      return;
    }
    throw new Error(`kernel fake: not handled write to ${hostPath} (${JSON.stringify(value)})`);
  }
}
