// CPU isolation as a guest's kernel and systemd show it: a shell dumper of
// every value `vfiokit isolate` touches (cgroup cpusets, systemd's runtime
// drop-ins and AllowedCPUs, IRQ affinities, the default IRQ and unbound
// workqueue masks), its parser, a cpu-list parser and a diff of two dumps.

/** The units whose cpusets isolation sets (machine.slice keeps every CPU). */
export const ISOLATION_UNITS = ['system.slice', 'user.slice', 'init.scope', 'machine.slice'];

/** Guest shell: `lab_isostate NAME` writes NAME.iso, one "key value" line per value, read with builtins only. */
export const ISOLATION_HELPERS = `
lab_isostate() {
  _o="$LAB_OUT/$1.iso"; : >"$_o"
  read -r _c </sys/fs/cgroup/cgroup.subtree_control; echo "root.subtree_control $_c" >>"$_o"
  for _u in ${ISOLATION_UNITS.join(' ')}; do
    for _f in cpuset.cpus cpuset.cpus.effective; do
      if [ -e "/sys/fs/cgroup/$_u/$_f" ]; then read -r _v <"/sys/fs/cgroup/$_u/$_f"; echo "$_u.$_f \${_v:-<empty>}" >>"$_o"; else echo "$_u.$_f <absent>" >>"$_o"; fi
    done
    for _k in system.control transient; do
      _d="/run/systemd/$_k/$_u.d/50-AllowedCPUs.conf"
      if [ -e "$_d" ]; then echo "$_u.dropin.$_k $(sha256sum <"$_d" | cut -c1-16)" >>"$_o"; else echo "$_u.dropin.$_k <absent>" >>"$_o"; fi
    done
    _a=$(systemctl show -p AllowedCPUs --value "$_u" 2>/dev/null); echo "$_u.AllowedCPUs \${_a:-<not set>}" >>"$_o"
  done
  read -r _v </proc/irq/default_smp_affinity; echo "irq.default $_v" >>"$_o"
  read -r _v </sys/devices/virtual/workqueue/cpumask; echo "workqueue.cpumask $_v" >>"$_o"
  for _i in /proc/irq/[0-9]*; do read -r _v <"$_i/smp_affinity_list"; echo "irq.\${_i##*/} $_v" >>"$_o"; done
  lab_say "isostate $1: $(wc -l <"$_o") values"
}
`;

/** A lab_isostate dump: key → value. */
export function parseState(text: string | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of (text ?? '').split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

/** A kernel cpu list ("0-1,3") as the CPUs it names. */
export function cpuList(t: string): number[] {
  return t
    .split(',')
    .filter(Boolean)
    .flatMap((p) => {
      const [a, b] = p.split('-').map(Number) as [number, number | undefined];
      return Array.from({ length: (b ?? a) - a + 1 }, (_, k) => a + k);
    });
}

/** Values that differ between two dumps (IRQs present in only one are left out: MSI vectors come and go). */
export function stateDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.has(k) && b.get(k) !== v) out.push(`${k}: ${v} → ${b.get(k)}`);
  for (const k of a.keys()) if (!b.has(k) && !k.startsWith('irq.')) out.push(`${k}: gone`);
  for (const k of b.keys()) if (!a.has(k) && !k.startsWith('irq.')) out.push(`${k}: new`);
  return out;
}
