// Runs inside a lab guest: starts QEMU (argv after `--`) with a QMP socket and
// measures the time from spawning it to QMP `query-status` answering
// "running" — the point where a VM with a passed device has mapped (VFIO:
// pinned) all of its memory and runs. Writes {ms, status, stderr} as JSON,
// then quits QEMU.
//
//   node start-time.js RESULT_JSON -- qemu-system-x86_64 ARGS...

import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';

const [out, sep, ...argv] = process.argv.slice(2);
if (!out || sep !== '--' || !argv.length) {
  process.stderr.write('usage: node start-time.js RESULT_JSON -- QEMU ARGS...\n');
  process.exit(2);
}
const sock = `/tmp/start-time-${process.pid}.qmp`;
rmSync(sock, { force: true });
const t0 = process.hrtime.bigint();
const child = spawn(argv[0]!, [...argv.slice(1), '-qmp', `unix:${sock},server=on,wait=off`], { stdio: ['ignore', 'ignore', 'pipe'] });
let stderr = '';
let exited: number | null = null;
child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
child.on('exit', (c) => (exited = c ?? -1));

/** One QMP session: capabilities, then `command`; resolves with the return of the command. */
function qmp(command: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock);
    let buf = '';
    let sent = false;
    s.on('error', reject);
    s.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const msg = JSON.parse(buf.slice(0, i)) as { QMP?: unknown; return?: unknown; error?: unknown };
        buf = buf.slice(i + 1);
        if (msg.QMP) s.write('{"execute":"qmp_capabilities"}\n');
        else if ('return' in msg && !sent) {
          sent = true;
          s.write(`{"execute":"${command}"}\n`);
        } else if ('return' in msg || msg.error) {
          s.end();
          if (msg.error) reject(new Error(JSON.stringify(msg.error)));
          else resolve(msg.return);
        }
      }
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let status = 'never';
let ms = -1;
const deadline = Date.now() + 15 * 60_000;
while (Date.now() < deadline && exited === null) {
  if (existsSync(sock)) {
    try {
      const r = (await qmp('query-status')) as { status?: string };
      status = r.status ?? 'unknown';
      if (status === 'running') {
        ms = Number(process.hrtime.bigint() - t0) / 1e6;
        break;
      }
    } catch {
      /* not answering yet */
    }
  }
  await sleep(20);
}
if (exited === null) {
  try {
    await qmp('quit');
  } catch {
    child.kill('SIGKILL');
  }
}
await new Promise((r) => (exited === null ? child.on('exit', r) : r(null)));
writeFileSync(out, JSON.stringify({ ms, status, exited, stderr: stderr.slice(0, 4000) }) + '\n');
process.exit(ms >= 0 ? 0 : 1);
