// A real libvirtd inside a fast guest: the host's installed libvirt
// (libvirt-daemon-system), QEMU, OVMF and swtpm reach the guest through the
// 9p share of /, and these shell helpers start virtlogd, virtlockd and
// libvirtd by hand (there is no systemd, no D-Bus and no cgroup mount in a
// fast guest), with a qemu.conf that works without them. Everything they
// write lands in the guest's tmpfs overlay; the machine running the lab is
// never touched.
//
// Sourced after GUEST_LIB (lab_say, lab_run, LAB_OUT). Guests have no KVM, so
// `lab_libvirt_tcg` puts a `virsh` wrapper first on PATH that adapts every
// `virsh define`d XML for TCG and logs each adaptation (lab/guest/tcg-domain.ts).

import path from 'node:path';
import { repoRoot } from './util.js';

/** The qemu.conf a fast guest needs (each line says why). */
export const GUEST_QEMU_CONF = `# written by the lab for a fast guest (no systemd, no cgroups, no D-Bus)
# No private /dev per domain: it needs a mount namespace set up from a real /dev.
namespaces = []
# QEMU and swtpm as root: the overlay and the 9p share cannot be chowned sensibly.
user = "root"
group = "root"
swtpm_user = "root"
swtpm_group = "root"
# No file-owner memory in xattrs (the overlay over 9p does not keep trusted.* xattrs).
remember_owner = 0
# The Debian kernel enables AppArmor, but the guest has no profiles loaded.
security_driver = "none"
# No cgroup hierarchy is mounted.
cgroup_controllers = []
`;

/** Guest shell helpers: `lab_libvirtd_start`, `lab_libvirtd_stop`, `lab_libvirtd_restart`, `lab_libvirt_tcg`, `lab_virsh`. */
export function libvirtHelpers(): string {
  const adapt = path.join(repoRoot(), 'dist', 'lab', 'guest', 'tcg-domain.js');
  return `
LAB_VIRSH_REAL=/usr/bin/virsh
# lab_libvirtd_config: qemu.conf and a clean libvirt state in the guest's overlay.
lab_libvirtd_config() {
  mkdir -p /dev/pts /dev/shm /run/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu/nvram /var/lib/libvirt/swtpm /var/cache/libvirt/qemu /etc/libvirt/hooks/qemu.d
  mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=620 devpts /dev/pts
  mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  # The host's own domains and networks are not the guest's (removed from the overlay only).
  rm -f /etc/libvirt/qemu/*.xml /etc/libvirt/qemu/networks/autostart/* 2>/dev/null
  cat >/etc/libvirt/qemu.conf <<'LAB_QEMU_CONF'
${GUEST_QEMU_CONF}LAB_QEMU_CONF
  # Warnings and errors to a file; hook output is logged at error level when a hook fails.
  cat >/etc/libvirt/libvirtd.conf <<'LAB_LIBVIRTD_CONF'
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
LAB_LIBVIRTD_CONF
  [ -e /etc/machine-id ] || cat /proc/sys/kernel/random/uuid | tr -d - >/etc/machine-id
  lab_static_nodes
}
# lab_static_nodes: the device nodes of modules that load on first open (/dev/vfio/vfio, /dev/fuse, …),
# from the running kernel's modules.devname, as systemd-tmpfiles-setup-dev creates them at boot
# (\`kmod static-nodes\`). libvirt refuses VFIO passthrough ("host doesn't support VFIO PCI
# passthrough") while /dev/vfio/vfio does not exist, which it does not until vfio is loaded.
lab_static_nodes() {
  : >"$LAB_OUT/static-nodes"
  while read -r _mod _node _dev; do
    case $_mod in '#'*|'') continue ;; esac
    _mm=\${_dev#?}
    [ -e "/dev/$_node" ] && continue
    case $_node in */*) mkdir -p "/dev/\${_node%/*}" ;; esac
    mknod -m 0600 "/dev/$_node" "\${_dev%"$_mm"}" "\${_mm%%:*}" "\${_mm##*:}" && echo "/dev/$_node ($_mod)" >>"$LAB_OUT/static-nodes"
  done <"/lib/modules/$(uname -r)/modules.devname"
}
# lab_wait_sock PATH TENTHS: wait for a socket to appear.
lab_wait_sock() { _w=0; while [ ! -S "$1" ] && [ "$_w" -lt "$2" ]; do sleep 0.1; _w=$((_w + 1)); done; [ -S "$1" ]; }
# lab_libvirtd_start: virtlogd, virtlockd, libvirtd started by hand; waits for the socket and for
# the first connection (which probes the QEMU binary's capabilities); prints versions and timing.
lab_libvirtd_start() {
  _lt0=$(lab_now)
  [ -e /etc/libvirt/qemu.conf.lab ] || { lab_libvirtd_config; : >/etc/libvirt/qemu.conf.lab; }
  [ -S /run/libvirt/virtlogd-sock ] || /usr/sbin/virtlogd -d
  [ -S /run/libvirt/virtlockd-sock ] || /usr/sbin/virtlockd -d
  lab_wait_sock /run/libvirt/virtlogd-sock 100 || lab_say "libvirt: virtlogd did not create its socket"
  /usr/sbin/libvirtd -d
  if ! lab_wait_sock /run/libvirt/libvirt-sock 600; then
    lab_say "libvirt: libvirtd did not create /run/libvirt/libvirt-sock"; tail -n 20 /var/log/libvirt/libvirtd.log 2>/dev/null | sed 's/^/LAB: libvirtd! /'
    return 1
  fi
  _lt1=$(lab_now)
  # The first call on the QEMU driver builds the capabilities cache (QEMU is started with -machine none).
  $LAB_VIRSH_REAL -c qemu:///system version >"$LAB_OUT/libvirt.version" 2>&1
  _lrc=$?
  _lt2=$(lab_now)
  echo "$_lt0 $_lt1 $_lt2" | awk '{printf "socket %.1f s, first connection %.1f s\\n", $2-$1, $3-$2}' >>"$LAB_OUT/libvirt.timing"
  lab_say "libvirt: $(tr '\\n' ' ' <"$LAB_OUT/libvirt.version"); $(tail -n 1 "$LAB_OUT/libvirt.timing")"
  return $_lrc
}
# lab_libvirtd_stop: libvirtd only (virtlogd and virtlockd stay, as under systemd).
lab_libvirtd_stop() {
  _p=$(cat /run/libvirtd.pid 2>/dev/null)
  [ -n "$_p" ] || return 0
  kill "$_p" 2>/dev/null
  _w=0; while kill -0 "$_p" 2>/dev/null && [ "$_w" -lt 300 ]; do sleep 0.1; _w=$((_w + 1)); done
  rm -f /run/libvirt/libvirt-sock
}
# lab_libvirtd_restart: what \`systemctl restart libvirtd\` does (libvirt looks for hooks when it starts).
lab_libvirtd_restart() { lab_libvirtd_stop; lab_libvirtd_start; }
# lab_libvirt_tcg: a virsh wrapper first on PATH: the guest has no KVM, so every defined XML is adapted for TCG.
lab_libvirt_tcg() {
  cat >/usr/local/bin/virsh <<LAB_VIRSH
#!/bin/sh
case " \\$* " in *" define "*) for _a in "\\$@"; do _f=\\$_a; done; ${process.execPath} ${adapt} "\\$_f" >>"$LAB_OUT/tcg-adapt.log" 2>&1 || exit 1 ;; esac
exec $LAB_VIRSH_REAL "\\$@"
LAB_VIRSH
  chmod 755 /usr/local/bin/virsh
}
# lab_virsh NAME ARGS...: lab_run of virsh on qemu:///system.
lab_virsh() { _vn=$1; shift; lab_run "$_vn" virsh -c qemu:///system "$@"; }
# lab_libvirt_logs: the daemon's and each domain's log into LAB_OUT.
lab_libvirt_logs() {
  cp /var/log/libvirt/libvirtd.log "$LAB_OUT/libvirtd.log" 2>/dev/null
  for _l in /var/log/libvirt/qemu/*.log /var/log/swtpm/libvirt/qemu/*.log; do [ -f "$_l" ] && cp "$_l" "$LAB_OUT/qemu-\${_l##*/}"; done
  return 0
}
`;
}

/** The helpers for this checkout (the TCG adapter is its built lab/guest/tcg-domain.js). */
export const LIBVIRT_HELPERS = libvirtHelpers();
