// The guest kernel: a distribution kernel installed in /boot whose modules are
// in /lib/modules/<version> (the lab only reads these). The kernel this
// machine runs may be a different, module-less one and is never used.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export interface GuestKernel {
  version: string;
  vmlinuz: string;
  modulesDir: string;
}

export function findGuestKernel(): GuestKernel {
  const want = process.env.VFIOKIT_LAB_KERNEL;
  const candidates = readdirSync('/boot')
    .filter((n) => n.startsWith('vmlinuz-'))
    .map((n) => n.slice('vmlinuz-'.length))
    .filter((v) => existsSync(path.join('/lib/modules', v, 'modules.dep')))
    .filter((v) => !want || v === want)
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const version = candidates[candidates.length - 1];
  if (!version)
    throw new Error(
      `lab: no guest kernel: need /boot/vmlinuz-VERSION with /lib/modules/VERSION/modules.dep${want ? ` for VFIOKIT_LAB_KERNEL=${want}` : ''}; install one with \`apt-get install linux-image-amd64\``,
    );
  return { version, vmlinuz: path.join('/boot', `vmlinuz-${version}`), modulesDir: path.join('/lib/modules', version) };
}

/** modules.dep as a map from module name (`9pnet_virtio`) to its file and dependencies (by name). */
export function readModulesDep(modulesDir: string): Map<string, { file: string; deps: string[] }> {
  const map = new Map<string, { file: string; deps: string[] }>();
  const nameOf = (rel: string) => path.basename(rel).replace(/\.ko(\.(xz|zst|gz))?$/, '').replace(/-/g, '_');
  for (const line of readFileSync(path.join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const deps = m[2]!.trim() ? m[2]!.trim().split(/\s+/).map(nameOf) : [];
    map.set(nameOf(m[1]!), { file: path.join(modulesDir, m[1]!), deps });
  }
  return map;
}

/** The modules to load (dependencies first) for `wanted`; builtin ones (absent from modules.dep) are skipped. */
export function moduleLoadOrder(dep: Map<string, { file: string; deps: string[] }>, wanted: string[], builtin: Set<string>): { name: string; file: string }[] {
  const order: { name: string; file: string }[] = [];
  const seen = new Set<string>();
  const visit = (raw: string, chain: string[]) => {
    const name = raw.replace(/-/g, '_');
    if (seen.has(name)) return;
    const entry = dep.get(name);
    if (!entry) {
      if (builtin.has(name)) return;
      throw new Error(`lab: kernel module ${name} not found in modules.dep (needed by ${chain.join(' → ') || 'the initramfs'})`);
    }
    seen.add(name);
    for (const d of entry.deps) visit(d, [...chain, name]);
    order.push({ name, file: entry.file });
  };
  for (const w of wanted) visit(w, []);
  return order;
}

export function readBuiltinModules(modulesDir: string): Set<string> {
  const f = path.join(modulesDir, 'modules.builtin');
  if (!existsSync(f)) return new Set();
  return new Set(
    readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => path.basename(l).replace(/\.ko$/, '').replace(/-/g, '_')),
  );
}
