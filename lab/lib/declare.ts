// A lab test as a declaration: which guest (a fast boot or a full image),
// which machine (IOMMU, topology, vCPUs, memory, NIC), the shell helpers its
// script needs, and one list of steps per boot — commands run through
// `lab_run` with the exit code and JSON they must give — then the checks only
// code can make. The runner writes each boot's script from the steps, boots
// the guest, checks every step's expectation itself (a failed one is a failed
// check carrying the command's output tail; a step whose output is missing is
// a failure, never a pass), calls the boot's checks, and after the last boot
// the test's checks.
//
// A test that needs code on this machine while the guest is up (driving it
// over SSH, say) stays a plain `TestDef` with a `run` function; that is the
// exception, and its file says why.

import path from 'node:path';
import { SkipTest, type TestContext, type TestDef } from './harness.js';
import { runFast, type FastRun } from './fast-guest.js';
import { guestOutputs, type GuestListing } from './guest-script.js';
import { getImage, type ImageName } from './images.js';
import { bootOutcome, type BootResult, type IommuKind, type TopologyName, type UserNet } from './qemu.js';
import { BOOT_HELPERS, GuestSession } from './session.js';
import { shq, tail } from './util.js';

export { SkipTest };

/** The machine QEMU emulates for this test (nothing here is global). */
export interface LabMachine {
  iommu: IommuKind;
  topology: TopologyName;
  /** vCPUs. Under TCG more vCPUs than the machine's cores per job only slow a guest down. */
  smp: number;
  memoryMiB: number;
  /** Default: AuthenticAMD with the AMD IOMMU, GenuineIntel otherwise. */
  cpuVendor?: 'GenuineIntel' | 'AuthenticAMD';
  net?: UserNet;
}

export type LabGuest =
  /** The Debian kernel from /boot and the lab's busybox initramfs over this machine's / (one boot). */
  | { kind: 'fast'; /** Kernel arguments; default `intel_iommu=on` with the Intel IOMMU, none otherwise. */ kernelArgs?: string }
  /** A cached Debian image booted through its own bootloader; its copy-on-write disk carries changes from boot to boot. */
  | { kind: 'image'; image: ImageName };

export interface JsonExpectation {
  /** The check's name. */
  check: string;
  /** Given the parsed stdout; false (or a throw) fails the check. */
  ok: (json: any) => boolean;
  /** What the check records (default: the command's output tail). */
  detail?: (json: any) => string;
  require?: boolean;
}

/** A command run through `lab_run LABEL RUN` (its out/err/rc/secs saved under LABEL). */
export interface CommandStep {
  label: string;
  /** A shell command line; `vfiokit …` runs the build under test. */
  run: string;
  /** Exported for this command only. */
  env?: Record<string, string>;
  expectExit?: number | number[];
  expectJson?: JsonExpectation;
  /** Name of the exit-code check (default: "`RUN` exits N"); a function names it from the boot's outputs (e.g. the device found). */
  check?: string | ((b: BootView) => string);
  /** A failed exit code stops the test (later boots and checks depend on it). */
  require?: boolean;
  /** Files in the boot's out/ whose ends go with a failed expectation (e.g. a daemon's log). */
  showOnFailure?: string[];
}

/** A string step is plain shell: listings, variables, setup. */
export type Step = string | CommandStep;

export interface BootDecl {
  name: string;
  steps: Step[];
  /** Overall limit for this boot (default 20 min fast, 30 min image). */
  timeoutMs?: number;
  /** The boot may end before its script does (a power cut); then it is not a failure by itself. */
  allowUnfinished?: boolean;
  /** Checks on this boot's outputs, before the next boot (may throw SkipTest). */
  checks?: (b: BootView, t: TestContext, r: LabRun) => void | Promise<void>;
}

export interface LabTestDecl {
  id: string;
  title: string;
  /** vfiokit commands this test needs; missing ones make it a skip. */
  needs: string[];
  /** Measured warm minutes (longest first). */
  cost: number;
  guest: LabGuest;
  machine: LabMachine;
  /** Shell helper sets sourced before the steps (lab/lib: LIBVIRT_HELPERS, DISPLAY_HELPERS, …); BOOT_HELPERS is always there. */
  helpers?: string[];
  /** Work on this machine before the first boot (e.g. a file the checks compare with). */
  prepare?: (t: TestContext) => void | Promise<void>;
  /** One boot per entry; a fast guest has exactly one. */
  boots: BootDecl[];
  /** Checks over every boot's outputs, after the last boot. */
  checks?: (r: LabRun, t: TestContext) => void | Promise<void>;
}

/** What one boot left: its files and the outputs of its steps. */
export interface BootView {
  name: string;
  outDir: string;
  finished: string | undefined;
  read: (name: string) => string | undefined;
  /** Exit code of `lab_run LABEL` (null when it did not run). */
  rc: (label: string) => number | null;
  /** Its stdout + stderr. */
  out: (label: string) => string;
  secs: (label: string) => string;
  listing: (name: string) => GuestListing;
  /** LABEL.out parsed as JSON; undefined when missing or not JSON (checks that need it say so). */
  json: <T = any>(label: string) => T | undefined;
}

export interface LabRun {
  boots: BootView[];
  /** The boot of that name (it must have run). */
  boot: (name: string) => BootView;
}

/** What a guest backend returns for one boot (the boot already recorded on the test). */
export interface GuestBootResult {
  boot: BootResult;
  outDir: string;
  finished: string | undefined;
  read: (name: string) => string | undefined;
}

/** Boots the declared guest; the lab's QEMU backends, or a fake in unit tests. */
export interface GuestBackend {
  boot: (req: { name: string; index: number; script: string; timeoutMs: number }) => Promise<GuestBootResult>;
}

/** The test entry point for a declaration (`TestDef.run` runs it). */
export function defineLabTest(d: LabTestDecl): TestDef & { decl: LabTestDecl } {
  if (!d.boots.length) throw new Error(`lab test ${d.id}: no boots declared`);
  if (d.guest.kind === 'fast' && d.boots.length !== 1) throw new Error(`lab test ${d.id}: a fast guest boots once (its root is a tmpfs overlay); declare an image guest for ${d.boots.length} boots`);
  const names = d.boots.map((b) => b.name);
  if (new Set(names).size !== names.length) throw new Error(`lab test ${d.id}: boot names repeat (${names.join(', ')})`);
  for (const b of d.boots) {
    const labels = b.steps.filter((s): s is CommandStep => typeof s !== 'string').map((s) => s.label);
    const dup = labels.find((l, i) => labels.indexOf(l) !== i);
    if (dup) throw new Error(`lab test ${d.id}: step label ${dup} repeats in boot ${b.name} (its outputs would be overwritten)`);
    const bad = labels.find((l) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(l));
    if (bad !== undefined) throw new Error(`lab test ${d.id}: step label ${JSON.stringify(bad)} is not a file name`);
  }
  return { id: d.id, title: d.title, needs: d.needs, cost: d.cost, decl: d, run: (t) => runDeclaration(d, t) };
}

/** The shell of one boot: the steps in order, commands through lab_run. */
export function stepScript(steps: Step[]): string {
  return steps
    .map((s) => {
      if (typeof s === 'string') return s;
      const cmd = `lab_run ${s.label} ${s.run}`;
      if (!s.env || !Object.keys(s.env).length) return cmd;
      return `(${Object.entries(s.env).map(([k, v]) => `export ${k}=${shq(v)}; `).join('')}${cmd})`;
    })
    .join('\n');
}

export function bootView(name: string, r: GuestBootResult): BootView {
  const g = guestOutputs(r.read);
  return {
    name,
    outDir: r.outDir,
    finished: r.finished,
    read: r.read,
    ...g,
    json: (label) => {
      try {
        return JSON.parse(r.read(`${label}.out`) ?? '');
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * Parses a command's JSON output; when it is not JSON, records a failed check
 * "WHAT prints valid JSON" with the start of the output and returns null.
 */
export function readJson(t: TestContext, what: string, text: string | undefined): any {
  try {
    return JSON.parse(text ?? '');
  } catch (e) {
    t.check(`${what} prints valid JSON`, false, `${(e as Error).message}; output starts: ${(text ?? '(missing)').slice(0, 200)}`);
    return null;
  }
}

const OUTPUT_TAIL_LINES = 25;

function outputTail(b: BootView, s: CommandStep): string {
  const o = b.out(s.label);
  const parts = [o ? `output (last ${OUTPUT_TAIL_LINES} lines):\n${tail(o, OUTPUT_TAIL_LINES)}` : 'no output'];
  for (const f of s.showOnFailure ?? []) {
    const text = b.read(f);
    parts.push(text === undefined ? `${f}: absent` : `${f} (last ${OUTPUT_TAIL_LINES} lines):\n${tail(text, OUTPUT_TAIL_LINES)}`);
  }
  return parts.join('\n');
}

/** Checks a step's declared exit code and JSON against what its boot left. */
export function expectStep(t: TestContext, b: BootView, s: CommandStep): void {
  const record = (name: string, ok: boolean, detail: string, require?: boolean): void => {
    if (require) t.require(name, ok, detail);
    else t.check(name, ok, detail);
  };
  if (s.expectExit !== undefined) {
    const want = [s.expectExit].flat();
    const got = b.rc(s.label);
    const name = typeof s.check === 'function' ? s.check(b) : (s.check ?? `\`${s.run}\` exits ${want.join(' or ')}`);
    if (got === null) record(name, false, `no exit code for step ${s.label} (${s.label}.rc missing): the step did not run to its end in boot ${b.name}`, s.require);
    else record(name, want.includes(got), want.includes(got) ? `exit ${got}` : `exit ${got}, expected ${want.join(' or ')}\n${outputTail(b, s)}`, s.require);
  }
  const j = s.expectJson;
  if (j) {
    const text = b.read(`${s.label}.out`);
    if (text === undefined) {
      record(j.check, false, `no output for step ${s.label} (${s.label}.out missing) in boot ${b.name}`, j.require);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      record(j.check, false, `\`${s.run}\` did not print JSON (${(e as Error).message})\n${outputTail(b, s)}`, j.require);
      return;
    }
    let ok = false;
    let why = '';
    try {
      ok = j.ok(parsed) === true;
    } catch (e) {
      why = `the expectation threw: ${(e as Error).message}\n`;
    }
    let detail: string;
    try {
      detail = j.detail ? j.detail(parsed) : ok ? `exit ${b.rc(s.label)}` : outputTail(b, s);
    } catch (e) {
      detail = `(detail failed: ${(e as Error).message})`;
    }
    record(j.check, ok, why + detail, j.require);
  }
}

/** The name of the "it booted and ran its script" check (as the lab has always called it). */
function cameUpCheck(d: LabTestDecl, index: number, name: string): string {
  return d.guest.kind === 'fast' ? 'guest booted and ran the script to the end' : `boot ${index} (${name}) came up and ran its script`;
}

/** Runs a declaration: boots, steps' expectations, boot checks, test checks. */
export async function runDeclaration(d: LabTestDecl, t: TestContext, backend?: GuestBackend): Promise<void> {
  await d.prepare?.(t);
  const g = backend ?? (await qemuBackend(d, t));
  const boots: BootView[] = [];
  const run: LabRun = {
    boots,
    boot: (name) => {
      const b = boots.find((x) => x.name === name);
      if (!b) throw new Error(`lab test ${d.id}: no boot named ${name} has run`);
      return b;
    },
  };
  for (const [i, bd] of d.boots.entries()) {
    const script = [...(d.helpers ?? []), stepScript(bd.steps)].join('\n');
    const res = await g.boot({ name: bd.name, index: i + 1, script, timeoutMs: bd.timeoutMs ?? (d.guest.kind === 'fast' ? 20 : 30) * 60_000 });
    if (!bd.allowUnfinished)
      t.require(cameUpCheck(d, i + 1, bd.name), res.finished === 'ok', res.boot.timedOut ? bootOutcome(res.boot) : `the script ${res.finished ? `finished "${res.finished}"` : 'never finished'}`);
    const view = bootView(bd.name, res);
    boots.push(view);
    for (const s of bd.steps) if (typeof s !== 'string') expectStep(t, view, s);
    await bd.checks?.(view, t, run);
  }
  await d.checks?.(run, t);
}

/** The machine as qemu.ts spells it. */
export function machineSpec(m: LabMachine) {
  return {
    iommu: m.iommu,
    topology: m.topology,
    smp: m.smp,
    memMb: m.memoryMiB,
    cpuVendor: m.cpuVendor ?? (m.iommu === 'amd' ? ('AuthenticAMD' as const) : ('GenuineIntel' as const)),
    ...(m.net ? { net: m.net } : {}),
  };
}

/** Fast boots through runFast, image boots through a GuestSession over the cached image. */
async function qemuBackend(d: LabTestDecl, t: TestContext): Promise<GuestBackend> {
  const guest = d.guest;
  if (guest.kind === 'fast') {
    const append = guest.kernelArgs ?? (d.machine.iommu === 'intel' ? 'intel_iommu=on' : '');
    return {
      boot: async ({ name, script, timeoutMs }) => {
        const label = `${t.id}/${name}`;
        const r: FastRun = await runFast({ label, workDir: t.bootDir(name), machine: machineSpec(d.machine), append, script: `${BOOT_HELPERS}\n${script}`, timeoutMs });
        t.recordBoot(label, r.boot);
        return r;
      },
    };
  }
  if (d.machine.net) throw new Error(`lab test ${d.id}: a NIC is only wired for fast guests`);
  const image = await getImage(guest.image);
  const m = machineSpec(d.machine);
  const s = new GuestSession(t, image, { topology: m.topology, iommu: m.iommu, smp: m.smp, memMb: m.memMb });
  await s.init();
  return { boot: ({ name, script, timeoutMs }) => s.boot(name, script, { timeoutMs, allowUnfinished: true }) };
}

/** Where a boot's out/ directory is, for checks that read binary files. */
export function outFile(b: BootView, name: string): string {
  return path.join(b.outDir, name);
}

/** "  [image grub-itools, intel, 4 vCPUs, 1536 MiB, 3 boots]" for `--list` (empty for a free-form test). */
export function machineSummary(t: TestDef): string {
  const d = t.decl;
  if (!d) return '  [free-form]';
  const g = d.guest.kind === 'fast' ? 'fast' : `image ${d.guest.image}`;
  return `  [${g}, ${d.machine.iommu} IOMMU, ${d.machine.topology}, ${d.machine.smp} vCPU${d.machine.smp > 1 ? 's' : ''}, ${d.machine.memoryMiB} MiB${d.boots.length > 1 ? `, ${d.boots.length} boots` : ''}]`;
}
