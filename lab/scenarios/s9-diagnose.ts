// Scenario 9 — `vfiokit diagnose` on failures a real kernel and a real QEMU
// produce, in a fast-boot guest with an Intel IOMMU:
//  1. group not viable: only the GPU-like function moves to vfio-pci, its
//     audio function (same IOMMU group) stays on snd_hda_intel, and a nested
//     QEMU is asked for the GPU. `diagnose --host` on the saved kernel log and
//     QEMU stderr must name group_not_viable, the GPU, and the audio function
//     still on its host driver.
//  2. memlock: the whole group on vfio-pci (`vfiokit bind`), a nested QEMU
//     with 256 MiB of memory started without CAP_IPC_LOCK under a 32 MiB
//     RLIMIT_MEMLOCK. Its command line and stderr are written where libvirt
//     keeps a domain's log (/var/log/libvirt/qemu/NAME.log); `diagnose` with
//     no file reads this host's kernel log and that log and must name memlock,
//     the device, the limit and the guest memory.

import { defineLabTest, type BootView } from '../lib/declare.js';
import type { TestContext } from '../lib/harness.js';
import { GPU_ID } from '../lib/gpu.js';

const MEMLOCK_BYTES = 32 * 1024 * 1024;
const GUEST_MIB = 256;

interface Finding {
  cause: string;
  confidence: string;
  devices: { address: string; name: string | null; driver: string | null }[];
  host: string[];
  fix: string;
}

function findings(text: string | undefined): Finding[] | string {
  try {
    return (JSON.parse(text ?? '') as { findings: Finding[] }).findings;
  } catch {
    return `not JSON: ${(text ?? '(no output)').slice(0, 500)}`;
  }
}

const QEMU = `qemu-system-x86_64 -machine q35 -accel tcg -nodefaults -display none -monitor none -serial none -S -m ${GUEST_MIB}`;

function diagnoseChecks(b: BootView, t: TestContext): void {
  const { rc, out, listing } = b;
  const [gpu, audio] = (b.read('gpu') ?? '').trim().split(' ');
  t.require('the guest has the GPU-like device', !!gpu && !!audio, 'lab_find found none');
  const half = listing('half');
  t.require(
    `before failure 1: ${gpu} on vfio-pci, ${audio} on snd_hda_intel, one IOMMU group`,
    half.devices.get(gpu!)?.driver === 'vfio-pci' && half.devices.get(audio!)?.driver === 'snd_hda_intel' && half.devices.get(gpu!)?.group === half.devices.get(audio!)?.group,
    `${gpu}: ${JSON.stringify(half.devices.get(gpu!))}; ${audio}: ${JSON.stringify(half.devices.get(audio!))}`,
  );
  const err1 = b.read('viable.err') ?? '';
  t.require('the nested QEMU fails on the group (exit ≠ 0, "not viable" on stderr)', rc('viable') !== 0 && /not viable/.test(err1), `exit ${rc('viable')}\n${err1.slice(0, 800)}`);
  const f1 = findings(b.read('diag1.out'));
  t.require('`diagnose --host FILES --json` exits 0 with findings', rc('diag1') === 0 && typeof f1 !== 'string', `exit ${rc('diag1')}\n${typeof f1 === 'string' ? f1 : ''}\n${out('diag1')}`);
  const first1 = (f1 as Finding[])[0];
  t.check('failure 1: the first finding is group_not_viable (high)', first1?.cause === 'group_not_viable' && first1.confidence === 'high', out('diag1text'));
  t.check(`failure 1: it names ${gpu}`, !!first1?.devices.some((d) => d.address === gpu), out('diag1text'));
  t.check(`failure 1: it names ${audio} still on snd_hda_intel, and the fix binds it too`, !!first1 && first1.host.some((h) => h.includes(audio!) && h.includes('snd_hda_intel')) && first1.fix.includes(audio!), out('diag1text'));

  t.require('`vfiokit bind` moves the group to vfio-pci', rc('bind') === 0 && listing('bound').devices.get(audio!)?.driver === 'vfio-pci', `exit ${rc('bind')}\n${out('bind')}`);
  const err2 = b.read('memlock.err') ?? '';
  const kern2 = b.read('memlock.dmesg') ?? '';
  t.require('the nested QEMU under the memlock limit fails (exit ≠ 0)', rc('memlock') !== 0, `exit ${rc('memlock')}\n${err2.slice(0, 800)}`);
  t.log(`QEMU stderr (memlock): ${err2.trim().split('\n').slice(0, 4).join(' | ')}`);
  t.log(`kernel (memlock): ${kern2.split('\n').filter((l) => /MEMLOCK|vfio/i.test(l)).slice(-3).join(' | ')}`);
  const f2 = findings(b.read('diag2.out'));
  t.require('`diagnose --json` (the host\'s logs) exits 0 with findings', rc('diag2') === 0 && typeof f2 !== 'string', `exit ${rc('diag2')}\n${typeof f2 === 'string' ? f2 : ''}\n${out('diag2')}`);
  const first2 = (f2 as Finding[])[0];
  t.check('failure 2: the first finding is memlock (high)', first2?.cause === 'memlock' && first2.confidence === 'high', out('diag2text'));
  t.check(`failure 2: it names ${gpu}`, !!first2?.devices.some((d) => d.address === gpu), out('diag2text'));
  t.check(
    `failure 2: it compares the ${MEMLOCK_BYTES / 1048576} MiB limit with the ${GUEST_MIB} MiB guest`,
    !!first2?.host.some((h) => h.includes(`${MEMLOCK_BYTES / 1048576} MiB`)) && !!first2?.host.some((h) => h.includes(`${GUEST_MIB} MiB`)),
    out('diag2text'),
  );
}

export const scenario9 = [
  defineLabTest({
    id: '9.diagnose',
    title: 'real failures (group not viable, memlock below guest memory) → `diagnose` names the cause and the device',
    needs: ['diagnose', 'bind', 'unbind'],
    cost: 0.6,
    guest: { kind: 'fast' },
    machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1024 },
    boots: [
      {
        name: 'boot',
        timeoutMs: 20 * 60_000,
        steps: [
          'lab_coldplug',
          `GPU=$(lab_find ${GPU_ID} | head -n 1)`,
          `S=\${GPU#0000:}`,
          `AUDIO=\${GPU%.0}.1`,
          'echo "$GPU $AUDIO" >"$LAB_OUT/gpu"',
          'modprobe vfio-pci',
          '# 1. only function 0 on vfio-pci: the group is not viable',
          'echo vfio-pci >"/sys/bus/pci/devices/$GPU/driver_override"',
          'echo "$GPU" >"/sys/bus/pci/devices/$GPU/driver/unbind"',
          'echo "$GPU" >/sys/bus/pci/drivers_probe',
          'lab_listing half',
          `lab_run viable ${QEMU} -device vfio-pci,host="$S"`,
          'dmesg >"$LAB_OUT/viable.dmesg"',
          'lab_run diag1 vfiokit diagnose --host "$LAB_OUT/viable.dmesg" "$LAB_OUT/viable.err" --json',
          'lab_run diag1text vfiokit diagnose --host "$LAB_OUT/viable.dmesg" "$LAB_OUT/viable.err"',
          'echo "$GPU" >"/sys/bus/pci/devices/$GPU/driver/unbind"',
          'echo >"/sys/bus/pci/devices/$GPU/driver_override"',
          'echo "$GPU" >/sys/bus/pci/drivers_probe',
          '# 2. the whole group on vfio-pci, QEMU without CAP_IPC_LOCK under a memlock limit below its memory',
          'lab_run bind vfiokit bind "$S" --yes',
          'lab_listing bound',
          `ARGS="${QEMU} -device vfio-pci,host=$S"`,
          `lab_run memlock setpriv --inh-caps=-ipc_lock --bounding-set=-ipc_lock prlimit --memlock=${MEMLOCK_BYTES}:${MEMLOCK_BYTES} $ARGS`,
          'mkdir -p /var/log/libvirt/qemu',
          '{ echo "LC_ALL=C PATH=/usr/bin:/bin /usr/bin/$ARGS"; cat "$LAB_OUT/memlock.err"; } >/var/log/libvirt/qemu/lab-memlock.log',
          'cp /var/log/libvirt/qemu/lab-memlock.log "$LAB_OUT/memlock.log"',
          'dmesg >"$LAB_OUT/memlock.dmesg"',
          'lab_run diag2 vfiokit diagnose --json',
          'lab_run diag2text vfiokit diagnose',
          { label: 'unbind', run: 'vfiokit unbind "$S" --yes', expectExit: 0, check: '`vfiokit unbind` exits 0' },
        ],
        checks: diagnoseChecks,
      },
    ],
  }),
];
