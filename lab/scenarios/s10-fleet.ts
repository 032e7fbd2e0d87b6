// Scenario 10 — the Ansible collection against a real guest's vfiokit: a fast
// guest (Intel IOMMU, the GPU-like device) with a virtio NIC on QEMU user
// networking, dropbear (this machine's package, over the 9p root) listening
// on a port forwarded from this machine's loopback. This machine's
// ansible-playbook, with the collection built into its tarball and
// installed, plays over SSH: check mode (nothing changes) → apply → again
// (no change) → status (not in effect before the reboot, and the assertion
// fails naming why) → state: absent (the boot files byte-identical to the
// start) → absent again (no change); then mode: runtime (vfiokit bind/unbind
// now): check mode → bind → again → absent → again. Between plays the lab
// reads the guest's boot files and drivers itself over SSH (sha256sum and
// sysfs links by plain shell, not through vfiokit or Ansible).
//
// The guest's root is this machine's / under a tmpfs overlay: no bootloader
// vfiokit can edit and (dracut hidden, see the script) no initramfs
// generator, so the boot plan puts the device IDs in /etc/modprobe.d and says
// what to add to the command line and the initramfs (warnings the module
// passes to Ansible).
//
// Not a declaration (lab/lib/declare.ts): the test's work happens on this
// machine while the guest is up — a key pair and a free port before the boot
// (the NIC's forward names the port), then twelve ansible-playbook runs and
// SSH reads between them, handed over with lab_wait_host. Its machine is
// spelled out below like a declaration's.

import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFast, type GuestLink } from '../lib/fast-guest.js';
import { guestOutputs, GUEST_LIB } from '../lib/guest-script.js';
import type { TestContext, TestDef } from '../lib/harness.js';
import { bootOutcome, USER_NET_GUEST_ADDR } from '../lib/qemu.js';
import { BOOT_HELPERS } from '../lib/session.js';
import { freePort, repoRoot, run, runOk, shq, which } from '../lib/util.js';
import { bootstateDiff, driversOf, functionsOf, GPU_ID, gpus, onHostDrivers, onVfio } from '../lib/gpu.js';

const MAC = '52:54:00:4c:41:42';
const MODPROBE_FILE = '/etc/modprobe.d/vfiokit.conf';

/** The guest side: network up on the NIC with our MAC, dropbear with a fresh host key, our client key authorized. */
function guestScript(clientKey: string): string {
  return `${BOOT_HELPERS}
lab_coldplug
# This machine's / has dracut (for 2.grub-dracut's image builds); a dracut run
# takes ~10 min per apply and undo under emulation. Hidden in the guest's
# overlay, the guest is a host without an initramfs generator vfiokit drives.
rm -f /usr/bin/dracut /usr/sbin/dracut
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
# The NIC's driver binds on the virtio bus (coldplug loads PCI drivers only).
modprobe virtio_net
IF=
for _n in /sys/class/net/*; do read -r _a <"$_n/address"; [ "$_a" = "${MAC}" ] && IF=\${_n##*/}; done
lab_say "NIC with ${MAC}: \${IF:-none}"
ip link set lo up
ip link set "$IF" up && ip addr add ${USER_NET_GUEST_ADDR}/24 dev "$IF"
mkdir -p /root/.ssh && chmod 700 /root /root/.ssh
echo ${shq(clientKey)} >/root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
mkdir -p /run/dropbear
dropbearkey -t ed25519 -f /run/dropbear/host_ed25519 >/dev/null 2>&1
dropbearkey -y -f /run/dropbear/host_ed25519 | grep '^ssh-' >"$LAB_OUT/hostkey.pub"
# -s: keys only; -E: log to stderr (kept in out/); listens on the NIC only.
dropbear -r /run/dropbear/host_ed25519 -p ${USER_NET_GUEST_ADDR}:22 -s -E -P /run/dropbear.pid 2>>"$LAB_OUT/dropbear.log"
GPU=$(lab_find ${GPU_ID} | head -n 1)
read -r _sv <"/sys/bus/pci/devices/$GPU/subsystem_vendor"; read -r _sd <"/sys/bus/pci/devices/$GPU/subsystem_device"
echo "$GPU \${_sv#0x}:\${_sd#0x}" >"$LAB_OUT/gpu"
lab_listing start
lab_bootstate start
echo up >"$LAB_OUT/ready"
lab_wait_host
kill "$(cat /run/dropbear.pid)" 2>/dev/null
lab_listing end
`;
}

interface TaskResult {
  changed?: boolean;
  failed?: boolean;
  skipped?: boolean;
  msg?: string;
  error_code?: string;
  fix?: string;
  reboot_required?: boolean;
  txid?: string;
  warnings?: string[];
  in_effect?: boolean;
  status?: { rebootedSinceApply?: boolean | null; lines?: { subject: string; ok: boolean; cause: string | null }[] };
  diff?: { before: string; after: string; before_header: string; after_header: string }[];
}

interface PlayRun {
  code: number | null;
  /** Task name → this host's result. */
  tasks: Record<string, TaskResult>;
  raw: string;
}

async function fleet(t: TestContext): Promise<void> {
  for (const tool of ['ansible-playbook', 'ansible-galaxy', 'ssh', 'ssh-keygen', 'dropbear', 'dropbearkey'])
    t.require(`${tool} is installed on this machine`, !!which(tool), `${tool} not found: apt-get install ${tool.startsWith('ansible') ? 'ansible-core' : tool.startsWith('dropbear') ? 'dropbear-bin' : 'openssh-client'}`);
  const repo = repoRoot();
  const ctl = t.bootDir('ansible');
  // The collection as users get it: the tarball, installed.
  await runOk([path.join(repo, 'scripts/build-ansible-collection.sh'), path.join(ctl, 'dist')], { timeoutMs: 120_000 });
  const tarball = readdirSync(path.join(ctl, 'dist')).find((f) => f.endsWith('.tar.gz'));
  t.require('the collection tarball was built', !!tarball, readdirSync(path.join(ctl, 'dist')).join(' '));
  await runOk(['ansible-galaxy', 'collection', 'install', path.join(ctl, 'dist', tarball!), '-p', path.join(ctl, 'collections')], { timeoutMs: 120_000, env: { ...process.env, ANSIBLE_HOME: path.join(ctl, 'home') } });
  const key = path.join(ctl, 'id_ed25519');
  await runOk(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'vfiokit-lab', '-f', key]);
  const port = await freePort();
  // ControlPath sockets need a short path (108 bytes).
  const cp = mkdtempSync(path.join(os.tmpdir(), 'vfk-cp-'));
  const knownHosts = path.join(ctl, 'known_hosts');
  const sshOpts = ['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=60', '-o', 'ServerAliveInterval=30', '-i', key, '-p', String(port)];
  const node = process.execPath;
  const exe = `${node} ${path.join(repo, 'bin/vfiokit.js')}`;
  const plays: Record<string, PlayRun> = {};
  const states: Record<string, string> = {};
  let gpu = '';
  let subsystem = '';

  /** Runs a shell snippet in the guest over plain SSH (the lab's own channel, independent of Ansible and vfiokit). */
  const sshGuest = async (what: string, script: string) => {
    const r = await run(['ssh', ...sshOpts, `root@127.0.0.1`, script], { timeoutMs: 10 * 60_000 });
    if (r.code !== 0) throw new Error(`ssh to the guest (${what}) failed (${r.timedOut ? 'timed out' : `exit ${r.code}`}): ${r.stderr.trim().slice(-1500)}`);
    return r.stdout;
  };
  /** The guest's boot files, checksummed by the lab's own shell (session.ts lab_bootstate), read back over SSH. */
  const bootstate = async (name: string) => {
    states[name] = await sshGuest(`lab_bootstate ${name}`, `${GUEST_LIB}\n${BOOT_HELPERS}\nlab_bootstate ${name}; cat "$LAB_OUT/${name}.bootstate"`);
  };

  const play = async (name: string, want: 'present' | 'absent', extra: string[] = [], o: { assertInEffect?: boolean; mode?: 'boot' | 'runtime' } = {}) => {
    const vars = ['-e', `want=${want}`, '-e', `assert_in_effect=${o.assertInEffect ?? false}`, '-e', `mode=${o.mode ?? 'boot'}`];
    const r = await run(['ansible-playbook', '-i', path.join(ctl, 'inventory.ini'), path.join(ctl, 'play.yml'), ...vars, ...extra], {
      env: {
        ...process.env,
        ANSIBLE_COLLECTIONS_PATH: path.join(ctl, 'collections'),
        ANSIBLE_STDOUT_CALLBACK: 'json',
        ANSIBLE_HOME: path.join(ctl, 'home'),
        ANSIBLE_LOCAL_TEMP: path.join(ctl, 'tmp'),
        ANSIBLE_SSH_CONTROL_PATH_DIR: cp,
        ANSIBLE_PIPELINING: '1',
        ANSIBLE_TIMEOUT: '120',
        ANSIBLE_NOCOLOR: '1',
      },
      timeoutMs: 15 * 60_000,
    });
    let tasks: Record<string, TaskResult> = {};
    try {
      const out = JSON.parse(r.stdout) as { plays: { tasks: { task: { name: string }; hosts: Record<string, TaskResult> }[] }[] };
      for (const task of out.plays[0]?.tasks ?? []) if (task.hosts.guest) tasks[task.task.name] = task.hosts.guest;
    } catch {
      tasks = {};
    }
    plays[name] = { code: r.code, tasks, raw: `exit ${r.code}\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}` };
    writeFileSync(path.join(ctl, `${name}.json`), r.stdout);
    t.log(`play ${name}: exit ${r.code}, ${Object.entries(tasks).map(([k, v]) => `${k}: ${v.failed ? `failed ${v.error_code ?? ''}` : v.skipped ? 'skipped' : v.changed ? 'changed' : 'ok'}`).join(', ')}`);
  };

  const whileUp = async (g: GuestLink) => {
    await g.waitFor('ready', 15 * 60_000);
    const hostKey = (await g.waitFor('hostkey.pub', 60_000)).trim();
    [gpu = '', subsystem = ''] = (await g.waitFor('gpu', 60_000)).trim().split(/\s+/);
    writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
    writeFileSync(
      path.join(ctl, 'inventory.ini'),
      [
        '[lab]',
        `guest ansible_host=127.0.0.1 ansible_port=${port} ansible_user=root ansible_python_interpreter=/usr/bin/python3 ansible_ssh_private_key_file=${key}`,
        '',
        '[lab:vars]',
        `ansible_ssh_common_args=${['-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'ServerAliveInterval=30'].join(' ')}`,
        '',
      ].join('\n'),
    );
    // One play for every run: the device by vendor:device and subsystem (as a fleet play matches), then status.
    writeFileSync(
      path.join(ctl, 'play.yml'),
      [
        '- hosts: lab',
        '  gather_facts: false',
        '  tasks:',
        '    - name: passthrough',
        '      vfiokit.passthrough.device:',
        '        state: "{{ want }}"',
        '        mode: "{{ mode }}"',
        '        devices:',
        `          - vendor_device: "${GPU_ID.replace(/0x/g, '')}"`,
        `            subsystem: "${subsystem}"`,
        `        executable: "${exe}"`,
        '      register: vfio',
        '    - name: status',
        '      vfiokit.passthrough.status:',
        '        assert_in_effect: "{{ assert_in_effect | bool }}"',
        `        executable: "${exe}"`,
        "      when: want == 'present' and mode == 'boot'",
        '',
      ].join('\n'),
    );
    await play('check', 'present', ['--check', '--diff']);
    await bootstate('after-check');
    await play('apply', 'present', ['--diff']);
    await bootstate('after-apply');
    await play('again', 'present');
    await bootstate('after-again');
    await play('assert', 'present', [], { assertInEffect: true });
    await play('absent-check', 'absent', ['--check']);
    await bootstate('after-absent-check');
    await play('absent', 'absent');
    await bootstate('after-absent');
    await play('absent-again', 'absent');
    // mode: runtime — the same devices moved now (vfiokit bind/unbind), the drivers read by the lab's shell.
    const listing = (name: string) => sshGuest(`lab_listing ${name}`, `${GUEST_LIB}\n${BOOT_HELPERS}\nlab_listing ${name}`);
    await play('rt-check', 'present', ['--check', '--diff'], { mode: 'runtime' });
    await listing('rt-checked');
    await play('rt-bind', 'present', [], { mode: 'runtime' });
    await listing('rt-bound');
    await play('rt-again', 'present', [], { mode: 'runtime' });
    await play('rt-absent', 'absent', [], { mode: 'runtime' });
    await listing('rt-unbound');
    await play('rt-absent-again', 'absent', [], { mode: 'runtime' });
  };

  const r = await runFast({
    label: `${t.id}/boot`,
    workDir: t.bootDir('boot'),
    machine: { iommu: 'intel', topology: 'gpu', cpuVendor: 'GenuineIntel', smp: 1, memMb: 1536, net: { mac: MAC, hostfwd: [{ hostPort: port, guestPort: 22 }] } },
    append: 'intel_iommu=on',
    script: guestScript(readFileSync(`${key}.pub`, 'utf8').trim()),
    timeoutMs: 75 * 60_000,
    whileUp,
  });
  rmSync(cp, { recursive: true, force: true });
  t.recordBoot(`${t.id}/boot`, r.boot);
  t.require('the guest came up with sshd and the plays ran', !r.hostError, `${r.hostError?.message ?? ''}\ndropbear: ${(r.read('dropbear.log') ?? '').slice(-1500)}`);
  t.require('guest booted and ran the script to the end', r.finished === 'ok', r.boot.timedOut ? bootOutcome(r.boot) : `finished=${r.finished ?? 'never'}`);
  const { listing } = guestOutputs(r.read);
  const start = listing('start');
  const g = gpus(start)[0];
  t.require('the guest has the GPU-like device on its host drivers', !!g && g === gpu && onHostDrivers(start, g), g ? driversOf(start, functionsOf(g)) : 'none');
  const pass = (n: string) => plays[n]?.tasks.passthrough ?? {};
  const status = (n: string) => plays[n]?.tasks.status ?? {};
  const raw = (n: string) => plays[n]?.raw ?? 'not run';
  const short = gpu.replace(/^0000:/, '');
  const ids = ['1234:1111', '8086:293e'];

  // 1. Check mode: the plan only, with its diff; nothing in the guest changes.
  const c = pass('check');
  t.check('check mode: the play succeeds', plays.check?.code === 0 && !c.failed, raw('check'));
  t.check('check mode: changed and reboot_required (the plan is not empty)', c.changed === true && c.reboot_required === true, raw('check'));
  const d = (c.diff ?? []).find((x) => x.after_header === MODPROBE_FILE);
  t.check(`check mode --diff: ${MODPROBE_FILE} from nothing to vfio-pci ids ${ids.join(',')}`, !!d && d.before === '' && d.before_header === '/dev/null' && d.after.includes(`ids=${ids.join(',')}`), JSON.stringify(c.diff ?? null).slice(0, 1500));
  t.check(
    "check mode: vfiokit's warning (no bootloader it can edit: the kernel arguments to add) reaches Ansible's warnings",
    (c.warnings ?? []).some((w) => /no supported bootloader/.test(w) && /intel_iommu=on/.test(w)),
    JSON.stringify(c.warnings ?? null),
  );
  const startState = r.read('start.bootstate') ?? '';
  const checked = bootstateDiff(startState, states['after-check'] ?? '');
  t.check('check mode: the guest boot files are unchanged', checked.length === 0 && !!states['after-check'], checked.join(', '));

  // 2. Apply for real.
  const a = pass('apply');
  t.check('apply: changed, reboot_required, a transaction id', plays.apply?.code === 0 && a.changed === true && a.reboot_required === true && typeof a.txid === 'string', raw('apply'));
  // What changed, read by the lab's shell, is exactly what check mode's diff announced.
  const applied = bootstateDiff(startState, states['after-apply'] ?? '').sort();
  const announced = (c.diff ?? []).map((x) => `${x.after_header === '/dev/null' ? x.before_header : x.after_header} (${x.before_header === '/dev/null' ? 'added' : x.after_header === '/dev/null' ? 'removed' : 'changed'})`).sort();
  t.check(`apply: the guest boot files changed exactly as check mode's diff said (${MODPROBE_FILE} among them)`, applied.length > 0 && applied.join(', ') === announced.join(', ') && applied.includes(`${MODPROBE_FILE} (added)`), `changed: ${applied.join(', ') || 'nothing'}; announced: ${announced.join(', ')}`);
  const st = status('apply');
  t.check(
    'status after apply (no reboot): not in effect, not failed, and it says the host was not rebooted',
    st.failed !== true && st.changed === false && st.in_effect === false && st.status?.rebootedSinceApply === false,
    JSON.stringify(st).slice(0, 1500),
  );

  // 3. Again: nothing to do.
  const again = pass('again');
  t.check('again: changed false, reboot_required false', plays.again?.code === 0 && again.changed === false && again.reboot_required === false, raw('again'));
  t.check('again: the guest boot files are as after apply', bootstateDiff(states['after-apply'] ?? '', states['after-again'] ?? '').length === 0, bootstateDiff(states['after-apply'] ?? '', states['after-again'] ?? '').join(', '));

  // 4. The status assertion a play makes after its reboot: here (no reboot) it must fail, naming why.
  const as = status('assert');
  t.check(
    'status assert_in_effect before the reboot: the task fails with E_NOT_IN_EFFECT naming the GPU and the missing reboot',
    plays.assert?.code !== 0 && as.failed === true && as.error_code === 'E_NOT_IN_EFFECT' && (as.msg ?? '').includes(short) && /not been rebooted/.test(as.msg ?? ''),
    raw('assert'),
  );

  // 5. Absent: check mode first (nothing changes), then for real (boot files as at the start), then again (no change).
  const ac = pass('absent-check');
  t.check('absent in check mode: changed (a transaction to undo), nothing changes', ac.changed === true && bootstateDiff(states['after-again'] ?? '', states['after-absent-check'] ?? '').length === 0, raw('absent-check'));
  const ab = pass('absent');
  t.check('absent: changed, the transaction applied above undone', plays.absent?.code === 0 && ab.changed === true && ab.txid === a.txid, raw('absent'));
  const back = bootstateDiff(startState, states['after-absent'] ?? '');
  t.check('absent: the guest boot files are byte-identical to the start', back.length === 0 && !!states['after-absent'], back.join(', '));
  t.check('absent again: changed false', plays['absent-again']?.code === 0 && pass('absent-again').changed === false, raw('absent-again'));
  const rtStart = listing('rt-checked');
  t.check('the boot plan never moved the GPU functions off their host drivers (it changes the next boot only)', onHostDrivers(rtStart, gpu), driversOf(rtStart, functionsOf(gpu)));

  // 6. mode: runtime — check mode changes nothing; bind moves both functions now; again nothing; absent gives them back.
  const rc = pass('rt-check');
  t.check(
    'runtime check mode: changed, no reboot, the --diff shows both functions from their drivers to vfio-pci; nothing moved',
    plays['rt-check']?.code === 0 && rc.changed === true && rc.reboot_required === false && onHostDrivers(rtStart, gpu) && /bochs-drm/.test(JSON.stringify(rc.diff)) && /01:00\.1 vfio-pci/.test(JSON.stringify(rc.diff)),
    raw('rt-check'),
  );
  const rb = pass('rt-bind');
  const bound = listing('rt-bound');
  t.check('runtime bind: changed, no reboot, a transaction id', plays['rt-bind']?.code === 0 && rb.changed === true && rb.reboot_required === false && typeof rb.txid === 'string', raw('rt-bind'));
  t.check('runtime bind: both GPU functions are on vfio-pci (read by the lab)', onVfio(bound, gpu), driversOf(bound, functionsOf(gpu)));
  t.check('runtime again: changed false', plays['rt-again']?.code === 0 && pass('rt-again').changed === false, raw('rt-again'));
  const ru = pass('rt-absent');
  const unbound = listing('rt-unbound');
  t.check('runtime absent: changed, and the original drivers are back (read by the lab)', plays['rt-absent']?.code === 0 && ru.changed === true && onHostDrivers(unbound, gpu), `${driversOf(unbound, functionsOf(gpu))}\n${raw('rt-absent')}`);
  t.check('runtime absent again: changed false', plays['rt-absent-again']?.code === 0 && pass('rt-absent-again').changed === false, raw('rt-absent-again'));
  const end = listing('end');
  t.check('at the end the GPU functions are on their host drivers', onHostDrivers(end, gpu), driversOf(end, functionsOf(gpu)));
}

export const scenario10: TestDef[] = [
  {
    id: '10.ansible',
    title: 'ansible-playbook over SSH to a guest: check mode, apply, again (no change), status, absent (boot files byte-identical); mode: runtime bind/unbind',
    needs: ['plan', 'apply', 'status', 'undo', 'inspect', 'bind', 'unbind'],
    cost: 10,
    run: fleet,
  },
];
