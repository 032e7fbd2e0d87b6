// `vfiokit diagnose` throughput: 100 MB of mixed kernel/QEMU/libvirt log text
// streamed through the same reader and matcher the command uses, next to
// `grep -ciE 'vfio|iommu'` over the same file as a yardstick. Prints MB/s and
// the peak heap growth (constant memory: it must not grow with the input).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Diagnoser } from '../src/analysis/diagnose/engine.js';
import { streamFile } from '../src/host/logs.js';

const MB = Number(process.env.VFIOKIT_BENCH_DIAGNOSE_MB ?? 100);
const LINES = [
  '[   12.345678] usb 1-2: new high-speed USB device number 3 using xhci_hcd',
  '[   12.400000] pci 0000:00:01.0: Adding to iommu group 1',
  'Jun  4 07:25:13 pve1 kernel: [   13.000001] e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex',
  '2024-06-04T07:25:13+0200 pve1 kernel: vfio-pci 0000:01:00.0: enabling device (0000 -> 0003)',
  '2024-06-04 07:25:13.123+0000: starting up libvirt version: 9.0.0, qemu version: 7.2.0',
  'Jun 04 07:25:13 pve1 QEMU[3989106]: kvm: vfio_dma_map(0x5e043daea2f0, 0x380010000000, 0x2000000, 0x771a6ce00000) = -22 (Invalid argument)',
  '[   14.000000] systemd[1]: Started libvirtd.service - libvirt legacy monolithic daemon.',
  "[   15.000000] vfio-pci 0000:01:00.0: BAR 0: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]",
  '[   16.000000] DMAR: DRHD: handling fault status reg 3',
  '{"level":"error","ts":1654654667.46,"logger":"DPDK","msg":"EAL: 0000:44:00.3 VFIO group is not viable!"}',
];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bench-diag-'));
const file = path.join(dir, 'logs.txt');
try {
  const fd = fs.openSync(file, 'w');
  // Real logs (the shared corpus: full dmesg of healthy hosts and failure
  // reports) repeated; the synthetic mix when the corpus is absent.
  const corpus = path.join(process.env.VFIOKIT_CORPUS ?? '/work/shared/corpus', 'C_dmesg');
  const chunk = fs.existsSync(corpus)
    ? fs.readdirSync(corpus).sort().map((f) => fs.readFileSync(path.join(corpus, f), 'utf8')).join('\n') + '\n'
    : Array.from({ length: 2000 }, (_, i) => LINES[(i * 7) % LINES.length]).join('\n') + '\n';
  console.log(`input: ${fs.existsSync(corpus) ? `the C_dmesg corpus (${(chunk.length / 1024).toFixed(0)} KiB) repeated` : 'a synthetic mix (45% failure lines)'}`);
  const target = MB * 1024 * 1024;
  let written = 0;
  while (written < target) written += fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  const bytes = fs.statSync(file).size;

  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  let peak = heap0;
  const d = new Diagnoser();
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await streamFile(file, 'bench', (text, src, first) => {
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    return d.feedText(text, src, first);
  });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  const r = d.result();

  const g0 = process.hrtime.bigint();
  let grepCount = '';
  let grepCpu = NaN;
  try {
    // bash's time builtin gives grep's own CPU time (user+system) on stderr
    const r = spawnSync('bash', ['-c', 'TIMEFORMAT="%U %S"; time grep -ciE "vfio|iommu" "$1"', 'bench', file], { encoding: 'utf8' });
    grepCount = r.stdout.trim();
    const [u, sy] = r.stderr.trim().split(/\s+/).map(Number);
    grepCpu = u + sy;
  } catch {
    grepCount = 'grep failed';
  }
  const gsecs = Number(process.hrtime.bigint() - g0) / 1e9;
  const mb = bytes / 1024 / 1024;
  console.log(`diagnose bench: ${mb.toFixed(0)} MiB, ${r.linesRead} lines; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} CPUs (figures are only comparable on an idle machine)`);
  const rate = (s: number) => `${(mb / s).toFixed(0)} MiB/s`;
  console.log('                    wall            CPU (user+system)');
  console.log(`  vfiokit diagnose  ${secs.toFixed(2)} s ${rate(secs).padStart(9)}  ${cpuSecs.toFixed(2)} s ${rate(cpuSecs).padStart(9)}  (target: 100 MiB in < 2 s = 50 MiB/s)  findings: ${r.findings.map((f) => f.cause).join(', ')}`);
  console.log(`  grep -ciE         ${gsecs.toFixed(2)} s ${rate(gsecs).padStart(9)}  ${grepCpu.toFixed(2)} s ${rate(grepCpu).padStart(9)}  (yardstick; ${grepCount} matching lines)`);
  console.log('  (on a loaded machine the wall time includes waiting for a CPU; the CPU time is the work done)');
  console.log(`  peak heap growth  ${((peak - heap0) / 1024 / 1024).toFixed(1)} MiB over the run (constant memory: independent of input size)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
