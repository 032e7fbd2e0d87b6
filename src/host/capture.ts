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
import { ETC_HOSTNAME, ETC_MACHINE_ID, pciDevice, PROC_HOSTNAME, SYS } from './sysfs-paths.js';

export const REDACTED_MACHINE_ID = '00000000000000000000000000000000';
export const REDACTED_HOSTNAME = 'redacted-hostname';


export interface CaptureResult {
  files: number;
  links: number;
  dirs: number;
  redactions: string[];
}

interface Redactor {
  text(s: string): string;
  name(s: string): string;
  notes: Set<string>;
}

function makeRedactor(root: HostRoot): Redactor {
  const notes = new Set<string>();
  const machineId = (root.tryReadAttr(ETC_MACHINE_ID) ?? '').toLowerCase();
  const hostnames = [root.tryReadAttr(ETC_HOSTNAME), root.tryReadAttr(PROC_HOSTNAME)]
    .filter((h): h is string => Boolean(h && h.length >= 2 && h !== 'localhost'))
    .filter((h, i, a) => a.indexOf(h) === i);
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const hostRe = hostnames.length ? new RegExp(`\\b(${hostnames.map(esc).join('|')})\\b`, 'g') : null;
  const mac = /\b[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\b/g;
  const replaceId = (s: string) => {
    if (machineId.length === 32 && s.includes(machineId)) {
      notes.add('machine ID');
      return s.split(machineId).join(REDACTED_MACHINE_ID);
    }
    return s;
  };
  return {
    notes,
    name: replaceId,
    text(s: string) {
      let t = replaceId(s);
      if (hostRe && hostRe.test(t)) {
        notes.add('hostname');
        t = t.replace(hostRe, REDACTED_HOSTNAME);
      }
      if (mac.test(t)) {
        notes.add('MAC addresses');
        t = t.replace(mac, 'xx:xx:xx:xx:xx:xx');
      }
      return t;
    },
  };
}

/** Run every reader against `root`, recording what was touched. */
export function recordReads(root: HostRoot): Map<string, Touched> {
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
    } else if (/serial/i.test(base)) {
      data = Buffer.from('REDACTED\n');
      red.notes.add('serial numbers');
    } else if (!data.includes(0)) {
      data = Buffer.from(red.text(data.toString('latin1')), 'latin1');
    }
    const p = outPath(hostPath);
    ensureDir(path.dirname(p));
    fs.writeFileSync(p, data, { mode: fs.statSync(src).mode & 0o777 });
    res.files++;
  };

  for (const [hostPath, kind] of [...touched].sort(([a], [b]) => a.localeCompare(b))) {
    if (done.has(hostPath) || hostPath === ETC_MACHINE_ID || hostPath === ETC_HOSTNAME || hostPath === PROC_HOSTNAME) continue;
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
      if (touched.has(child) || child === ETC_MACHINE_ID || child === ETC_HOSTNAME) continue;
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
