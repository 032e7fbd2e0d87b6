// modprobe.d(5) files: /etc/modprobe.d/*.conf, /usr/lib/modprobe.d/*.conf (every directory in
// MODPROBE_DIRS; readOrder() says which files kmod reads, in its order).
//
// API
//   parse(text, file?) -> ModprobeDoc             lossless; `\`-newline continuations joined
//   render(doc) -> string                          render(parse(x)) === x
//   directives(doc) -> ModprobeDirective[]         typed view of every command line
//   analyseVfio(docs) -> VfioModprobeFacts          what the files say about vfio-pci (ids,
//                                                  options, softdeps, blacklists, install hooks,
//                                                  aliases) + problems, in modprobe's file order
//   renderOwnedFile(intent) -> string               /etc/modprobe.d/vfiokit.conf, owned by vfiokit
//   renderOverrideScript(addresses) -> string       install-hook script (driver_override by BDF)
//   readOrder(listings) -> string[]                the .conf files kmod reads, in its order
//   OWNED_PATH, OVERRIDE_SCRIPT_PATH
//
// Commands understood: alias, blacklist, options, install, remove, softdep, weakdep. A comment is
// a line whose first non-blank character is `#` (kmod does not support trailing comments).
// Unknown commands or a wrong number of arguments throw FileFormatError(file, line): kmod would
// ignore such a line, so it does not do what its author meant. Module names compare with
// '-' == '_' (kmod does the same).

import { FileFormatError } from '../errors.js';
import { badArgument, checkModuleNames, isOwnedText, joinLines, normModule, ownedHeader, rejectCarriageReturns, splitLines } from './common.js';
import { parseArg, tokenize } from './kernel-cmdline.js';
import { MODPROBE_DIRS, MODPROBE_VFIOKIT_CONF } from '../model/config-paths.js';
import { SYS_PCI_DEVICES } from '../model/kernel-paths.js';

export const OWNED_PATH = MODPROBE_VFIOKIT_CONF;
export const OVERRIDE_SCRIPT_PATH = '/usr/local/lib/vfiokit/vfio-pci-override.sh';

/**
 * The files kmod reads, as host paths in the order it reads them, from the
 * listings of MODPROBE_DIRS (directory → names; a missing directory is left
 * out): every `*.conf` name once, from the first directory that has it (a
 * later one's file of the same name is hidden, even when the earlier one is a
 * link to /dev/null), then sorted by name whatever the directory.
 */
export function readOrder(listings: Readonly<Record<string, readonly string[] | undefined>>): string[] {
  const first = new Map<string, string>();
  for (const dir of MODPROBE_DIRS) for (const n of listings[dir] ?? []) if (n.endsWith('.conf') && !first.has(n)) first.set(n, `${dir}/${n}`);
  return [...first.keys()].sort().map((n) => first.get(n)!);
}

interface ModprobeLine {
  kind: 'blank' | 'comment' | 'directive';
  /** Physical lines of this logical line joined with '\n' (continuations kept). */
  raw: string;
  line: number;
  directive?: ModprobeDirective;
}

type ModprobeDirective =
  | { command: 'alias'; pattern: string; module: string }
  | { command: 'blacklist'; module: string }
  | { command: 'options'; module: string; options: { name: string; value: string | null; raw: string }[] }
  | { command: 'install' | 'remove'; module: string; shell: string }
  | { command: 'softdep'; module: string; pre: string[]; post: string[] }
  | { command: 'weakdep'; module: string; modules: string[] };

export interface ModprobeDoc {
  file: string;
  lines: ModprobeLine[];
  trailingNewline: boolean;
}

function fail(file: string, line: number, message: string, hint?: string): never {
  throw new FileFormatError(file, line, message, hint);
}

function parseDirective(text: string, file: string, line: number): ModprobeDirective {
  const m = /^\s*(\S+)\s*(.*)$/s.exec(text);
  if (!m) fail(file, line, 'a `\\` continuation joins only blank text', 'remove the stray backslash');
  const cmd = m[1];
  const rest = m[2].replace(/\s+$/, '');
  const words = rest === '' ? [] : rest.split(/[ \t]+/);
  const need = (min: number, max: number, form: string) => {
    if (words.length < min || words.length > max) fail(file, line, `\`${cmd}\` expects ${form}, found ${words.length} argument(s)`, `write it as \`${cmd} ${form}\``);
  };
  switch (cmd) {
    case 'alias':
      need(2, 2, '<wildcard> <module>');
      return { command: 'alias', pattern: words[0], module: words[1] };
    case 'blacklist':
      need(1, 1, '<module>');
      return { command: 'blacklist', module: words[0] };
    case 'options': {
      need(1, Infinity, '<module> [option=value ...]');
      const after = rest.slice(words[0].length);
      const opts = tokenize(after, file, line)
        .filter((t) => t.kind === 'arg')
        .map((t) => {
          const p = parseArg(t.text);
          return { name: p.key, value: p.value, raw: t.text };
        });
      return { command: 'options', module: words[0], options: opts };
    }
    case 'install':
    case 'remove': {
      need(2, Infinity, '<module> <command...>');
      return { command: cmd, module: words[0], shell: rest.slice(words[0].length).trim() };
    }
    case 'softdep': {
      need(2, Infinity, '<module> pre: <modules...> post: <modules...>');
      const pre: string[] = [];
      const post: string[] = [];
      let cur: string[] | null = null;
      for (const w of words.slice(1)) {
        if (w === 'pre:') cur = pre;
        else if (w === 'post:') cur = post;
        else if (cur === null) fail(file, line, `\`softdep ${words[0]}\`: "${w}" comes before pre: or post:`, 'list dependencies after `pre:` and/or `post:`');
        else cur.push(w);
      }
      return { command: 'softdep', module: words[0], pre, post };
    }
    case 'weakdep':
      need(2, Infinity, '<module> <modules...>');
      return { command: 'weakdep', module: words[0], modules: words.slice(1) };
    default:
      fail(
        file,
        line,
        `unknown modprobe.d command "${cmd}"; expected alias, blacklist, options, install, remove, softdep or weakdep`,
        'modprobe ignores this line; fix or comment it out (comments start with #)',
      );
  }
}

export function parse(text: string, file = OWNED_PATH): ModprobeDoc {
  rejectCarriageReturns(text, file);
  const { lines: phys, trailingNewline } = splitLines(text);
  const lines: ModprobeLine[] = [];
  for (let i = 0; i < phys.length; i++) {
    const start = i;
    const parts = [phys[i]];
    // kmod joins `\`-newline before it looks for comments, so a comment can continue too
    while (parts[parts.length - 1].endsWith('\\')) {
      if (i + 1 >= phys.length) {
        if (/^\s*#/.test(parts[0])) break;
        fail(file, i + 1, 'line continuation (\\) at the end of the file', 'remove the trailing backslash');
      }
      parts.push(phys[++i]);
    }
    const raw = parts.join('\n');
    const line = start + 1;
    if (raw.trim() === '') lines.push({ kind: 'blank', raw, line });
    else if (/^\s*#/.test(raw)) lines.push({ kind: 'comment', raw, line });
    else {
      const logical = parts.map((p, k) => (k < parts.length - 1 ? p.slice(0, -1) : p)).join('');
      lines.push({ kind: 'directive', raw, line, directive: parseDirective(logical, file, line) });
    }
  }
  return { file, lines, trailingNewline };
}

export function render(doc: ModprobeDoc): string {
  return joinLines(
    doc.lines.map((l) => l.raw),
    doc.trailingNewline,
  );
}

export function directives(doc: ModprobeDoc): (ModprobeDirective & { line: number })[] {
  return doc.lines.filter((l) => l.directive).map((l) => ({ ...l.directive!, line: l.line }));
}

// ---- analysis -------------------------------------------------------------------------------

const VFIO_MODULES = new Set(['vfio', 'vfio_pci', 'vfio_pci_core', 'vfio_iommu_type1', 'vfio_virqfd']);
const ID_RE = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}(:[0-9a-fA-F]{4,8}){0,4}$/;

interface Where {
  file: string;
  line: number;
}

interface VfioModprobeFacts {
  /** Each `options vfio-pci ids=...` in order; only the last one takes effect. */
  ids: (Where & { ids: string[] })[];
  /** The ids vfio-pci will get (last ids= wins), or null when none is set. */
  effectiveIds: (Where & { ids: string[] }) | null;
  /** Other vfio-pci options (disable_vga, ...). */
  options: (Where & { name: string; value: string | null })[];
  /** softdeps that load a vfio module before/after a driver, or softdeps of a vfio module. */
  softdeps: (Where & { module: string; pre: string[]; post: string[] })[];
  /** blacklist lines naming a vfio module (breaks automatic loading). */
  blacklists: (Where & { module: string })[];
  /** install/remove hooks for a vfio module (e.g. a driver_override script). */
  hooks: (Where & { command: 'install' | 'remove'; module: string; shell: string })[];
  /** alias lines resolving to vfio-pci (modalias binding). */
  aliases: (Where & { pattern: string })[];
  /** Options for other vfio modules (e.g. vfio_iommu_type1 allow_unsafe_interrupts=1). */
  otherOptions: (Where & { module: string; name: string; value: string | null })[];
  problems: (Where & { message: string; hint?: string })[];
  /** Files (by name) that are vfiokit's own. */
  ownedFiles: string[];
}

export function analyseVfio(docs: readonly ModprobeDoc[]): VfioModprobeFacts {
  const f: VfioModprobeFacts = {
    ids: [],
    effectiveIds: null,
    options: [],
    softdeps: [],
    blacklists: [],
    hooks: [],
    aliases: [],
    otherOptions: [],
    problems: [],
    ownedFiles: [],
  };
  for (const doc of docs) {
    if (isOwnedText(render(doc))) f.ownedFiles.push(doc.file);
    for (const l of doc.lines) {
      const d = l.directive;
      if (!d) continue;
      const at = { file: doc.file, line: l.line };
      const mod = 'module' in d ? normModule(d.module) : '';
      switch (d.command) {
        case 'options':
          for (const o of d.options) {
            if (mod === 'vfio_pci') {
              if (o.name === 'ids') {
                const ids = (o.value ?? '').split(',').filter((x) => x !== '');
                const bad = ids.filter((x) => !ID_RE.test(x));
                if (bad.length > 0 || ids.length === 0)
                  f.problems.push({ ...at, message: `vfio-pci ids= value ${JSON.stringify(o.value ?? '')} is not a list of vendor:device IDs`, hint: 'write ids=vvvv:dddd[,vvvv:dddd...] in hex' });
                f.ids.push({ ...at, ids });
              } else {
                if (o.name.includes('.'))
                  f.problems.push({
                    ...at,
                    message: `option "${o.name}" is kernel command-line syntax; inside modprobe.d it is passed to vfio-pci as an unknown parameter and ignored`,
                    hint: `write \`options vfio-pci ${o.name.slice(o.name.indexOf('.') + 1)}=${o.value ?? ''}\``,
                  });
                f.options.push({ ...at, name: o.name, value: o.value });
              }
            } else if (VFIO_MODULES.has(mod)) f.otherOptions.push({ ...at, module: d.module, name: o.name, value: o.value });
          }
          break;
        case 'softdep':
          if (VFIO_MODULES.has(mod) || [...d.pre, ...d.post].some((m) => VFIO_MODULES.has(normModule(m))))
            f.softdeps.push({ ...at, module: d.module, pre: d.pre, post: d.post });
          if (d.post.some((m) => normModule(m) === 'vfio_pci'))
            f.problems.push({ ...at, message: `softdep ${d.module} loads vfio-pci after ${d.module} (post:), so ${d.module} can claim the device first`, hint: `use \`softdep ${d.module} pre: vfio-pci\`` });
          break;
        case 'blacklist':
          if (VFIO_MODULES.has(mod)) {
            f.blacklists.push({ ...at, module: d.module });
            f.problems.push({ ...at, message: `${d.module} is blacklisted, so it is not loaded by alias`, hint: 'remove the blacklist line' });
          }
          break;
        case 'install':
        case 'remove':
          if (VFIO_MODULES.has(mod)) f.hooks.push({ ...at, command: d.command, module: d.module, shell: d.shell });
          break;
        case 'alias':
          if (normModule(d.module) === 'vfio_pci') f.aliases.push({ ...at, pattern: d.pattern });
          break;
        default:
          break;
      }
    }
  }
  if (f.ids.length > 0) f.effectiveIds = f.ids[f.ids.length - 1];
  if (f.ids.length > 1) {
    const last = f.effectiveIds!;
    for (const e of f.ids.slice(0, -1))
      f.problems.push({
        file: e.file,
        line: e.line,
        message: `this ids= is overridden by ${last.file}:${last.line}; vfio-pci only gets the last ids= value`,
        hint: 'merge all IDs into one `options vfio-pci ids=...` line',
      });
  }
  return f;
}

// ---- owned file -----------------------------------------------------------------------------

export interface VfioModprobeIntent {
  /** vendor:device IDs for `options vfio-pci ids=`. */
  ids?: string[];
  /** Drivers that get `softdep <driver> pre: vfio-pci`. */
  softdeps: string[];
  /** A user's own softdep dependencies carried on vfiokit's line for that driver (modprobe reads only the first softdep line per module). */
  softdepExtra?: Record<string, { pre: string[]; post: string[] }>;
  /** BDFs bound by driver_override through an install hook (the install-hook variant). */
  overrideAddresses?: string[];
  /** Path of the install-hook script (default OVERRIDE_SCRIPT_PATH). */
  overrideScript?: string;
  /** Further vfio-pci options, e.g. { disable_vga: '1' }. */
  options?: Record<string, string>;
}

const BDF_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

export function renderOwnedFile(intent: VfioModprobeIntent): string {
  checkModuleNames(intent.softdeps);
  const lines = ownedHeader('VFIO passthrough binding (vfio-pci)');
  const opts: string[] = [];
  if (intent.ids && intent.ids.length > 0) {
    for (const id of intent.ids) if (!ID_RE.test(id)) throw badArgument(`not a PCI vendor:device ID: ${JSON.stringify(id)}`);
    opts.push(`ids=${intent.ids.join(',')}`);
  }
  for (const [k, v] of Object.entries(intent.options ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || !/^[^\s"'#]*$/.test(v) || k === 'ids') throw badArgument(`bad vfio-pci option ${k}=${v}`);
    opts.push(`${k}=${v}`);
  }
  if (intent.overrideAddresses && intent.overrideAddresses.length > 0) {
    for (const a of intent.overrideAddresses) if (!BDF_RE.test(a)) throw badArgument(`not a full PCI address (dddd:bb:dd.f): ${JSON.stringify(a)}`);
    const script = intent.overrideScript ?? OVERRIDE_SCRIPT_PATH;
    if (!/^\/[A-Za-z0-9_./-]+$/.test(script)) throw badArgument(`bad install-hook script path: ${JSON.stringify(script)}`);
    lines.push(`# ${intent.overrideAddresses.join(' ')}: driver_override set by the install hook, which then runs \`modprobe -i vfio-pci\``);
    lines.push(`install vfio-pci ${script}`);
  }
  if (opts.length > 0) lines.push(`options vfio-pci ${opts.join(' ')}`);
  for (const drv of intent.softdeps) {
    if (normModule(drv) === 'vfio_pci') continue;
    const x = intent.softdepExtra?.[drv];
    if (x) checkModuleNames([...x.pre, ...x.post]);
    lines.push(`softdep ${drv} pre: ${['vfio-pci', ...(x?.pre ?? [])].join(' ')}${x?.post.length ? ` post: ${x.post.join(' ')}` : ''}`);
  }
  return lines.join('\n') + '\n';
}

/** The install-hook script: set driver_override for each BDF, then load vfio-pci for real. */
export function renderOverrideScript(addresses: readonly string[]): string {
  if (addresses.length === 0) throw badArgument('renderOverrideScript needs at least one PCI address');
  for (const a of addresses) if (!BDF_RE.test(a)) throw badArgument(`not a full PCI address (dddd:bb:dd.f): ${JSON.stringify(a)}`);
  return [
    '#!/bin/sh',
    ...ownedHeader('binds PCI devices to vfio-pci by driver_override before vfio-pci loads'),
    `# Run by modprobe through \`install vfio-pci\` in ${OWNED_PATH}.`,
    `for dev in ${addresses.join(' ')}; do`,
    `\tif [ -e "${SYS_PCI_DEVICES}/$dev/driver_override" ]; then`,
    `\t\techo vfio-pci > "${SYS_PCI_DEVICES}/$dev/driver_override"`,
    '\tfi',
    'done',
    'exec modprobe -i vfio-pci "$@"',
    '',
  ].join('\n');
}
