// `hooks install|remove` as plans (pure): one executable per domain in
// /etc/libvirt/hooks/qemu.d/ (libvirt ≥ 6.5 runs every executable file there,
// after the main /etc/libvirt/hooks/qemu, which is never touched — a user's
// script or the per-VM dispatcher keeps working). Refused when libvirt is
// missing or too old for qemu.d, or the domain is not defined. libvirt looks
// for hooks only when the daemon starts: the plan says when (and which daemon)
// must be restarted.

import type { Problem } from '../errors.js';
import { definedDomainXml, LIBVIRT_QEMU_HOOK, LIBVIRT_QEMU_HOOKS_D } from '../model/display-paths.js';
import { emptyPlan, type Plan } from '../model/plan.js';
import type { HostSnapshot } from '../model/snapshot.js';
import { HOOK_MARKER, hookFlagNames, parseHookScript, renderHookScript, type HookFlags } from '../formats/libvirt-hook.js';
import { hookIsolateIntent } from './domain-vm-cpus.js';
import { planIsolate } from './isolate-plan.js';
import { children, parseDomainXml } from '../formats/libvirt-domain.js';

interface HooksIntent extends HookFlags {
  domain: string;
  vfiokit: string[];
  /** The domain's XML (its defined file), when readable: --isolate is checked against this host now, not first at start. */
  domainXml?: { xml: string; source: string } | null;
}

/** "--single-gpu --isolate" (or "no flags"), as the hook passes them. */
export function describeHookFlags(f: HookFlags): string {
  const n = hookFlagNames(f);
  return n.length ? n.map((x) => `--${x}`).join(' ') : 'no flags';
}

/** The installed file as read by the command (content and its sha256), null when absent. */
interface ExistingHook {
  content: string;
  sha256: string;
}

/** libvirt 6.5.0 introduced /etc/libvirt/hooks/<driver>.d (src/util/virhook.c). */
const QEMU_D_MIN_VERSION = [6, 5, 0];

function hookFileName(domain: string): string {
  return `vfiokit-${domain.replace(/[^A-Za-z0-9_.+-]/g, '_')}`;
}
export const hookPath = (domain: string) => `${LIBVIRT_QEMU_HOOKS_D}/${hookFileName(domain)}`;

/**
 * Names that differ only in characters a file name does not keep ("win 11",
 * "win_11") share a hook file: one domain's hook is never replaced or removed
 * for the other.
 */
function otherDomainsHook(path: string, domain: string, content: string): Problem[] {
  const h = parseHookScript(content);
  if (!h || h.domain === domain) return [];
  return [{ code: 'E_HOOK_NOT_OURS', subject: path, message: `${path} is the hook of the domain '${h.domain}', not of '${domain}' (a hook file name keeps only A-Z a-z 0-9 _ . + -, so both names give this file)`, hint: `remove that hook first (vfiokit hooks remove '${h.domain}'), or rename one of the domains` }];
}

function versionAtLeast(v: string, min: number[]): boolean {
  const p = v.split('.').map(Number);
  for (let i = 0; i < min.length; i++) if ((p[i] ?? 0) !== min[i]) return (p[i] ?? 0) > min[i];
  return true;
}

/** Which daemon serves qemu:///system (and so runs the hooks): the modular virtqemud or the monolithic libvirtd. */
function libvirtDaemon(snap: HostSnapshot): 'virtqemud' | 'libvirtd' | null {
  const r = snap.libvirt.runningDaemons;
  if (r.includes('virtqemud')) return 'virtqemud';
  if (r.includes('libvirtd')) return 'libvirtd';
  const d = snap.libvirt.daemon;
  return d?.endsWith('virtqemud') ? 'virtqemud' : d?.endsWith('libvirtd') ? 'libvirtd' : null;
}

/** A hook is already seen by the running daemon only when some qemu hook existed when it started (approximated: one exists now). */
function anyQemuHook(snap: HostSnapshot): boolean {
  return Boolean(snap.libvirt.mainHook && snap.libvirt.mainHook.mode & 0o111) || (snap.libvirt.hooksDir ?? []).some((e) => e.executable && !e.isDir);
}

function libvirtProblems(snap: HostSnapshot): Problem[] {
  const out: Problem[] = [];
  if (!snap.libvirt.daemon && !snap.libvirt.runningDaemons.length) {
    out.push({ code: 'E_LIBVIRT_MISSING', subject: 'libvirt', message: 'libvirt is not installed (no libvirtd or virtqemud): nothing would run the hook', hint: 'install libvirt (libvirt-daemon-system on Debian/Ubuntu, libvirt on Fedora/Arch) and define the domain first' });
  } else if (snap.libvirt.version && !versionAtLeast(snap.libvirt.version, QEMU_D_MIN_VERSION)) {
    out.push({ code: 'E_LIBVIRT_TOO_OLD', subject: 'libvirt', message: `libvirt ${snap.libvirt.version} does not run hooks from ${LIBVIRT_QEMU_HOOKS_D} (added in 6.5.0)`, hint: `upgrade libvirt to 6.5 or later; vfiokit does not replace ${LIBVIRT_QEMU_HOOK}, but a dispatcher there can call the files in ${LIBVIRT_QEMU_HOOKS_D}` });
  }
  return out;
}

export function planHooksInstall(snap: HostSnapshot, intent: HooksIntent, existing: ExistingHook | null): Plan {
  const { domainXml: _xml, ...recorded } = intent;
  const plan = emptyPlan('hooks-install', recorded as unknown as Record<string, unknown>);
  plan.problems.push(...libvirtProblems(snap));
  if (!snap.libvirt.definedDomains.includes(intent.domain)) {
    plan.problems.push({ code: 'E_DOMAIN_NOT_DEFINED', subject: intent.domain, message: `no libvirt domain named '${intent.domain}' is defined (${definedDomainXml(intent.domain)})`, hint: `define it first (\`vfiokit vm define ${intent.domain} --device ADDR\` or virsh define), or check the name with \`virsh list --all\`` });
  }
  const path = hookPath(intent.domain);
  if (existing && !existing.content.includes(HOOK_MARKER)) {
    plan.problems.push({ code: 'E_HOOK_NOT_OURS', subject: path, message: `${path} exists and is not a vfiokit hook`, hint: 'rename or remove that file; vfiokit never replaces files it did not write' });
  } else if (existing) plan.problems.push(...otherDomainsHook(path, intent.domain, existing.content));
  if (intent.isolate) plan.problems.push(...isolateProblems(snap, intent));
  if (intent.hugepages && intent.domainXml && !usesHugepages(intent.domainXml.xml, intent.domainXml.source)) {
    plan.problems.push({ code: 'E_DOMAIN_NO_HUGEPAGES', subject: intent.domain, message: `${intent.domainXml.source} does not back its memory with hugepages (no <memoryBacking><hugepages>): there would be nothing to reserve`, hint: `add it (virsh edit ${intent.domain}: <memoryBacking><hugepages/></memoryBacking>, or define it with \`vfiokit vm define ${intent.domain} --hugepages\`), or install the hook without --hugepages` });
  }
  if (plan.problems.length) return plan;
  const content = renderHookScript(intent);
  if (existing?.content === content) {
    plan.summary.push(`the hook for ${intent.domain} is installed already (${path})`);
    return plan;
  }
  const was = existing ? parseHookScript(existing.content) : null;
  plan.steps.push({ kind: 'install-file', path, contentBase64: toBase64(content), mode: 0o755, beforeSha256: existing?.sha256 ?? null, reason: `libvirt runs it for every domain; it acts for '${intent.domain}' only${intent.singleGpu ? ' (single-GPU handoff)' : ''}` });
  plan.summary.push(`hook ${path} → vfiokit handoff prepare|release ${intent.domain}${hookFlagNames(intent).map((n) => ` --${n}`).join('')}${was ? ` (replaces the installed one: ${describeHookFlags(was)}; undo puts it back)` : ''}`);
  plan.summary.push(...hookSequence(intent));
  if (snap.libvirt.mainHook) {
    const dispatcher = /qemu\.d\/\$|hooks\/qemu\.d\/\$\{?GUEST|\$HOOKPATH/i.test(snap.libvirt.mainHook.content);
    plan.summary.push(`${LIBVIRT_QEMU_HOOK} stays as it is${dispatcher ? ' (a per-VM dispatcher: it ignores plain files in qemu.d, libvirt runs them after it)' : ''}; libvirt runs it first`);
  }
  const daemon = libvirtDaemon(snap);
  if (!anyQemuHook(snap)) {
    plan.warnings.push(`this is the first qemu hook: libvirt looks for hooks only when it starts — run \`systemctl restart ${daemon ?? 'libvirtd'}\` before starting ${intent.domain} (running domains keep running)`);
  }
  return plan;
}

/** What the hook does at prepare and at release, in order (for the plan and `hooks list`). */
export function hookSequence(f: HookFlags): string[] {
  const prep = [f.hugepages && 'reserve the domain\'s hugepages', `hand its devices to vfio-pci${f.singleGpu ? ' (the desktop freed first)' : ''}`, f.isolate && 'move the host\'s units, IRQs and unbound workqueues off the VM\'s CPUs'].filter(Boolean);
  const rel = [f.isolate && 'give the host its CPUs back', 'give the devices back', f.hugepages && 'release the hugepages'].filter(Boolean);
  return [
    `at prepare: ${prep.join(', then ')}; a failure undoes the parts done before it and libvirt refuses the start`,
    `at release (every stop, a crash or virsh destroy included): ${rel.join(', then ')}; each is tried even when one before it fails`,
  ];
}

/** Whether the domain asks for hugepage-backed memory. */
function usesHugepages(xml: string, source: string): boolean {
  const d = parseDomainXml(xml, source).documentElement!;
  return children(d, 'memoryBacking').some((m) => children(m, 'hugepages').length > 0);
}

/** --isolate checked now: the domain's CPUs and this host's cgroup/systemd layout (the refusals `vfiokit isolate DOMAIN` would give). */
function isolateProblems(snap: HostSnapshot, intent: HooksIntent): Problem[] {
  if (!intent.domainXml) return [];
  const d = hookIsolateIntent(intent.domainXml.xml, intent.domainXml.source, intent.domain, snap);
  if (!d.intent) return d.problems;
  return planIsolate(snap, d.intent).problems.map((x) => ({ ...x, hint: `${x.hint ?? ''}${x.hint ? '; or ' : ''}install the hook without --isolate` }));
}

export function planHooksRemove(snap: HostSnapshot, domain: string, existing: (ExistingHook & { mode: number; uid: number; gid: number }) | null): Plan {
  const plan = emptyPlan('hooks-remove', { domain });
  const path = hookPath(domain);
  if (!existing) {
    plan.summary.push(`no vfiokit hook for ${domain} (${path})`);
    return plan;
  }
  if (!parseHookScript(existing.content)) {
    plan.problems.push({ code: 'E_HOOK_NOT_OURS', subject: path, message: `${path} is not a vfiokit hook`, hint: 'remove it yourself if you mean to; vfiokit never removes files it did not write' });
    return plan;
  }
  plan.problems.push(...otherDomainsHook(path, domain, existing.content));
  if (plan.problems.length) return plan;
  plan.steps.push({ kind: 'remove-file', path, before: { content: existing.content, mode: existing.mode, uid: existing.uid, gid: existing.gid }, reason: `the handoff hook for ${domain}` });
  plan.summary.push(`remove ${path}`);
  return plan;
}

/** Installed vfiokit hooks (from the qemu.d listing and the files' headers, read by the command). */
export function listHooks(snap: HostSnapshot, read: (name: string) => string | undefined): ({ path: string; domain: string; executable: boolean } & HookFlags)[] {
  const out = [];
  for (const e of snap.libvirt.hooksDir ?? []) {
    if (e.isDir || !e.name.startsWith('vfiokit-')) continue;
    const h = parseHookScript(read(e.name) ?? '');
    if (h) out.push({ path: `${LIBVIRT_QEMU_HOOKS_D}/${e.name}`, domain: h.domain, singleGpu: h.singleGpu, isolate: h.isolate, hugepages: h.hugepages, executable: e.executable });
  }
  return out;
}

function toBase64(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
