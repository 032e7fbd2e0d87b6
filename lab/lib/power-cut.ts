// Power cuts inside a guest: a watcher started in the background before a
// command, which triggers an immediate power-off (sysrq `o`, no sync) once a
// shell condition holds, so the next boot sees the disk as a real power loss
// leaves it.

export interface CutPoint {
  id: string;
  what: string;
  /** Shell condition, true once the point is reached (evaluated every ~50 ms). */
  condition: string;
  /** Polls to wait after the condition first holds (lets a regeneration get half-way). */
  delayPolls: number;
  /** Rough minutes (TestDef.cost). */
  cost: number;
}

/** A condition: one of these process names is running (`names` is an ERE alternation of comm names). */
export const running = (names: string) => `grep -qsxE '${names}' /proc/[0-9]*/comm`;

/** Guest shell: the watcher for `p`, in the background; it writes $LAB_OUT/cut with the point's id just before the cut. */
export function powerCutWatcher(p: Pick<CutPoint, 'id' | 'condition' | 'delayPolls'>): string {
  return `# The watcher: cut the power when the point is reached.
(
  n=0; seen=0
  while :; do
    if [ $seen = 0 ] && ${p.condition}; then seen=1; fi
    if [ $seen = 1 ]; then
      if [ $n -ge ${p.delayPolls} ]; then
        echo ${p.id} >"$LAB_OUT/cut"
        echo "LAB: power cut at ${p.id}"
        echo o >/proc/sysrq-trigger
        sleep 30
      fi
      n=$((n + 1))
    fi
    sleep 0.05
  done
) &`;
}
