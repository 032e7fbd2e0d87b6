// `npm run bench`: how fast vfiokit starts and reads a host, each figure next
// to a yardstick measured in the same run (the machine may be busy, so only
// ratios mean something). Commands of one comparison are run interleaved
// (A B A B …, order alternating) and their medians compared.
//
//   start-up    vfiokit --version                 vs node -e 0        target <= 1.2x
//   check       vfiokit check   (desktop fixture) vs vfiokit inspect  target <= 1.2x
//   plan        vfiokit plan 01:00.0 (Debian)     vs node -e 0        target <= 2x
//   inspect     vfiokit inspect --json at 64…4096 synthetic functions vs
//               lspci -nn -A linux-sysfs on the same tree             target <= 1.3x at 4096,
//               µs per function printed at each size (linear growth)
//   peak RSS    inspect --json at 4096 functions (/usr/bin/time -v)   target <= 50 MiB
//   syscalls    per function, from strace -c -f (when strace exists), vfiokit and lspci
//   floor       bench/floor.ts: a bare Node script making the same reads as
//               inspect and nothing else, timed with vfiokit and lspci at the
//               largest size (wall, CPU from `perf stat` when it works, RSS,
//               syscalls): the best ratio to lspci any Node program reading
//               these files can reach
//
// VFIOKIT_BENCH_RUNS=N changes the number of runs per command (default 11).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildFakeHost, type FakeHost } from '../test/helpers/fake-host.js';
import { FIXTURE_HOSTS } from '../test/helpers/hosts.js';
import { DISTRO_HOSTS } from '../test/helpers/distros.js';
import { synthetic } from './synthetic.js';

// VFIOKIT_BENCH_BIN: another build's bin/vfiokit.js, to compare before and after a change.
const BIN = process.env.VFIOKIT_BENCH_BIN ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../bin/vfiokit.js');
const NODE = process.execPath;
const SYSTEM_PCI_IDS = ['/usr/share/misc/pci.ids', '/usr/share/hwdata/pci.ids'].find((p) => fs.existsSync(p));
const RUNS = Math.max(3, Number(process.env.VFIOKIT_BENCH_RUNS) || 11);
const OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n';
const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const FLOOR = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'floor.js');

type Cmd = { label: string; argv: string[]; check?: (stdout: string) => void; exits?: number[] };

/** One run of a command: wall time in ms; throws when it fails. */
function once(c: Cmd): { ms: number; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(c.argv[0], c.argv.slice(1), { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!(c.exits ?? [0]).includes(r.status ?? -1)) throw new Error(`${c.label} failed (exit ${r.status}): ${(r.stderr || r.stdout).slice(0, 500)}`);
  return { ms, stdout: r.stdout };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Interleaved runs of the commands (order reversed every other round), after one warm-up each; medians in ms. */
function interleaved(cmds: Cmd[], runs = RUNS): number[] {
  for (const c of cmds) c.check?.(once(c).stdout);
  const times = cmds.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    const order = cmds.map((_, k) => k);
    if (i % 2) order.reverse();
    for (const k of order) times[k].push(once(cmds[k]).ms);
  }
  return times.map(median);
}

const verdict = (ratio: number, target: number) => `${ratio.toFixed(2)}x (target <= ${target.toFixed(1)}x) ${ratio <= target ? 'MET' : 'NOT MET'}`;

const host = (h: FakeHost): string => buildFakeHost(h);

/** Peak RSS in KiB of one run, from GNU time's "Maximum resident set size". */
function peakRss(argv: string[]): number | null {
  if (!fs.existsSync('/usr/bin/time')) return null;
  const r = spawnSync('/usr/bin/time', ['-v', ...argv], { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 });
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  return r.status === 0 && m ? Number(m[1]) : null;
}

/** CPU time in ms of one run, all threads (perf stat's task-clock); null without a working perf. */
function cpuMs(argv: string[]): number | null {
  const r = spawnSync('perf', ['stat', '-x,', '-e', 'task-clock', ...argv], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  const line = r.status === 0 ? r.stderr.split('\n').find((l) => l.includes('task-clock')) : undefined;
  const ms = line ? Number(line.split(',')[0]) : NaN;
  return Number.isFinite(ms) ? ms : null;
}

/** Interleaved CPU-time runs (as `interleaved`); medians in ms, null without perf. */
function interleavedCpu(argvs: string[][], runs: number): (number | null)[] {
  const times = argvs.map(() => [] as number[]);
  for (let i = 0; i < runs; i++) {
    const order = argvs.map((_, k) => k);
    if (i % 2) order.reverse();
    for (const k of order) {
      const ms = cpuMs(argvs[k]);
      if (ms !== null) times[k].push(ms);
    }
  }
  return times.map((t) => (t.length ? median(t) : null));
}

/** Total system calls of a run (all threads and children), from strace -c -f. */
function syscalls(argv: string[]): number | null {
  const out = path.join(os.tmpdir(), `vfiokit-bench-strace-${process.pid}.txt`);
  const r = spawnSync('strace', ['-c', '-f', '-o', out, ...argv], { stdio: ['ignore', 'ignore', 'ignore'] });
  if (r.status !== 0) return null;
  const text = fs.readFileSync(out, 'utf8');
  fs.rmSync(out, { force: true });
  const m = /^\s*100\.00\s+\S+\s+\S+\s+(\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

function main(): void {
  const hasLspci = has('lspci', ['--version']);
  const hasStrace = has('strace', ['-V']);
  const roots: string[] = [];
  console.log(`vfiokit benchmark: node ${process.version}, ${os.cpus().length} CPUs, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${RUNS} interleaved runs per command (medians)`);
  console.log(`  lspci ${hasLspci ? 'found' : 'NOT found (install pciutils)'}; strace ${hasStrace ? 'found' : 'not found (no syscall counts)'}; pci.ids ${SYSTEM_PCI_IDS ?? 'none'}`);
  try {
    // Start-up.
    console.log('\nstart-up');
    // Node's own cost of running a script file (loader, package scope lookup), beside -e 0.
    const trivialDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-bench-trivial-'));
    roots.push(trivialDir);
    fs.writeFileSync(path.join(trivialDir, 'package.json'), '{ "type": "commonjs" }\n');
    fs.writeFileSync(path.join(trivialDir, 'print.js'), "process.stdout.write('vfiokit 0.0.0\\n');\n");
    const trivial = [NODE, path.join(trivialDir, 'print.js')];
    const [ver, bare, file] = interleaved([
      { label: 'vfiokit --version', argv: [NODE, BIN, '--version'], check: (s) => void (s.startsWith('vfiokit ') || fail('--version printed ' + s)) },
      { label: 'node -e 0', argv: [NODE, '-e', '0'] },
      { label: 'node print.js', argv: trivial },
    ], RUNS * 2);
    console.log(`  vfiokit --version ${ver.toFixed(1)} ms, node -e 0 ${bare.toFixed(1)} ms: ${verdict(ver / bare, 1.2)}; a one-line script file ${file.toFixed(1)} ms (${(file / bare).toFixed(2)}x)`);
    const [verCpu, bareCpu, fileCpu] = interleavedCpu([[NODE, BIN, '--version'], [NODE, '-e', '0'], trivial], RUNS);
    if (verCpu !== null && bareCpu !== null && fileCpu !== null) console.log(`  CPU (perf task-clock): vfiokit --version ${verCpu.toFixed(1)} ms, node -e 0 ${bareCpu.toFixed(1)} ms: ${(verCpu / bareCpu).toFixed(2)}x; the script file ${fileCpu.toFixed(1)} ms (${(fileCpu / bareCpu).toFixed(2)}x)`);

    // check vs inspect on the desktop fixture; plan on the Debian fixture.
    const desktop = host(FIXTURE_HOSTS['desktop-nvidia']);
    roots.push(desktop);
    const [chk, insp] = interleaved([
      // The fixture is not ready for passthrough: check exits 3.
      { label: 'vfiokit check', argv: [NODE, BIN, 'check', '--root', desktop], exits: [0, 3] },
      { label: 'vfiokit inspect', argv: [NODE, BIN, 'inspect', '--root', desktop] },
    ]);
    console.log(`  vfiokit check (desktop fixture) ${chk.toFixed(1)} ms, vfiokit inspect ${insp.toFixed(1)} ms: ${verdict(chk / insp, 1.2)}`);
    const deb = DISTRO_HOSTS['debian-grub'];
    const debian = host(deb.host);
    roots.push(debian);
    const [plan, bare2] = interleaved([
      { label: 'vfiokit plan', argv: [NODE, BIN, 'plan', ...deb.select, '--root', debian], check: (s) => void (s.includes('vfio') || fail('plan printed no vfio change')) },
      { label: 'node -e 0', argv: [NODE, '-e', '0'] },
    ]);
    console.log(`  vfiokit plan ${deb.select.join(' ')} (Debian fixture) ${plan.toFixed(1)} ms, node -e 0 ${bare2.toFixed(1)} ms: ${verdict(plan / bare2, 2)}`);
    // The lever of V8's code cache (bin/code-cache.js): the same plan with it turned off, CPU time.
    const planArgv = [NODE, BIN, 'plan', ...deb.select, '--root', debian];
    const [planCpu, planNoCache, bareCpu2] = interleavedCpu([planArgv, ['env', 'VFIOKIT_CODE_CACHE=off', ...planArgv], [NODE, '-e', '0']], RUNS);
    if (planCpu !== null && planNoCache !== null && bareCpu2 !== null) console.log(`  CPU (perf task-clock): plan ${planCpu.toFixed(1)} ms (${(planCpu / bareCpu2).toFixed(2)}x node -e 0 at ${bareCpu2.toFixed(1)} ms); without the code cache ${planNoCache.toFixed(1)} ms (${(planNoCache / bareCpu2).toFixed(2)}x)`);

    // inspect --json against lspci at growing sizes.
    console.log('\ninspect --json on synthetic hosts, side by side with lspci -nn');
    console.log('  functions  vfiokit (ms)  us/function  lspci (ms)  us/function  ratio');
    const rows: { n: number; v: number; l: number | null; root: string }[] = [];
    const pciIds = SYSTEM_PCI_IDS ? fs.readFileSync(SYSTEM_PCI_IDS, 'latin1') : undefined;
    for (const n of [64, 256, 1024, 4096]) {
      const root = host({ iommu: 'intel', pci: synthetic(n), pciIds, files: { '/etc/os-release': OS_RELEASE } });
      roots.push(root);
      const cmds: Cmd[] = [
        { label: 'vfiokit inspect --json', argv: [NODE, BIN, 'inspect', '--json', '--root', root], check: (s) => void (JSON.parse(s).pci.length === n || fail(`vfiokit did not list ${n} functions`)) },
      ];
      if (hasLspci) cmds.push({ label: 'lspci -nn', argv: ['lspci', '-nn', '-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`], check: (s) => void (s.trim().split('\n').length === n || fail(`lspci did not list ${n} functions`)) });
      const runs = n >= 4096 ? Math.max(5, Math.ceil(RUNS / 2)) : RUNS;
      const [v, l = null] = interleaved(cmds, runs);
      rows.push({ n, v, l, root });
      const us = (ms: number) => ((ms * 1000) / n).toFixed(1);
      console.log(`  ${String(n).padStart(9)}  ${v.toFixed(1).padStart(12)}  ${us(v).padStart(11)}  ${l === null ? '-'.padStart(10) : l.toFixed(1).padStart(10)}  ${l === null ? '-'.padStart(11) : us(l).padStart(11)}  ${l === null ? '-' : (v / l).toFixed(2)}`);
    }
    const big = rows[rows.length - 1];
    if (big.l !== null) console.log(`  at ${big.n} functions: vfiokit / lspci = ${verdict(big.v / big.l, 1.3)}`);
    // Linear growth: the marginal cost per function between successive sizes
    // (start-up cancels out). The first step adds under 200 functions, a few
    // ms that the machine's noise can swamp, so the verdict compares the last
    // step with the one before it.
    const slope = (a: (typeof rows)[0], b: (typeof rows)[0]) => ((b.v - a.v) * 1000) / (b.n - a.n);
    const steps = rows.slice(1).map((r, i) => ({ from: rows[i].n, to: r.n, us: slope(rows[i], r) }));
    const high = steps[steps.length - 1].us;
    const before = steps[steps.length - 2].us;
    console.log(`  marginal cost per function: ${steps.map((st) => `${st.us.toFixed(1)} us (${st.from}→${st.to})`).join(', ')}: ${high <= before * 1.5 ? 'linear' : 'SUPERLINEAR'}`);
    const lspciBig = ['lspci', '-nn', '-A', 'linux-sysfs', '-O', `sysfs.path=${big.root}/sys/bus/pci`];
    const floorBig = [NODE, FLOOR, big.root];
    const inspectBig = [NODE, BIN, 'inspect', '--json', '--root', big.root];

    // The floor: Node making the same reads and nothing else, interleaved with both.
    console.log(`\nfloor at ${big.n} functions: bench/floor.ts makes inspect's reads (same files, same calls) and builds nothing`);
    const fruns = Math.max(5, Math.ceil(RUNS / 2));
    const floorCmds: Cmd[] = [
      { label: 'vfiokit inspect --json', argv: inspectBig },
      { label: 'floor', argv: floorBig, check: (s) => void (Number(s) === big.n || fail(`floor read ${s.trim()} functions, not ${big.n}`)) },
    ];
    if (hasLspci) floorCmds.push({ label: 'lspci -nn', argv: lspciBig });
    const [fv, ff, fl = null] = interleaved(floorCmds, fruns);
    console.log(`  wall: vfiokit ${fv.toFixed(1)} ms, floor ${ff.toFixed(1)} ms${fl === null ? '' : `, lspci ${fl.toFixed(1)} ms; floor / lspci = ${(ff / fl).toFixed(2)}x, vfiokit / floor = ${(fv / ff).toFixed(2)}x`}`);
    const [cv, cf, cl = null, cb = null] = interleavedCpu([inspectBig, floorBig, ...(hasLspci ? [lspciBig] : []), [NODE, '-e', '0']], fruns);
    if (cv !== null && cf !== null) {
      console.log(`  CPU (perf task-clock, all threads): vfiokit ${cv.toFixed(1)} ms, floor ${cf.toFixed(1)} ms${cl === null ? '' : `, lspci ${cl.toFixed(1)} ms`}${cb === null ? '' : `, node -e 0 ${cb.toFixed(1)} ms`}${cl === null ? '' : `; vfiokit / lspci = ${(cv / cl).toFixed(2)}x, floor / lspci = ${(cf / cl).toFixed(2)}x`}`);
    } else console.log('  CPU: perf stat not available (apt-get install linux-perf): no CPU times');

    // Peak memory.
    console.log('\npeak RSS');
    const rss = [peakRss(inspectBig), peakRss(inspectBig), peakRss(inspectBig)].filter((x): x is number => x !== null);
    if (rss.length) {
      const mib = median(rss) / 1024;
      const bareRss = peakRss([NODE, '-e', '0']);
      const lspciRss = hasLspci ? peakRss(lspciBig) : null;
      const floorRss = peakRss(floorBig);
      const mb = (k: number | null) => (k === null ? '-' : (k / 1024).toFixed(1));
      console.log(`  vfiokit inspect --json at ${big.n} functions: ${mib.toFixed(1)} MiB (target <= 50 MiB) ${mib <= 50 ? 'MET' : 'NOT MET'}; node -e 0 ${mb(bareRss)} MiB; floor ${mb(floorRss)} MiB; lspci ${mb(lspciRss)} MiB`);
    } else console.log('  /usr/bin/time not found (apt-get install time): no peak RSS');

    // System calls per function.
    console.log('\nsystem calls (strace -c -f)');
    if (hasStrace) {
      const bareCalls = syscalls([NODE, '-e', '0']) ?? 0;
      for (const r of [rows[0], big]) {
        const v = syscalls([NODE, BIN, 'inspect', '--json', '--root', r.root]);
        const l = hasLspci ? syscalls(['lspci', '-nn', '-A', 'linux-sysfs', '-O', `sysfs.path=${r.root}/sys/bus/pci`]) : null;
        const f = syscalls([NODE, FLOOR, r.root]);
        if (v === null) continue;
        console.log(`  ${String(r.n).padStart(5)} functions: vfiokit ${v} calls, ${((v - bareCalls) / r.n).toFixed(2)} per function beyond node -e 0 (${bareCalls});${f === null ? '' : ` floor ${((f - bareCalls) / r.n).toFixed(2)};`}${l === null ? '' : ` lspci ${l} calls, ${(l / r.n).toFixed(2)} per function`}`);
      }
    } else console.log('  strace not found (apt-get install strace): no syscall counts');
  } finally {
    for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  }
}

function fail(msg: string): never {
  throw new Error(msg);
}

main();
