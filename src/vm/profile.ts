// Guest profiles (`vm --os win11|win10|linux`) and the desktop devices a
// gaming VM needs: TPM 2.0, Secure Boot firmware, Hyper-V enlightenments,
// the virtio-win driver disc, evdev keyboard/mouse, audio into the desktop
// session, and the Looking Glass shared-memory device. Pure: every fact comes
// from the snapshot (HostSnapshot.vmHost, .firmware), every refusal is a
// Problem with a fix.

import { UsageError, type Problem } from '../errors.js';
import type { HostSnapshot, OvmfFirmware } from '../model/snapshot.js';

const GUEST_OS = ['win11', 'win10', 'linux'] as const;
type GuestOs = (typeof GUEST_OS)[number];

export interface ProfileIntent {
  os?: string;
  /** Overrides: undefined = the profile's default. */
  tpm?: boolean;
  secureBoot?: boolean;
  hyperv?: boolean;
  /** --virtio-win PATH (absolute) with whether the file is an ISO 9660 image (null: unreadable), or 'none'. */
  virtioWin?: { path: string; iso: boolean | null } | 'none';
  /** --input: 'auto' or paths. */
  input?: string[];
  audio?: string;
  /** --looking-glass [WxH]; '' = the default resolution. */
  lookingGlass?: string;
  /** --looking-glass-size (MiB, as typed: 64 or 64M). */
  lookingGlassSize?: string;
}

interface SecureFirmware {
  code: string;
  varsTemplate: string;
  /** Chosen by libvirt from descriptors (<firmware> features) or named explicitly. */
  viaDescriptor: boolean;
}

interface EvdevInput {
  path: string;
  kind: 'keyboard' | 'mouse' | 'other';
}

interface AudioChoice {
  backend: 'pipewire' | 'pulseaudio';
  uid: number;
  user: string | null;
  runtimeDir: string;
  /** PulseAudio protocol socket QEMU connects to (PipeWire serves it through pipewire-pulse). */
  server: string;
}

interface LookingGlass {
  width: number;
  height: number;
  sizeMib: number;
  /** /dev/kvmfrN when the module is loaded, else a /dev/shm file. */
  path: string;
  kvmfr: boolean;
  owner: string | null;
}

export interface GuestProfile {
  os: GuestOs | null;
  hyperv: boolean;
  /** Secure Boot firmware with Microsoft keys (win11), null otherwise. */
  secureBoot: SecureFirmware | null;
  /** Restrict libvirt's firmware auto-selection to non-Secure-Boot builds. */
  plainFirmwareOnly: boolean;
  smm: boolean;
  tpm: boolean;
  virtioWin: string | null;
  inputs: EvdevInput[];
  audio: AudioChoice | null;
  lookingGlass: LookingGlass | null;
}

interface ProfilePlan {
  profile: GuestProfile;
  problems: Problem[];
  warnings: string[];
  notes: string[];
}

function parseGuestOs(text: string | undefined): GuestOs | null {
  if (text === undefined) return null;
  if ((GUEST_OS as readonly string[]).includes(text)) return text as GuestOs;
  throw new UsageError(`--os '${text}' is not a guest profile`, `use --os ${GUEST_OS.join(', --os ')} (or leave it out for the plain passthrough skeleton)`, 'E_BAD_OS');
}

/** Looking Glass frame buffer size: w × h × 4 bytes (8 for HDR) × 2 frames, in MiB, + 10 MiB, rounded up to a power of two (reference §16.1). */
export function lookingGlassMib(width: number, height: number, hdr = false): number {
  const mib = (width * height * (hdr ? 8 : 4) * 2) / (1024 * 1024) + 10;
  let p = 1;
  while (p < mib) p *= 2;
  return p;
}

export function parseResolution(text: string): { width: number; height: number } {
  const m = /^(\d{3,5})x(\d{3,5})$/i.exec(text.trim());
  if (!m || Number(m[1]) < 320 || Number(m[2]) < 200 || Number(m[1]) > 16384 || Number(m[2]) > 16384) {
    throw new UsageError(`--looking-glass '${text}' is not a resolution`, 'give the guest display resolution as WIDTHxHEIGHT, e.g. --looking-glass 2560x1440 (default 1920x1080)', 'E_BAD_RESOLUTION');
  }
  return { width: Number(m[1]), height: Number(m[2]) };
}

function parseMib(text: string): number {
  const m = /^(\d{1,5})\s*(M|MiB|MB)?$/i.exec(text.trim());
  if (!m || Number(m[1]) < 1) throw new UsageError(`--looking-glass-size '${text}' is not a size in MiB`, 'give the shared memory size in MiB, a power of two, e.g. --looking-glass-size 64', 'E_BAD_SIZE');
  return Number(m[1]);
}

/** Which package installs Secure Boot OVMF, by distribution. */
function ovmfPackage(s: HostSnapshot): string {
  const ids = [s.os.id ?? '', ...s.os.idLike];
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'ovmf (apt install ovmf: /usr/share/OVMF/OVMF_CODE_4M.ms.fd with OVMF_VARS_4M.ms.fd)';
  if (ids.some((i) => ['fedora', 'rhel', 'centos'].includes(i))) return 'edk2-ovmf (dnf install edk2-ovmf)';
  if (ids.includes('arch')) return 'edk2-ovmf (pacman -S edk2-ovmf)';
  if (ids.some((i) => i.startsWith('opensuse') || i === 'suse')) return 'qemu-ovmf-x86_64 (zypper install qemu-ovmf-x86_64)';
  return 'ovmf (Debian/Ubuntu), edk2-ovmf (Fedora/Arch) or qemu-ovmf-x86_64 (openSUSE)';
}

function swtpmPackage(s: HostSnapshot): string {
  const ids = [s.os.id ?? '', ...s.os.idLike];
  if (ids.some((i) => ['debian', 'ubuntu'].includes(i))) return 'apt install swtpm swtpm-tools';
  if (ids.some((i) => ['fedora', 'rhel', 'centos'].includes(i))) return 'dnf install swtpm swtpm-tools';
  if (ids.includes('arch')) return 'pacman -S swtpm';
  return 'install swtpm and swtpm-tools (swtpm_setup) from your distribution';
}

const usable = (f: OvmfFirmware) => f.exists !== false;

function chooseSecureFirmware(s: HostSnapshot): SecureFirmware | null {
  const sb = s.firmware.ovmf.filter((f) => usable(f) && f.secureBoot && f.enrolledKeys && f.varsTemplate);
  const d = sb.find((f) => f.descriptor !== null);
  if (d) return { code: d.code, varsTemplate: d.varsTemplate!, viaDescriptor: true };
  const w = sb[0];
  return w ? { code: w.code, varsTemplate: w.varsTemplate!, viaDescriptor: false } : null;
}

const EVENT_NAME = /-event-/;
const inputKind = (p: string): EvdevInput['kind'] => (/-event-kbd$/.test(p) ? 'keyboard' : /-event-mouse$/.test(p) ? 'mouse' : 'other');

export function planProfile(s: HostSnapshot, name: string, intent: ProfileIntent): ProfilePlan {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const os = parseGuestOs(intent.os);
  const windows = os === 'win11' || os === 'win10';
  const v = s.vmHost;

  // Hyper-V: on for Windows and for the plain skeleton (as before), off for Linux.
  const hyperv = intent.hyperv ?? os !== 'linux';

  // Secure Boot and SMM.
  const wantSb = intent.secureBoot ?? os === 'win11';
  let secureBoot: SecureFirmware | null = null;
  if (wantSb) {
    secureBoot = chooseSecureFirmware(s);
    if (!secureBoot) {
      problems.push({
        code: 'E_NO_SECURE_BOOT_FIRMWARE',
        subject: 'firmware',
        message: `${os === 'win11' ? 'Windows 11 needs' : '--secure-boot on needs'} UEFI firmware with Secure Boot and Microsoft's keys enrolled, and this host has none (no firmware descriptor with the secure-boot and enrolled-keys features, no known OVMF Secure Boot build)`,
        hint: `install ${ovmfPackage(s)}${os === 'win11' ? ', or pass --secure-boot off (Windows 11 setup then refuses unless its checks are bypassed)' : ''}`,
      });
    } else notes.push(secureBoot.viaDescriptor ? `firmware: Secure Boot with Microsoft keys enrolled (${secureBoot.code}); libvirt selects it from its descriptor by the secure-boot and enrolled-keys features, and copies ${secureBoot.varsTemplate} into this VM's own NVRAM` : `firmware: Secure Boot with Microsoft keys enrolled: ${secureBoot.code}, NVRAM copied from ${secureBoot.varsTemplate} (no firmware descriptors, so named explicitly)`);
  }
  const smm = secureBoot !== null;

  // TPM 2.0.
  const tpm = intent.tpm ?? os === 'win11';
  if (tpm) {
    if (!v.swtpm) problems.push({ code: 'E_SWTPM_MISSING', subject: 'swtpm', message: `${os === 'win11' && intent.tpm === undefined ? 'Windows 11 needs a TPM 2.0; libvirt emulates it with' : 'the emulated TPM needs'} swtpm, which is not installed (no swtpm in /usr/bin or /usr/local/bin)`, hint: `${swtpmPackage(s)}${os === 'win11' ? ', or pass --tpm off' : ''}` });
    else notes.push(`TPM 2.0: CRB model, emulated by swtpm (libvirt starts it and keeps its state in /var/lib/libvirt/swtpm/<uuid>)${v.swtpmSetup ? '' : '; swtpm_setup is missing (swtpm-tools): libvirt needs it to create the TPM state on first start'}`);
  }

  // virtio-win driver disc.
  let virtioWin: string | null = null;
  if (intent.virtioWin === 'none') virtioWin = null;
  else if (intent.virtioWin) {
    const vw = intent.virtioWin;
    if (vw.iso !== true) problems.push({ code: 'E_VIRTIO_WIN_NOT_ISO', subject: vw.path, message: vw.iso === null ? `--virtio-win ${vw.path} cannot be read` : `--virtio-win ${vw.path} is not an ISO 9660 image (no CD001 signature at byte 32769)`, hint: 'download the stable virtio-win ISO (https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/stable-virtio/virtio-win.iso) and pass its path, or --virtio-win none' });
    else virtioWin = vw.path;
  } else if (windows) {
    virtioWin = v.virtioWin[0] ?? null;
    if (!virtioWin) warnings.push(`no virtio-win driver ISO found (${'looked in /usr/share/virtio-win, /usr/share/virtio, /var/lib/libvirt/images, /var/lib/libvirt/boot'}): Windows setup cannot see the virtio disk without it; download virtio-win.iso (https://fedorapeople.org/groups/virt/virtio-win/direct-downloads/stable-virtio/virtio-win.iso) and pass --virtio-win PATH`);
  }
  if (virtioWin && windows) {
    const w = os === 'win11' ? 'w11' : 'w10';
    notes.push(`virtio-win ${virtioWin} is the second CD-ROM: at "Where do you want to install Windows?" choose Load driver → the virtio-win disc → viostor\\${w}\\amd64 (the virtio disk); after setup run virtio-win-guest-tools.exe on that disc for NetKVM (network), the QEMU guest agent and the other drivers`);
  }

  // Input.
  const inputs: EvdevInput[] = [];
  if (intent.input?.length) {
    if (intent.input.length === 1 && intent.input[0] === 'auto') {
      const kbd = v.inputById.filter((n) => /-event-kbd$/.test(n));
      const mouse = v.inputById.filter((n) => /-event-mouse$/.test(n));
      if (!kbd.length && !mouse.length) problems.push({ code: 'E_NO_INPUT_DEVICES', subject: '/dev/input/by-id', message: '--input auto found no keyboard or mouse event device in /dev/input/by-id (no *-event-kbd or *-event-mouse entry)', hint: 'plug in the USB keyboard and mouse (PS/2 and some wireless receivers have no by-id entry), or name devices: --input /dev/input/by-path/…-event-kbd' });
      for (const n of [...kbd.slice(0, 1), ...mouse.slice(0, 1)]) inputs.push({ path: `/dev/input/by-id/${n}`, kind: inputKind(n) });
      if (kbd.length > 1 || mouse.length > 1) warnings.push(`--input auto took the first keyboard and mouse of ${[...kbd, ...mouse].join(', ')}: name others with --input PATH,PATH`);
    } else {
      for (const p of intent.input) {
        const base = p.split('/').pop() ?? '';
        const byId = p.startsWith('/dev/input/by-id/') || p.startsWith('/dev/input/by-path/');
        const evdev = /^\/dev\/input\/event\d+$/.test(p) || (byId && EVENT_NAME.test(base));
        if (!evdev) problems.push({ code: 'E_NOT_EVENT_DEVICE', subject: p, message: `--input ${p} is not an evdev event device (libvirt's evdev passthrough needs /dev/input/eventN or a /dev/input/by-id/…-event-… link)`, hint: `pick one of: ${v.inputById.filter((n) => EVENT_NAME.test(n)).map((n) => `/dev/input/by-id/${n}`).join(', ') || '(none found: ls /dev/input/by-id)'}` });
        else if (p.startsWith('/dev/input/by-id/') && !v.inputById.includes(base)) problems.push({ code: 'E_NOT_EVENT_DEVICE', subject: p, message: `--input ${p} does not exist on this host`, hint: `pick one of: ${v.inputById.filter((n) => EVENT_NAME.test(n)).map((n) => `/dev/input/by-id/${n}`).join(', ') || '(none found)'}` });
        else inputs.push({ path: p, kind: inputKind(p) });
      }
    }
    if (inputs.length) notes.push(`input: ${inputs.map((i) => `${i.path} (${i.kind})`).join(', ')} passed with evdev; press both Ctrl keys together to switch keyboard and mouse between host and guest (grabToggle ctrl-ctrl). The guest owns them while it runs: keep another way into the host (ssh)`);
  }

  // Audio.
  let audio: AudioChoice | null = null;
  const audioMode = intent.audio ?? 'none';
  if (!['pipewire', 'pulseaudio', 'none'].includes(audioMode)) throw new UsageError(`--audio '${audioMode}' is not an audio mode`, 'use --audio pipewire, --audio pulseaudio or --audio none (a passed GPU\'s HDMI/DP audio needs nothing)', 'E_BAD_AUDIO');
  if (audioMode !== 'none') {
    const sess = v.sessions.find((x) => (audioMode === 'pipewire' ? x.pipewire && x.pulse : x.pulse));
    if (!sess) {
      problems.push({
        code: 'E_NO_AUDIO_SESSION',
        subject: 'audio',
        message: `--audio ${audioMode}: no desktop session with ${audioMode === 'pipewire' ? 'a PipeWire socket and its PulseAudio server (pipewire-0 and pulse/native)' : 'a PulseAudio socket (pulse/native)'} under /run/user/UID`,
        hint: audioMode === 'pipewire' ? 'log into the desktop and make sure pipewire-pulse runs (systemctl --user enable --now pipewire-pulse.socket), or use --audio none' : 'log into the desktop session whose sound the guest should use, or use --audio none',
      });
    } else {
      audio = { backend: audioMode as AudioChoice['backend'], uid: sess.uid, user: sess.user, runtimeDir: sess.runtimeDir, server: `${sess.runtimeDir}/pulse/native` };
      notes.push(`audio: ich9 HDA into ${sess.user ?? `UID ${sess.uid}`}'s ${audioMode === 'pipewire' ? 'PipeWire (through its PulseAudio server, which every libvirt and QEMU version speaks)' : 'PulseAudio'} at ${audio.server}; QEMU must run as that user to use the socket (qemu:///session, or user = "${sess.user ?? sess.uid}" in /etc/libvirt/qemu.conf)`);
    }
  }
  if (audio === null && windows) notes.push('audio: none emulated; a passed GPU\'s HDMI/DisplayPort audio function needs nothing (add --audio pipewire for the host speakers)');

  // Looking Glass.
  let lookingGlass: LookingGlass | null = null;
  if (intent.lookingGlass !== undefined) {
    const { width, height } = intent.lookingGlass === '' || intent.lookingGlass === 'auto' ? { width: 1920, height: 1080 } : parseResolution(intent.lookingGlass);
    const need = lookingGlassMib(width, height);
    let sizeMib = need;
    if (intent.lookingGlassSize !== undefined) {
      sizeMib = parseMib(intent.lookingGlassSize);
      if (sizeMib < need) problems.push({ code: 'E_LOOKING_GLASS_TOO_SMALL', subject: 'looking-glass', message: `--looking-glass-size ${sizeMib} MiB is too small for ${width}x${height}: two SDR frames need ${((width * height * 8) / 1048576).toFixed(1)} MiB + 10 MiB, rounded up to ${need} MiB (the client would cut off the bottom of the picture)`, hint: `use --looking-glass-size ${need} (or leave it out)` });
      else if ((sizeMib & (sizeMib - 1)) !== 0) problems.push({ code: 'E_LOOKING_GLASS_TOO_SMALL', subject: 'looking-glass', message: `--looking-glass-size ${sizeMib} MiB is not a power of two (IVSHMEM needs one)`, hint: `use --looking-glass-size ${need}` });
    }
    const owner = v.sessions[0]?.user ?? null;
    const kvmfr = v.kvmfr.loaded && v.kvmfr.devices.length > 0;
    const path = kvmfr ? `/dev/${v.kvmfr.devices[0]}` : '/dev/shm/looking-glass';
    lookingGlass = { width, height, sizeMib, path, kvmfr, owner };
    notes.push(`Looking Glass: ${sizeMib} MiB IVSHMEM for ${width}x${height} (SDR; HDR needs twice that) at ${path}; start the client with: looking-glass-client -f ${path}`);
    if (kvmfr) {
      notes.push(`kvmfr: the module must be loaded with static_size_mb=${sizeMib} (it is not readable back); make it persistent: echo 'options kvmfr static_size_mb=${sizeMib}' > /etc/modprobe.d/kvmfr.conf; echo kvmfr > /etc/modules-load.d/kvmfr.conf; udev rule SUBSYSTEM=="kvmfr", OWNER="${owner ?? '<user>'}", GROUP="kvm", MODE="0660"; add ${path} to cgroup_device_acl in /etc/libvirt/qemu.conf (and "${path} rw," to /etc/apparmor.d/local/abstractions/libvirt-qemu on AppArmor hosts)`);
    } else {
      notes.push(`kvmfr is not loaded, so the shared memory is a /dev/shm file; create it with the right owner before each start: echo 'f /dev/shm/looking-glass 0660 ${owner ?? '<user>'} kvm -' > /etc/tmpfiles.d/10-looking-glass.conf && systemd-tmpfiles --create /etc/tmpfiles.d/10-looking-glass.conf (the kvmfr module is faster: modprobe kvmfr static_size_mb=${sizeMib})`);
    }
  }

  void name;
  return {
    profile: { os, hyperv, secureBoot, plainFirmwareOnly: os !== null && !secureBoot, smm, tpm: tpm && Boolean(v.swtpm), virtioWin, inputs, audio, lookingGlass },
    problems,
    warnings,
    notes,
  };
}
