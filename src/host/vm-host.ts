// Host facts guest profiles (`vfiokit vm --os …`) plan from: the TPM
// emulator, virtio-win driver ISOs, evdev input devices, the Looking Glass
// kvmfr module and desktop sessions with their audio sockets. Read only.

import type { DesktopSession, VmHostInfo } from '../model/snapshot.js';
import type { HostRoot } from './root.js';
import { DEV, DEV_INPUT_BY_ID, ETC_PASSWD, RUN_USER, SWTPM_PATHS, SWTPM_SETUP_PATHS, VIRTIO_WIN_ISOS, runtimeDir } from './sysfs-paths.js';

export function readVmHost(root: HostRoot, loadedModules: string[]): VmHostInfo {
  const users = new Map<number, string>();
  for (const line of (root.tryReadText(ETC_PASSWD) ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && /^\d+$/.test(f[2])) users.set(Number(f[2]), f[0]);
  }
  const sessions: DesktopSession[] = (root.tryList(RUN_USER) ?? [])
    .filter((n) => /^\d+$/.test(n) && Number(n) >= 1000 && Number(n) < 65534)
    .map(Number)
    .sort((a, b) => a - b)
    .map((uid) => {
      const dir = runtimeDir(uid);
      return { uid, user: users.get(uid) ?? null, runtimeDir: dir, pipewire: root.probe(`${dir}/pipewire-0`), pulse: root.probe(`${dir}/pulse/native`) };
    });
  return {
    swtpm: root.findExecutable(SWTPM_PATHS),
    swtpmSetup: root.findExecutable(SWTPM_SETUP_PATHS),
    virtioWin: VIRTIO_WIN_ISOS.filter((p) => root.probe(p)),
    inputById: (root.tryList(DEV_INPUT_BY_ID) ?? []).sort(),
    kvmfr: { loaded: loadedModules.includes('kvmfr'), devices: (root.tryList(DEV) ?? []).filter((n) => /^kvmfr\d+$/.test(n)).sort() },
    sessions,
  };
}
