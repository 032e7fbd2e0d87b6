// Boot-time passthrough planner (pure): (snapshot, intent) → Plan.
//
// 1. Select: every endpoint of each selected device's group (src/plan/select.ts),
//    refusing the boot VGA device, the root filesystem's storage and the
//    default-route NIC unless explicitly allowed.
// 2. Strategy: bind by IDs when every selected vendor:device stays unique to the
//    moved devices; by address (driver_override from a modprobe install hook
//    in the initramfs) when an identical device stays on the host. Built-in
//    vfio-pci: kernel command line only.
// 3. Kernel arguments (intel_iommu=on on Intel, never amd_iommu=on; iommu=pt;
//    vfio-pci.ids=) go only on normal boot entries, so the recovery/fallback
//    entry boots without passthrough.
// 4. modprobe.d: softdeps so vfio-pci loads before each competing host driver.
// 5. Initramfs: vfio modules for the running kernel's layout; regenerate once,
//    only for kernels where vfio-pci is a module.
// 6. Bootloader edit and its regenerate command.
// Files vfiokit owns are rendered whole; shared files are edited by the
// lossless src/formats modules, so a plan on a configured host is empty.

import { FileFormatError, VfioError, type Problem } from '../errors.js';
import * as bls from '../formats/bls-entry.js';
import * as booster from '../formats/booster-yaml.js';
import * as dracut from '../formats/dracut-conf.js';
import * as grub from '../formats/grub-default.js';
import * as itm from '../formats/initramfs-tools-modules.js';
import * as cmdline from '../formats/kernel-cmdline.js';
import * as kernelstub from '../formats/kernelstub-config.js';
import * as limine from '../formats/limine.js';
import * as mkinitcpio from '../formats/mkinitcpio-conf.js';
import * as modprobe from '../formats/modprobe-d.js';
import { isOwnedText, normModule, sizeLimitFor } from '../formats/common.js';
import * as refind from '../formats/refind-linux-conf.js';
import { shortAddress } from '../model/pci-address.js';
import { emptyPlan, type FileState, type Plan, type RunCommandStep, type Step } from '../model/plan.js';
import type { BootTransactionIntent } from '../model/plan.js';
export type { BootTransactionIntent };
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { detectBootloader, detectInitramfs, isDebianLike, limineConf, linkTargetIsSameKind, loaderEntryDirs, type BootloaderKind, type InitramfsKind } from '../analysis/boot-detect.js';
import { identityOf } from '../model/device-identity.js';
import { hostCriticalProblems, hostCriticalWarnings } from './guards.js';
import { bootIsolationArgs, checkVmCpus } from './isolate-plan.js';
import { bootHugepageArgs } from './hugepages-plan.js';
import { resolveSelection } from './select.js';
import { INITRAMFS_TOOLS_VFIOKIT_HOOK, MASKED_LINK, MKINITCPIO_CONF_D, MODPROBE_DIRS } from '../model/config-paths.js';

export interface BootIntent {
  selectors: string[];
  with?: string[];
  allowBootVga?: boolean;
  allowRootStorage?: boolean;
  allowDefaultNic?: boolean;
  allowChipset?: boolean;
  /**
   * Boot-time passthrough already applied (the applied transactions' devices):
   * kept in this plan, so passthrough accumulates and undoing the new
   * transaction returns exactly to the previous one.
   */
  previous?: { txid: string; devices: { address: string; vendor: string; device: string; hostDriver?: string | null }[]; kernelArgs?: string[] }[];
  /** Boot-time CPU isolation: the VM CPUs (isolcpus=, nohz_full=, rcu_nocbs=; irqaffinity= the rest). */
  isolate?: number[];
  allowSmtSplit?: boolean;
  /** Boot-time huge pages: hugepagesz= hugepages= (default_hugepagesz= when the page is not the default). */
  hugepages?: { sizeKb: number; pageKb: number };
}


const INITRAMFS_HOOK_PATH = INITRAMFS_TOOLS_VFIOKIT_HOOK;
const REGEN_TIMEOUT_MS = 30 * 60 * 1000;

/** Driver name (sysfs) → module that provides it, where they differ. */
const DRIVER_MODULE: Record<string, string> = {
  xhci_hcd: 'xhci_pci',
  'nvidia-gpu': 'i2c_nvidia_gpu',
};
/** Host drivers that may claim a passthrough device, by vendor and class. */
function competingModules(d: PciDevice): string[] {
  const base = d.class.slice(0, 2);
  const sub = d.class.slice(0, 4);
  const out: string[] = [];
  if (base === '03') {
    if (d.vendor === '10de') out.push('nvidia', 'nouveau');
    if (d.vendor === '1002') out.push('amdgpu', 'radeon');
    if (d.vendor === '8086') out.push('i915', 'xe');
  }
  if (sub === '0403') out.push('snd_hda_intel');
  if (sub === '0c03') out.push('xhci_pci');
  if (sub === '0c80' && d.vendor === '10de') out.push('i2c_nvidia_gpu', 'ucsi_ccg');
  return out;
}

function kernelMajorMinor(release: string | null): [number, number] | null {
  const m = /^(\d+)\.(\d+)/.exec(release ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** vfio modules for a kernel, in load order (vfio_virqfd only before 6.2, and only if it exists). */
export function vfioModules(s: HostSnapshot): string[] {
  const v = kernelMajorMinor(s.kernel.release);
  const old = v !== null && (v[0] < 6 || (v[0] === 6 && v[1] < 2));
  const running = s.boot.kernels.find((k) => k.running);
  const virqfd = old && (running?.vfioVirqfd === 'module' || s.kernel.modules.vfio_virqfd === 'module');
  return ['vfio', 'vfio_iommu_type1', ...(virqfd ? ['vfio_virqfd'] : []), 'vfio_pci'];
}

/** Files vfiokit writes whole (every other file it touches is edited in place). */
const WHOLE_FILES = new Set([modprobe.OWNED_PATH, modprobe.OVERRIDE_SCRIPT_PATH, INITRAMFS_HOOK_PATH, grub.DROP_IN_PATH, dracut.OWNED_PATH, mkinitcpio.DROP_IN_PATH, limine.DROP_IN_PATH]);
const dirOf = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
const baseOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/**
 * Refusals for config paths that are not what they seem: not a regular file
 * (a directory, a dangling link), or a symlink to a file of another kind.
 */
function pathProblems(s: HostSnapshot): Problem[] {
  const out: Problem[] = [];
  for (const [p, e] of Object.entries(s.boot.irregular ?? {})) {
    if (e.link && !linkTargetIsSameKind(p, e.link)) continue; // refused below for where it points, whether or not that exists
    const what = e.type === 'dir' ? 'a directory' : e.type === 'dangling' ? `a symlink to ${e.link}, which does not exist` : 'not a regular file (a device, FIFO or socket)';
    out.push({
      code: 'E_NOT_A_FILE',
      subject: p,
      message: `${p} is ${what}; vfiokit ${WHOLE_FILES.has(p) ? 'writes' : 'reads'} it as a regular file`,
      hint: e.type === 'dangling' ? `point ${p} at the real file, or remove the link, then run vfiokit plan again` : `move ${p} out of the way (it is not a configuration file the boot tools can read), then run vfiokit plan again`,
    });
  }
  for (const [p, target] of Object.entries(s.boot.links ?? {})) {
    const sameKind = linkTargetIsSameKind(p, target);
    if (s.boot.irregular?.[p] && sameKind) continue;
    // A modprobe.d file vfiokit only reads, linked to /dev/null: the usual way to mask a package's file.
    if (target === MASKED_LINK && p !== modprobe.OWNED_PATH && (MODPROBE_DIRS as readonly string[]).includes(dirOf(p))) continue;
    if (WHOLE_FILES.has(p))
      out.push({ code: 'E_SYMLINK_TARGET', subject: p, message: `${p} is a symlink to ${target}; vfiokit writes ${p} whole and will not write through a link into another file`, hint: `remove the link ${p} (or replace it with a copy of what it should hold), then run vfiokit plan again` });
    else if (!sameKind)
      out.push({
        code: 'E_SYMLINK_TARGET',
        subject: p,
        message: `${p} is a symlink to ${target}, which is not a ${baseOf(p)} file in a configuration location; vfiokit will not read or edit another file under this name`,
        hint: `make ${p} a regular file (or a link to the real ${baseOf(p)}), then run vfiokit plan again`,
      });
  }
  return out;
}

class Builder {
  readonly steps: Step[] = [];
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];
  constructor(readonly s: HostSnapshot) {}

  file(path: string): FileState | null {
    return this.s.boot.files[path] ?? null;
  }

  /** Plan a write when the content changes. `content` null = leave as is. */
  write(path: string, content: string | null, reason: string, mode?: number): void {
    if (content === null) return;
    const before = this.file(path);
    if (before && before.content === content) return;
    if (before && WHOLE_FILES.has(path) && !isOwnedText(before.content)) {
      this.problems.push({
        code: 'E_NOT_OURS',
        subject: path,
        message: `${path} exists but was not written by vfiokit (it lacks vfiokit's header); vfiokit writes this file whole, which would replace what is in it`,
        hint: `keep your settings under another name (e.g. \`mv ${path} ${dirOf(path)}/local-${baseOf(path)}\`${path.startsWith(`${dirOf(modprobe.OWNED_PATH)}/`) ? ': modprobe reads every .conf there' : ''}), then run vfiokit plan again`,
      });
      return;
    }
    const link = this.s.boot.links?.[path];
    const via = link ? ` — ${path} is a symlink: ${link} is the file that changes` : '';
    this.steps.push({ kind: 'write-file', path, before, after: { content, mode: mode ?? before?.mode ?? 0o644 }, reason: reason + via });
  }

  /** Edit an existing file with a format module; parse errors become problems. */
  edit(path: string, reason: string, fn: (text: string) => string): void {
    const before = this.file(path);
    if (!before) return;
    try {
      this.write(path, fn(before.content), reason);
    } catch (e) {
      this.fail(e, path);
    }
  }

  fail(e: unknown, subject: string): void {
    if (e instanceof FileFormatError) this.problems.push({ code: e.code, subject: e.file, message: e.message, hint: e.hint ?? `fix or simplify ${e.file}, then run vfiokit plan again` });
    else if (e instanceof VfioError) this.problems.push({ code: e.code, subject, message: e.message, hint: e.hint });
    else throw e;
  }

  run(argv: string[], reason: string, regenerate = true): void {
    const step: RunCommandStep = { kind: 'run-command', argv, reason, label: argv.join(' '), regenerate, timeoutMs: REGEN_TIMEOUT_MS };
    this.steps.push(step);
  }
}

export function assembleBootPlan(s: HostSnapshot, intent: BootIntent): Plan {
  const b = new Builder(s);
  for (const [f, st] of Object.entries(s.boot.files)) {
    const limit = sizeLimitFor(f);
    if (st.content.length > limit)
      b.problems.push({
        code: 'E_FILE_TOO_LARGE',
        subject: f,
        message: `${f} is ${(st.content.length / 1048576).toFixed(1)} MiB, more than the ${limit / 1024} KiB a configuration file of this kind can sensibly hold; vfiokit does not parse it`,
        hint: `check what was written over ${f} (restore it from a backup or your package manager), then run vfiokit plan again`,
      });
  }
  b.problems.push(...pathProblems(s));
  // --isolate / --hugepages alone: kernel arguments only (no device moves).
  const isolateOnly = Boolean(intent.isolate || intent.hugepages) && !intent.selectors.length;
  const sel = isolateOnly ? { devices: [] as PciDevice[], problems: [] as Problem[], warnings: [] as string[] } : resolveSelection(s, intent.selectors, { with: intent.with, allowBootVga: intent.allowBootVga, allowChipset: intent.allowChipset, orElse: 'or only kernel arguments: --isolate LIST, --hugepages SIZE[:PAGE]' });
  b.problems.push(...sel.problems);
  b.warnings.push(...sel.warnings);
  for (const d of sel.devices) {
    if (d.physfn)
      b.problems.push({
        code: 'E_SRIOV_VF_BOOT',
        subject: d.address,
        message: `${shortAddress(d.address)} is an SR-IOV virtual function of ${shortAddress(d.physfn)}: virtual functions are created after boot (through the physical function's sriov_numvfs), after vfio-pci has loaded, so a boot-time binding never sees it`,
        hint: `bind it at runtime once the virtual functions exist: \`vfiokit bind ${shortAddress(d.address)}\` (a libvirt <hostdev managed='yes'> also binds it when the VM starts)`,
      });
  }
  b.problems.push(...hostCriticalProblems(s, sel.devices, { allowRootStorage: intent.allowRootStorage, allowDefaultNic: intent.allowDefaultNic, overrides: true, at: 'boot' }));
  b.warnings.push(...hostCriticalWarnings(s, sel.devices, 'boot'));
  const bootloader = detectBootloader(s);
  const initramfs = detectInitramfs(s);
  const plan = emptyPlan('boot-passthrough', {});
  let isolation: string[] = [];
  if (intent.isolate) {
    const c = checkVmCpus(s, intent.isolate, `--isolate ${intent.isolate.join(',')}`, Boolean(intent.allowSmtSplit));
    b.problems.push(...c.problems);
    b.warnings.push(...c.warnings);
    if (!c.problems.length) isolation = bootIsolationArgs(intent.isolate, c.host);
  }
  if (intent.hugepages) {
    const h = bootHugepageArgs(s, intent.hugepages);
    b.problems.push(...h.problems);
    if (!h.problems.length) {
      const ours = new Set((intent.previous ?? []).flatMap((p) => p.kernelArgs ?? []));
      b.problems.push(...hugepageArgConflicts(s, h.args, ours));
      isolation.push(...h.args);
    }
  }
  if (b.problems.length || (!sel.devices.length && !isolateOnly)) {
    plan.problems = b.problems;
    plan.warnings = b.warnings;
    return plan;
  }
  // Devices of earlier applied transactions stay passed through.
  const hostDriverOf = new Map<string, string | null>();
  const kept: string[] = [];
  for (const p of intent.previous ?? []) {
    for (const d of p.devices) {
      if (sel.devices.some((x) => x.address === d.address)) continue;
      const now = s.pci.find((x) => x.address === d.address);
      if (!now || now.vendor !== d.vendor || now.device !== d.device) {
        b.warnings.push(`${shortAddress(d.address)} [${d.vendor}:${d.device}] was passed through by transaction ${p.txid}, but that address now ${now ? `holds ${now.vendor}:${now.device}` : 'holds no device'}; it is left out of this plan`);
        continue;
      }
      sel.devices.push(now);
      hostDriverOf.set(now.address, d.hostDriver ?? null);
      kept.push(`${shortAddress(d.address)} (transaction ${p.txid})`);
    }
  }
  sel.devices.sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
  const moving = new Set(sel.devices.map((d) => d.address));

  // 2. Strategy.
  const ownIds = [...new Set(sel.devices.map((d) => `${d.vendor}:${d.device}`))];
  // The user's own vfio-pci ids (kernel arguments, modprobe.d) are merged in, never dropped.
  const userIds = userVfioIds(s).filter((u) => !ownIds.includes(u.id));
  const ids = [...ownIds, ...new Set(userIds.map((u) => u.id))];
  const stays = s.pci.filter((d) => !moving.has(d.address) && ownIds.includes(`${d.vendor}:${d.device}`));
  const strategy: 'ids' | 'address' = stays.length ? 'address' : 'ids';
  const builtin = s.kernel.modules.vfio_pci === 'builtin';
  if (strategy === 'address' && builtin)
    b.problems.push({
      code: 'E_UNSUPPORTED_STRATEGY',
      subject: 'vfio-pci',
      message: `an identical device stays on the host (${stays.map((d) => shortAddress(d.address)).join(', ')}), so binding must be by address; vfio-pci is built into kernel ${s.kernel.release}, where no modprobe hook can run before the host driver`,
      hint: `bind at runtime instead: \`vfiokit bind ${intent.selectors.join(' ')}\` (or use a kernel with modular vfio-pci)`,
    });
  if (strategy === 'address' && initramfs.kind === 'booster')
    b.problems.push({
      code: 'E_UNSUPPORTED_STRATEGY',
      subject: 'booster',
      message: 'an identical device stays on the host, so binding must be by address, and booster does not carry modprobe install hooks into its image',
      hint: `bind at runtime instead: \`vfiokit bind ${intent.selectors.join(' ')}\``,
    });

  // 3. Kernel arguments.
  const current = (s.kernel.cmdline ?? '').split(/\s+/);
  const args: string[] = [];
  if (!isolateOnly) {
    if (s.cpu.vendor === 'intel') args.push('intel_iommu=on');
    args.push('iommu=pt');
    if (strategy === 'ids') args.push(`vfio-pci.ids=${ids.join(',')}`);
  }
  args.push(...isolation);
  if (current.includes('amd_iommu=on')) b.warnings.push('the kernel command line has amd_iommu=on, which is not a kernel option (ignored); vfiokit leaves it alone');
  const otherIds = current.filter((a) => /^vfio[-_]pci\.ids=/.test(a) && a.split('=')[1].split(',').some((x) => !ids.includes(x.toLowerCase())));
  if (otherIds.length) b.warnings.push(`the running kernel has ${otherIds.join(' ')}, which no boot configuration file sets any more (typed at the boot menu?); the next boot uses vfio-pci.ids=${ids.join(',')}`);
  if (userIds.length) {
    const where = [...new Set(userIds.map((u) => u.where))].join(', ');
    if (strategy === 'ids') b.warnings.push(`merged the vfio-pci ids already set on this host (${[...new Set(userIds.map((u) => u.id))].join(',')}, in ${where}) into vfiokit's: vfio-pci.ids=${ids.join(',')}`);
    else b.warnings.push(`this host already sets vfio-pci ids ${[...new Set(userIds.map((u) => u.id))].join(',')} (in ${where}); vfiokit binds by address and leaves them as they are`);
  }

  if (!b.problems.length) {
    planBootloader(b, bootloader.kind, args);
    const mark = b.steps.length;
    if (!builtin && !isolateOnly) planModprobe(b, sel.devices, strategy, ids, bootloader.kind);
    if (isolateOnly) void mark;
    else if (!builtin) planInitramfs(b, initramfs.kind, strategy, mark);
    else b.warnings.push(`vfio-pci is built into kernel ${s.kernel.release}: the kernel command line alone binds the devices (no modprobe.d or initramfs changes)`);
    checkSingleIds(b);
    reportReplacedArgs(b, args);
  }

  const txIntent: BootTransactionIntent = {
    selectors: intent.selectors,
    devices: sel.devices.map((d) => ({ address: d.address, vendor: d.vendor, device: d.device, iommuGroup: d.iommuGroup, hostDriver: hostDriverOf.has(d.address) ? hostDriverOf.get(d.address)! : d.driver, identity: identityOf(d, s.pci) })),
    strategy,
    stayed: stays.map((d) => d.address),
    kernelArgs: args,
    bootloader: bootloader.kind,
    initramfs: initramfs.kind,
  };
  plan.intent = txIntent as unknown as Record<string, unknown>;
  plan.problems = b.problems;
  plan.warnings = b.warnings;
  plan.steps = b.problems.length ? [] : orderSteps(b.steps);
  plan.summary = isolateOnly ? [
    `boot-time ${intent.isolate && intent.hugepages ? 'CPU isolation and huge pages' : intent.hugepages ? 'huge pages' : 'CPU isolation'}: ${isolation.join(' ')} (normal boot entries only; the recovery entry boots without it)`,
    `bootloader: ${bootloader.kind} (${bootloader.evidence.join('; ')})`,
  ] : [
    `devices: ${sel.devices.map((d) => `${shortAddress(d.address)} [${d.vendor}:${d.device}]${d.driver ? ` (now ${d.driver})` : ''}`).join(', ')}`,
    `binding: ${strategy === 'ids' ? `by IDs (${ids.join(', ')})` : `by address (driver_override), because ${stays.map((d) => shortAddress(d.address)).join(', ')} has the same IDs and stays on the host`}${builtin ? '; vfio-pci is built in' : ''}`,
    ...(kept.length ? [`kept from earlier transactions: ${kept.join(', ')} (passthrough accumulates; \`vfiokit undo\` of this one returns to them)`] : []),
    `kernel arguments: ${args.join(' ')} (normal boot entries only; the recovery entry boots without passthrough)`,
    `bootloader: ${bootloader.kind} (${bootloader.evidence.join('; ')})`,
    `initramfs: ${builtin ? 'not needed (vfio-pci built in)' : `${initramfs.kind} (${initramfs.evidence.join('; ')})`}`,
  ];
  return plan;
}

const HUGEPAGE_KEYS = ['hugepages', 'hugepagesz', 'default_hugepagesz'];

/**
 * The kernel reads hugepagesz=/hugepages= pairs in order, so a user's own
 * huge page arguments cannot be merged by replacing a value: a different
 * one (not put there by an applied vfiokit transaction) is refused with the choice.
 */
function hugepageArgConflicts(s: HostSnapshot, args: string[], ours: Set<string>): Problem[] {
  const want = new Map(args.map((a) => [a.slice(0, a.indexOf('=')), a]));
  const found: string[] = [];
  for (const [p, f] of Object.entries(s.boot.files)) {
    if (!kernelArgSource(p) || WHOLE_FILES.has(p) || p.includes('vfiokit-fallback')) continue;
    for (const line of f.content.split('\n')) {
      if (isComment(line)) continue;
      for (const m of line.matchAll(/(?:^|[\s"'[,])((?:default_)?hugepages(?:z)?)=([^\s"',\]]*)/g)) {
        const arg = `${m[1]}=${m[2]}`;
        if (HUGEPAGE_KEYS.includes(m[1]) && want.get(m[1]) !== arg && !ours.has(arg) && !found.includes(`${p}: ${arg}`)) found.push(`${p}: ${arg}`);
      }
    }
  }
  if (!found.length) return [];
  return [{
    code: 'E_HUGEPAGES_ARG_CONFLICT',
    subject: found[0].split(': ')[0],
    message: `the boot configuration already reserves huge pages its own way (${found.join('; ')}), where vfiokit would add ${args.join(' ')}; the kernel reads hugepagesz=/hugepages= in order, so replacing one value would change what yours reserve`,
    hint: `either remove your huge page arguments from ${[...new Set(found.map((f) => f.split(': ')[0]))].join(' and ')} and give the total to --hugepages, or keep yours and drop --hugepages`,
  }];
}

/** Files whose lines put arguments on a kernel command line (GRUB's defaults, BLS entries, kernelstub, rEFInd, Limine). */
function kernelArgSource(p: string): 'grub' | 'file' | 'lines' | null {
  if (p === grub.MAIN_PATH || p.startsWith(`${dirOf(grub.DROP_IN_PATH)}/`)) return 'grub';
  if (p === bls.KERNEL_CMDLINE_PATH || /\/loader\/entries\/[^/]+\.conf$/.test(p)) return 'file';
  if (p === kernelstub.PATH || p === refind.PATH || p === limine.DEFAULTS_PATH || /limine\.conf$/.test(p)) return 'lines';
  return null;
}

const IDS_ARG = /(?:^|[\s"'[,])vfio[-_]pci\.ids=([0-9A-Fa-f:,]+)/g;
const PCI_ID = /^[0-9a-f]{4}:[0-9a-f]{4}$/i;
const isComment = (line: string) => /^\s*#/.test(line);

interface UserIds {
  id: string;
  where: string;
  kind: 'kernel' | 'modprobe';
}

/** vfio-pci ids this host's configuration sets outside what vfiokit owns: kernel arguments in boot files and modprobe.d options. */
function userVfioIds(s: HostSnapshot): UserIds[] {
  const out: UserIds[] = [];
  const read = new Set(modprobe.readOrder(s.boot.dirs));
  for (const [p, f] of Object.entries(s.boot.files)) {
    if (WHOLE_FILES.has(p) || p.includes('vfiokit-fallback')) continue;
    const lines = f.content.split('\n').filter((l) => !isComment(l));
    if (kernelArgSource(p)) {
      for (const line of lines) for (const m of line.matchAll(IDS_ARG)) for (const id of m[1].split(',')) if (PCI_ID.test(id)) out.push({ id: id.toLowerCase(), where: p, kind: 'kernel' });
    } else if (read.has(p)) {
      for (const line of lines) {
        const m = /^\s*options\s+vfio[-_]pci\s+(.*)$/.exec(line);
        const v = m ? /(?:^|\s)ids=([0-9A-Fa-f:,]+)/.exec(m[1]) : null;
        if (v) for (const id of v[1].split(',')) if (PCI_ID.test(id)) out.push({ id: id.toLowerCase(), where: p, kind: 'modprobe' });
      }
    }
  }
  return out;
}

/**
 * A user's own value for an argument vfiokit sets (intel_iommu=off,
 * iommu=soft) is replaced on the normal entries: never silently.
 */
function reportReplacedArgs(b: Builder, args: string[]): void {
  const norm = (k: string) => k.replace(/-/g, '_');
  for (const a of args) {
    const [key, want] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    if (norm(key) === 'vfio_pci.ids') continue;
    const re = new RegExp(`(?:^|[\\s"'\\[,])(${key.replace(/[-_]/g, '[-_]').replace(/\./g, '\\.')})=([^\\s"',\\]]*)`, 'g');
    const seen = new Set<string>();
    for (const [p, f] of Object.entries(b.s.boot.files)) {
      if (!kernelArgSource(p) || WHOLE_FILES.has(p) || p.includes('vfiokit-fallback')) continue;
      for (const line of f.content.split('\n')) {
        if (isComment(line)) continue;
        for (const m of line.matchAll(re)) {
          if (m[2] === want || seen.has(`${p} ${m[2]}`)) continue;
          seen.add(`${p} ${m[2]}`);
          b.warnings.push(`${p} sets ${m[1]}=${m[2]}; vfiokit's ${a} takes its place on the normal boot entries (passthrough needs it); \`vfiokit undo\` gives yours back`);
        }
      }
    }
  }
}

/**
 * The kernel keeps only the last vfio-pci.ids= of a command line: after the
 * plan, no command line may carry two. Where vfiokit cannot merge in place
 * (the user's argument lives in a file it does not edit), refuse with the choice.
 */
function checkSingleIds(b: Builder): void {
  const after = new Map<string, string>();
  for (const [p, f] of Object.entries(b.s.boot.files)) after.set(p, f.content);
  for (const st of b.steps) if (st.kind === 'write-file') after.set(st.path, st.after.content);
  const perLine = (text: string) => text.split('\n').filter((l) => !isComment(l)).map((l) => [...l.matchAll(IDS_ARG)].length);
  const count = (text: string) => perLine(text).reduce((n, c) => n + c, 0);
  const clash = (files: string[]) => {
    const user = files.filter((p) => !WHOLE_FILES.has(p) && count(after.get(p) ?? '') > 0);
    const named = user.length ? user : files;
    b.problems.push({
      code: 'E_VFIO_IDS_CONFLICT',
      subject: named[0],
      message: `${named.join(', ')} already ${named.length > 1 ? 'set' : 'sets'} vfio-pci.ids= on the kernel command line, where vfiokit would add a second one; the kernel keeps only the last, so one list of devices would be lost`,
      hint: `remove vfio-pci.ids= from ${named.join(' and ')} and select those devices too (add their addresses to \`vfiokit plan\`), so that one vfio-pci.ids= holds them all`,
    });
  };
  const grubFiles = [...after.keys()].filter((p) => kernelArgSource(p) === 'grub');
  if (grubFiles.reduce((n, p) => n + count(after.get(p)!), 0) > 1) return clash(grubFiles);
  for (const [p, text] of after) {
    const k = kernelArgSource(p);
    if ((k === 'file' && count(text) > 1) || (k === 'lines' && perLine(text).some((c) => c > 1))) return clash([p]);
  }
}

const INITRAMFS_TOOLS = new Set(['update-initramfs', 'dracut', 'mkinitcpio', 'booster', '/usr/lib/booster/regenerate_images']);

/** Files first, then commands: initramfs images before the bootloader step that copies or lists them. */
function orderSteps(steps: Step[]): Step[] {
  const files = steps.filter((s) => s.kind !== 'run-command');
  const cmds = steps.filter((s) => s.kind === 'run-command');
  const key = (x: Step) => (INITRAMFS_TOOLS.has((x as RunCommandStep).argv[0]) ? 0 : 1);
  cmds.sort((a, c) => key(a) - key(c));
  if (!files.length) return [];
  const seen = new Set<string>();
  return [...files, ...cmds.filter((c) => (c.kind === 'run-command' && !seen.has(c.label) ? (seen.add(c.label), true) : false))];
}

function planBootloader(b: Builder, kind: BootloaderKind, args: string[]): void {
  const s = b.s;
  const t = s.boot.tools;
  const before = b.steps.length;
  const regenIfChanged = (argv: string[], reason: string) => {
    if (b.steps.length > before) b.run(argv, reason);
  };
  switch (kind) {
    case 'grub': {
      const cfgs = ['/boot/grub', '/boot/grub2'].filter((d) => (s.boot.dirs[d] ?? []).includes('grub.cfg'));
      if (!cfgs.length) {
        b.problems.push({
          code: 'E_BOOT_EMPTY',
          subject: '/boot',
          message: 'GRUB is configured (/etc/default/grub), but neither /boot/grub/grub.cfg nor /boot/grub2/grub.cfg exists: /boot looks empty or not mounted, so regenerating grub.cfg would write a menu GRUB never reads',
          hint: 'mount /boot (`mount /boot`; check /etc/fstab), then run vfiokit plan again',
        });
        return;
      }
      if (isDebianLike(s)) {
        b.write(grub.DROP_IN_PATH, grub.renderDropIn(args, { key: 'GRUB_CMDLINE_LINUX_DEFAULT' }), 'kernel arguments for normal GRUB entries (a drop-in sourced after /etc/default/grub)');
      } else {
        b.edit(grub.MAIN_PATH, 'kernel arguments on GRUB_CMDLINE_LINUX_DEFAULT (normal entries only)', (text) =>
          grub.render(grub.addKernelArgs(grub.parse(text, grub.MAIN_PATH), args, { key: 'GRUB_CMDLINE_LINUX_DEFAULT' })),
        );
      }
      if (t['update-grub']) regenIfChanged(['update-grub'], 'regenerate grub.cfg');
      else if (t['grub-mkconfig'] && (s.boot.dirs['/boot/grub'] ?? []).includes('grub.cfg')) regenIfChanged(['grub-mkconfig', '-o', '/boot/grub/grub.cfg'], 'regenerate grub.cfg');
      else if (t['grub2-mkconfig']) regenIfChanged(['grub2-mkconfig', '-o', '/boot/grub2/grub.cfg'], 'regenerate grub.cfg');
      else if (t['grub-mkconfig']) regenIfChanged(['grub-mkconfig', '-o', '/boot/grub/grub.cfg'], 'regenerate grub.cfg');
      return;
    }
    case 'grubby-bls':
    case 'systemd-boot': {
      // BLS entries are edited directly (the same edit as `grubby
      // --update-kernel=ALL --args`), skipping rescue/fallback entries, so
      // undo can restore them byte for byte.
      const dirs = loaderEntryDirs(s);
      let first: { path: string; content: string } | null = null;
      let keptPlain = false;
      for (const dir of dirs) {
        for (const name of s.boot.dirs[dir] ?? []) {
          const p = `${dir}/${name}`;
          const f = s.boot.files[p];
          if (!f || !name.endsWith('.conf') || name.includes('vfiokit-fallback')) continue;
          let doc: bls.BlsEntryDoc;
          try {
            doc = bls.parse(f.content, p);
          } catch (e) {
            b.fail(e, p);
            continue;
          }
          const title = bls.field(doc, 'title') ?? '';
          if (/rescue|recovery|fallback/i.test(`${name} ${title}`)) {
            keptPlain = true;
            continue;
          }
          if (/\$kernelopts/.test(f.content)) {
            b.problems.push({ code: 'E_KERNELOPTS', subject: p, message: `${p} takes its options from $kernelopts in grubenv (RHEL 8 layout), which vfiokit does not edit`, hint: `run \`grubby --update-kernel=ALL --args="${args.join(' ')}"\` yourself, or convert the entry to literal options` });
            continue;
          }
          b.edit(p, 'kernel arguments on this boot entry', (text) => bls.render(bls.addKernelArgs(bls.parse(text, p), args)));
          if (!first && (kind === 'systemd-boot')) first = { path: p, content: f.content };
        }
      }
      if (!dirs.length)
        b.problems.push(
          kind === 'grubby-bls'
            ? {
                code: 'E_NO_BOOT_ENTRIES',
                subject: 'loader entries',
                message: 'GRUB_ENABLE_BLSCFG=true in /etc/default/grub: GRUB takes each kernel\'s arguments from its Boot Loader Specification entry, and none was found in /boot/loader/entries (editing /etc/default/grub alone would never take effect)',
                hint: 'mount /boot (`mount /boot`; check /etc/fstab), then run vfiokit plan again; `grubby --info=ALL` lists the entries GRUB boots',
              }
            : { code: 'E_NO_BOOT_ENTRIES', subject: 'loader entries', message: 'no Boot Loader Specification entries found in /boot/loader/entries, /boot/efi/loader/entries or /efi/loader/entries', hint: 'check where the ESP is mounted (mount it, e.g. `mount /boot` or `mount /efi`), then run vfiokit plan again' },
        );
      // Future kernels: /etc/kernel/cmdline (kernel-install) when present.
      b.edit(bls.KERNEL_CMDLINE_PATH, 'kernel arguments for kernels installed later (kernel-install)', (text) => bls.renderCmdlineFile(cmdline.addKernelArgs(bls.parseCmdlineFile(text), args)));
      if (first && !keptPlain) {
        // No rescue/fallback entry stays untouched: keep one without passthrough.
        const fallback = first.path.replace(/\.conf$/, '-vfiokit-fallback.conf');
        const doc = bls.parse(first.content, first.path);
        const title = bls.field(doc, 'title') ?? 'Linux';
        const text = first.content.replace(/^title\s+.*$/m, `title ${title} (without passthrough)`);
        b.write(fallback, text.includes('(without passthrough)') ? text : `title ${title} (without passthrough)\n${text}`, 'a boot entry without passthrough, kept as a fallback');
      }
      return;
    }
    case 'kernelstub':
      b.edit(kernelstub.PATH, 'kernel arguments in kernelstub\'s configuration', (text) => kernelstub.render(kernelstub.addKernelArgs(kernelstub.parse(text), args)));
      regenIfChanged(['kernelstub'], 'regenerate the systemd-boot entry from kernelstub\'s configuration');
      return;
    case 'proxmox-boot-tool':
      if (b.file(bls.KERNEL_CMDLINE_PATH)) b.edit(bls.KERNEL_CMDLINE_PATH, 'kernel arguments for proxmox-boot-tool', (text) => bls.renderCmdlineFile(cmdline.addKernelArgs(bls.parseCmdlineFile(text), args)));
      else {
        const base = (s.kernel.cmdline ?? '').split(/\s+/).filter((a) => a && !/^(BOOT_IMAGE|initrd)=/.test(a));
        b.write(bls.KERNEL_CMDLINE_PATH, [...base, ...args.filter((a) => !base.includes(a))].join(' ') + '\n', 'kernel command line for proxmox-boot-tool (created from the running one)');
      }
      regenIfChanged(['proxmox-boot-tool', 'refresh'], 'copy kernels and the new command line to every ESP');
      b.warnings.push('proxmox-boot-tool keeps no entry without passthrough: keep the Proxmox rescue media at hand, or remove the arguments from /etc/kernel/cmdline at the boot menu (e to edit)');
      return;
    case 'refind':
      b.edit(refind.PATH, 'kernel arguments on the normal rEFInd entries (single-user/fallback lines untouched)', (text) => refind.render(refind.addKernelArgs(refind.parse(text), args)));
      return;
    case 'limine': {
      const conf = limineConf(s);
      if (b.file(limine.DEFAULTS_PATH) && t['limine-update']) {
        b.write(limine.DROP_IN_PATH, renderLimineDropIn(args), 'kernel arguments for limine-entry-tool (default entries)');
        regenIfChanged(['limine-update'], 'regenerate limine.conf');
      } else if (conf) {
        b.edit(conf, 'kernel arguments on the normal Limine entries', (text) => limine.render(limine.addKernelArgs(limine.parse(text, conf), args)));
      }
      return;
    }
    case 'unknown':
      b.warnings.push(`no supported bootloader detected: add these arguments to your normal boot entry yourself (not to a recovery entry): ${args.join(' ')}`);
      return;
  }
}

function renderLimineDropIn(args: string[]): string {
  return ['# Written by vfiokit (VFIO passthrough kernel arguments); remove with `vfiokit undo`', `KERNEL_CMDLINE[default]+=" ${args.join(' ')}"`, ''].join('\n');
}

function planModprobe(b: Builder, devices: PciDevice[], strategy: 'ids' | 'address', ids: string[], bootloader: BootloaderKind): void {
  const s = b.s;
  const present = new Set(s.boot.hostDriverModules);
  const softdeps = new Set<string>();
  for (const d of devices) {
    // softdep names a module, not a driver (bochs-drm is module bochs, xhci_hcd is xhci_pci here).
    if (d.driver && d.driver !== 'vfio-pci' && d.driver !== 'pci-stub') {
      const mod = d.driverModule ?? DRIVER_MODULE[d.driver];
      if (mod) softdeps.add(mod);
      else b.warnings.push(`${shortAddress(d.address)} is driven by ${d.driver}, which is built into the kernel: no softdep can order it after vfio-pci, so vfio-pci must be loaded from the initramfs before it binds`);
    }
    for (const m of competingModules(d)) if (present.has(m)) softdeps.add(m);
  }
  // Report what other files already say about vfio-pci.
  // Every file kmod reads (/etc, /run, /usr/local/lib, /usr/lib, /lib), in its order; vfiokit's own is planned anew.
  const docs: modprobe.ModprobeDoc[] = [];
  for (const p of modprobe.readOrder(s.boot.dirs)) {
    const f = s.boot.files[p];
    if (!f || p === modprobe.OWNED_PATH) continue;
    try {
      docs.push(modprobe.parse(f.content, p));
    } catch (e) {
      b.warnings.push(`${(e as Error).message} (modprobe ignores such lines; vfiokit does not edit this file)`);
    }
  }
  const facts = modprobe.analyseVfio(docs);
  for (const p of facts.problems) b.warnings.push(`${p.file}:${p.line}: ${p.message}${p.hint ? ` — ${p.hint}` : ''}`);
  const extra = mergeSoftdeps(b, softdeps, docs);
  const intentFile: modprobe.VfioModprobeIntent = { softdeps: [...softdeps].sort(), softdepExtra: extra };
  // Without a bootloader we can edit, the IDs go to modprobe.d instead of the command line.
  if (strategy === 'ids' && bootloader === 'unknown') intentFile.ids = ids;
  if (strategy === 'address') {
    intentFile.overrideAddresses = devices.map((d) => d.address);
    // modprobe runs only the first `install` command for a module: a user's own would win or be lost.
    const own = facts.hooks.find((h) => h.command === 'install' && normModule(h.module) === 'vfio_pci');
    if (own)
      b.problems.push({
        code: 'E_MODPROBE_CONFLICT',
        subject: own.file,
        message: `${own.file}:${own.line} already has \`install ${own.module} ${own.shell}\`; vfiokit binds by address through its own \`install vfio-pci\` hook, and modprobe runs only the first install command for a module, so one of the two would be ignored`,
        hint: `remove that install line (vfiokit's hook sets driver_override for ${devices.map((d) => shortAddress(d.address)).join(' ')}), or bind these devices at runtime with \`vfiokit bind\``,
      });
  }
  try {
    b.write(modprobe.OWNED_PATH, modprobe.renderOwnedFile(intentFile), 'load vfio-pci before the host drivers (softdeps)');
    if (strategy === 'address') b.write(modprobe.OVERRIDE_SCRIPT_PATH, modprobe.renderOverrideScript(devices.map((d) => d.address)), 'set driver_override for the chosen addresses before vfio-pci loads', 0o755);
  } catch (e) {
    b.fail(e, modprobe.OWNED_PATH);
  }
}

/**
 * modprobe uses only the first `softdep` line for a module (files in name
 * order). For each module vfiokit orders after vfio-pci, a user's softdep is
 * merged into vfiokit's (when vfiokit.conf comes first), makes vfiokit's
 * unnecessary (it already loads vfio-pci first), or is a refusal with the
 * line to change (it comes first and would hide vfiokit's).
 */
function mergeSoftdeps(b: Builder, softdeps: Set<string>, docs: modprobe.ModprobeDoc[]): Record<string, { pre: string[]; post: string[] }> {
  const ours = baseOf(modprobe.OWNED_PATH);
  const first = new Map<string, { file: string; line: number; module: string; pre: string[]; post: string[] }>();
  for (const doc of [...docs].sort((x, y) => (baseOf(x.file) < baseOf(y.file) ? -1 : baseOf(x.file) > baseOf(y.file) ? 1 : 0))) {
    for (const d of modprobe.directives(doc)) if (d.command === 'softdep' && !first.has(normModule(d.module))) first.set(normModule(d.module), { file: doc.file, line: d.line, module: d.module, pre: d.pre, post: d.post });
  }
  const extra: Record<string, { pre: string[]; post: string[] }> = {};
  for (const m of [...softdeps]) {
    const u = first.get(normModule(m));
    if (!u) continue;
    const pre = u.pre.filter((x) => normModule(x) !== 'vfio_pci');
    if (pre.length < u.pre.length) {
      softdeps.delete(m); // the user's line already loads vfio-pci first
      continue;
    }
    const post = u.post.length ? ` post: ${u.post.join(' ')}` : '';
    if (baseOf(u.file) < ours)
      b.problems.push({
        code: 'E_MODPROBE_CONFLICT',
        subject: u.file,
        message: `${u.file}:${u.line} has \`softdep ${u.module} pre: ${u.pre.join(' ')}${post}\`, and modprobe uses only the first softdep line for a module: it comes before ${modprobe.OWNED_PATH}, so vfiokit's \`softdep ${m} pre: vfio-pci\` would be ignored`,
        hint: u.file.startsWith(`${dirOf(modprobe.OWNED_PATH)}/`)
          ? `add vfio-pci to that line: \`softdep ${u.module} pre: ${[...u.pre, 'vfio-pci'].join(' ')}${post}\`, then run vfiokit plan again`
          : `${u.file} belongs to a package (an upgrade puts it back): copy it to ${dirOf(modprobe.OWNED_PATH)}/${baseOf(u.file)}, which hides it, with that line as \`softdep ${u.module} pre: ${[...u.pre, 'vfio-pci'].join(' ')}${post}\`, then run vfiokit plan again`,
      });
    else {
      extra[m] = { pre, post: u.post };
      b.warnings.push(`${u.file}:${u.line} has \`softdep ${u.module} pre: ${u.pre.join(' ')}${post}\`; modprobe uses only the first softdep line for a module, which is vfiokit's, so vfiokit's line carries yours too: \`softdep ${m} pre: ${['vfio-pci', ...pre].join(' ')}${post}\``);
    }
  }
  return extra;
}

function renderInitramfsToolsHook(script: string): string {
  return [
    '#!/bin/sh',
    '# Written by vfiokit: copies the vfio-pci driver_override hook into the initramfs; remove with `vfiokit undo`',
    'PREREQ=""',
    'prereqs() { echo "$PREREQ"; }',
    'case "$1" in prereqs) prereqs; exit 0 ;; esac',
    '. /usr/share/initramfs-tools/hook-functions',
    `copy_file script ${script}`,
    '',
  ].join('\n');
}

/** Regenerate when modprobe.d or initramfs configuration changed (steps after `mark`). */
function planInitramfs(b: Builder, kind: InitramfsKind, strategy: 'ids' | 'address', mark: number): void {
  const s = b.s;
  const mods = vfioModules(s);
  const changed = () => b.steps.length > mark;
  const kernels = s.boot.kernels.filter((k) => k.vfioPci === 'module');
  const all = kernels.length === s.boot.kernels.length;
  const script = modprobe.OVERRIDE_SCRIPT_PATH;
  switch (kind) {
    case 'initramfs-tools': {
      const cur = b.file(itm.PATH);
      const next = itm.render(itm.ensureModules(itm.parse(cur?.content ?? '', itm.PATH), mods));
      b.write(itm.PATH, next, 'load the vfio modules early from the initramfs');
      if (strategy === 'address') b.write(INITRAMFS_HOOK_PATH, renderInitramfsToolsHook(script), 'include the driver_override hook in the initramfs', 0o755);
      if (changed()) {
        if (all || !kernels.length) b.run(['update-initramfs', '-u', '-k', 'all'], 'rebuild the initramfs of every installed kernel');
        else for (const k of kernels) b.run(['update-initramfs', '-u', '-k', k.release], `rebuild the initramfs of ${k.release}`);
      }
      return;
    }
    case 'dracut': {
      const items = [modprobe.OWNED_PATH, ...(strategy === 'address' ? [script] : [])];
      b.write(dracut.OWNED_PATH, dracut.renderOwnedFile({ forceDrivers: mods, installItems: items }), 'load the vfio modules early from the initramfs (dracut)');
      if (changed()) {
        if (all || !kernels.length) b.run(['dracut', '--regenerate-all', '-f'], 'rebuild the initramfs of every installed kernel');
        else for (const k of kernels) b.run(['dracut', '-f', '--kver', k.release], `rebuild the initramfs of ${k.release}`);
      }
      return;
    }
    case 'mkinitcpio': {
      const main = b.file(mkinitcpio.MAIN_PATH)!;
      try {
        const mainDoc = mkinitcpio.parse(main.content, mkinitcpio.MAIN_PATH);
        const dropIns = Object.entries(s.boot.files)
          .filter(([p]) => p.startsWith(`${MKINITCPIO_CONF_D}/`) && p !== mkinitcpio.DROP_IN_PATH)
          .sort(([a], [c]) => a.localeCompare(c))
          .map(([p, f]) => mkinitcpio.parse(f.content, p));
        const target = mkinitcpio.chooseTarget(mainDoc, dropIns);
        const files = strategy === 'address' ? [script] : [];
        if (target.target === 'unsupported') {
          b.problems.push({ code: 'E_MKINITCPIO', subject: mkinitcpio.MAIN_PATH, message: `cannot add the vfio modules to mkinitcpio's MODULES: ${target.reason}`, hint: `put ${mods.join(' ')} first in MODULES yourself, then run vfiokit plan again` });
          return;
        }
        if (target.target === 'main') {
          let doc = mkinitcpio.prependModules(mainDoc, mods);
          if (files.length) doc = mkinitcpio.appendFiles(doc, files);
          b.write(mkinitcpio.MAIN_PATH, mkinitcpio.render(doc), `vfio modules first in MODULES (${target.reason})`);
        } else {
          b.write(mkinitcpio.DROP_IN_PATH, mkinitcpio.renderDropIn({ modules: mods, files }), 'load the vfio modules early from the initramfs (drop-in)');
        }
        if (mkinitcpio.report(mainDoc).modconf === false) b.warnings.push('the modconf hook is not in HOOKS: modprobe.d softdeps are not in the initramfs, so the vfio modules in MODULES must win the race alone');
      } catch (e) {
        b.fail(e, mkinitcpio.MAIN_PATH);
      }
      if (changed()) b.run(['mkinitcpio', '-P'], 'rebuild the initramfs of every preset');
      return;
    }
    case 'booster': {
      b.edit(booster.PATH, 'force-load the vfio modules from the booster image', (text) => booster.render(booster.ensureForceLoad(booster.parse(text), mods)));
      if (changed()) b.run(s.boot.tools['booster-regenerate'] ? ['/usr/lib/booster/regenerate_images'] : ['booster', 'build', '--force'], 'rebuild the booster images');
      return;
    }
    case 'unknown':
      b.warnings.push(`no initramfs generator detected: make sure ${mods.join(' ')} load from the initramfs before the host drivers`);
      return;
  }
}
