// The shell side of every lab guest: a library sourced by the per-boot script
// that runs commands with their output, exit code and duration saved under
// /lab/out (a 9p share the host reads afterwards), and a plain listing of
// what the kernel itself says about IOMMU groups and drivers.

/** Sourced as /lab/lib.sh. Expects LAB_VFIOKIT (the command that runs vfiokit). */
export const GUEST_LIB = `
LAB_OUT=/lab/out
mkdir -p "$LAB_OUT"
# Seconds since the guest kernel started, so a slow step shows in the log.
lab_say() { read -r _up _idle </proc/uptime; echo "LAB: [$_up] $*"; }
lab_now() { date +%s.%N; }

# lab_run NAME CMD...: runs CMD, saving NAME.out, NAME.err, NAME.rc, NAME.secs
lab_run() {
  _n=$1; shift
  lab_say "run $_n: $*"
  _t0=$(lab_now)
  # A heartbeat on the console while CMD runs, so the host tells a slow guest
  # from a hung one by the console going quiet. It stops after 15 minutes
  # (longer than any lab command takes): a command hung that long then goes
  # quiet too. Killing it also kills its sleep, so nothing lingers.
  ( trap 'kill "$_s" 2>/dev/null; exit 0' TERM
    _i=0
    while [ "$_i" -lt 15 ]; do sleep 60 & _s=$!; wait "$_s"; _i=$((_i + 1)); lab_say "$_n still running ($_i min)"; done ) &
  _hb=$!
  "$@" >"$LAB_OUT/$_n.out" 2>"$LAB_OUT/$_n.err" </dev/null
  _rc=$?
  kill "$_hb" 2>/dev/null
  _t1=$(lab_now)
  echo "$_rc" >"$LAB_OUT/$_n.rc"
  echo "$_t0 $_t1" | awk '{print $2-$1}' >"$LAB_OUT/$_n.secs"
  lab_say "done $_n rc=$_rc ($(cat "$LAB_OUT/$_n.secs")s)"
  # Keep the console useful when something fails: show the end of the output.
  if [ "$_rc" != 0 ]; then tail -n 15 "$LAB_OUT/$_n.err" | sed "s/^/LAB: $_n! /"; tail -n 5 "$LAB_OUT/$_n.out" | sed "s/^/LAB: $_n> /"; fi
  sync
  return $_rc
}

vfiokit() { $LAB_VFIOKIT "$@"; }

# lab_listing NAME: the kernel's view, read with nothing but shell builtins
# (no process per device: under TCG every exec costs tens of milliseconds).
#   NAME.groups:  "<group> <address>" per /sys/kernel/iommu_groups/*/devices/* link
#   NAME.devices: "<address> <vendor> <device> <class> <driver|-> <group|-> <driver_override|->"
lab_listing() {
  : >"$LAB_OUT/$1.groups"
  for _d in /sys/kernel/iommu_groups/*/devices/*; do
    [ -e "$_d" ] || continue
    _g=\${_d#/sys/kernel/iommu_groups/}; _g=\${_g%%/*}
    echo "$_g \${_d##*/}" >>"$LAB_OUT/$1.groups"
  done
  : >"$LAB_OUT/$1.devices"
  _cwd=$PWD
  for _d in /sys/bus/pci/devices/*; do
    # cd -P resolves the driver and iommu_group links as readlink would.
    _drv=-; cd -P "$_d/driver" 2>/dev/null && _drv=\${PWD##*/}
    _grp=-; cd -P "$_d/iommu_group" 2>/dev/null && _grp=\${PWD##*/}
    _ovr=; read -r _ovr 2>/dev/null <"$_d/driver_override"; [ -n "$_ovr" ] && [ "$_ovr" != "(null)" ] || _ovr=-
    read -r _ven <"$_d/vendor"; read -r _dev <"$_d/device"; read -r _cls <"$_d/class"
    echo "\${_d##*/} $_ven $_dev $_cls $_drv $_grp $_ovr" >>"$LAB_OUT/$1.devices"
  done
  cd "$_cwd" || cd /
  lab_say "listing $1: $(wc -l <"$LAB_OUT/$1.devices") devices, $(wc -l <"$LAB_OUT/$1.groups") group links"
}

# lab_coldplug: load the driver for every PCI device, as udev would at boot.
lab_coldplug() {
  modprobe -a -q -b $(cat /sys/bus/pci/devices/*/modalias) 2>/dev/null
  # Probing is synchronous for these drivers, but give deferred probes a moment.
  sleep 1
}

lab_finish() {
  echo "$1" >"$LAB_OUT/finished"
  sync
  lab_say "finished: $1"
}
`;

export interface GuestListing {
  /** group id → sorted addresses */
  groups: Map<number, string[]>;
  devices: Map<string, { vendor: string; device: string; class: string; driver: string | null; group: number | null; driverOverride: string | null }>;
}

/** Parses the files written by lab_listing. */
export function parseListing(groupsText: string, devicesText: string): GuestListing {
  const groups = new Map<number, string[]>();
  for (const line of groupsText.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line.trim());
    if (!m) continue;
    const g = Number(m[1]);
    groups.set(g, [...(groups.get(g) ?? []), m[2]!].sort());
  }
  const devices: GuestListing['devices'] = new Map();
  for (const line of devicesText.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    devices.set(f[0]!, {
      vendor: f[1]!.replace(/^0x/, ''),
      device: f[2]!.replace(/^0x/, ''),
      class: f[3]!.replace(/^0x/, ''),
      driver: f[4] === '-' ? null : f[4]!,
      group: f[5] === '-' ? null : Number(f[5]),
      driverOverride: f[6] === '-' ? null : f[6]!,
    });
  }
  return { groups, devices };
}

/** What `lab_run NAME …` and `lab_listing NAME` left in a boot's /lab share: exit code, output, seconds, listing. */
export function guestOutputs(read: (name: string) => string | undefined) {
  return {
    rc: (n: string): number | null => (read(`${n}.rc`) === undefined ? null : Number(read(`${n}.rc`)!.trim())),
    out: (n: string): string => `${read(`${n}.out`) ?? ''}${read(`${n}.err`) ?? ''}`.trim(),
    secs: (n: string): string => read(`${n}.secs`)?.trim() ?? '?',
    listing: (n: string): GuestListing => parseListing(read(`${n}.groups`) ?? '', read(`${n}.devices`) ?? ''),
  };
}
