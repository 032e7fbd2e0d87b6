// `vfiokit rom dump|check|strip|install`: the VBIOS pipeline. check and
// strip work on files (strip writes only the output file the user names);
// dump and install change the host and go through the one engine
// (src/apply): dump enables the device's `rom` attribute, copies it and
// disables it again (undo and `vfiokit recover` disable it too); install
// copies a checked ROM to where libvirt's QEMU may read it.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyPlan, realRunner, withWriteLock, type Runner, type SysfsWriter } from '../../apply/index.js';
import { realSysfsWriter } from '../../apply/sysfs-writer.js';
import { writeFileAtomic } from '../../apply/atomic-write.js';
import { EXIT, PreconditionError, UsageError, VfioError } from '../../errors.js';
import { describeRom, hexOffset, MAX_ROM_BYTES, parseOptionRom, romVerdict, stripRom, type RomReport, type RomTarget, type RomVerdict } from '../../formats/option-rom.js';
import { inspect } from '../../host/inspect.js';
import { pciAttr } from '../../host/sysfs-paths.js';
import { shortAddress } from '../../model/pci-address.js';
import type { Plan } from '../../model/plan.js';
import { assertSelector, findOneDevice, planRomDump, planRomInstall } from '../../plan/rom-plan.js';
import { parseSelector } from '../../plan/select.js';
import { STATE_DIR } from '../../apply/state-dir.js';

/** Where `rom check SELECTOR` keeps the dumps it checks. */
const ROM_DUMP_DIR = `${STATE_DIR}/rom-dumps`;
import { confirm } from '../confirm.js';
import { out, printJson, type CommandContext } from '../context.js';

const SUBCOMMANDS = ['dump', 'check', 'strip', 'install'] as const;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const mib = (n: number) => `${(n / 1048576).toFixed(n % 1048576 ? 1 : 0)} MiB`;

interface RomDeps {
  runner?: Runner;
  /** Kernel attribute writes (tests: the kernel fake); default: the real writer on the live root. */
  writer?: SysfsWriter;
  answer?: (q: string) => Promise<string>;
}

/** Read a ROM file given on the command line: a regular file, not empty, at most the largest ROM BAR. */
function readRomFile(file: string, what = 'ROM file'): { abs: string; bytes: Uint8Array } {
  const abs = path.resolve(file);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch (e) {
    throw new PreconditionError('E_ROM_UNREADABLE', `${what} ${file}: cannot read ${abs} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of a ROM file you can read (a dump of this card, or the vendor image)', abs);
  }
  if (st.isDirectory()) throw new PreconditionError('E_ROM_NOT_A_FILE', `${what} ${file} is a directory, not a ROM file`, 'give the ROM file itself (e.g. gpu.rom), not the directory holding it', abs);
  if (!st.isFile()) throw new PreconditionError('E_ROM_NOT_A_FILE', `${what} ${file} is not a regular file`, 'give a ROM file (a dump or the vendor image)', abs);
  if (st.size > MAX_ROM_BYTES) {
    throw new PreconditionError('E_ROM_TOO_LARGE', `${what} ${file} is ${mib(st.size)}: larger than any PCI expansion ROM (at most ${mib(MAX_ROM_BYTES)})`, 'this is not a GPU ROM (a disk image? a whole-flash dump of a board?); dump the card\'s ROM with `vfiokit rom dump` or use the vendor\'s VBIOS file', abs);
  }
  if (st.size === 0) throw new PreconditionError('E_ROM_EMPTY', `${what} ${file} is empty`, 'dump the ROM again (`vfiokit rom dump SELECTOR`), or use the vendor image for this card', abs);
  try {
    return { abs, bytes: new Uint8Array(fs.readFileSync(abs)) };
  } catch (e) {
    throw new PreconditionError('E_ROM_UNREADABLE', `${what} ${file}: cannot read ${abs} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the permissions of the file', abs);
  }
}

function targetFor(ctx: CommandContext, selector: string | undefined): RomTarget | undefined {
  if (!selector) return undefined;
  assertSelector(selector, '--device');
  const { device, problem } = findOneDevice(inspect(ctx.root), selector);
  if (problem) throw new PreconditionError(problem.code, problem.message, problem.hint, problem.subject);
  return { vendor: device!.vendor, device: device!.device, label: shortAddress(device!.address) };
}

function efiLine(r: RomReport): string[] {
  return r.images.flatMap((i, n) =>
    i.efi
      ? [`  image ${n} EFI header: signature ${i.efi.signatureOk ? '0x0EF1 ok' : 'missing'}, subsystem 0x${i.efi.subsystem.toString(16).padStart(2, '0')}, machine 0x${i.efi.machineType.toString(16).padStart(4, '0')} (${i.efi.machine}), compression ${i.efi.compressionType === 0 ? 'none' : i.efi.compressionType === 1 ? 'UEFI' : `unknown (${i.efi.compressionType})`}, PE image at +${hexOffset(i.efi.peOffset)}, init size ${i.efi.initSize / 1024} KiB`]
      : [],
  );
}

function romJson(file: string, r: RomReport, v: RomVerdict) {
  return { file, size: r.size, verdict: v, images: r.images, romStart: r.romStart, trailingBytes: r.trailingBytes, complete: r.complete, problems: r.problems };
}

function printReport(ctx: CommandContext, file: string, r: RomReport, v: RomVerdict): void {
  out(ctx, `${file}: ${r.size} bytes, ${r.images.length} image(s)${r.romStart !== null ? `, ROM at ${hexOffset(r.romStart)}` : ''}`);
  for (const l of describeRom(r)) out(ctx, `  ${l}`);
  for (const l of efiLine(r)) out(ctx, l);
  for (const p of r.problems) out(ctx, `  problem: ${p}`);
  out(ctx, `verdict: ${v.summary}`);
  for (const d of v.details) out(ctx, `  ${d}`);
}

const isSelector = (t: string) => {
  try {
    parseSelector(t);
    return true;
  } catch {
    return false;
  }
};

/** `rom check SELECTOR`: dump the device's ROM (the same transaction as `rom dump`) into vfiokit's state directory and check it. */
async function checkDevice(ctx: CommandContext, selector: string, deps: RomDeps): Promise<number> {
  if (ctx.values.device) throw new UsageError('--device applies to a ROM file; a device is checked against itself', `vfiokit rom check ${selector}`, 'E_USAGE');
  const snap = inspect(ctx.root);
  const dev = findOneDevice(snap, selector).device;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  const o = dev ? `${ROM_DUMP_DIR}/${dev.address.replace(/:/g, '_')}-${dev.vendor}-${dev.device}-${stamp}.rom` : undefined;
  const d = await runDump(ctx, selector, o, deps, { ask: false, quiet: true });
  if (!d) return EXIT.OK;
  if (ctx.values.json) printJson(ctx, { txid: d.txid, ...romJson(d.output, d.report, d.verdict) });
  else {
    out(ctx, `dumped ${selector}'s ROM to ${d.output} (transaction ${d.txid}; the rom attribute is disabled again)`);
    printReport(ctx, d.output, d.report, d.verdict);
  }
  return d.verdict.usable ? EXIT.OK : EXIT.PRECONDITION;
}

async function check(ctx: CommandContext, arg: string | undefined, deps: RomDeps): Promise<number> {
  if (!arg) throw new UsageError('no ROM file given', 'vfiokit rom check FILE [--device SELECTOR]', 'E_USAGE');
  if (!fs.existsSync(path.resolve(arg)) && isSelector(arg)) return checkDevice(ctx, arg, deps);
  const target = targetFor(ctx, str(ctx.values.device));
  const { abs, bytes } = readRomFile(arg);
  const r = parseOptionRom(bytes);
  const v = romVerdict(r, target);
  const after = v.kind === 'needs-strip' ? stripRom(bytes) : null;
  if (ctx.values.json) printJson(ctx, { ...romJson(abs, r, v), afterStrip: after ? { head: after.head, tail: after.tail, images: after.report.images, verdict: romVerdict(after.report, target) } : null });
  else {
    printReport(ctx, arg, r, v);
    {
      if (after) {
        out(ctx, `after strip (${after.head} bytes of header${after.tail ? `, ${after.tail} trailing bytes` : ''} removed):`);
        for (const l of describeRom(after.report)) out(ctx, `  ${l}`);
        out(ctx, `  would be: ${romVerdict(after.report, target).summary}`);
      }
    }
  }
  return v.usable ? EXIT.OK : EXIT.PRECONDITION;
}

function refuseExisting(ctx: CommandContext, file: string): void {
  if (fs.existsSync(file) && !ctx.values.force) throw new PreconditionError('E_OUTPUT_EXISTS', `${file} exists; nothing was written`, 'give another -o path, or --force to replace it', file);
}

async function strip(ctx: CommandContext, arg: string | undefined): Promise<number> {
  if (!arg) throw new UsageError('no ROM file given', 'vfiokit rom strip IN -o OUT', 'E_USAGE');
  const o = str(ctx.values.output);
  if (!o) throw new UsageError('no output file given', 'name where the stripped ROM goes: vfiokit rom strip IN -o OUT', 'E_USAGE');
  const { abs, bytes } = readRomFile(arg);
  const outPath = path.resolve(o);
  if (fs.existsSync(outPath) && fs.statSync(outPath).isDirectory()) throw new PreconditionError('E_OUTPUT_IS_DIR', `${o} is a directory; nothing was written`, 'give a file name for the output, e.g. -o gpu.rom', outPath);
  const s = stripRom(bytes);
  if (!s) {
    const r = parseOptionRom(bytes);
    throw new PreconditionError('E_ROM_INVALID', `${arg} holds no PCI option ROM to strip: ${romVerdict(r).summary}; nothing was written`, 'give a VBIOS file (a dump, or the vendor image); `vfiokit rom check FILE` shows what is in it', abs);
  }
  const v = romVerdict(s.report);
  if (v.kind === 'broken') throw new PreconditionError('E_ROM_INVALID', `${arg}: the ROM found at ${hexOffset(s.head)} is ${v.summary}; nothing was written`, 'the file is damaged or truncated: dump it again or get the vendor image', abs);
  if (outPath !== abs) refuseExisting(ctx, outPath);
  const what = s.changed ? `removed ${s.head} bytes of vendor header${s.tail ? ` and ${s.tail} bytes after the last image` : ''}` : 'nothing to strip: the ROM starts at offset 0 and ends with its last image; copied unchanged';
  if (ctx.values['dry-run']) {
    if (ctx.values.json) printJson(ctx, { input: abs, output: outPath, dryRun: true, changed: s.changed, head: s.head, tail: s.tail, verdict: v });
    else out(ctx, `dry run: would write ${outPath} (${s.bytes.length} bytes): ${what}\nverdict: ${v.summary}`);
    return EXIT.OK;
  }
  writeFileAtomic(outPath, s.bytes, { mode: 0o644 });
  if (ctx.values.json) printJson(ctx, { input: abs, output: outPath, changed: s.changed, head: s.head, tail: s.tail, verdict: v, images: s.report.images });
  else {
    out(ctx, `${outPath}: ${s.bytes.length} bytes; ${what}`);
    for (const l of describeRom(s.report)) out(ctx, `  ${l}`);
    out(ctx, `verdict: ${v.summary}`);
    for (const d of v.details) out(ctx, `  ${d}`);
  }
  return v.usable ? EXIT.OK : EXIT.PRECONDITION;
}

function refusePlan(what: string, plan: Plan): void {
  if (plan.problems.length) {
    const p = plan.problems[0];
    throw new PreconditionError(p.code, `${what}: ${p.message}; nothing was changed`, p.hint, p.subject, plan.problems.slice(1), plan.warnings);
  }
}

function printSteps(ctx: CommandContext, plan: Plan): void {
  for (const s of plan.summary) out(ctx, s);
  plan.steps.forEach((s, i) => {
    const what = s.kind === 'write-attr' ? `write "${s.value}" to ${s.path}` : s.kind === 'copy-attr' ? `copy ${s.from} to ${s.path} (at most ${s.maxBytes} bytes, mode ${s.mode.toString(8)})` : s.kind === 'install-file' ? `install ${s.path} (mode ${s.mode.toString(8)})` : s.kind;
    out(ctx, `  ${i + 1}. ${what} — ${s.reason}`);
  });
}

interface DumpResult {
  txid: string | null;
  output: string;
  report: RomReport;
  verdict: RomVerdict;
}

function dumpPlanFor(ctx: CommandContext, selector: string, o: string | undefined) {
  const snap = inspect(ctx.root);
  const found = findOneDevice(snap, selector).device;
  const output = path.resolve(o ?? (found ? `${found.vendor}-${found.device}-${found.address.replace(/:/g, '_')}.rom` : 'rom.bin'));
  const onHost = ctx.root.path(output);
  const outputExists = fs.existsSync(onHost);
  if (outputExists && fs.statSync(onHost).isDirectory()) throw new PreconditionError('E_OUTPUT_IS_DIR', `${o} is a directory; nothing was changed`, 'give a file name for the output, e.g. -o gpu.rom', output);
  const plan = planRomDump(snap, { selector, output, outputExists, force: Boolean(ctx.values.force), romAttr: (a) => pciAttr(a, 'rom') });
  refusePlan(`cannot dump the ROM of ${selector}`, plan);
  return { plan, output, onHost };
}

/** Plan, confirm and run a dump of one device's ROM to `o` (a host path); null when the user declined. */
async function runDump(ctx: CommandContext, selector: string, o: string | undefined, deps: RomDeps, opts: { ask: boolean; quiet: boolean }): Promise<DumpResult | null> {
  const first = dumpPlanFor(ctx, selector, o);
  for (const w of first.plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  if (ctx.values['dry-run']) {
    if (ctx.values.json) printJson(ctx, { dryRun: true, steps: first.plan.steps, summary: first.plan.summary });
    else {
      out(ctx, 'dry run: nothing is changed. The dump would:');
      printSteps(ctx, first.plan);
    }
    return null;
  }
  const sysfs = deps.writer ?? (ctx.root.isLive ? realSysfsWriter(ctx.root) : null);
  if (!sysfs) throw new PreconditionError('E_NOT_LIVE', `a ROM dump reads the running kernel's \`rom\` attribute, but --root ${ctx.root.dir} is a directory tree with no kernel behind it; nothing was changed`, 'run `vfiokit rom dump` without --root on the host itself (see the steps with --dry-run)');
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr as never });
  const log = (l: string) => ctx.io.stderr.write(l + '\n');
  return withWriteLock(ctx.root, runner, { log, sysfs }, async () => {
    // Planned again under the lock, over what recovery left.
    const { plan, output, onHost } = dumpPlanFor(ctx, selector, o);
    if (!opts.quiet) printSteps(ctx, plan);
    if (opts.ask && !(await confirm(ctx, '\nDump the ROM? [y/N] ', deps))) {
      out(ctx, 'Nothing was changed.');
      return null;
    }
    const res = await applyPlan(plan, { root: ctx.root, runner, sysfs, log, locked: true });
    const dev = plan.device!;
    const bytes = new Uint8Array(fs.readFileSync(onHost));
    const report = parseOptionRom(bytes);
    return { txid: res.txid, output, report, verdict: romVerdict(report, { vendor: dev.vendor, device: dev.device, label: shortAddress(dev.address) }) };
  });
}

async function dump(ctx: CommandContext, arg: string | undefined, deps: RomDeps): Promise<number> {
  const selector = assertSelector(arg, 'rom dump');
  const d = await runDump(ctx, selector, str(ctx.values.output), deps, { ask: true, quiet: Boolean(ctx.values.json) });
  if (!d) return EXIT.OK;
  const { report: r, verdict: v } = d;
  if (ctx.values.json) printJson(ctx, { txid: d.txid, ...romJson(d.output, r, v) });
  else {
    out(ctx, `\nDumped ${r.size} bytes to ${d.output} (transaction ${d.txid}; the rom attribute is disabled again).`);
    printReport(ctx, d.output, r, v);
    if (r.uniform) out(ctx, `The dump is not a ROM: ${v.details[0]}. \`vfiokit undo --id ${d.txid} --force\` removes the file.`);
  }
  return v.usable ? EXIT.OK : EXIT.PRECONDITION;
}

async function install(ctx: CommandContext, arg: string | undefined, deps: RomDeps): Promise<number> {
  if (!arg) throw new UsageError('no ROM file given', 'vfiokit rom install FILE --device SELECTOR', 'E_USAGE');
  const selector = assertSelector(str(ctx.values.device), 'rom install (--device)');
  const { abs, bytes } = readRomFile(arg);
  const snap = inspect(ctx.root);
  const sha = createHash('sha256').update(bytes).digest('hex');
  const input = { source: abs, bytes, base64: Buffer.from(bytes).toString('base64'), sha256: sha };
  const plan = planRomInstall(snap, selector, input);
  refusePlan(`cannot install ${arg} for ${selector}`, plan);
  const why = plan.dir.why;
  const use = (p: string) => [`use it with: vfiokit vm xml NAME --device ${selector} --rom ${p}`, `(libvirt: <rom bar='on' file='${p}'/> in the <hostdev>)`];
  if (plan.already) {
    if (ctx.values.json) printJson(ctx, { path: plan.target, already: true, verdict: plan.verdict, why });
    else {
      out(ctx, `nothing to do: ${plan.target} already holds this ROM`);
      for (const l of use(plan.target!)) out(ctx, l);
    }
    return EXIT.OK;
  }
  for (const w of plan.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  if (ctx.values['dry-run']) {
    if (ctx.values.json) printJson(ctx, { dryRun: true, path: plan.target, verdict: plan.verdict, why, steps: plan.steps.map((s) => ({ ...s, contentBase64: undefined })) });
    else {
      out(ctx, `dry run: would install ${abs} as ${plan.target} (mode 644)`);
      out(ctx, `verdict: ${plan.verdict!.summary}`);
      for (const w of why) out(ctx, `  ${w}`);
    }
    return EXIT.OK;
  }
  if (!ctx.values.json) {
    printSteps(ctx, plan);
    for (const w of why) out(ctx, `  ${w}`);
  }
  const runner = deps.runner ?? realRunner(ctx.root, { env: ctx.io.env ?? process.env, progress: ctx.io.stderr as never });
  const log = (l: string) => ctx.io.stderr.write(l + '\n');
  const res = await withWriteLock(ctx.root, runner, { log, sysfs: deps.writer ?? null }, async () => {
    // Planned again under the lock, over what recovery left.
    const fresh = planRomInstall(inspect(ctx.root), selector, input);
    refusePlan(`cannot install ${arg} for ${selector}`, fresh);
    if (fresh.already) return { txid: null };
    if (!(await confirm(ctx, '\nInstall the ROM? [y/N] ', deps))) return null;
    return applyPlan(fresh, { root: ctx.root, runner, sysfs: deps.writer ?? null, log, locked: true });
  });
  if (!res) {
    out(ctx, 'Nothing was changed.');
    return EXIT.OK;
  }
  if (ctx.values.json) printJson(ctx, { txid: res.txid, path: plan.target, verdict: plan.verdict, why });
  else if (!res.txid) out(ctx, `nothing to do: ${plan.target} already holds this ROM`);
  else {
    out(ctx, `\nInstalled ${plan.target} (transaction ${res.txid}; \`vfiokit undo\` removes it).`);
    for (const l of use(plan.target!)) out(ctx, l);
  }
  return EXIT.OK;
}

export async function run(ctx: CommandContext, deps: RomDeps = {}): Promise<number> {
  const [sub, arg, ...extra] = ctx.positionals;
  if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(sub ? `unknown rom subcommand '${sub}'` : 'no rom subcommand given', 'use one of: vfiokit rom dump SELECTOR, rom check FILE, rom strip IN -o OUT, rom install FILE --device SELECTOR', 'E_USAGE');
  }
  if (extra.length) throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''} '${extra.join(' ')}'`, `vfiokit rom ${sub} takes one ${sub === 'dump' ? 'SELECTOR' : 'FILE'}`, 'E_USAGE');
  try {
    if (sub === 'check') return await check(ctx, arg, deps);
    if (sub === 'strip') return await strip(ctx, arg);
    if (sub === 'dump') return await dump(ctx, arg, deps);
    return await install(ctx, arg, deps);
  } catch (e) {
    if (e instanceof VfioError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err?.code && err.path) throw new VfioError('E_IO', `rom ${sub}: ${err.code} on ${err.path}`, 'check the path and its permissions', err.path);
    throw e;
  }
}
