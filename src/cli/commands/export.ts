// `vfiokit export kubevirt|nova|proxmox [SELECTOR...]`: hand the devices to a
// cluster manager, from one host (--root) or several (--node NAME=DIR), with
// every companion function and the node preparation. Writes to stdout, or
// the files into -o DIR (never into a host root).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { PreconditionError, UsageError, VfioError } from '../../errors.js';
import { inspect } from '../../host/inspect.js';
import { assertLinuxRoot } from '../../host/linux-root.js';
import { HostRoot } from '../../host/root.js';
import { ETC_HOSTNAME } from '../../host/sysfs-paths.js';
import { buildFleetExport, type ExportNodeInput, type FleetExport } from '../../render/export-model.js';
import { renderKubevirt, validateKubevirt } from '../../render/export-kubevirt.js';
import { renderNova, validateNova } from '../../render/export-nova.js';
import { renderProxmox, validateProxmox } from '../../render/export-proxmox.js';
import { out, printJson, type CommandContext } from '../context.js';

const TARGETS = ['kubevirt', 'nova', 'proxmox'] as const;
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const list = (v: unknown): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []).flatMap((s) => String(s).split(',')).filter(Boolean);

function nodeInputs(ctx: CommandContext): ExportNodeInput[] {
  const specs = list(ctx.values.node);
  const roots: { name: string; root: HostRoot }[] = [];
  if (!specs.length) {
    const hn = ctx.root.tryReadText(ETC_HOSTNAME)?.trim();
    roots.push({ name: hn && NODE_NAME.test(hn) ? hn : 'node1', root: ctx.root });
  }
  for (const s of specs) {
    const eq = s.indexOf('=');
    const name = eq < 0 ? s : s.slice(0, eq);
    if (!NODE_NAME.test(name)) throw new UsageError(`--node '${s}': '${name}' is not a node name`, 'node names are lowercase hostnames (letters, digits, - and .), as the cluster knows them: --node gpu1=/path/to/root', 'E_BAD_NODE');
    roots.push({ name, root: eq < 0 ? ctx.root : new HostRoot(s.slice(eq + 1)) });
  }
  return roots.map(({ name, root }): ExportNodeInput => {
    try {
      assertLinuxRoot(root);
    } catch (e) {
      // A --node whose directory is not a Linux root is skipped with the reason, like a node lacking the devices.
      if (e instanceof VfioError && specs.length) return { name, unreadable: { code: e.code, subject: name, message: `node ${name}: ${e.message.replace(/^--root /, '')}`, hint: `${e.hint ?? 'pass the directory of a Linux root'} (--node ${name}=DIR)` } };
      throw e;
    }
    return { name, snapshot: inspect(root) };
  });
}

function render(target: (typeof TARGETS)[number], x: FleetExport): { files: Record<string, string>; problems: ReturnType<typeof validateNova> } {
  if (target === 'kubevirt') {
    const f = renderKubevirt(x);
    return { files: { ...f }, problems: validateKubevirt(f) };
  }
  if (target === 'nova') {
    const n = renderNova(x);
    const files: Record<string, string> = { 'nova-api.conf': n.api, 'flavor.txt': n.flavor, 'node-preparation.txt': n.preparation };
    for (const [node, text] of Object.entries(n.nodes)) files[`nova-compute-${node}.conf`] = text;
    return { files, problems: validateNova(n) };
  }
  const p = renderProxmox(x);
  return { files: { 'pci.cfg': p.pciCfg, 'hostpci-usage.txt': p.usage, 'node-preparation.txt': p.preparation }, problems: validateProxmox(p.pciCfg, x.nodes.filter((n) => n.ok).map((n) => n.name)) };
}

export async function run(ctx: CommandContext): Promise<number> {
  const [target, ...selectors] = ctx.positionals;
  if (!TARGETS.includes(target as never)) throw new UsageError(target ? `unknown export target '${target}'` : 'no export target given', `use one of: ${TARGETS.join(', ')}`, 'E_USAGE');
  const x = buildFleetExport(nodeInputs(ctx), {
    selectors,
    with: list(ctx.values.with),
    allowBootVga: Boolean(ctx.values['allow-boot-vga']),
    resourceNames: list(ctx.values['resource-name']),
  });
  const failed = x.nodes.filter((n) => !n.ok);
  if (failed.length === x.nodes.length) {
    const problems = failed.flatMap((n) => n.problems);
    if (problems.every((p) => p.code === 'E_ROOT_INVALID')) throw new UsageError(`nothing to export: ${problems.map((p) => p.message).join('; ')}`, problems[0]?.hint ?? undefined, 'E_ROOT_INVALID');
    throw new PreconditionError(problems[0]?.code ?? 'E_UNKNOWN_DEVICE', `nothing to export: every node was skipped (${failed.map((n) => n.name).join(', ')})`, undefined, undefined, problems);
  }
  const { files, problems } = render(target as (typeof TARGETS)[number], x);
  if (problems.length) throw new PreconditionError('E_EXPORT_INVALID', `the ${target} export does not validate; nothing was written`, 'this is a vfiokit bug: report it with `vfiokit snapshot` of the nodes', undefined, problems);
  for (const n of failed) for (const p of n.problems) ctx.io.stderr.write(`vfiokit export: skipped ${p.message}${p.hint ? `\n  fix: ${p.hint}` : ''}\n`);
  for (const w of x.warnings) ctx.io.stderr.write(`warning: ${w}\n`);
  const outDir = typeof ctx.values.output === 'string' ? ctx.values.output : null;
  if (ctx.values.json) {
    printJson(ctx, { target, nodes: x.nodes.map((n) => ({ name: n.name, ok: n.ok, devices: n.devices.map((d) => ({ address: d.primary.address, functions: d.functions.map((f) => f.address), iommuGroup: d.iommuGroup })), problems: n.problems, warnings: n.warnings })), models: x.models, warnings: x.warnings, files });
  } else if (!outDir) {
    for (const [name, text] of Object.entries(files)) out(ctx, `#### ${name}\n${text}`);
  }
  if (outDir) {
    if (ctx.values['dry-run']) {
      for (const name of Object.keys(files)) out(ctx, `would write ${path.join(outDir, name)}`);
    } else {
      fs.mkdirSync(outDir, { recursive: true });
      for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(outDir, name), text);
        if (!ctx.values.json) out(ctx, `wrote ${path.join(outDir, name)}`);
      }
    }
  }
  return failed.length ? 3 : 0;
}
