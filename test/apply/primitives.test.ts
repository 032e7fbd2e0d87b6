import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeContent, writeFileAtomic } from '../../src/apply/atomic-write.js';
import { acquireLock, realRunner, recordingRunner, resolveInvocation } from '../../src/apply/index.js';
import { CommandFailedError, PreconditionError } from '../../src/errors.js';
import { HostRoot } from '../../src/host/root.js';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-prim-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  if (!process.env.KEEP_TMP) for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('keeps mode and owner of an existing file and leaves no temp file', () => {
    const d = tmp();
    const f = path.join(d, 'grub');
    fs.writeFileSync(f, 'old\n');
    fs.chmodSync(f, 0o614);
    fs.chownSync(f, 4321, 8765);
    const inode = fs.statSync(f).ino;
    writeFileAtomic(f, 'new\n');
    const st = fs.statSync(f);
    expect(fs.readFileSync(f, 'utf8')).toBe('new\n');
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o614, 4321, 8765]);
    expect(st.ino).not.toBe(inode); // replaced by rename, not rewritten in place
    expect(fs.readdirSync(d)).toEqual(['grub']);
  });

  it('writes through a symlink and keeps the link', () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'real'));
    fs.writeFileSync(path.join(d, 'real/cmdline'), 'a\n', { mode: 0o600 });
    fs.symlinkSync('real/cmdline', path.join(d, 'cmdline'));
    const written = writeFileAtomic(path.join(d, 'cmdline'), 'b\n');
    expect(written).toBe(path.join(d, 'real/cmdline'));
    expect(fs.readlinkSync(path.join(d, 'cmdline'))).toBe('real/cmdline');
    expect(fs.readFileSync(path.join(d, 'real/cmdline'), 'utf8')).toBe('b\n');
    expect(fs.statSync(path.join(d, 'real/cmdline')).mode & 0o777).toBe(0o600);
  });

  it('maps absolute link targets into the root instead of the live host', () => {
    const d = tmp();
    fs.mkdirSync(path.join(d, 'etc'));
    fs.mkdirSync(path.join(d, 'usr'));
    fs.writeFileSync(path.join(d, 'usr/x.conf'), '1\n');
    fs.symlinkSync('/usr/x.conf', path.join(d, 'etc/x.conf'));
    writeFileAtomic(path.join(d, 'etc/x.conf'), '2\n', { root: d });
    expect(fs.readFileSync(path.join(d, 'usr/x.conf'), 'utf8')).toBe('2\n');
  });

  it('a failure before the rename leaves the original intact and removes the temp file', () => {
    const d = tmp();
    const f = path.join(d, 'modules');
    fs.writeFileSync(f, 'orig\n');
    expect(() =>
      writeFileAtomic(f, 'new\n', {
        beforeRename: () => {
          throw new Error('disk full');
        },
      }),
    ).toThrow('disk full');
    expect(fs.readFileSync(f, 'utf8')).toBe('orig\n');
    expect(fs.readdirSync(d)).toEqual(['modules']);
  });

  it('new files get the requested mode; content strings round-trip latin1 bytes', () => {
    const d = tmp();
    writeFileAtomic(path.join(d, 'n'), 'x', { mode: 0o600 });
    expect(fs.statSync(path.join(d, 'n')).mode & 0o777).toBe(0o600);
    const raw = Buffer.from([0x61, 0xc3, 0xa9, 0xff, 0x0a]);
    expect(encodeContent(raw.toString('latin1')).equals(raw)).toBe(true);
    expect(encodeContent('a—b').equals(Buffer.from('a—b', 'utf8'))).toBe(true);
  });
});

describe('lock', () => {
  it('a second holder is refused with the holder pid (exit 3); released lock can be taken again', () => {
    const root = tmp();
    const l = acquireLock(root);
    expect(fs.readFileSync(l.path, 'utf8')).toBe(`${process.pid}\n`);
    let err: unknown;
    try {
      acquireLock(root);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PreconditionError);
    expect((err as PreconditionError).code).toBe('E_LOCKED');
    expect((err as PreconditionError).message).toContain(`pid ${process.pid}`);
    l.release();
    expect(fs.existsSync(l.path)).toBe(false);
    acquireLock(root).release();
  });

  it('a stale lock (dead pid) is reported and taken over', () => {
    const root = tmp();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // has exited
    fs.mkdirSync(path.join(root, 'var/lib/vfiokit'), { recursive: true });
    fs.writeFileSync(path.join(root, 'var/lib/vfiokit/lock'), `${dead}\n`);
    const msgs: string[] = [];
    const l = acquireLock(root, { onStale: (m) => msgs.push(m) });
    expect(l.tookOverFrom).toBe(dead);
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toContain(`pid ${dead}`);
    l.release();
  });

  it('locks are per root', () => {
    const a = acquireLock(tmp());
    const b = acquireLock(tmp());
    a.release();
    b.release();
  });
});

function fakeBin(scripts: Record<string, string>): string {
  const d = tmp();
  for (const [n, body] of Object.entries(scripts)) fs.writeFileSync(path.join(d, n), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return d;
}

describe('realRunner', () => {
  it('refuses to run a command on the live host when --root is a tree', async () => {
    const root = tmp();
    const r = realRunner(root, { env: {}, progress: null });
    await expect(r.run(['update-initramfs', '-u'])).rejects.toMatchObject({ code: 'E_RUN_OUTSIDE_ROOT', exitCode: 3 });
  });

  it('runs inside the root with chroot only when root holds the program and we are root', () => {
    const root = tmp();
    fs.mkdirSync(path.join(root, 'usr/sbin'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/sbin/update-initramfs'), '', { mode: 0o755 });
    const hr = new HostRoot(root);
    expect(resolveInvocation(hr, ['update-initramfs', '-u'], { env: {}, uid: 0 })).toEqual(['chroot', hr.dir, '/usr/sbin/update-initramfs', '-u']);
    expect(() => resolveInvocation(hr, ['update-initramfs', '-u'], { env: {}, uid: 1000 })).toThrow(/needs root/);
    expect(resolveInvocation(new HostRoot('/'), ['true'], { env: {} })).toEqual(['true']);
  });

  it('VFIOKIT_FAKE_BIN runs the fake, streams output, and refuses a missing fake', async () => {
    const bin = fakeBin({ 'update-initramfs': 'echo "update-initramfs: Generating /boot/initrd.img-$2"; echo warn >&2' });
    const out: string[] = [];
    const r = realRunner(tmp(), { env: { VFIOKIT_FAKE_BIN: bin }, progress: null });
    const res = await r.run(['/usr/sbin/update-initramfs', '-k', '6.1.0'], { onOutput: (c) => out.push(c) });
    expect(res.code).toBe(0);
    expect(res.stdout).toBe('update-initramfs: Generating /boot/initrd.img-6.1.0\n');
    expect(res.stderr).toBe('warn\n');
    expect(out.join('')).toContain('Generating');
    await expect(r.run(['dracut', '-f'])).rejects.toMatchObject({ code: 'E_RUN_OUTSIDE_ROOT' });
  });

  it('a failing command throws CommandFailedError with argv, exit code, the last 20 lines of stderr and duration', async () => {
    const bin = fakeBin({ mkinitcpio: 'i=1; while [ $i -le 30 ]; do echo "line $i" >&2; i=$((i+1)); done; exit 3' });
    const r = realRunner(tmp(), { env: { VFIOKIT_FAKE_BIN: bin }, progress: null });
    const err = (await r.run(['mkinitcpio', '-P'], { label: 'mkinitcpio -P' }).catch((e) => e)) as CommandFailedError;
    expect(err).toBeInstanceOf(CommandFailedError);
    expect(err.argv).toEqual(['mkinitcpio', '-P']);
    expect(err.exitStatus).toBe(3);
    expect(err.stderrTail.split('\n')).toHaveLength(20);
    expect(err.stderrTail.startsWith('line 11\n')).toBe(true);
    expect(err.message).toContain('`mkinitcpio -P` failed with exit code 3');
    expect(err.message).toContain('line 30');
    expect(err.message).not.toContain('line 10\n');
    expect(err.durationMs).toBeGreaterThanOrEqual(0);
    const res = await r.run(['mkinitcpio'], { nothrow: true });
    expect(res.code).toBe(3);
  });

  it('prints progress lines when stderr is not a terminal, and kills on timeout', async () => {
    const bin = fakeBin({ slow: 'sleep 0.4; echo done', hang: 'exec sleep 10' });
    const lines: string[] = [];
    const r = realRunner(tmp(), { env: { VFIOKIT_FAKE_BIN: bin }, progress: { write: (s) => lines.push(s), isTTY: false }, progressIntervalMs: 100 });
    await r.run(['slow'], { label: 'slow thing' });
    expect(lines[0]).toBe('  running slow thing\n');
    expect(lines.filter((l) => l.startsWith('  still running slow thing')).length).toBeGreaterThanOrEqual(2);
    expect(lines[lines.length - 1]).toMatch(/^ {2}done: slow thing \(0\.\ds\)\n$/);
    const err = (await r.run(['hang'], { timeoutMs: 150 }).catch((e) => e)) as CommandFailedError;
    expect(err.signal).toBe('SIGTERM');
    expect(err.message).toContain('timed out after 150 ms');
  });
});

describe('recordingRunner', () => {
  it('logs one line per call and fails the Nth call or a matching argv', async () => {
    const r = recordingRunner({ failAt: 2, failMatch: /^virsh / });
    await r.run(['modprobe', 'vfio-pci']);
    await expect(r.run(['update-grub'])).rejects.toBeInstanceOf(CommandFailedError);
    await expect(r.run(['virsh', 'define', 'a b.xml'])).rejects.toThrow(/exit code 1/);
    expect(r.log()).toBe("modprobe vfio-pci\nupdate-grub\nvirsh define 'a b.xml'\n");
  });
});
