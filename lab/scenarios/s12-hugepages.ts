// Scenario 12 — huge pages for a running VM on a real kernel, in a fast-boot
// guest (2.5 GiB, Intel IOMMU, the GPU-like device):
//  `vfiokit hugepages reserve 1G` → the kernel's nr_hugepages and
//  free_hugepages show 512 more 2 MiB pages than before; the same reserve
//  again changes nothing; `release` → nr_hugepages exactly as before; a
//  reserve of more than the free memory exits 3 with nothing changed.
//  The figure: time from spawning a nested QEMU (TCG, -m 1G, the GPU-like
//  device on vfio-pci passed with -device vfio-pci) to QMP `query-status`
//  answering "running" — VFIO pins all guest memory before that — on 4 KiB
//  pages, then on the reserved 2 MiB pages (memory-backend-memfd
//  hugetlb=on, prealloc=on). Logged with the ratio, not asserted.

import path from 'node:path';
import { defineLabTest, type BootView } from '../lib/declare.js';
import { GPU_ID } from '../lib/gpu.js';
import type { TestContext } from '../lib/harness.js';
import { repoRoot } from '../lib/util.js';

const POOL = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const TIMER = path.join(repoRoot(), 'dist', 'lab', 'guest', 'start-time.js');
const QEMU = 'qemu-system-x86_64 -machine q35 -accel tcg -nodefaults -display none -monitor none -serial none -m 1G';

function hugepageChecks(b: BootView, t: TestContext): void {
  const { rc, out } = b;
  const pool = (n: number) => (b.read(`pool${n}`) ?? '').trim().split(' ').map(Number);
  const [nr0, free0] = pool(0);
  const [nr1, free1] = pool(1);
  t.log(`pool before: nr_hugepages ${nr0}, free ${free0}; after reserve: ${nr1}, ${free1}`);
  // Free pages are reused: the pool grows by what the free ones did not cover.
  const grow = 512 - Math.min(free0!, 512);
  t.check('the kernel shows the 512 pages: nr_hugepages and free_hugepages up by the shortfall (512 on an empty pool)', nr1 === nr0! + grow && free1 === free0! + grow && free1! >= 512, `before ${nr0}/${free0}, after ${nr1}/${free1}`);
  t.check('the same reserve again: exit 0, "in effect already", the pool unchanged', rc('again') === 0 && /in effect already/.test(out('again')) && pool(2).join(' ') === pool(1).join(' '), `exit ${rc('again')}\n${out('again')}\npool ${pool(2).join(' ')}`);
  const timing = (n: string) => {
    try {
      return JSON.parse(b.read(`${n}.json`) ?? '') as { ms: number; status: string; stderr: string };
    } catch {
      return null;
    }
  };
  const t4 = timing('t4k');
  const t2 = timing('t2m');
  t.check('the nested QEMU on 4 KiB pages reached "running"', !!t4 && t4.ms >= 0, `${JSON.stringify(t4)}\n${out('t4k')}`);
  t.check('the nested QEMU on reserved 2 MiB pages reached "running"', !!t2 && t2.ms >= 0, `${JSON.stringify(t2)}\n${out('t2m')}`);
  if (t4 && t2 && t4.ms >= 0 && t2.ms >= 0) t.log(`figure: spawn → QMP query-status "running", nested TCG QEMU -m 1G with the vfio device: 4 KiB pages ${(t4.ms / 1000).toFixed(2)} s, 2 MiB hugepages ${(t2.ms / 1000).toFixed(2)} s, ratio ${(t4.ms / t2.ms).toFixed(2)}×`);
  t.check('`release` exits 0 and nr_hugepages is exactly as before', rc('release') === 0 && pool(3)[0] === nr0, `exit ${rc('release')}\n${out('release')}\npool ${pool(3).join(' ')}, before ${nr0}`);
  t.check('a reserve of more than the free memory exits 3 naming the rule, nothing changed', rc('toomuch') === 3 && /E_HUGEPAGES_NO_MEMORY|more than the free memory/.test(out('toomuch')) && pool(4).join(' ') === pool(3).join(' '), `exit ${rc('toomuch')}\n${out('toomuch')}`);
  t.check('nothing left to release: exit 0', rc('nothing') === 0 && /nothing to release/.test(out('nothing')), `exit ${rc('nothing')}\n${out('nothing')}`);
}

export const scenario12 = [
  defineLabTest({
    id: '12.hugepages',
    title: '`hugepages reserve 1G` on a real kernel: 512 more 2 MiB pages, again = no change, release = as before, too much = exit 3; VM start time on 4 KiB vs 2 MiB pages',
    needs: ['hugepages', 'bind', 'unbind'],
    cost: 0.5,
    guest: { kind: 'fast' },
    machine: { iommu: 'intel', topology: 'gpu', cpuVendor: 'GenuineIntel', smp: 1, memoryMiB: 2560 },
    boots: [
      {
        name: 'boot',
        timeoutMs: 30 * 60_000,
        steps: [
          'lab_coldplug',
          `GPU=$(lab_find ${GPU_ID} | head -n 1)`,
          'S=${GPU#0000:}',
          `pool() { echo "$(cat ${POOL}/nr_hugepages) $(cat ${POOL}/free_hugepages)"; }`,
          'pool >"$LAB_OUT/pool0"',
          { label: 'reserve', run: 'vfiokit hugepages reserve 1G --json', expectExit: 0, check: '`hugepages reserve 1G` exits 0', require: true },
          'pool >"$LAB_OUT/pool1"',
          { label: 'again', run: 'vfiokit hugepages reserve 1G' },
          'pool >"$LAB_OUT/pool2"',
          { label: 'status', run: 'vfiokit hugepages status --json', expectExit: 0 },
          { label: 'bind', run: 'vfiokit bind "$S" --yes', expectExit: 0, check: '`vfiokit bind` moves the GPU-like group to vfio-pci', require: true },
          { label: 't4k', run: `node ${TIMER} "$LAB_OUT/t4k.json" -- ${QEMU} -device vfio-pci,host="$S"` },
          { label: 't2m', run: `node ${TIMER} "$LAB_OUT/t2m.json" -- ${QEMU} -object memory-backend-memfd,id=mem0,size=1G,hugetlb=on,hugetlbsize=2M,prealloc=on,share=on -machine memory-backend=mem0 -device vfio-pci,host="$S"` },
          { label: 'unbind', run: 'vfiokit unbind "$S" --yes', expectExit: 0 },
          { label: 'release', run: 'vfiokit hugepages release' },
          'pool >"$LAB_OUT/pool3"',
          { label: 'toomuch', run: 'vfiokit hugepages reserve 64G' },
          'pool >"$LAB_OUT/pool4"',
          { label: 'nothing', run: 'vfiokit hugepages release' },
        ],
        checks: hugepageChecks,
      },
    ],
  }),
];
