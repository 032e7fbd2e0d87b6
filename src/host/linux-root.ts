// Is a --root directory a Linux root at all? A directory without sysfs, the
// kernel command line and an os-release is a typo or a wrong inventory
// variable, and reading it would only report "no such device".

import * as fs from 'node:fs';
import { UsageError } from '../errors.js';
import type { HostRoot } from './root.js';
import { ETC_OS_RELEASE, LINUX_ROOT_MARKERS, OS_RELEASE_PATHS } from './sysfs-paths.js';

export function assertLinuxRoot(root: HostRoot): void {
  if (root.isLive) return;
  if (!fs.existsSync(root.dir) || !fs.statSync(root.dir).isDirectory())
    throw new UsageError(`--root ${root.dir} does not exist or is not a directory`, 'pass the directory of a host tree or an extracted `vfiokit snapshot` archive', 'E_ROOT_INVALID');
  const missing = [...LINUX_ROOT_MARKERS.filter((p) => !fs.existsSync(root.path(p))), ...(OS_RELEASE_PATHS.some((p) => fs.existsSync(root.path(p))) ? [] : [ETC_OS_RELEASE])];
  if (missing.length)
    throw new UsageError(`--root ${root.dir} is not a Linux root: ${missing.join(', ')} missing`, 'a root must hold sysfs (/sys/bus/pci/devices), /proc/cmdline and /etc/os-release: pass / , a mounted host tree or an extracted `vfiokit snapshot` archive', 'E_ROOT_INVALID');
}
