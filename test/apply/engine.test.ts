// The engine's other step kinds (attributes, installed files, attribute
// copies, modules, libvirt domains, commands with an undo), undo order
// between transactions, journals that cannot be read, and the state rules
// every writing command follows (recover first, locked, never "nothing to do"
// while something is unfinished).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, listJournals, recordingRunner, recoverInterrupted, SimulatedCrash, undoTransaction } from '../../src/apply/index.js';
import type { SysfsWriter } from '../../src/apply/sysfs-writer.js';
import { spawnSync } from 'node:child_process';
import { ApplyError, PreconditionError } from '../../src/errors.js';
import { emptyPlan, type Plan, type Step } from '../../src/model/plan.js';
import { runCli } from '../helpers/run-cli.js';
import { treeFingerprint } from './_tree.js';

const roots: string[] = [];
afterEach(() => {
  if (!process.env.KEEP_TMP) for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function makeRoot(): string {
  const r = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-engine-'));
  roots.push(r);
  fs.mkdirSync(path.join(r, 'var/lib'), { recursive: true });
  fs.mkdirSync(path.join(r, 'etc'), { recursive: true });
  fs.writeFileSync(path.join(r, 'etc/os-release'), 'ID=debian\n');
  fs.mkdirSync(path.join(r, 'proc'), { recursive: true });
  fs.writeFileSync(path.join(r, 'proc/cmdline'), 'ro quiet\n');
  fs.mkdirSync(path.join(r, 'sys/fs/cgroup/system.slice'), { recursive: true });
  fs.writeFileSync(path.join(r, 'sys/fs/cgroup/system.slice/cpuset.cpus'), '\n');
  fs.mkdirSync(path.join(r, 'proc/irq/24'), { recursive: true });
  fs.writeFileSync(path.join(r, 'proc/irq/24/smp_affinity_list'), '0-7\n');
  fs.mkdirSync(path.join(r, 'sys/bus/pci/devices/0000:01:00.0'), { recursive: true });
  fs.writeFileSync(path.join(r, 'sys/bus/pci/devices/0000:01:00.0/rom'), Buffer.alloc(0));
  return r;
}

/** A kernel for plain attributes: a write replaces the value (with a newline, as sysfs shows it); `rom` ← 1 makes the ROM readable. */
function attrKernel(root: string, rom: Buffer, fail?: (p: string, v: string) => boolean): SysfsWriter & { writes: string[] } {
  const writes: string[] = [];
  return {
    writes,
    write(p, v) {
      writes.push(`${p}=${JSON.stringify(v)}`);
      if (fail?.(p, v)) throw Object.assign(new Error('injected'), { code: 'EIO' });
      const real = path.join(root, p);
      if (!fs.existsSync(real)) throw Object.assign(new Error('no such attribute'), { code: 'ENOENT' });
      if (p.endsWith('/rom')) fs.writeFileSync(real, v.trim() === '1' ? rom : Buffer.alloc(0));
      else fs.writeFileSync(real, v.endsWith('\n') ? v : `${v}\n`);
    },
  };
}

const attrStep = (p: string, value: string, before: string, restore: string | null): Step => ({ kind: 'write-attr', path: p, value, before, restore: restore === null ? null : { value: restore }, reason: `set ${p}` });

function isolatePlan(): Plan {
  const plan = emptyPlan('test-attrs', {});
  plan.steps.push(
    attrStep('/sys/fs/cgroup/system.slice/cpuset.cpus', '0-1', '', ''),
    attrStep('/proc/irq/24/smp_affinity_list', '0-1', '0-7', '0-7'),
    { kind: 'run-command', argv: ['systemctl', 'stop', 'display-manager.service'], undoArgv: ['systemctl', 'start', 'display-manager.service'], volatile: true, label: 'stop the display manager', regenerate: false, reason: 'free the GPU' },
  );
  return plan;
}

describe('write-attr and run-command with an undo', () => {
  it('apply writes, undo restores every value byte for byte and runs the undo command', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    const k = attrKernel(root, Buffer.alloc(0));
    const runner = recordingRunner();
    await applyPlan(isolatePlan(), { root, runner, sysfs: k });
    expect(fs.readFileSync(path.join(root, 'proc/irq/24/smp_affinity_list'), 'utf8')).toBe('0-1\n');
    await undoTransaction({ root, runner, sysfs: k });
    expect(runner.log()).toBe('systemctl stop display-manager.service\nsystemctl start display-manager.service\n');
    expect(treeFingerprint(root)).toEqual(before);
  });

  for (let k = 0; k < 3; k++) {
    it(`step ${k + 1} fails → the earlier ones are put back (exit 4); a power cut there → recover puts them back`, async () => {
      const root = makeRoot();
      const before = treeFingerprint(root);
      const runner = recordingRunner();
      const kern = attrKernel(root, Buffer.alloc(0));
      const err = (await applyPlan(isolatePlan(), { root, runner, sysfs: kern, failAt: { step: k, after: true } }).catch((e) => e)) as ApplyError;
      expect(err.exitCode).toBe(4);
      expect(treeFingerprint(root)).toEqual(before);
      if (k === 2) expect(runner.log()).toBe('systemctl stop display-manager.service\nsystemctl start display-manager.service\n');
      const root2 = makeRoot();
      await expect(applyPlan(isolatePlan(), { root: root2, runner, sysfs: attrKernel(root2, Buffer.alloc(0)), failAt: { step: k, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
      await recoverInterrupted(root2, runner, { sysfs: attrKernel(root2, Buffer.alloc(0)), lock: { isAlive: () => false } });
      expect(treeFingerprint(root2)).toEqual(before);
    });
  }

  it('an attribute that changed since the plan: refused before the first write', async () => {
    const root = makeRoot();
    fs.writeFileSync(path.join(root, 'proc/irq/24/smp_affinity_list'), '3\n');
    const k = attrKernel(root, Buffer.alloc(0));
    await expect(applyPlan(isolatePlan(), { root, runner: recordingRunner(), sysfs: k })).rejects.toMatchObject({ code: 'E_CHANGED_SINCE_PLAN', exitCode: 3 });
    expect(k.writes).toEqual([]);
  });

  it('a kernel step under a --root with no kernel: refused (E_NOT_LIVE), nothing written', async () => {
    const root = makeRoot();
    const before = treeFingerprint(root);
    await expect(applyPlan(isolatePlan(), { root, runner: recordingRunner() })).rejects.toMatchObject({ code: 'E_NOT_LIVE', exitCode: 3 });
    expect(treeFingerprint(root)).toEqual(before);
  });
});

describe('copy-attr and install-file (binary)', () => {
  const ROM = Buffer.from([0x55, 0xaa, 0x40, 0xe9, 0xff, 0x00, 0x80, 0x7f, ...Array.from({ length: 500 }, (_, i) => i & 0xff)]);
  const dumpPlan = (): Plan => {
    const p = emptyPlan('rom-dump', {});
    p.steps.push(
      attrStep('/sys/bus/pci/devices/0000:01:00.0/rom', '1', '', '0'),
      { kind: 'copy-attr', from: '/sys/bus/pci/devices/0000:01:00.0/rom', path: '/var/lib/vfiokit-rom/gpu.rom', maxBytes: 65536, mode: 0o644, reason: 'read the ROM' },
      attrStep('/sys/bus/pci/devices/0000:01:00.0/rom', '0', '', null),
    );
    return p;
  };

  it('dump sequence: the copy holds the ROM byte for byte, the attribute ends disabled; undo removes the file', async () => {
    const root = makeRoot();
    const k = attrKernel(root, ROM);
    await applyPlan(dumpPlan(), { root, runner: recordingRunner(), sysfs: k });
    expect(fs.readFileSync(path.join(root, 'var/lib/vfiokit-rom/gpu.rom')).equals(ROM)).toBe(true);
    expect(fs.readFileSync(path.join(root, 'sys/bus/pci/devices/0000:01:00.0/rom')).length).toBe(0);
    expect(k.writes.map((w) => w.split('=')[1])).toEqual(['"1"', '"0"']);
    await undoTransaction({ root, runner: recordingRunner(), sysfs: k });
    expect(fs.existsSync(path.join(root, 'var/lib/vfiokit-rom'))).toBe(false);
  });

  it('a power cut after enabling the ROM: recover disables it again and leaves no file', async () => {
    const root = makeRoot();
    const k = attrKernel(root, ROM);
    await expect(applyPlan(dumpPlan(), { root, runner: recordingRunner(), sysfs: k, failAt: { step: 1, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
    await recoverInterrupted(root, recordingRunner(), { sysfs: k, lock: { isAlive: () => false } });
    expect(k.writes.at(-1)).toBe('/sys/bus/pci/devices/0000:01:00.0/rom="0"');
    expect(fs.existsSync(path.join(root, 'var/lib/vfiokit-rom/gpu.rom'))).toBe(false);
  });

  it('install-file writes the bytes with the mode; refuses when the file appeared since the plan', async () => {
    const root = makeRoot();
    const plan = emptyPlan('rom-install', {});
    plan.steps.push({ kind: 'install-file', path: '/usr/share/vgabios/gpu.rom', contentBase64: ROM.toString('base64'), mode: 0o644, beforeSha256: null, reason: 'install the ROM' });
    fs.mkdirSync(path.join(root, 'usr/share/vgabios'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/share/vgabios/gpu.rom'), 'mine');
    await expect(applyPlan(plan, { root, runner: recordingRunner() })).rejects.toMatchObject({ code: 'E_CHANGED_SINCE_PLAN' });
    expect(fs.readFileSync(path.join(root, 'usr/share/vgabios/gpu.rom'), 'utf8')).toBe('mine');
    fs.rmSync(path.join(root, 'usr/share/vgabios/gpu.rom'));
    await applyPlan(plan, { root, runner: recordingRunner() });
    const f = path.join(root, 'usr/share/vgabios/gpu.rom');
    expect(fs.readFileSync(f).equals(ROM)).toBe(true);
    expect(fs.statSync(f).mode & 0o777).toBe(0o644);
  });
});

describe('modules', () => {
  it('unload of dependents then the module; undo reloads what was loaded, the module first', async () => {
    const root = makeRoot();
    for (const m of ['nvidia', 'nvidia_drm', 'nvidia_modeset']) fs.mkdirSync(path.join(root, 'sys/module', m), { recursive: true });
    const runner = recordingRunner({
      onCall: (argv) => {
        if (argv[1] === '-r') for (const m of argv.slice(2)) fs.rmSync(path.join(root, 'sys/module', m), { recursive: true, force: true });
        else fs.mkdirSync(path.join(root, 'sys/module', argv[1]), { recursive: true });
      },
    });
    const plan = emptyPlan('test-modules', {});
    plan.steps.push({ kind: 'module', action: 'unload', module: 'nvidia', also: ['nvidia_drm', 'nvidia_modeset', 'nvidia_uvm'], reason: 'free the GPU' });
    await applyPlan(plan, { root, runner });
    await undoTransaction({ root, runner });
    expect(runner.log()).toBe('modprobe -r nvidia_drm nvidia_modeset nvidia\nmodprobe nvidia\nmodprobe nvidia_drm\nmodprobe nvidia_modeset\n');
  });
});

describe('libvirt domains: vm define and attach are transactions', () => {
  /** A virsh stand-in that keeps domains in a map, like libvirt's inactive definitions. */
  function fakeVirsh(failDefine = false) {
    const domains = new Map<string, string>();
    const runner = recordingRunner({
      onCall: (argv) => {
        const a = argv.filter((x, i) => !(argv[i - 1] === '-c') && x !== '-c').slice(1);
        if (a[0] === 'define' && failDefine) return { code: 1, stderr: 'error: Failed to define domain' };
        if (a[0] === 'define') {
          const xml = fs.readFileSync(a[1], 'utf8');
          domains.set(/<name>([^<]+)<\/name>/.exec(xml)![1], xml);
          return {};
        }
        if (a[0] === 'domuuid') return domains.has(a[1]) ? { stdout: 'uuid\n' } : { code: 1, stderr: `error: failed to get domain '${a[1]}'` };
        if (a[0] === 'undefine') return domains.delete(a.at(-1)!) ? {} : { code: 1, stderr: 'error: failed to get domain' };
        if (a[0] === 'dumpxml') return domains.has(a.at(-1)!) ? { stdout: domains.get(a.at(-1)!)! } : { code: 1, stderr: 'error: failed to get domain' };
        return {};
      },
    });
    return { domains, runner };
  }

  it('undo of `vm define` undefines the domain vfiokit defined (keeping NVRAM); a failed define rolls back cleanly', async () => {
    const root = makeRoot();
    const v = fakeVirsh();
    const plan = emptyPlan('vm-define', {});
    const xml = "<domain type='kvm'><name>win11</name></domain>\n";
    plan.steps.push({ kind: 'domain', action: 'define', name: 'win11', xml, before: null, reason: 'define win11' });
    await applyPlan(plan, { root, runner: v.runner });
    expect(v.domains.get('win11')).toBe(xml);
    await undoTransaction({ root, runner: v.runner });
    expect(v.domains.has('win11')).toBe(false);
    expect(v.runner.log()).toContain('virsh undefine --keep-nvram win11');
    const failing = fakeVirsh(true);
    const err = (await applyPlan(plan, { root, runner: failing.runner }).catch((e) => e)) as ApplyError;
    expect(err.exitCode).toBe(4);
    expect(failing.domains.size).toBe(0);
  });

  it('undo of a redefinition (attach) puts the previous XML back', async () => {
    const root = makeRoot();
    const v = fakeVirsh();
    const old = "<domain type='kvm'><name>gm</name><devices/></domain>\n";
    v.domains.set('gm', old);
    const plan = emptyPlan('vm-attach', {});
    plan.steps.push({ kind: 'domain', action: 'define', name: 'gm', xml: "<domain type='kvm'><name>gm</name><devices><hostdev/></devices></domain>\n", before: old, reason: 'attach' });
    await applyPlan(plan, { root, runner: v.runner });
    expect(v.domains.get('gm')).toContain('hostdev');
    await undoTransaction({ root, runner: v.runner });
    expect(v.domains.get('gm')).toBe(old);
  });
});

describe('undo order and history', () => {
  const attrPlan = (p: string, v: string, before: string) => {
    const plan = emptyPlan('test-attr', {});
    plan.steps.push(attrStep(p, v, before, before));
    return plan;
  };

  it('undo --id of an older transaction is refused while a later one changed the same thing, and names the order', async () => {
    const root = makeRoot();
    const k = attrKernel(root, Buffer.alloc(0));
    const a = await applyPlan(attrPlan('/proc/irq/24/smp_affinity_list', '0-3', '0-7'), { root, runner: recordingRunner(), sysfs: k });
    const b = await applyPlan(attrPlan('/proc/irq/24/smp_affinity_list', '0-1', '0-3'), { root, runner: recordingRunner(), sysfs: k });
    const other = await applyPlan(attrPlan('/sys/fs/cgroup/system.slice/cpuset.cpus', '2', ''), { root, runner: recordingRunner(), sysfs: k });
    const err = (await undoTransaction({ root, runner: recordingRunner(), sysfs: k, txid: a.txid! }).catch((e) => e)) as PreconditionError;
    expect(err.code).toBe('E_UNDO_ORDER');
    expect(err.hint).toBe(`undo in this order: vfiokit undo --id ${b.txid}; then vfiokit undo --id ${a.txid}`);
    // An unrelated later transaction does not block; undo in the right order restores the original.
    await undoTransaction({ root, runner: recordingRunner(), sysfs: k, txid: b.txid! });
    await undoTransaction({ root, runner: recordingRunner(), sysfs: k, txid: a.txid! });
    expect(fs.readFileSync(path.join(root, 'proc/irq/24/smp_affinity_list'), 'utf8')).toBe('0-7\n');
    expect(listJournals(root).map((d) => [d.txid, d.state])).toEqual([
      [a.txid, 'undone'],
      [b.txid, 'undone'],
      [other.txid, 'applied'],
    ]);
  });
});

describe('journals that cannot be read are never "nothing to do"', () => {
  const cases: [string, (f: string) => void, RegExp][] = [
    ['truncated', (f) => fs.writeFileSync(f, fs.readFileSync(f, 'utf8').slice(0, 200)), /not valid JSON/],
    ['empty', (f) => fs.writeFileSync(f, ''), /is empty/],
    ['wrong shape', (f) => fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), steps: [{ index: 0, kind: 'write-attr', state: 'sideways', reason: 'x' }] })), /does not have the shape.*steps\.0/],
    ['deleted with its backups left', (f) => fs.rmSync(f), /is missing/],
  ];
  for (const [name, damage, msg] of cases) {
    it(`${name}: undo, recover, apply and history refuse with the file named (exit 3); status is not clean`, async () => {
      const root = makeRoot();
      fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
      fs.writeFileSync(path.join(root, 'etc/x.conf'), 'a\n');
      const plan = emptyPlan('test', {});
      plan.steps.push({ kind: 'write-file', path: '/etc/x.conf', before: { content: 'a\n', mode: 0o644, uid: 0, gid: 0 }, after: { content: 'b\n', mode: 0o644 }, reason: 'x' });
      const r = await applyPlan(plan, { root, runner: recordingRunner() });
      const file = path.join(root, 'var/lib/vfiokit/journal', r.txid!, 'journal.json');
      damage(file);
      for (const argv of [['undo', '--yes'], ['recover'], ['history']]) {
        const out = await runCli([...argv, '--root', root]);
        expect(out.code, argv.join(' ')).toBe(argv[0] === 'recover' ? 3 : 3);
        expect(out.stderr + out.stdout, argv.join(' ')).toMatch(msg);
        expect(out.stderr + out.stdout).toContain(`/var/lib/vfiokit/journal/${r.txid}/journal.json`);
        expect(out.stderr + out.stdout).not.toMatch(/Nothing to undo|nothing to recover|at .*\.js:\d+/);
      }
      await expect(applyPlan(plan, { root, runner: recordingRunner() })).rejects.toMatchObject({ code: 'E_JOURNAL_CORRUPT', exitCode: 3 });
      const st = await runCli(['status', '--root', root]);
      expect(st.code).not.toBe(0);
      expect(fs.readFileSync(path.join(root, 'etc/x.conf'), 'utf8')).toBe('b\n');
    });
  }
});

describe('writing commands and unfinished or locked state', () => {
  it('while another vfiokit holds the lock, undo says so (exit 3), never "nothing to undo"', async () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, 'var/lib/vfiokit'), { recursive: true });
    fs.writeFileSync(path.join(root, 'var/lib/vfiokit/lock'), `${process.pid}\n`);
    const r = await runCli(['undo', '--yes', '--root', root]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`pid ${process.pid}`);
    expect(r.stdout).not.toContain('Nothing to undo');
  });

  it('a crash mid-apply: the next undo recovers first, then says what it did', async () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/x.conf'), 'a\n');
    const before = treeFingerprint(root);
    const plan = emptyPlan('test', {});
    plan.steps.push({ kind: 'write-file', path: '/etc/x.conf', before: { content: 'a\n', mode: 0o644, uid: 0, gid: 0 }, after: { content: 'b\n', mode: 0o644 }, reason: 'x' });
    await expect(applyPlan(plan, { root, runner: recordingRunner(), failAt: { step: 0, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
    fs.writeFileSync(path.join(root, 'var/lib/vfiokit/lock'), '999999999\n'); // the crashed process's lock
    const r = await runCli(['undo', '--yes', '--root', root]);
    expect(r.stderr).toMatch(/interrupted while applying/);
    expect(r.code).toBe(0);
    expect(treeFingerprint(root)).toEqual(before);
    expect(listJournals(root)[0].state).toBe('rolled-back');
  });

  it('an unwritable file is refused before the first change (exit 3), every file untouched', async () => {
    const root = makeRoot();
    fs.mkdirSync(path.join(root, 'etc/ro'), { recursive: true });
    fs.writeFileSync(path.join(root, 'etc/a.conf'), 'a\n');
    fs.writeFileSync(path.join(root, 'etc/ro/b.conf'), 'b\n');
    const plan = emptyPlan('test', {});
    for (const p of ['/etc/a.conf', '/etc/ro/b.conf']) plan.steps.push({ kind: 'write-file', path: p, before: { content: fs.readFileSync(path.join(root, p), 'utf8'), mode: 0o644, uid: 0, gid: 0 }, after: { content: 'new\n', mode: 0o644 }, reason: p });
    // chattr +i: even root may not write it. Needs a file system with the flag (ext4, xfs, btrfs, tmpfs ≥ 6.0).
    const f = path.join(root, 'etc/ro/b.conf');
    const set = spawnSync('chattr', ['+i', f]);
    if (set.status !== 0) {
      // A file-system capability, not a tool: overlayfs and some container file systems have no immutable flag.
      console.warn(`skipped: chattr +i is not supported on this file system (${String(set.stderr).trim()})`);
      return;
    }
    const before = treeFingerprint(root);
    try {
      const err = (await applyPlan(plan, { root, runner: recordingRunner() }).catch((e) => e)) as PreconditionError;
      expect(err).toMatchObject({ code: 'E_NOT_WRITABLE', exitCode: 3 });
      expect(err.problems[0].message).toContain('/etc/ro/b.conf cannot be written: it is immutable');
      expect(err.problems[0].hint).toContain('chattr -i /etc/ro/b.conf');
    } finally {
      spawnSync('chattr', ['-i', f]);
    }
    expect(treeFingerprint(root)).toEqual(before);
  });
});
