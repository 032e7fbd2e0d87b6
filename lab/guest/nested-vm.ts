// Runs inside a lab guest (node from the host's / over 9p): takes the command
// line printed by `vfiokit vm qemu`, adapts it to a guest without KVM (TCG,
// paused, no display, a QMP socket), starts it, and asks QMP `query-pci`
// whether the passed-through devices are in the nested VM.
//
//   node nested-vm.js VM_QEMU_OUTPUT RESULT_JSON
//
// Adaptations are listed in the result; the vfio-pci devices, machine type and
// memory layout are kept as vfiokit generated them.

import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** Splits shell-style text (quotes, backslash-newline continuations, comments) into words. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  let i = 0;
  const s = text.replace(/\\\r?\n/g, ' ');
  while (i < s.length) {
    const c = s[i]!;
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) throw new Error('unterminated single quote');
      cur += s.slice(i + 1, j);
      has = true;
      i = j + 1;
    } else if (c === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) i++;
        cur += s[i++];
      }
      if (i >= s.length) throw new Error('unterminated double quote');
      has = true;
      i++;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[i + 1];
      has = true;
      i += 2;
    } else if (c === '#' && !has) {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (/\s/.test(c)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
      i++;
    } else {
      cur += c;
      has = true;
      i++;
    }
  }
  if (has) words.push(cur);
  return words;
}

const DROP_WITH_VALUE = new Set(['-display', '-vga', '-monitor', '-serial', '-spice', '-vnc', '-overcommit', '-pidfile', '-name', '-qmp', '-chardev', '-mon', '-daemonize']);
const DROP_ALONE = new Set(['-enable-kvm', '-nographic', '-mem-prealloc', '-daemonize', '-no-hpet']);

export interface Adapted {
  argv: string[];
  notes: string[];
}

/** Adapts vfiokit's QEMU argv to run paused under TCG in a lab guest, with QMP on `qmpSocket`. */
export function adaptArgv(words: string[], qmpSocket: string): Adapted {
  const notes: string[] = [];
  const start = words.findIndex((w) => /qemu-system-/.test(w));
  if (start < 0) throw new Error('no qemu-system-* command in the `vfiokit vm qemu` output');
  const src = words.slice(start);
  const out: string[] = [src[0]!];
  for (let i = 1; i < src.length; i++) {
    const w = src[i]!;
    const opt = w.startsWith('--') ? w.slice(1) : w;
    const val = src[i + 1];
    if (DROP_ALONE.has(opt) && !(opt === '-daemonize' && val && !val.startsWith('-'))) {
      notes.push(`dropped ${w}`);
      continue;
    }
    if (DROP_WITH_VALUE.has(opt) && val !== undefined) {
      notes.push(`dropped ${w} ${val}`);
      i++;
      continue;
    }
    if (opt === '-accel' && val !== undefined) {
      notes.push(`dropped -accel ${val}`);
      i++;
      continue;
    }
    if ((opt === '-machine' || opt === '-M') && val !== undefined) {
      const parts = val.split(',').filter((p) => !/^accel=/.test(p) && !/^kernel[-_]irqchip=/.test(p));
      if (parts.join(',') !== val) notes.push(`-machine ${val} → ${parts.join(',')}`);
      out.push(w, parts.join(','));
      i++;
      continue;
    }
    if (opt === '-cpu' && val !== undefined) {
      if (val !== 'max') notes.push(`-cpu ${val} → max (no KVM in the lab guest)`);
      out.push('-cpu', 'max');
      i++;
      continue;
    }
    out.push(w);
  }
  // Not paused (-S): the firmware must program the bridges' bus numbers before
  // query-pci can list the devices behind them.
  out.push('-accel', 'tcg', '-display', 'none', '-monitor', 'none', '-serial', 'none', '-qmp', `unix:${qmpSocket},server=on,wait=off`);
  return { argv: out, notes };
}

/** Firmware variable stores named by the command line that do not exist yet: copied from the OVMF template. */
function provideVars(argv: string[], notes: string[]): void {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] !== '-drive' && argv[i] !== '--drive') continue;
    const v = argv[i + 1] ?? '';
    if (!/if=pflash/.test(v) || /readonly=(on|true)/.test(v)) continue;
    const file = /(?:^|,)file=([^,]+)/.exec(v)?.[1];
    if (!file || existsSync(file)) continue;
    const code = argv.map((a) => /(?:^|,)file=([^,]+)/.exec(a)?.[1]).find((f) => f && /CODE/i.test(f)) ?? '';
    const tmpl = /_4M/.test(code) ? '/usr/share/OVMF/OVMF_VARS_4M.fd' : '/usr/share/OVMF/OVMF_VARS.fd';
    mkdirSync(path.dirname(file), { recursive: true });
    copyFileSync(tmpl, file);
    notes.push(`created the missing variable store ${file} from ${tmpl}`);
  }
}

interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
}

function qmp(socket: string, commands: { execute: string; arguments?: unknown }[], timeoutMs: number): Promise<QmpReply[]> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let buf = '';
    const replies: QmpReply[] = [];
    let sent = 0;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error('QMP timed out'));
    }, timeoutMs);
    const sendNext = () => {
      if (sent < commands.length) c.write(JSON.stringify(commands[sent++]) + '\n');
    };
    c.on('data', (d) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as QmpReply & { QMP?: unknown };
        if (msg.QMP) sendNext();
        else if (msg.event) continue;
        else {
          replies.push(msg);
          if (replies.length === commands.length) {
            clearTimeout(timer);
            c.end();
            resolve(replies);
          } else sendNext();
        }
      }
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

interface PciInfo {
  bus: number;
  slot: number;
  function: number;
  id: { vendor: number; device: number };
  class_info?: { class: number };
  qdev_id?: string;
  pci_bridge?: { devices?: PciInfo[] };
}

function flattenPci(devs: PciInfo[], out: PciInfo[] = []): PciInfo[] {
  for (const d of devs) {
    out.push(d);
    if (d.pci_bridge?.devices) flattenPci(d.pci_bridge.devices, out);
  }
  return out;
}

async function main(): Promise<void> {
  const [input, resultFile] = process.argv.slice(2);
  if (!input || !resultFile) throw new Error('usage: nested-vm.js VM_QEMU_OUTPUT RESULT_JSON');
  const sock = '/run/vfiokit-lab-qmp.sock';
  rmSync(sock, { force: true });
  const result: Record<string, unknown> = {};
  const write = () => writeFileSync(resultFile, JSON.stringify(result, null, 2) + '\n');
  try {
    const { argv, notes } = adaptArgv(shellWords(readFileSync(input, 'utf8')), sock);
    provideVars(argv, notes);
    result.argv = argv;
    result.adaptations = notes;
    write();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let exited: number | null | undefined;
    child.stderr.on('data', (d) => (stderr += d.toString()));
    child.stdout.on('data', (d) => (stderr += d.toString()));
    child.on('exit', (code) => (exited = code));
    const deadline = Date.now() + 120_000;
    while (!existsSync(sock) && exited === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    if (exited !== undefined || !existsSync(sock)) {
      await new Promise((r) => setTimeout(r, 500));
      result.started = false;
      result.exitCode = exited ?? null;
      result.stderr = stderr;
      write();
      child.kill('SIGKILL');
      process.exitCode = 1;
      return;
    }
    result.started = true;
    // The devices behind a root port appear in query-pci once the firmware has
    // enumerated the buses (tens of seconds of nested emulation).
    const want = (process.env.LAB_NESTED_EXPECT ?? '').split(',').filter(Boolean);
    const t0 = Date.now();
    for (;;) {
      const [caps, pci] = await qmp(sock, [{ execute: 'qmp_capabilities' }, { execute: 'query-pci' }], 60_000);
      const buses = ((pci?.return ?? []) as { bus: number; devices: PciInfo[] }[]).flatMap((b) => flattenPci(b.devices));
      result.qmpOk = !caps?.error && !pci?.error;
      result.pci = buses.map((d) => ({
        addr: `${d.bus.toString(16).padStart(2, '0')}:${d.slot.toString(16).padStart(2, '0')}.${d.function}`,
        id: `${d.id.vendor.toString(16).padStart(4, '0')}:${d.id.device.toString(16).padStart(4, '0')}`,
        qdev: d.qdev_id ?? null,
      }));
      result.waitedMs = Date.now() - t0;
      write();
      const ids = (result.pci as { id: string }[]).map((d) => d.id);
      if (want.every((w) => ids.includes(w)) || exited !== undefined || Date.now() - t0 > 300_000) break;
      await new Promise((r) => setTimeout(r, 3000));
    }
    const [, qtree] = await qmp(sock, [{ execute: 'qmp_capabilities' }, { execute: 'human-monitor-command', arguments: { 'command-line': 'info qtree' } }], 60_000).catch(() => [undefined, undefined]);
    const tree = String((qtree as QmpReply | undefined)?.return ?? '');
    result.qtreeVfio = tree
      .split('\n')
      .map((l, i, all) => (/dev: vfio-pci/.test(l) ? all.slice(i, i + 12).filter((x) => /dev: vfio-pci|host = |pci id/.test(x)).map((x) => x.trim()).join(' | ') : null))
      .filter(Boolean);
    await qmp(sock, [{ execute: 'qmp_capabilities' }, { execute: 'quit' }], 30_000).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGKILL');
    result.stderr = stderr;
    write();
  } catch (e) {
    result.error = (e as Error).stack ?? String(e);
    write();
    process.exitCode = 1;
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) await main();
