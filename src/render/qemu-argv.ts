// VmSpec → QEMU command line (pure), the plain-QEMU equivalent of xml.ts
// (reference §8): q35 + KVM, OVMF as two pflash drives (read-only CODE and a
// per-VM copy of the VARS template), one pcie-root-port per passed device
// with vfio-pci functions at the host's function numbers.

import { formatCpuList } from '../formats/cpu-list.js';
import { shellQuote } from '../formats/shell-quote.js';
import { describeMemory, formatMemorySize } from '../vm/memory.js';
import { HYPERV_VENDOR_ID, type VmSpec } from '../vm/plan.js';

interface QemuCommand {
  argv: string[];
  /** Things to do before the first start, and what QEMU cannot express (pinning). */
  notes: string[];
  warnings: string[];
}

/** Where the per-VM writable copy of the OVMF VARS template lives. */
const varsCopyPath = (name: string) => `/var/lib/vfiokit/vms/${name}/OVMF_VARS.fd`;

/** QEMU option values separate properties with commas; a literal comma is doubled. */
const qv = (s: string) => s.replace(/,/g, ',,');

const hugetlbfsPath = (sizeKb: number, defaultKb: number | null) => (sizeKb === defaultKb || defaultKb === null ? '/dev/hugepages' : `/dev/hugepages${formatMemorySize(sizeKb)}`);

export function buildQemuCommand(s: VmSpec): QemuCommand {
  const notes: string[] = [];
  const warnings: string[] = [];
  const a: string[] = ['qemu-system-x86_64'];
  const opt = (...xs: string[]) => a.push(...xs);
  const mem = formatMemorySize(s.memoryKib);
  opt('-name', `${s.name},debug-threads=on`);
  const g = s.profile;
  opt('-machine', `q35,accel=kvm,vmport=off${g.smm ? ',smm=on' : ''}${s.hugepageKb ? ',memory-backend=mem0' : ''}`);
  const cpu = ['host', 'migratable=on'];
  if (s.cpuVendor === 'amd' && s.topology.threads > 1) cpu.push('topoext=on');
  if (s.nvidia) cpu.push('kvm=off', `hv-vendor-id=${HYPERV_VENDOR_ID}`);
  if (g.hyperv) {
    cpu.push('hv-relaxed', 'hv-vapic', 'hv-spinlocks=0x1fff', 'hv-vpindex', 'hv-synic', 'hv-stimer', 'hv-reset', 'hv-frequencies', 'hv-time');
    if (g.os) cpu.push('hv-runtime', 'hv-tlbflush', 'hv-ipi');
  }
  opt('-cpu', cpu.join(','));
  const t = s.topology;
  opt('-smp', `${s.vcpus},sockets=${t.sockets},dies=${t.dies},cores=${t.cores},threads=${t.threads}`);
  opt('-m', mem);
  if (s.hugepageKb) {
    const dir = hugetlbfsPath(s.hugepageKb, s.hugepageDefaultKb);
    const numa = s.memoryNode !== null ? `,host-nodes=${s.memoryNode},policy=preferred` : '';
    opt('-object', `memory-backend-file,id=mem0,size=${mem},mem-path=${qv(dir)},prealloc=on,share=off${numa}`);
    if (dir !== '/dev/hugepages') notes.push(`${formatMemorySize(s.hugepageKb)} pages are not the host's default size: mount a hugetlbfs for them first: mkdir -p ${dir} && mount -t hugetlbfs -o pagesize=${formatMemorySize(s.hugepageKb)} none ${dir}`);
  } else if (s.memoryNode !== null) {
    opt('-object', `memory-backend-ram,id=mem0,size=${mem},host-nodes=${s.memoryNode},policy=preferred`);
    a[a.indexOf('-machine') + 1] += ',memory-backend=mem0';
  }
  const code = s.firmware.code;
  const template = s.firmware.varsTemplate;
  if (code) {
    opt('-drive', `if=pflash,format=raw,readonly=on,file=${qv(code)}`);
    opt('-drive', `if=pflash,format=raw,file=${qv(varsCopyPath(s.name))}`);
    if (g.smm) opt('-global', 'driver=cfi.pflash01,property=secure,value=on');
    notes.push(`before the first start, give this VM its own copy of the UEFI variable store (never share one between VMs): install -D -m 0600 ${template ?? '<OVMF_VARS template>'} ${varsCopyPath(s.name)}`);
  } else {
    warnings.push('no OVMF found on this host: the command has no UEFI firmware; install ovmf/edk2-ovmf and re-run');
  }
  opt('-nodefaults', '-display', 'none');
  opt('-rtc', 'base=utc,driftfix=slew');
  opt('-global', 'kvm-pit.lost_tick_policy=delay');
  if (s.pinning) opt('-object', 'iothread,id=iothread1');
  for (let i = 1; i <= s.rootPorts; i++) opt('-device', `pcie-root-port,id=rp${i},bus=pcie.0,chassis=${i}`);
  for (const h of s.hostdevs) {
    const props = [`vfio-pci`, `host=${h.host}`, `bus=rp${h.guestBus}`, `addr=00.${h.guestFunction}`];
    if (h.multifunction) props.push('multifunction=on');
    if (h.rom) props.push(`romfile=${qv(h.rom)}`);
    opt('-device', props.join(','));
  }
  if (s.disk) {
    opt('-drive', `file=${qv(s.disk.path)},if=none,id=disk0,format=${s.disk.format},cache=none,aio=native,discard=unmap`);
    opt('-device', `virtio-blk-pci,drive=disk0,bootindex=1${s.pinning ? ',iothread=iothread1' : ''}`);
  }
  if (s.cdrom) {
    opt('-drive', `file=${qv(s.cdrom)},if=none,id=cd0,media=cdrom,readonly=on`);
    opt('-device', `ide-cd,drive=cd0,bus=ide.0,bootindex=${s.disk ? 2 : 1}`);
  }
  if (g.virtioWin) {
    opt('-drive', `file=${qv(g.virtioWin)},if=none,id=cd1,media=cdrom,readonly=on`);
    opt('-device', 'ide-cd,drive=cd1,bus=ide.1');
  }
  opt('-netdev', 'user,id=net0');
  opt('-device', 'virtio-net-pci,netdev=net0');
  g.inputs.forEach((inp, i) => opt('-object', `input-linux,id=input${i},evdev=${qv(inp.path)}${inp.kind === 'keyboard' ? ',grab_all=on,repeat=on,grab-toggle=ctrl-ctrl' : ''}`));
  if (g.tpm) {
    const dir = `/var/lib/vfiokit/vms/${s.name}/tpm`;
    const sock = `${dir}/swtpm.sock`;
    opt('-chardev', `socket,id=chrtpm,path=${qv(sock)}`);
    opt('-tpmdev', 'emulator,id=tpm0,chardev=chrtpm');
    opt('-device', 'tpm-crb,tpmdev=tpm0');
    notes.push(`TPM 2.0: start swtpm first, as its own process (it exits when QEMU disconnects): mkdir -p ${dir} && swtpm socket --tpm2 --tpmstate dir=${dir} --ctrl type=unixio,path=${sock} --terminate --daemon`);
  }
  if (g.audio) {
    opt('-audiodev', `pa,id=snd0,server=${qv(`unix:${g.audio.server}`)}`);
    opt('-device', 'ich9-intel-hda,id=sound0');
    opt('-device', 'hda-duplex,bus=sound0.0,audiodev=snd0');
  }
  if (g.lookingGlass) {
    const lg = g.lookingGlass;
    opt('-object', `memory-backend-file,id=looking-glass,mem-path=${qv(lg.path)},size=${lg.sizeMib}M,share=on`);
    opt('-device', 'ivshmem-plain,id=shmem0,memdev=looking-glass');
  }
  opt('-monitor', 'stdio');

  warnings.push(
    `memlock: VFIO pins all ${describeMemory(s.memoryKib)} of guest memory; a QEMU not running as root (no CAP_IPC_LOCK) needs RLIMIT_MEMLOCK of at least ${s.memlockKib} KiB: \`ulimit -l ${s.memlockKib}\` in its shell (raising the hard limit in /etc/security/limits.conf: memlock ${s.memlockKib}) or LimitMEMLOCK=${s.memlockKib}K in its systemd unit; otherwise it fails with "vfio_dma_map(...) = -12 (Cannot allocate memory)"`,
  );
  if (s.pinning) {
    notes.push(
      `QEMU has no pinning options: start it as \`taskset -c ${formatCpuList(s.pinning.hostCpus)} qemu-system-x86_64 …\` (emulator and I/O threads), then pin each vCPU thread (named "CPU n/KVM" in /proc/PID/task/*/comm, thanks to debug-threads=on): ${s.pinning.vcpuPins.map((c, i) => `CPU ${i}→${c}`).join(', ')} with \`taskset -pc HOSTCPU TID\``,
    );
  }
  return { argv: a, notes, warnings };
}


/** One option (with its value) per line, joined with backslash continuations: pastes into any POSIX shell. */
export function formatCommandLines(argv: string[]): string {
  const lines: string[] = [];
  let i = 0;
  lines.push(shellQuote(argv[i++]));
  while (i < argv.length) {
    const cur = argv[i];
    const next = argv[i + 1];
    if (cur.startsWith('-') && next !== undefined && !next.startsWith('-')) {
      lines.push(`  ${shellQuote(cur)} ${shellQuote(next)}`);
      i += 2;
    } else {
      lines.push(`  ${shellQuote(cur)}`);
      i += 1;
    }
  }
  return lines.join(' \\\n') + '\n';
}
