// `vfiokit snapshot`: capture exactly the files vfiokit reads into a tree that
// `--root` can read back, redacting identifying data. The HostRoot records
// every path touched while the normal readers run; this module copies them.
// Listed directories get every entry (symlinks as symlinks, other entries as
// empty placeholders) so existence checks replay exactly.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseConfigSpace } from '../model/config-space.js';
import { inspect } from './inspect.js';
import { HostRoot, type Touched } from './root.js';
import { DEV_DISK_BY_PARTUUID, DEV_DISK_BY_UUID, DMI_PRODUCT_UUID, ETC_HOSTNAME, ETC_MACHINE_ID, OS_RELEASE_PATHS, pciDevice, PROC_HOSTNAME, PROC_OSRELEASE, SYS, SYS_CLASS_NET } from './sysfs-paths.js';

/** Files that are identifiers and nothing else: never archived. */
const DROPPED = new Set([ETC_MACHINE_ID, ETC_HOSTNAME, PROC_HOSTNAME]);

export const REDACTED_MACHINE_ID = '00000000000000000000000000000000';
export const REDACTED_HOSTNAME = 'redacted-hostname';
/** MACs become the documentation address 00:00:5e:00:53:00 (RFC 7042), in the spelling they had. */
const REDACTED_MAC = '00005e005300';


interface CaptureResult {
  files: number;
  links: number;
  dirs: number;
  redactions: string[];
}

interface Redactor {
  /** Text of a file at `hostPath` (field rules first, then the identifier patterns). */
  file(hostPath: string, s: string): string;
  /** A path or link target. */
  name(s: string): string;
  notes: Set<string>;
}

/**
 * Names the system itself uses: a hostname equal to one of them identifies
 * nobody (Debian's installer names the host "debian", Proxmox's "pve"), so it
 * is dropped with the hostname files and left alone everywhere else: it is
 * also the distribution's ID, a kernel flavour, an LVM volume group…
 */
const COMMON_NAMES = ['localhost', 'debian', 'ubuntu', 'fedora', 'arch', 'archlinux', 'manjaro', 'pve', 'proxmox', 'linux', 'nixos', 'gentoo', 'opensuse', 'suse', 'rhel', 'centos', 'rocky', 'alma', 'pop-os', 'mint', 'unraid', 'truenas'];

/** Sysfs attributes holding a hardware address, serial or unique ID: replaced whatever they hold. */
/** (Network devices only: PCI slots have an `address` too, which is a PCI address.) */
const ADDRESS_ATTRS = new Set(['address', 'perm_address', 'perm_hwaddr', 'phys_port_id', 'phys_switch_id']);
const ID_ATTRS = new Set(['product_uuid', 'wwid', 'eui', 'nguid', 'uuid', 'serial', 'board_serial', 'product_serial', 'chassis_serial', 'cid']);

/**
 * A disk UUID as udev names it: the 8-4-4-4-12 form (ext4, xfs, btrfs, GPT
 * partitions), FAT's XXXX-XXXX, NTFS's 16 hex digits, MBR's PARTUUID
 * (8 hex digits, a dash, 2 hex digits). Anything else (LVM's base-62 IDs,
 * labels) is left as it is.
 */
const UUID_SHAPE = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{4}-[0-9a-f]{4}|[0-9a-f]{16}|[0-9a-f]{8}-[0-9a-f]{2})$/i;

/** `uuid`'s shape with zeros, ending in `n` (hex): 1 → 00000000-0000-0000-0000-000000000001. */
function standIn(uuid: string, n: number): string {
  const digits = uuid.replace(/-/g, '').length;
  const hex = n.toString(16).padStart(digits, '0').slice(-digits);
  let i = 0;
  return uuid.replace(/[0-9a-f]/gi, () => hex[i++]!);
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Every spelling of a MAC (12 hex digits): colon, dash, Cisco dots, bare; case-insensitive. */
function macSpellings(hex: string): string[] {
  const pairs = hex.match(/../g)!;
  const quads = hex.match(/..../g)!;
  return [pairs.join(':'), pairs.join('-'), quads.join('.'), hex];
}

/** `mac` (12 hex digits) written the way `like` is (separator and case). */
function macLike(like: string, mac: string): string {
  const sep = /[:.-]/.exec(like)?.[0];
  const out = sep === '.' ? mac.match(/..../g)!.join('.') : sep ? mac.match(/../g)!.join(sep) : mac;
  return /[A-F]/.test(like) ? out.toUpperCase() : out;
}

function makeRedactor(root: HostRoot): Redactor {
  const notes = new Set<string>();
  // Read without recording: what the redactor looks at is not archived.
  const facts = root.quietly(() => {
    const macs = new Set<string>();
    for (const n of root.tryList(SYS_CLASS_NET) ?? []) {
      for (const a of ['address', 'perm_address']) {
        const hex = (root.tryReadAttr(`${SYS_CLASS_NET}/${n}/${a}`) ?? '').replace(/[:.-]/g, '').toLowerCase();
        if (/^[0-9a-f]{12}$/.test(hex) && !/^(0{12}|f{12})$/.test(hex)) macs.add(hex);
      }
    }
    const osRelease = OS_RELEASE_PATHS.map((p) => root.tryReadText(p)).find((t) => t !== undefined) ?? '';
    const systemWords = new Set(COMMON_NAMES);
    for (const m of osRelease.matchAll(/^(ID|ID_LIKE|NAME|VERSION_CODENAME|VARIANT_ID)=["']?([^"'\n]*)/gm)) for (const w of m[2]!.toLowerCase().split(/[\s,]+/)) if (w) systemWords.add(w);
    for (const w of (root.tryReadAttr(PROC_OSRELEASE) ?? '').toLowerCase().split(/[-.+_]/)) if (w) systemWords.add(w);
    const hostnames = new Set<string>();
    for (const h of [root.tryReadAttr(ETC_HOSTNAME), root.tryReadAttr(PROC_HOSTNAME)]) {
      const full = (h ?? '').trim().toLowerCase();
      if (!full) continue;
      for (const n of [full, full.split('.')[0]!]) if (n.length >= 2 && !systemWords.has(n)) hostnames.add(n);
    }
    const ids = new Set<string>();
    for (const p of [ETC_MACHINE_ID, DMI_PRODUCT_UUID]) {
      const hex = (root.tryReadAttr(p) ?? '').replace(/-/g, '').toLowerCase();
      if (/^[0-9a-f]{32}$/.test(hex) && !/^0{32}$/.test(hex)) ids.add(hex);
    }
    // Filesystem and partition UUIDs (udev's names for them): they name this machine's disks.
    const uuids = new Set<string>();
    for (const d of [DEV_DISK_BY_UUID, DEV_DISK_BY_PARTUUID]) for (const n of root.tryList(d) ?? []) if (UUID_SHAPE.test(n)) uuids.add(n.toLowerCase());
    return { macs, hostnames, ids, uuids };
  });
  // Each disk UUID becomes a stand-in of the same shape (dashes where they were, the same case),
  // numbered in sorted order: the same UUID gets the same stand-in in fstab, the kernel command
  // line and the /dev/disk link names, so a root given as UUID= still replays to its device.
  const uuidStandIn = new Map([...facts.uuids].sort().map((u, i) => [u, standIn(u, i + 1)]));
  const uuidRe = uuidStandIn.size ? new RegExp(`(?<![0-9a-z])(${[...uuidStandIn.keys()].sort((a, b) => b.length - a.length).map(esc).join('|')})(?![0-9a-z])`, 'gi') : null;
  const disks = (t: string) => {
    if (!uuidRe) return t;
    return t.replace(uuidRe, (m) => {
      notes.add('disk UUIDs');
      const r = uuidStandIn.get(m.toLowerCase())!;
      return /[A-F]/.test(m) ? r.toUpperCase() : r;
    });
  };
  // Longest first, so a host's FQDN goes before its short name.
  const hostRe = facts.hostnames.size ? new RegExp(`(?<![A-Za-z0-9_-])(${[...facts.hostnames].sort((a, b) => b.length - a.length).map(esc).join('|')})(?![A-Za-z0-9_-])`, 'gi') : null;
  const idRe = facts.ids.size ? new RegExp(`(?<![0-9a-f])(${[...facts.ids].flatMap((h) => [h, `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`]).join('|')})(?![0-9a-f])`, 'gi') : null;
  // The host's own MACs in any spelling (a bare one too: enx<MAC> interface names); any other colon/dash/dot MAC,
  // with the hardware-type prefix of PXE's BOOTIF=01-… and DHCP client IDs.
  const knownMacRe = facts.macs.size ? new RegExp(`(?<![0-9a-f])(${[...facts.macs].flatMap(macSpellings).map(esc).join('|')})(?![0-9a-f])`, 'gi') : null;
  // Runs of hex pairs joined by one separator: 6 pairs are a MAC, 7 a MAC behind a hardware type
  // (PXE's BOOTIF=01-…, DHCP client IDs; also "off:" before ip='s MAC), 8 or more an EUI-64, GUID or serial.
  const pairRunRe = /(?<![0-9a-f])[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4,}(?![0-9a-f])/gi;
  const ciscoRe = /(?<![0-9a-f.])[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}(?![0-9a-f.])/gi;
  const ids = (t: string) => {
    if (!idRe) return t;
    return t.replace(idRe, (m) => {
      notes.add('machine ID');
      return m.includes('-') ? '00000000-0000-0000-0000-000000000000' : REDACTED_MACHINE_ID;
    });
  };
  const macs = (t: string) => {
    let out = knownMacRe
      ? t.replace(knownMacRe, (m) => {
          notes.add('MAC addresses');
          return macLike(m, REDACTED_MAC);
        })
      : t;
    out = out.replace(pairRunRe, (m: string, sep: string) => {
      const pairs = m.split(sep);
      if (pairs.length > 7) {
        notes.add('hardware IDs');
        return m.replace(/[0-9a-f]/gi, '0');
      }
      const mac = pairs.slice(-6).join(sep);
      if (mac.replace(/[:-]/g, '').toLowerCase() === REDACTED_MAC) return m;
      notes.add('MAC addresses');
      return [...pairs.slice(0, pairs.length - 6), macLike(mac, REDACTED_MAC)].join(sep);
    });
    out = out.replace(ciscoRe, (m: string) => {
      if (m.replace(/\./g, '').toLowerCase() === REDACTED_MAC) return m;
      notes.add('MAC addresses');
      return macLike(m, REDACTED_MAC);
    });
    return out;
  };
  const text = (t: string) => {
    let out = disks(macs(ids(t)));
    if (hostRe)
      out = out.replace(hostRe, () => {
        notes.add('hostname');
        return REDACTED_HOSTNAME;
      });
    return out;
  };
  return {
    notes,
    name: (s) => disks(macs(ids(s))),
    file(hostPath, t) {
      const base = path.posix.basename(hostPath);
      if (hostPath.startsWith(`${SYS}/`) && hostPath.includes('/net/') && ADDRESS_ATTRS.has(base) && /[0-9a-f]/i.test(t)) {
        notes.add('MAC addresses');
        const v = t.trim();
        return (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(v) ? macLike(v, REDACTED_MAC) : v.replace(/[0-9a-f]/gi, '0')) + '\n';
      }
      if (hostPath.startsWith(`${SYS}/`) && ID_ATTRS.has(base)) {
        notes.add('serial numbers');
        // A UUID, EUI or WWN keeps its shape (zeros); anything else becomes REDACTED.
        return /^[0-9a-f:.\s-]+$/i.test(t.trim()) && /[0-9a-f]{4}/i.test(t) ? t.replace(/[0-9a-f]/gi, '0') : 'REDACTED\n';
      }
      return text(t);
    },
  };
}

/** Run every reader against `root`, recording what was touched. */
function recordReads(root: HostRoot): Map<string, Touched> {
  const rec = root.record();
  const snap = inspect(root);
  // inspect takes drivers from the drivers' directories; runtime binding
  // (src/runtime/state.ts) reads each device's own `driver` link, so the
  // archive holds those too (recorded under the device's real directory, as
  // the archive lays it out).
  for (const d of snap.pci) {
    const dir = root.tryResolveLink(pciDevice(d.address));
    if (dir) root.tryReadLink(`${dir}/driver`);
  }
  return rec;
}

export function captureTree(root: HostRoot, dest: string): CaptureResult {
  const touched = recordReads(root);
  const red = makeRedactor(root);
  const res: CaptureResult = { files: 0, links: 0, dirs: 0, redactions: [] };
  const outPath = (hostPath: string) => path.join(dest, red.name(hostPath));
  const ensureDir = (p: string) => fs.mkdirSync(p, { recursive: true });
  const done = new Set<string>();

  const copyLink = (hostPath: string) => {
    const target = fs.readlinkSync(root.linkPath(hostPath));
    const p = outPath(hostPath);
    ensureDir(path.dirname(p));
    try { fs.unlinkSync(p); } catch { /* absent */ }
    fs.symlinkSync(red.name(target), p);
    res.links++;
  };
  const copyFile = (hostPath: string) => {
    const src = root.path(hostPath);
    let data: Buffer;
    try {
      data = fs.readFileSync(src);
    } catch {
      return;
    }
    const base = path.posix.basename(hostPath);
    if (base === 'config' && hostPath.startsWith(`${SYS}/`)) {
      const parsed = parseConfigSpace(data);
      const off = parsed?.caps?.serialNumberOffset;
      if (off != null) {
        data = Buffer.from(data);
        data.fill(0, off + 4, off + 12);
        red.notes.add('device serial numbers');
      }
    } else if (/serial/i.test(base) && !ID_ATTRS.has(base)) {
      data = Buffer.from('REDACTED\n');
      red.notes.add('serial numbers');
    } else if (!data.includes(0)) {
      data = Buffer.from(red.file(hostPath, data.toString('latin1')), 'latin1');
    }
    const p = outPath(hostPath);
    ensureDir(path.dirname(p));
    fs.writeFileSync(p, data, { mode: fs.statSync(src).mode & 0o777 });
    res.files++;
  };

  for (const [hostPath, kind] of [...touched].sort(([a], [b]) => a.localeCompare(b))) {
    if (done.has(hostPath) || DROPPED.has(hostPath)) continue;
    done.add(hostPath);
    if (kind === 'link') copyLink(hostPath);
    else if (kind === 'file') copyFile(hostPath);
    else if (kind === 'marker') {
      const p = outPath(hostPath);
      ensureDir(path.dirname(p));
      let mode = 0o644;
      let isDir = false;
      try {
        const st = fs.statSync(root.path(hostPath));
        isDir = st.isDirectory();
        mode = st.mode & 0o777;
      } catch { /* keep defaults */ }
      if (isDir) ensureDir(p);
      else if (!fs.existsSync(p)) fs.writeFileSync(p, '', { mode });
      res.files++;
    } else {
      ensureDir(outPath(hostPath));
      res.dirs++;
    }
  }
  // Placeholders so directory listings replay: every entry of a listed dir.
  for (const [hostPath, kind] of touched) {
    if (kind !== 'dir') continue;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(root.path(hostPath), { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      const child = path.posix.join(hostPath, e.name);
      if (touched.has(child) || DROPPED.has(child)) continue;
      const p = outPath(child);
      if (fs.existsSync(p) || isSymlink(p)) continue;
      if (e.isSymbolicLink()) copyLink(child);
      else if (e.isDirectory()) ensureDir(p);
      else {
        let mode = 0o444;
        try { mode = fs.statSync(root.path(child)).mode & 0o777; } catch { /* default */ }
        fs.writeFileSync(p, '', { mode });
      }
    }
  }
  res.redactions = [...red.notes].sort();
  return res;
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export async function writeSnapshotArchive(root: HostRoot, outFile: string): Promise<CaptureResult> {
  const tar = await import('tar');
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-snapshot-'));
  try {
    const res = captureTree(root, stage);
    const tmp = `${outFile}.tmp-${process.pid}`;
    await tar.c({ gzip: true, file: tmp, cwd: stage, portable: true }, fs.readdirSync(stage));
    fs.renameSync(tmp, outFile);
    return res;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}
