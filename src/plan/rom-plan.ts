// Plans for `vfiokit rom dump` and `vfiokit rom install` (pure, over the
// snapshot). A dump is three steps on the engine: enable the device's `rom`
// attribute (undo and crash recovery write "0" back), copy the attribute
// whole into the output file (at most the ROM BAR's size), disable it again.
// An install copies a checked ROM (binary, 0644) to a directory libvirt's
// confinement lets QEMU read, under a name made of the IDs and the content
// hash, so installing the same ROM twice changes nothing and a different ROM
// never replaces another.

import { type Problem, UsageError } from '../errors.js';
import { shortAddress } from '../model/pci-address.js';
import { emptyPlan, type Plan } from '../model/plan.js';
import type { HostSnapshot, LibvirtConfinement, PciDevice } from '../model/snapshot.js';
import { MAX_ROM_BYTES, parseOptionRom, romVerdict, type RomReport, type RomVerdict } from '../formats/option-rom.js';
import { parseSelector } from './select.js';

/** One device for a selector: an address, or a vendor:device held by exactly one function. */
export function findOneDevice(s: HostSnapshot, selector: string): { device: PciDevice | null; problem: Problem | null } {
  const sel = parseSelector(selector);
  if ('address' in sel) {
    const d = s.pci.find((x) => x.address === sel.address) ?? null;
    return d ? { device: d, problem: null } : { device: null, problem: { code: 'E_NO_SUCH_DEVICE', subject: selector, message: `no PCI device ${selector} on this host`, hint: 'list the devices with `vfiokit groups` (or `lspci -nn`) and give one of their addresses' } };
  }
  const all = s.pci.filter((x) => x.vendor === sel.vendor && x.device === sel.device);
  if (all.length === 1) return { device: all[0], problem: null };
  if (!all.length) return { device: null, problem: { code: 'E_NO_SUCH_DEVICE', subject: selector, message: `no PCI device with IDs ${selector} on this host`, hint: 'list the devices with `vfiokit groups` (or `lspci -nn`)' } };
  return { device: null, problem: { code: 'E_AMBIGUOUS_SELECTOR', subject: selector, message: `${all.length} devices have IDs ${selector} (${all.map((d) => shortAddress(d.address)).join(', ')}): a ROM belongs to one`, hint: `give the address instead, e.g. ${shortAddress(all[0].address)}` } };
}

interface RomDumpIntent {
  selector: string;
  /** Absolute host path of the output file. */
  output: string;
  /** The output file exists (the command checked). */
  outputExists: boolean;
  force: boolean;
  /** Host path of a device's `rom` attribute (src/host/sysfs-paths.ts). */
  romAttr: (address: string) => string;
}

/** Why a dump of this device would not give its ROM; null when it would. */
function dumpPreconditions(d: PciDevice): Problem | null {
  const at = shortAddress(d.address);
  if (!d.hasRom) {
    return {
      code: 'E_ROM_NO_BAR',
      subject: d.address,
      message: `${at} (${d.vendor}:${d.device}) has no expansion ROM BAR: the kernel shows no \`rom\` attribute for it`,
      hint: 'the device keeps no option ROM of its own (many NICs, integrated and laptop GPUs): use the vendor image for this card, or the firmware image it came with',
    };
  }
  if (d.bootVga || d.romBar?.shadowed) {
    return {
      code: 'E_ROM_BOOT_VGA',
      subject: d.address,
      message: `${at} is the host's boot display: its \`rom\` attribute returns the shadow copy the firmware left at 0xC0000 (POST-modified legacy image, no UEFI image), or all-ones on UEFI boots — not the card's ROM`,
      hint: 'dump it from a secondary slot (make another GPU the boot display in the firmware setup, or move the card), or use the vendor image for exactly this card (then `vfiokit rom check FILE --device ' + at + '`)',
    };
  }
  if (d.romBar && d.romBar.size === 0) {
    return {
      code: 'E_ROM_NO_BAR',
      subject: d.address,
      message: `${at}'s expansion ROM BAR has no address assigned (size 0 in \`resource\`): the ROM cannot be mapped`,
      hint: 'boot with the card in a slot the firmware assigns resources to, or use the vendor image for this card',
    };
  }
  return null;
}

export function planRomDump(s: HostSnapshot, intent: RomDumpIntent): Plan & { device: PciDevice | null } {
  const plan = emptyPlan('rom-dump', { selector: intent.selector, output: intent.output });
  const { device, problem } = findOneDevice(s, intent.selector);
  if (problem) plan.problems.push(problem);
  if (!device) return { ...plan, device };
  const pre = dumpPreconditions(device);
  if (pre) plan.problems.push(pre);
  if (intent.outputExists && !intent.force) {
    plan.problems.push({ code: 'E_OUTPUT_EXISTS', subject: intent.output, message: `${intent.output} exists`, hint: 'give another -o path, or --force to replace it' });
  }
  if (plan.problems.length) return { ...plan, device };
  const ps = device.romBar?.powerState;
  if (ps && ps.startsWith('D3')) plan.warnings.push(`${shortAddress(device.address)} is in ${ps}: a suspended device returns all-ones instead of its ROM; wake it first (bind it to its driver, or write "on" to its power/control) and dump again if the check below says all-ones`);
  const rom = intent.romAttr(device.address);
  const at = shortAddress(device.address);
  plan.intent = { selector: intent.selector, address: device.address, vendor: device.vendor, device: device.device, output: intent.output };
  plan.summary.push(`dump the option ROM of ${at} (${device.vendor}:${device.device}) to ${intent.output}`);
  plan.steps.push(
    { kind: 'write-attr', path: rom, value: '1', before: null, restore: { value: '0' }, reason: `enable reading ${at}'s ROM (undo and recovery disable it again)` },
    { kind: 'copy-attr', from: rom, path: intent.output, maxBytes: device.romBar?.size || MAX_ROM_BYTES, mode: 0o644, reason: `copy ${at}'s ROM to ${intent.output}` },
    { kind: 'write-attr', path: rom, value: '0', before: null, restore: null, reason: `disable reading ${at}'s ROM` },
  );
  return { ...plan, device };
}

interface RomDirChoice {
  dir: string;
  /** Why QEMU under libvirt may read it here. */
  why: string[];
}

/** The directory a ROM goes to so libvirt's QEMU may read it (AppArmor abstraction / SELinux labels). */
export function chooseRomDir(c: LibvirtConfinement): RomDirChoice {
  const why: string[] = [];
  const dirs = c.installDirs;
  let dir: string = dirs[0] ?? '/usr/share/vgabios';
  if (c.apparmor.abstraction) {
    const allowed = dirs.find((d) => c.apparmor.readDirs.includes(d));
    const generic = c.apparmor.readDirs.find((d) => d.startsWith('/usr/share/'));
    dir = allowed ?? generic ?? dir;
    why.push(
      allowed || generic
        ? `AppArmor: ${c.apparmor.abstraction} lets every libvirt QEMU read ${dir}/** (a ROM elsewhere, e.g. under /home or /tmp, is denied unless the domain's own profile adds it)`
        : `AppArmor: ${c.apparmor.abstraction} allows no directory under /usr/share; ${dir} needs a rule \`${dir}/** r,\` in /etc/apparmor.d/local/abstractions/libvirt-qemu`,
    );
    if (c.apparmor.enabled === false) why.push('AppArmor is not enabled in the running kernel; the rule matters once it is');
  }
  if (c.selinux && c.selinux.mode !== 'disabled') {
    why.push(`SELinux (${c.selinux.mode}${c.selinux.policy ? `, ${c.selinux.policy}` : ''}): files under /usr/share carry usr_t, which confined QEMU (svirt_t) reads (as it reads its own ROMs in /usr/share/qemu); user_home_t and tmp files are denied`);
  }
  if (!why.length) why.push(`no AppArmor libvirt-qemu abstraction and no SELinux found; ${dir} is also where confined hosts allow QEMU to read`);
  return { dir, why };
}

interface RomInstallInput {
  /** Where the file came from (for messages). */
  source: string;
  bytes: Uint8Array;
  base64: string;
  sha256: string;
}

type RomInstallPlan = Plan & { device: PciDevice | null; target: string | null; report: RomReport | null; verdict: RomVerdict | null; dir: RomDirChoice; already: boolean };

export function planRomInstall(s: HostSnapshot, selector: string, rom: RomInstallInput): RomInstallPlan {
  const plan = emptyPlan('rom-install', { selector, source: rom.source });
  const dir = chooseRomDir(s.libvirt.confinement);
  const base = { dir, target: null, report: null, verdict: null, already: false };
  const { device, problem } = findOneDevice(s, selector);
  if (problem) plan.problems.push(problem);
  if (!device) return { ...plan, ...base, device };
  const report = parseOptionRom(rom.bytes);
  const verdict = romVerdict(report, { vendor: device.vendor, device: device.device, label: shortAddress(device.address) });
  if (!verdict.usable) {
    plan.problems.push({ code: verdict.kind === 'wrong-device' ? 'E_ROM_WRONG_DEVICE' : verdict.kind === 'needs-strip' ? 'E_ROM_NEEDS_STRIP' : 'E_ROM_INVALID', subject: rom.source, message: `${rom.source}: ${verdict.summary}`, hint: verdict.kind === 'needs-strip' ? `vfiokit rom strip ${rom.source} -o STRIPPED.rom, then install that` : verdict.details[verdict.details.length - 1] });
    return { ...plan, ...base, device, report, verdict };
  }
  const target = `${dir.dir}/vfiokit-${device.vendor}-${device.device}-${rom.sha256.slice(0, 12)}.rom`;
  const there = s.libvirt.confinement.installedRoms[target];
  plan.intent = { selector, address: device.address, vendor: device.vendor, device: device.device, source: rom.source, path: target, sha256: rom.sha256 };
  plan.warnings.push(...verdict.details);
  if (there === rom.sha256) return { ...plan, ...base, device, report, verdict, target, already: true };
  if (there !== undefined) {
    plan.problems.push({ code: 'E_ROM_TARGET_CHANGED', subject: target, message: `${target} exists with other content (sha256 ${there.slice(0, 12)}…, not ${rom.sha256.slice(0, 12)}…)`, hint: `it was edited after vfiokit installed it: move it away, then install again` });
    return { ...plan, ...base, device, report, verdict, target };
  }
  plan.summary.push(`install ${rom.source} (${verdict.summary}) as ${target} for ${shortAddress(device.address)}`);
  plan.steps.push({ kind: 'install-file', path: target, contentBase64: rom.base64, mode: 0o644, beforeSha256: null, reason: `the option ROM for ${shortAddress(device.address)} (${device.vendor}:${device.device}), where libvirt's QEMU may read it` });
  return { ...plan, ...base, device, report, verdict, target };
}

/** Refuse an obviously unusable selector early (usage, not host state). */
export function assertSelector(text: string | undefined, what: string): string {
  if (!text) throw new UsageError(`no device given for ${what}`, 'name the device: a PCI address (01:00.0) or vendor:device (10de:2204)', 'E_NO_SELECTOR');
  parseSelector(text);
  return text;
}

/**
 * Whether libvirt's confined QEMU may read a ROM at `file`: null when nothing
 * speaks against it, else why not and where `vfiokit rom install` would put it.
 */
export function romPathProblem(c: LibvirtConfinement, file: string): string | null {
  const into = chooseRomDir(c).dir;
  if (!file.startsWith('/')) return `'${file}' is a relative name: QEMU looks it up in its own data directory (e.g. /usr/share/qemu), not where you are; give an absolute path (\`vfiokit rom install\` puts the ROM in ${into})`;
  if (c.apparmor.abstraction && c.apparmor.enabled !== false && !c.apparmor.readDirs.some((d) => file.startsWith(`${d}/`))) {
    return `${file} is outside the directories ${c.apparmor.abstraction} lets libvirt's QEMU read (${c.apparmor.readDirs.filter((d) => d.startsWith('/usr/share/')).slice(0, 4).join(', ')}…): QEMU may fail with "failed to find romfile"; \`vfiokit rom install FILE --device …\` copies it to ${into}`;
  }
  if (c.selinux?.mode === 'enforcing' && /^\/(home|root|tmp|var\/tmp|run\/user)\//.test(file)) {
    return `${file} carries a home or temp SELinux label that confined QEMU (svirt_t) may not read; \`vfiokit rom install FILE --device …\` copies it to ${into} (usr_t)`;
  }
  return null;
}
