// dracut configuration: /etc/dracut.conf and /etc/dracut.conf.d/*.conf (bash assignments).
//
// API
//   parse(text, file?) -> DracutConfDoc          lossless (shell.ts), never executed
//   render(doc) -> string                         render(parse(x)) === x
//   values(doc, env?) -> Map<name, ShellValue>    static values (`+=` appends)
//   listValue(doc, name, env?) -> string[] | { reason, line }
//                                                 a space-separated list (add_drivers, ...)
//   lint(doc) -> { line, message }[]              `name+="x"` without the surrounding spaces
//                                                 dracut needs, vfio_virqfd on new kernels
//   renderOwnedFile({ forceDrivers, installItems? }) -> string
//                                                 /etc/dracut.conf.d/vfiokit.conf (owned)
//
// dracut concatenates `+=` values, so list values keep a leading and trailing space:
// `force_drivers+=" vfio_pci vfio vfio_iommu_type1 "`. force_drivers are also modprobed early.

import { badArgument, checkModuleNames, ownedHeader } from './common.js';
import { evaluate, parseShell, renderShell, type ShellDoc, type ShellValue } from './shell.js';
import { DRACUT_VFIOKIT_CONF } from '../model/config-paths.js';

export const OWNED_PATH = DRACUT_VFIOKIT_CONF;
type DracutConfDoc = ShellDoc;

export function parse(text: string, file = OWNED_PATH): DracutConfDoc {
  return parseShell(text, file);
}

export function render(doc: DracutConfDoc): string {
  return renderShell(doc);
}

export function values(doc: DracutConfDoc, env?: ReadonlyMap<string, ShellValue>): Map<string, ShellValue> {
  return evaluate(doc, env);
}

export function listValue(doc: DracutConfDoc, name: string, env?: ReadonlyMap<string, ShellValue>): string[] | { reason: string; line: number } {
  const v = evaluate(doc, env).get(name);
  if (!v) return [];
  if (v.kind === 'dynamic') return { reason: v.reason, line: v.line };
  const text = v.kind === 'scalar' ? v.value : v.items.join(' ');
  return text.split(/\s+/).filter((x) => x !== '');
}

export function lint(doc: DracutConfDoc): { line: number; message: string }[] {
  const out: { line: number; message: string }[] = [];
  for (const s of doc.statements) {
    const a = s.assign;
    if (!a || !a.scalar || a.array) continue;
    const lit = a.scalar.parts.map((p) => (p.kind === 'lit' ? p.text : '\0')).join('');
    if (a.append && lit !== '' && (!/^\s/.test(lit) || !/\s$/.test(lit)))
      out.push({
        line: s.line,
        message: `${a.name}+= value ${a.scalar.raw} needs a leading and trailing space; dracut concatenates the values`,
      });
    if (/drivers$/.test(a.name) && /(^|\s)vfio[-_]virqfd(\s|$)/.test(lit))
      out.push({ line: s.line, message: `${a.name} lists vfio_virqfd, which does not exist on kernels >= 6.2 (dracut: "Failed to find module")` });
  }
  return out;
}

interface DracutIntent {
  /** Modules for force_drivers (loaded early, in this order). */
  forceDrivers: string[];
  /** Files to copy into the image (e.g. the vfio-pci install-hook script and modprobe.d file). */
  installItems?: string[];
}

export function renderOwnedFile(intent: DracutIntent): string {
  if (intent.forceDrivers.length === 0) throw badArgument('renderOwnedFile needs at least one driver');
  checkModuleNames(intent.forceDrivers);
  const lines = [...ownedHeader('VFIO modules in the initramfs (dracut)'), `force_drivers+=" ${intent.forceDrivers.join(' ')} "`];
  if (intent.installItems && intent.installItems.length > 0) {
    for (const p of intent.installItems) if (!/^\/[A-Za-z0-9_./-]+$/.test(p)) throw badArgument(`bad install_items path: ${JSON.stringify(p)}`);
    lines.push(`install_items+=" ${intent.installItems.join(' ')} "`);
  }
  return lines.join('\n') + '\n';
}
