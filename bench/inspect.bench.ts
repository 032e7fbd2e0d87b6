// `npm run bench`: how fast vfiokit reads a host, against lspci reading the
// same tree. Generates synthetic hosts of 64, 512 and 4096 PCI functions
// (root ports, each with multifunction endpoints behind it), then times
//   vfiokit inspect --json --root R
//   lspci -nn -A linux-sysfs -O sysfs.path=R/sys/bus/pci
// as whole processes (median of several runs), plus `vfiokit --version`.
// Targets: at 4096 functions no slower than 2x lspci; time per function
// roughly constant (linear growth); --version under 100 ms.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildFakeHost } from '../test/helpers/fake-host.js';
import { synthetic } from './synthetic.js';

const BIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bin/vfiokit.js');
const SYSTEM_PCI_IDS = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids'].find((p) => fs.existsSync(p));

function time(argv: string[], runs: number): { median: number; ok: boolean; out: string } {
  const times: number[] = [];
  let ok = true;
  let out = '';
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    ok &&= r.status === 0;
    out = r.stdout;
    if (r.status !== 0) out = r.stderr;
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], ok, out };
}

function main(): void {
  const hasLspci = spawnSync('lspci', ['--version']).status === 0;
  console.log(`vfiokit inspect benchmark (node ${process.version}; lspci ${hasLspci ? 'found' : 'NOT found — install pciutils'}; pci.ids ${SYSTEM_PCI_IDS ?? 'none'})`);
  const ver = time([process.execPath, BIN, '--version'], 11);
  console.log(`vfiokit --version: ${ver.median.toFixed(1)} ms (target < 100 ms) ${ver.median < 100 ? 'OK' : 'OVER TARGET'}`);
  console.log('');
  console.log('functions  build(s)  vfiokit inspect --json (ms)  per-fn (us)  lspci -nn (ms)  ratio');
  const rows: { n: number; v: number; l: number | null }[] = [];
  for (const n of [64, 512, 4096]) {
    const t0 = Date.now();
    const root = buildFakeHost({ iommu: 'intel', pci: synthetic(n), pciIds: SYSTEM_PCI_IDS ? fs.readFileSync(SYSTEM_PCI_IDS, 'latin1') : undefined });
    const build = (Date.now() - t0) / 1000;
    const runs = n >= 4096 ? 5 : 7;
    const v = time([process.execPath, BIN, 'inspect', '--json', '--root', root], runs);
    if (!v.ok) throw new Error(`vfiokit inspect failed: ${v.out.slice(0, 500)}`);
    const count = JSON.parse(v.out).pci.length;
    if (count !== n) throw new Error(`vfiokit saw ${count} functions, expected ${n}`);
    let l: number | null = null;
    if (hasLspci) {
      const lr = time(['lspci', '-nn', '-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`], runs);
      const lines = lr.out.trim().split('\n').length;
      if (!lr.ok || lines !== n) throw new Error(`lspci listed ${lines} functions, expected ${n}: ${lr.out.slice(0, 300)}`);
      l = lr.median;
    }
    rows.push({ n, v: v.median, l });
    console.log(
      `${String(n).padStart(9)}  ${build.toFixed(1).padStart(8)}  ${v.median.toFixed(1).padStart(27)}  ${((v.median * 1000) / n).toFixed(1).padStart(11)}  ${l === null ? '-'.padStart(14) : l.toFixed(1).padStart(14)}  ${l === null ? '-' : (v.median / l).toFixed(2)}`,
    );
    fs.rmSync(root, { recursive: true, force: true });
  }
  const big = rows[rows.length - 1];
  const mid = rows[1];
  console.log('');
  if (big.l !== null) console.log(`4096 functions: vfiokit/lspci = ${(big.v / big.l).toFixed(2)} (target <= 2.00) ${big.v <= 2 * big.l ? 'OK' : 'OVER TARGET'}`);
  // Linearity: the marginal cost per function from 512 to 4096 vs 64 to 512 (start-up cancels out).
  const slopeLow = (mid.v - rows[0].v) / (mid.n - rows[0].n);
  const slopeHigh = (big.v - mid.v) / (big.n - mid.n);
  console.log(`marginal cost per function: ${(slopeLow * 1000).toFixed(1)} us (64→512), ${(slopeHigh * 1000).toFixed(1)} us (512→4096): ${slopeHigh <= slopeLow * 2 ? 'linear' : 'SUPERLINEAR'}`);
}

main();
