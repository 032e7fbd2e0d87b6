// `vfiokit vm xml|qemu|define|attach`: the I/O around src/vm — read the host
// snapshot and the ROM file, print the domain XML or QEMU command line, and
// run virsh (define, dumpxml) through an injectable argv runner.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { applyPlan } from '../../apply/executor.js';
import { realRunner, type Runner } from '../../apply/runner.js';
import { ApplyError, CommandFailedError, EXIT, PreconditionError, UsageError, VfioError } from '../../errors.js';
import { emptyPlan } from '../../model/plan.js';
import { inspect } from '../../host/inspect.js';
import { shortAddress } from '../../model/pci-address.js';
import { attachHostdevs } from '../../render/domain-attach.js';
import { planDevices, planVm, type VmIntent, type VmPlan } from '../../vm/plan.js';
import { buildQemuCommand, formatCommandLines } from '../../render/qemu-argv.js';
import { renderDomainXml } from '../../render/domain-xml.js';
import { out, printJson, type CommandContext } from '../context.js';
import { installHookFor, planHookForNewDomain } from './hooks.js';
import { HOOK_FLAGS, hookFlagNames, type HookFlags } from '../../formats/libvirt-hook.js';
import { renderStepPlan } from '../../render/handoff.js';
import type { Plan } from '../../model/plan.js';

/** The subset of src/apply/runner.ts's Runner this command needs (tests pass a stand-in). */
export type ArgvRunner = Pick<Runner, 'run'>;

const SUBCOMMANDS = ['xml', 'qemu', 'define', 'attach'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).flatMap((x: string) => x.split(',')).map((x) => x.trim()).filter(Boolean);

function readRom(file: string | undefined): VmIntent['rom'] {
  if (file === undefined) return undefined;
  const abs = path.resolve(file);
  try {
    return { path: abs, bytes: new Uint8Array(fs.readFileSync(abs)) };
  } catch (e) {
    throw new PreconditionError('E_ROM_UNREADABLE', `--rom ${file}: cannot read ${abs} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'give the path of a ROM file you can read (a dump of this card, or the vendor image)', abs);
  }
}

/** ISO 9660: the primary volume descriptor's "CD001" at byte 32769. */
function readVirtioWin(file: string | undefined): VmIntent['virtioWin'] {
  if (file === undefined) return undefined;
  if (file === 'none') return 'none';
  const abs = path.resolve(file);
  try {
    const fd = fs.openSync(abs, 'r');
    try {
      const b = Buffer.alloc(5);
      const n = fs.readSync(fd, b, 0, 5, 32769);
      return { path: abs, iso: n === 5 && b.toString('latin1') === 'CD001' };
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return { path: abs, iso: null };
  }
}

function onOff(v: unknown, flag: string): boolean | undefined {
  if (v === undefined) return undefined;
  if (v === 'on' || v === 'yes' || v === true) return true;
  if (v === 'off' || v === 'no') return false;
  throw new UsageError(`--${flag} '${String(v)}' is not on or off`, `use --${flag} on or --${flag} off (the default comes from --os)`, 'E_USAGE');
}

function refuse(ctx: CommandContext, what: string, plan: Pick<VmPlan, 'problems' | 'warnings'>, nothing: string): void {
  if (plan.problems.length) {
    // Like `plan --json`: a JSON consumer gets the refusal on stdout too.
    if (ctx.values.json) printJson(ctx, { problems: plan.problems, warnings: plan.warnings });
    throw new PreconditionError(plan.problems[0].code, `${what}: ${plan.problems.length === 1 ? 'one problem' : `${plan.problems.length} problems`}; nothing was ${nothing}`, undefined, undefined, plan.problems, plan.warnings);
  }
}

function report(ctx: CommandContext, warnings: string[], notes: string[]): void {
  for (const n of notes) ctx.io.stderr.write(`note: ${n}\n`);
  for (const w of warnings) ctx.io.stderr.write(`warning: ${w}\n`);
}

function virsh(ctx: CommandContext): string[] {
  const uri = str(ctx.values.connect);
  return uri ? ['virsh', '-c', uri] : ['virsh'];
}

async function virshOk(runner: ArgvRunner, argv: string[], what: string): Promise<string> {
  const r = await runner.run(argv, { nothrow: true });
  if (r.code !== 0) {
    const detail = (r.stderr || r.stdout).trim().split('\n').filter(Boolean).slice(-3).join(' / ');
    throw new VfioError('E_VIRSH_FAILED', `${what}: \`${argv.join(' ')}\` exited with ${r.code}${detail ? `: ${detail}` : ''}`, r.code === 127 ? 'install virsh (libvirt-clients on Debian/Ubuntu, libvirt-client on Fedora, libvirt on Arch)' : 'check that libvirtd (or virtqemud) runs and that you may manage domains (root, or the libvirt group with --connect qemu:///system)');
  }
  return r.stdout;
}

/**
 * `virsh define` as a transaction of the engine: the domain's previous XML
 * (null: it did not exist) is journaled, so `vfiokit undo` undefines a domain
 * vfiokit defined, or puts back the XML it replaced.
 */
async function defineXml(ctx: CommandContext, runner: ArgvRunner, name: string, xml: string, before: string | null, what: string): Promise<string> {
  const plan = emptyPlan(before === null ? 'vm-define' : 'vm-attach', { domain: name, connect: str(ctx.values.connect) ?? null });
  plan.steps.push({ kind: 'domain', action: 'define', name, xml, before, ...(str(ctx.values.connect) ? { connect: str(ctx.values.connect) } : {}), reason: what });
  plan.summary.push(before === null ? `define libvirt domain ${name}` : `redefine libvirt domain ${name} (its previous XML is kept for undo)`);
  try {
    const r = await applyPlan(plan, { root: ctx.root, runner: runner as Runner, log: (l) => ctx.io.stderr.write(l + '\n') });
    return r.txid ?? '';
  } catch (e) {
    const cause = (e as { cause?: unknown }).cause;
    if (e instanceof ApplyError && cause instanceof CommandFailedError) {
      const detail = (cause.stderrTail || cause.stdoutTail).trim().split('\n').filter(Boolean).slice(-3).join(' / ');
      throw new VfioError('E_VIRSH_FAILED', `${what}: \`${cause.argv.join(' ')}\` exited with ${cause.exitStatus}${detail ? `: ${detail}` : ''}; nothing was changed`, cause.exitStatus === 127 ? 'install virsh (libvirt-clients on Debian/Ubuntu, libvirt-client on Fedora, libvirt on Arch)' : 'check that libvirtd (or virtqemud) runs and that you may manage domains (root, or the libvirt group with --connect qemu:///system)');
    }
    throw e;
  }
}

const ATTACH_ONLY_DEVICE_FLAGS = ['memory', 'vcpus', 'disk', 'cdrom', 'hugepages', 'pin', 'os', 'tpm', 'secure-boot', 'hyperv', 'virtio-win', 'input', 'audio', 'looking-glass', 'looking-glass-size'];

export async function run(ctx: CommandContext): Promise<number> {
  // virsh runs through the project runner: under --root other than "/" it refuses to act on this machine.
  return runVm(ctx, realRunner(ctx.root, { progress: null }));
}

/** `--hooks single-gpu,isolate,hugepages` (any of them, comma-separated) → the hook's flags; undefined when not given. */
function hookFlagsOf(value: string | undefined): HookFlags | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((x) => x.trim());
  const bad = names.filter((n) => !(HOOK_FLAGS as readonly string[]).includes(n));
  if (bad.length || !value.trim()) throw new UsageError(`--hooks '${value}': ${bad.length ? `'${bad.join("', '")}' is not a hook part` : 'empty'}`, `use one or more of ${HOOK_FLAGS.join(', ')}, comma-separated (e.g. --hooks single-gpu,isolate,hugepages)`, 'E_USAGE');
  return { singleGpu: names.includes('single-gpu'), isolate: names.includes('isolate'), hugepages: names.includes('hugepages') };
}

export async function runVm(ctx: CommandContext, runner: ArgvRunner): Promise<number> {
  const [sub, target, ...extra] = ctx.positionals;
  if (!sub || !(SUBCOMMANDS as readonly string[]).includes(sub)) {
    throw new UsageError(sub ? `unknown vm subcommand '${sub}'` : 'no vm subcommand given', 'use one of: vfiokit vm xml NAME, vm qemu NAME, vm define NAME, vm attach DOMAIN (each with --device SELECTOR)', 'E_USAGE');
  }
  if (extra.length) throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''} '${extra.join(' ')}'`, 'give devices with --device (repeat it, or separate selectors with commas)', 'E_USAGE');
  const v = ctx.values;
  const devices = list(v.device);
  if (!devices.length) throw new UsageError('no device given', 'name at least one device to pass through: --device 01:00.0 (or vendor:device, e.g. --device 10de:2204)', 'E_NO_SELECTOR');
  const hooks = hookFlagsOf(str(v.hooks));
  if (hooks) {
    if ((sub as Sub) !== 'define') throw new UsageError(`--hooks applies to \`vm define\` only`, `install the hook of an existing domain with \`vfiokit hooks install DOMAIN ${hookFlagNames(hooks).map((n) => `--${n}`).join(' ')}\``, 'E_USAGE');
    const uri = str(v.connect);
    if (uri && uri !== 'qemu:///system') throw new UsageError(`--hooks needs the system daemon, not ${uri}`, 'libvirt runs /etc/libvirt/hooks for qemu:///system only: drop --connect or use --connect qemu:///system', 'E_USAGE');
  }
  const snap = inspect(ctx.root);
  // A single-GPU hook hands the boot display over knowingly.
  const common = { devices, with: list(v.with), allowBootVga: Boolean(v['allow-boot-vga']) || Boolean(hooks?.singleGpu), allowChipset: Boolean(v['allow-chipset']), rom: readRom(str(v.rom)) };

  if ((sub as Sub) === 'attach') {
    if (!target) throw new UsageError('no domain given', 'name the libvirt domain to add the device to: vfiokit vm attach DOMAIN --device 01:00.0', 'E_NO_NAME');
    const stray = ATTACH_ONLY_DEVICE_FLAGS.filter((k) => v[k] !== undefined);
    if (stray.length) throw new UsageError(`--${stray[0]} does not apply to \`vm attach\``, 'attach only adds devices (and --rom); change memory and vCPUs with `virsh edit DOMAIN`', 'E_USAGE');
    const dev = planDevices(snap, common);
    refuse(ctx, `cannot attach to '${target}'`, dev, 'changed');
    const xml = await virshOk(runner, [...virsh(ctx), 'dumpxml', '--inactive', target], `cannot read domain '${target}'`);
    const result = attachHostdevs(xml, target, dev.hostdevs);
    const warnings = [...dev.warnings, ...result.warnings];
    if (!result.added.length) {
      if (v.json) printJson(ctx, { domain: target, added: [], present: result.present, warnings });
      else {
        report(ctx, warnings, []);
        out(ctx, `nothing to do: ${result.present.map(shortAddress).join(', ')} already in domain '${target}'`);
      }
      return EXIT.OK;
    }
    if (v['dry-run']) {
      if (v.json) printJson(ctx, { domain: target, dryRun: true, added: result.added, present: result.present, xml: result.xml, warnings });
      else {
        report(ctx, warnings, dev.notes);
        out(ctx, result.xml);
        ctx.io.stderr.write(`dry run: would run ${[...virsh(ctx), 'define', '<this XML>'].join(' ')}\n`);
      }
      return EXIT.OK;
    }
    const txid = await defineXml(ctx, runner, target, result.xml, xml, `cannot redefine domain '${target}'`);
    if (v.json) printJson(ctx, { domain: target, txid, added: result.added, present: result.present, warnings });
    else {
      report(ctx, warnings, dev.notes);
      out(ctx, `transaction ${txid}: \`vfiokit undo --id ${txid}\` restores the previous XML`);
      out(ctx, `added ${result.added.map((h) => `${shortAddress(h.host)} (guest bus ${h.guestBus} function ${h.guestFunction})`).join(', ')} to domain '${target}'${result.present.length ? `; already there: ${result.present.map(shortAddress).join(', ')}` : ''}`);
    }
    return EXIT.OK;
  }

  const intent: VmIntent = {
    ...common,
    name: target ?? '',
    memory: str(v.memory),
    vcpus: str(v.vcpus),
    disk: str(v.disk) !== undefined ? path.resolve(str(v.disk)!) : undefined,
    cdrom: str(v.cdrom) !== undefined ? path.resolve(str(v.cdrom)!) : undefined,
    hugepages: Boolean(v.hugepages) || Boolean(hooks?.hugepages),
    pin: str(v.pin),
    os: str(v.os),
    tpm: onOff(v.tpm, 'tpm'),
    secureBoot: onOff(v['secure-boot'], 'secure-boot'),
    hyperv: onOff(v.hyperv, 'hyperv'),
    virtioWin: readVirtioWin(str(v['virtio-win'])),
    input: v.input !== undefined ? list(v.input) : undefined,
    audio: str(v.audio),
    lookingGlass: str(v['looking-glass']),
    lookingGlassSize: str(v['looking-glass-size']),
  };
  const plan = planVm(snap, intent);
  refuse(ctx, `cannot ${sub === 'define' ? 'define' : 'build'} VM '${plan.spec.name}'`, plan, sub === 'define' ? 'defined' : 'generated');
  const summary = { name: plan.spec.name, memoryKib: plan.spec.memoryKib, vcpus: plan.spec.vcpus, topology: plan.spec.topology, pinning: plan.spec.pinning, hostdevs: plan.spec.hostdevs, hugepages: plan.hugepages, rom: plan.rom, firmware: plan.spec.firmware, profile: plan.spec.profile };

  if (sub === 'qemu') {
    const q = buildQemuCommand(plan.spec);
    if (v.json) printJson(ctx, { ...summary, argv: q.argv, notes: [...plan.notes, ...q.notes], warnings: [...plan.warnings, ...q.warnings] });
    else {
      report(ctx, [...plan.warnings, ...q.warnings], [...plan.notes, ...q.notes]);
      ctx.io.stdout.write(formatCommandLines(q.argv));
    }
    return EXIT.OK;
  }

  const xml = renderDomainXml(plan.spec);
  const libvirtNote = `memlock: libvirt raises QEMU's locked-memory limit for VFIO devices itself (guest memory + 1 GiB = ${plan.spec.memlockKib} KiB); do not add a smaller <memtune><hard_limit>`;
  const notes = [...plan.notes, libvirtNote];
  if (sub === 'xml') {
    if (v.json) printJson(ctx, { ...summary, xml, notes, warnings: plan.warnings });
    else {
      report(ctx, plan.warnings, notes);
      ctx.io.stdout.write(xml);
    }
    return EXIT.OK;
  }

  // define
  const name = plan.spec.name;
  // --hooks: the hook is planned first, so a refusal (no libvirt, a file that is not ours) defines nothing.
  const hookPlan = hooks ? planHookForNewDomain(ctx, snap, name, hooks, xml) : null;
  const hookFlagsText = hooks ? hookFlagNames(hooks).map((n) => `--${n}`).join(' ') : '';
  if (hookPlan?.problems.length) {
    throw new PreconditionError(hookPlan.problems[0].code, `cannot install the hook for '${name}': ${hookPlan.problems[0].message}; nothing was defined`, hookPlan.problems[0].hint, hookPlan.problems[0].subject, hookPlan.problems);
  }
  if (v['dry-run']) {
    if (v.json) printJson(ctx, { ...summary, dryRun: true, xml, notes, warnings: plan.warnings, ...(hookPlan ? { hook: hookPlan } : {}) });
    else {
      report(ctx, plan.warnings, notes);
      ctx.io.stdout.write(xml);
      ctx.io.stderr.write(`dry run: would run ${[...virsh(ctx), 'define', '<this XML>'].join(' ')}\n`);
      if (hookPlan) ctx.io.stderr.write(renderStepPlan(`then hooks install ${name} ${hookFlagsText}`, hookPlan));
    }
    return EXIT.OK;
  }
  // virsh define replaces an existing domain's configuration: refuse instead.
  const exists = await runner.run([...virsh(ctx), 'domuuid', name], { nothrow: true });
  if (exists.code === 0) {
    throw new PreconditionError('E_DOMAIN_EXISTS', `a domain named '${name}' is already defined; nothing was changed`, `add devices to it with \`vfiokit vm attach ${name} --device …\`, or pick another name (virsh undefine --nvram ${name} removes the old one)`, name);
  }
  if (exists.code === 127) await virshOk(runner, [...virsh(ctx), 'domuuid', name], 'cannot run virsh');
  const txid = await defineXml(ctx, runner, name, xml, null, `cannot define domain '${name}'`);
  // The hook is a second transaction: undoing it leaves the domain; undoing both (newest first) leaves nothing.
  let hook: { plan: Plan; txid: string | null } | null = null;
  if (hooks) {
    try {
      hook = await installHookFor(ctx, name, hooks, { runner: runner as Runner });
    } catch (e) {
      if (e instanceof VfioError) ctx.io.stderr.write(`vfiokit: domain '${name}' is defined (transaction ${txid}), but its hook was not installed; \`vfiokit undo --id ${txid}\` undefines it, \`vfiokit hooks install ${name} ${hookFlagsText}\` tries the hook again\n`);
      throw e;
    }
  }
  const hookWarnings = hook?.plan.warnings ?? [];
  if (v.json) printJson(ctx, { ...summary, defined: name, txid, notes, warnings: [...plan.warnings, ...hookWarnings], ...(hook ? { hook: { txid: hook.txid, summary: hook.plan.summary } } : {}) });
  else {
    report(ctx, [...plan.warnings, ...hookWarnings], notes);
    out(ctx, `defined domain '${name}' (${plan.spec.vcpus} vCPUs, ${plan.spec.memoryKib / 1024} MiB, ${plan.spec.hostdevs.map((h) => shortAddress(h.host)).join(' + ')}); start it with: virsh${str(v.connect) ? ` -c ${str(v.connect)}` : ''} start ${name}`);
    out(ctx, `transaction ${txid}: \`vfiokit undo --id ${txid}\` undefines it again`);
    if (hook) out(ctx, `${hook.plan.summary.join('\n')}${hook.txid ? `\ntransaction ${hook.txid}: \`vfiokit undo --id ${hook.txid}\` removes the hook (undo it before the domain's)` : ''}`);
  }
  return EXIT.OK;
}
