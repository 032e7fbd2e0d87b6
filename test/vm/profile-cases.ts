// The invocations every profile × fixture host test runs (goldens, schema, real libvirt).

import { GAMING_HOSTS } from './hosts.js';

const DEVICE: Record<string, string> = { 'ryzen-5950x': '10de:2204', 'i9-12900k': '03:00.0', 'dual-xeon': '81:00.0' };
/** Per profile: the flags a user of it would type. */
export const PROFILE_ARGS: Record<string, string[]> = {
  win11: ['--os', 'win11', '--memory', '16G', '--disk', '/var/lib/libvirt/images/win11.qcow2', '--cdrom', '/var/lib/libvirt/iso/Win11_23H2.iso', '--input', 'auto', '--audio', 'pulseaudio', '--looking-glass', '2560x1440', '--hugepages'],
  win10: ['--os', 'win10', '--memory', '8G', '--disk', '/var/lib/libvirt/images/win10.qcow2', '--looking-glass', 'auto'],
  linux: ['--os', 'linux', '--memory', '8G', '--disk', '/dev/nvme1n1'],
};
/** Hosts without a desktop session or input devices get the profile without them. */
const forHost = (host: string, args: string[]) => {
  if (host !== 'dual-xeon') return args;
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--input' || args[i] === '--audio') i++;
    else out.push(args[i]);
  }
  return out;
};
export const profileCases = () => Object.keys(GAMING_HOSTS).flatMap((host) => Object.keys(PROFILE_ARGS).map((os) => ({ host, os, args: ['--device', DEVICE[host], ...forHost(host, PROFILE_ARGS[os])] })));

