// The one door through which runtime binding writes to sysfs. Tests pass the
// kernel fake (test/helpers/kernel-fake.ts) instead of the real writer, so
// every write the runtime makes is observable and its kernel side effects
// (driver links moving, /dev/vfio/N appearing) are modelled.
// Must not: write anything outside /sys, or write into a tree that is not a
// live sysfs (a --root snapshot has no kernel behind it).

import * as fs from 'node:fs';
import { PreconditionError } from '../errors.js';
import type { HostRoot } from '../host/root.js';
import { PROC, SYS } from '../host/sysfs-paths.js';

export interface SysfsWriter {
  /** Write `value` to the sysfs attribute at host path `hostPath` (one write, like `echo -n`). Throws errno-style errors (code EBUSY, ENODEV…). */
  write(hostPath: string, value: string): void;
}

const ERRNO_TEXT: Record<string, string> = {
  EBUSY: 'device or resource busy',
  ENODEV: 'no such device (the driver does not match, or the device is not bound to it)',
  ENOENT: 'no such file',
  EACCES: 'permission denied (run as root)',
  EPERM: 'operation not permitted (run as root)',
  EINVAL: 'invalid argument',
  EIO: 'input/output error',
};

/** "writing "vfio-pci" to …/driver_override failed: EBUSY (device or resource busy)" */
export function describeWriteError(hostPath: string, value: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return `writing ${JSON.stringify(value)} to ${hostPath} failed: ${code ? `${code} (${ERRNO_TEXT[code] ?? (e as Error).message})` : (e as Error)?.message ?? String(e)}`;
}

/** The real writer: open O_WRONLY (never create), one write, close. Only for the live root. */
export function realSysfsWriter(root: HostRoot): SysfsWriter {
  if (!root.isLive) {
    throw new PreconditionError(
      'E_NOT_LIVE',
      `runtime binding changes the running kernel, but --root ${root.dir} is a directory tree with no kernel behind it`,
      'run bind/unbind without --root on the host itself',
    );
  }
  return {
    write(hostPath, value) {
      if (!hostPath.startsWith(`${SYS}/`) && !hostPath.startsWith(`${PROC}/`)) throw new Error(`refusing a kernel attribute write outside ${SYS} and ${PROC}: ${hostPath}`);
      const fd = fs.openSync(root.path(hostPath), fs.constants.O_WRONLY);
      try {
        fs.writeSync(fd, value);
      } finally {
        fs.closeSync(fd);
      }
    },
  };
}
