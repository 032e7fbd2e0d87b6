// A minimal writer for the kernel's initramfs format (cpio "newc", SVR4 without
// CRC), enough for directories, regular files and symlinks.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(len: number): Buffer {
  return Buffer.alloc((4 - (len % 4)) % 4);
}

function record(ino: number, mode: number, name: string, data: Buffer, nlink: number): Buffer {
  const nameBuf = Buffer.from(name + '\0');
  const header =
    '070701' +
    hex8(ino) +
    hex8(mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(nlink) +
    hex8(0) + // mtime: fixed, so the archive is reproducible
    hex8(data.length) +
    hex8(0) + // devmajor
    hex8(0) + // devminor
    hex8(0) + // rdevmajor
    hex8(0) + // rdevminor
    hex8(nameBuf.length) +
    hex8(0); // check
  const h = Buffer.from(header, 'ascii');
  return Buffer.concat([h, nameBuf, pad4(h.length + nameBuf.length), data, pad4(data.length)]);
}

/** Serialises entries (paths relative, without a leading slash) into a newc archive. */
export function cpioNewc(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (!name) throw new Error('cpio: empty path');
    if (e.type === 'dir') parts.push(record(ino++, S_IFDIR | (e.mode ?? 0o755), name, Buffer.alloc(0), 2));
    else if (e.type === 'file') parts.push(record(ino++, S_IFREG | (e.mode ?? 0o644), name, e.data, 1));
    else parts.push(record(ino++, S_IFLNK | 0o777, name, Buffer.from(e.target), 1));
  }
  parts.push(record(0, 0, 'TRAILER!!!', Buffer.alloc(0), 1));
  return Buffer.concat(parts);
}
