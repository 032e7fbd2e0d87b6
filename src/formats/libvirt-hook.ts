// The libvirt hook vfiokit installs in /etc/libvirt/hooks/qemu.d/: a POSIX sh
// script libvirt (≥ 6.5) runs for every domain with the arguments
// `DOMAIN OPERATION SUB-OPERATION EXTRA` and the domain XML on stdin. It exits
// 0 at once for other domains and hands prepare/begin and release/end to
// `vfiokit handoff`, which reads the XML from stdin and never calls libvirt
// back (libvirt docs/hooks.rst: that can deadlock). Pure.

import { shellQuote, singleQuote } from './shell-quote.js';

export const HOOK_MARKER = '# vfiokit-hook v1';

export interface HookOptions {
  domain: string;
  singleGpu: boolean;
  /** How to run vfiokit: [node, /path/to/bin/vfiokit.js] or [/usr/bin/vfiokit]. */
  vfiokit: string[];
}

export function renderHookScript(o: HookOptions): string {
  const cmd = o.vfiokit.map(shellQuote).join(' ');
  const flags = o.singleGpu ? ' --single-gpu' : '';
  return [
    '#!/bin/sh',
    HOOK_MARKER,
    `# domain: ${JSON.stringify(o.domain)}${o.singleGpu ? ' (single-gpu)' : ''}`,
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

/** Parse the header of an installed hook: which domain, whether single-GPU; null for files that are not vfiokit's. */
export function parseHookScript(text: string): { domain: string; singleGpu: boolean } | null {
  const lines = text.split('\n');
  if (lines[1] !== HOOK_MARKER) return null;
  const m = /^# domain: ("(?:[^"\\]|\\.)*")( \(single-gpu\))?$/.exec(lines[2] ?? '');
  if (!m) return null;
  try {
    return { domain: JSON.parse(m[1]) as string, singleGpu: Boolean(m[2]) };
  } catch {
    return null;
  }
}
