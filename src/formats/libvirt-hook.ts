// The libvirt hook vfiokit installs in /etc/libvirt/hooks/qemu.d/: a POSIX sh
// script libvirt (≥ 6.5) runs for every domain with the arguments
// `DOMAIN OPERATION SUB-OPERATION EXTRA` and the domain XML on stdin. It exits
// 0 at once for other domains and hands prepare/begin and release/end to
// `vfiokit handoff` with the flags recorded here (--single-gpu, --isolate,
// --hugepages); vfiokit reads the XML from stdin and never calls libvirt back
// (libvirt docs/hooks.rst: that can deadlock). The order of the parts and
// their rollback live in vfiokit, not in this script. Pure.

import { shellQuote, singleQuote } from './shell-quote.js';

export const HOOK_MARKER = '# vfiokit-hook v1';

/** What the hook does besides handing the domain's devices over, in the order the header and argv list them. */
export const HOOK_FLAGS = ['single-gpu', 'isolate', 'hugepages'] as const;
type HookFlag = (typeof HOOK_FLAGS)[number];

export interface HookFlags {
  /** The host's only GPU: free it from the desktop first. */
  singleGpu: boolean;
  /** Restrict the host's units to the CPUs the VM does not use while it runs. */
  isolate: boolean;
  /** Reserve the domain's hugepages before QEMU allocates its memory. */
  hugepages: boolean;
}

interface HookOptions extends HookFlags {
  domain: string;
  /** How to run vfiokit: [node, /path/to/bin/vfiokit.js] or [/usr/bin/vfiokit]. */
  vfiokit: string[];
}

const FLAG_KEY: Record<HookFlag, keyof HookFlags> = { 'single-gpu': 'singleGpu', isolate: 'isolate', hugepages: 'hugepages' };

/** The flags that are on, in HOOK_FLAGS order. */
export function hookFlagNames(f: HookFlags): HookFlag[] {
  return HOOK_FLAGS.filter((n) => f[FLAG_KEY[n]]);
}

export function renderHookScript(o: HookOptions): string {
  const cmd = o.vfiokit.map(shellQuote).join(' ');
  const names = hookFlagNames(o);
  const flags = names.map((n) => ` --${n}`).join('');
  return [
    '#!/bin/sh',
    HOOK_MARKER,
    `# domain: ${JSON.stringify(o.domain)}${names.length ? ` (${names.join(', ')})` : ''}`,
    `# Installed by \`vfiokit hooks install\`; remove with \`vfiokit hooks remove ${shellQuote(o.domain)}\`.`,
    '# libvirt runs every executable here for every domain: DOMAIN OPERATION SUB-OPERATION EXTRA, XML on stdin.',
    `[ "$1" = ${singleQuote(o.domain)} ] || exit 0`,
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'export PATH',
    'case "$2/$3" in',
    `  prepare/begin) exec ${cmd} handoff prepare --hook${flags} -- "$1" ;;`,
    `  release/end) exec ${cmd} handoff release --hook${flags} --reason "$4" -- "$1" ;;`,
    'esac',
    'exit 0',
    '',
  ].join('\n');
}

/** Parse the header of an installed hook: which domain and flags; null for files that are not vfiokit's. */
export function parseHookScript(text: string): ({ domain: string } & HookFlags) | null {
  const lines = text.split('\n');
  if (lines[1] !== HOOK_MARKER) return null;
  const m = /^# domain: ("(?:[^"\\]|\\.)*")(?: \(([a-z-]+(?:, [a-z-]+)*)\))?$/.exec(lines[2] ?? '');
  if (!m) return null;
  const names = m[2] ? m[2].split(', ') : [];
  if (!names.every((n) => (HOOK_FLAGS as readonly string[]).includes(n))) return null;
  try {
    const domain = JSON.parse(m[1]) as string;
    return { domain, singleGpu: names.includes('single-gpu'), isolate: names.includes('isolate'), hugepages: names.includes('hugepages') };
  } catch {
    return null;
  }
}
