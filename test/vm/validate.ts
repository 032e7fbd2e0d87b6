// External validators for generated domain XML: libvirt's RelaxNG schema
// (virt-xml-validate, which needs xmllint) and the libvirt test driver
// (`virsh -c test:///default`, in-memory, never a real libvirtd).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;

export const virtXmlValidate: { ok: true } | { ok: false; reason: string } = !has('virt-xml-validate')
  ? { ok: false, reason: 'virt-xml-validate is not installed (Debian: libvirt-clients)' }
  : !has('xmllint')
    ? { ok: false, reason: 'virt-xml-validate needs xmllint, which is not installed (Debian: libxml2-utils)' }
    : { ok: true };

export const virshTest: { ok: true } | { ok: false; reason: string } = has('virsh') ? { ok: true } : { ok: false, reason: 'virsh is not installed (Debian: libvirt-clients)' };

function withFile<T>(xml: string, f: (file: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-xml-'));
  const file = path.join(dir, 'domain.xml');
  fs.writeFileSync(file, xml);
  try {
    return f(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function validateSchema(xml: string): { status: number | null; output: string } {
  return withFile(xml, (file) => {
    const r = spawnSync('virt-xml-validate', [file, 'domain'], { encoding: 'utf8' });
    return { status: r.status, output: r.stdout + r.stderr };
  });
}

/** Define (with libvirt's own schema validation) and dump back, in one test-driver connection. */
export function defineInTestDriver(xml: string, name: string): { status: number | null; output: string } {
  return withFile(xml, (file) => {
    const r = spawnSync('virsh', ['-c', 'test:///default', `define --validate ${file}; dumpxml ${name}`], { encoding: 'utf8' });
    return { status: r.status, output: r.stdout + r.stderr };
  });
}

export function printSkip(what: string, reason: string): void {
  // Printed so a skipped validation is visible in the test log.
  console.warn(`[vm tests] skipping ${what}: ${reason}`);
}
