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
import { sizeLimitFor } from '../formats/common.js';
import * as refind from '../formats/refind-linux-conf.js';
import { shortAddress } from '../model/pci-address.js';
import { emptyPlan, type FileState, type Plan, type RunCommandStep, type Step } from '../model/plan.js';
import type { BootTransactionIntent } from '../model/plan.js';
export type { BootTransactionIntent };
import type { HostSnapshot, PciDevice } from '../model/snapshot.js';
import { detectBootloader, detectInitramfs, isDebianLike, limineConf, loaderEntryDirs, type BootloaderKind, type InitramfsKind } from '../analysis/boot-detect.js';
import { resolveSelection } from './select.js';
import { INITRAMFS_TOOLS_VFIOKIT_HOOK, MKINITCPIO_CONF_D, MODPROBE_D } from '../model/config-paths.js';

export interface BootIntent {
  selectors: string[];
  with?: string[];
  allowBootVga?: boolean;
  allowRootStorage?: boolean;
  allowDefaultNic?: boolean;
}


export const INITRAMFS_HOOK_PATH = INITRAMFS_TOOLS_VFIOKIT_HOOK;
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
    this.steps.push({ kind: 'write-file', path, before, after: { content, mode: mode ?? before?.mode ?? 0o644 }, reason });
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
  const sel = resolveSelection(s, intent.selectors, { with: intent.with, allowBootVga: intent.allowBootVga });
  b.problems.push(...sel.problems);
  b.warnings.push(...sel.warnings);
  for (const d of sel.devices) {
    if (s.boot.rootStorage.includes(d.address) && !intent.allowRootStorage)
      b.problems.push({
        code: 'E_ROOT_STORAGE',
        subject: d.address,
        message: `${shortAddress(d.address)} holds the root filesystem's disk; binding it to vfio-pci at boot would leave the host without its root filesystem`,
        hint: 'choose another device, or pass --allow-root-storage if the root filesystem really lives elsewhere at boot',
      });
    if (s.boot.defaultRouteNics.includes(d.address) && !intent.allowDefaultNic)
      b.problems.push({
        code: 'E_DEFAULT_ROUTE_NIC',
        subject: d.address,
        message: `${shortAddress(d.address)} is the network card carrying the default route; the host would lose its network at boot`,
        hint: 'choose another device, or pass --allow-default-nic when the host has another way in',
      });
  }
  const bootloader = detectBootloader(s);
  const initramfs = detectInitramfs(s);
  const plan = emptyPlan('boot-passthrough', {});
  if (b.problems.length || !sel.devices.length) {
    plan.problems = b.problems;
    plan.warnings = b.warnings;
    return plan;
  }
  const moving = new Set(sel.devices.map((d) => d.address));

  // 2. Strategy.
  const ids = [...new Set(sel.devices.map((d) => `${d.vendor}:${d.device}`))];
  const stays = s.pci.filter((d) => !moving.has(d.address) && ids.includes(`${d.vendor}:${d.device}`));
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
  if (s.cpu.vendor === 'intel') args.push('intel_iommu=on');
  args.push('iommu=pt');
  if (strategy === 'ids') args.push(`vfio-pci.ids=${ids.join(',')}`);
  if (current.includes('amd_iommu=on')) b.warnings.push('the kernel command line has amd_iommu=on, which is not a kernel option (ignored); vfiokit leaves it alone');
  const otherIds = current.filter((a) => /^vfio[-_]pci\.ids=/.test(a) && a !== `vfio-pci.ids=${ids.join(',')}`);
  if (otherIds.length) b.warnings.push(`the running kernel already has ${otherIds.join(' ')}; the new vfio-pci.ids= comes later on the command line and wins`);

  if (!b.problems.length) {
    planBootloader(b, bootloader.kind, args);
    const mark = b.steps.length;
    if (!builtin) planModprobe(b, sel.devices, strategy, ids, bootloader.kind);
    if (!builtin) planInitramfs(b, initramfs.kind, strategy, mark);
    else b.warnings.push(`vfio-pci is built into kernel ${s.kernel.release}: the kernel command line alone binds the devices (no modprobe.d or initramfs changes)`);
  }

  const txIntent: BootTransactionIntent = {
    selectors: intent.selectors,
    devices: sel.devices.map((d) => ({ address: d.address, vendor: d.vendor, device: d.device, iommuGroup: d.iommuGroup, hostDriver: d.driver })),
    strategy,
    kernelArgs: args,
    bootloader: bootloader.kind,
    initramfs: initramfs.kind,
  };
  plan.intent = txIntent as unknown as Record<string, unknown>;
  plan.problems = b.problems;
  plan.warnings = b.warnings;
  plan.steps = b.problems.length ? [] : orderSteps(b.steps);
  plan.summary = [
    `devices: ${sel.devices.map((d) => `${shortAddress(d.address)} [${d.vendor}:${d.device}]${d.driver ? ` (now ${d.driver})` : ''}`).join(', ')}`,
    `binding: ${strategy === 'ids' ? `by IDs (${ids.join(', ')})` : `by address (driver_override), because ${stays.map((d) => shortAddress(d.address)).join(', ')} has the same IDs and stays on the host`}${builtin ? '; vfio-pci is built in' : ''}`,
    `kernel arguments: ${args.join(' ')} (normal boot entries only; the recovery entry boots without passthrough)`,
    `bootloader: ${bootloader.kind} (${bootloader.evidence.join('; ')})`,
    `initramfs: ${builtin ? 'not needed (vfio-pci built in)' : `${initramfs.kind} (${initramfs.evidence.join('; ')})`}`,
  ];
  return plan;
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
      if (!dirs.length) b.problems.push({ code: 'E_NO_BOOT_ENTRIES', subject: 'loader entries', message: 'no Boot Loader Specification entries found in /boot/loader/entries, /boot/efi/loader/entries or /efi/loader/entries', hint: 'check where the ESP is mounted' });
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
  const intentFile: modprobe.VfioModprobeIntent = { softdeps: [...softdeps].sort() };
  // Without a bootloader we can edit, the IDs go to modprobe.d instead of the command line.
  if (strategy === 'ids' && bootloader === 'unknown') intentFile.ids = ids;
  if (strategy === 'address') intentFile.overrideAddresses = devices.map((d) => d.address);
  // Report what other files already say about vfio-pci.
  const docs: modprobe.ModprobeDoc[] = [];
  for (const [p, f] of Object.entries(s.boot.files)) {
    if (!p.startsWith(`${MODPROBE_D}/`) || p === modprobe.OWNED_PATH) continue;
    try {
      docs.push(modprobe.parse(f.content, p));
    } catch (e) {
      b.warnings.push(`${(e as Error).message} (modprobe ignores such lines; vfiokit does not edit this file)`);
    }
  }
  const facts = modprobe.analyseVfio(docs);
  for (const p of facts.problems) b.warnings.push(`${p.file}:${p.line}: ${p.message}${p.hint ? ` — ${p.hint}` : ''}`);
  if (facts.effectiveIds && strategy === 'ids') b.warnings.push(`${facts.effectiveIds.file}:${facts.effectiveIds.line} already sets vfio-pci ids=${facts.effectiveIds.ids.join(',')}; the kernel command line's vfio-pci.ids= is applied as well`);
  try {
    b.write(modprobe.OWNED_PATH, modprobe.renderOwnedFile(intentFile), 'load vfio-pci before the host drivers (softdeps)');
    if (strategy === 'address') b.write(modprobe.OVERRIDE_SCRIPT_PATH, modprobe.renderOverrideScript(devices.map((d) => d.address)), 'set driver_override for the chosen addresses before vfio-pci loads', 0o755);
  } catch (e) {
    b.fail(e, modprobe.OWNED_PATH);
  }
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
