// The command table: names, help text and flags for every subcommand. Kept
// free of imports so `vfiokit --version` and `--help` start instantly; each
// command's code is imported only when it runs.

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  description: string;
  valueName?: string;
  /**
   * A string option whose value may be left out: given alone (or followed by
   * a word that does not match `pattern`), it means `value`.
   */
  optionalValue?: { value: string; pattern: RegExp };
}

/** Rewrites a bare option with an optional value (`--looking-glass` alone) to `--looking-glass=VALUE`. */
export function fillOptionalValues(args: string[], options: Record<string, OptionSpec>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--') return [...out, ...args.slice(i)];
    const o = a.startsWith('--') && !a.includes('=') ? options[a.slice(2)]?.optionalValue : undefined;
    if (o && !(i + 1 < args.length && o.pattern.test(args[i + 1]))) out.push(`${a}=${o.value}`);
    else out.push(a);
  }
  return out;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  description?: string;
  options: Record<string, OptionSpec>;
  /**
   * How many words besides options the command takes at most (its usage's
   * subcommand and operands); more is a usage error naming the extra ones.
   * Omitted: any number (lists of selectors or files), or the command checks them itself.
   */
  maxPositionals?: number;
  /** Module under dist/src/cli/commands exporting `run(ctx)`. */
  load: () => Promise<{ run: (ctx: import('./context.js').CommandContext) => Promise<number> }>;
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  root: { type: 'string', description: 'read (and write) the host under DIR instead of / (a snapshot or test tree)', valueName: 'DIR' },
  help: { type: 'boolean', short: 'h', description: 'show help for the command' },
};

const json: OptionSpec = { type: 'boolean', description: 'print machine-readable JSON' };
const dryRun: OptionSpec = { type: 'boolean', description: 'show what would be done; change nothing' };
const yes: OptionSpec = { type: 'boolean', short: 'y', description: 'do not ask for confirmation (required without a terminal)' };

const bootFlags: Record<string, OptionSpec> = {
  with: { type: 'string', multiple: true, description: 'also take this device of the same IOMMU group (repeatable)', valueName: 'ADDR' },
  'allow-boot-vga': { type: 'boolean', description: 'allow the boot display device (the host needs another display)' },
  'allow-root-storage': { type: 'boolean', description: 'allow the storage controller holding the root filesystem' },
  'allow-default-nic': { type: 'boolean', description: 'allow the network card carrying the default route' },
  'allow-chipset': { type: 'boolean', description: 'allow chipset functions (ISA/LPC bridge, SMBus…) that share the group (the host loses them)' },
  isolate: { type: 'string', description: 'boot-time CPU isolation of the VM CPUs: isolcpus=managed_irq,domain,LIST nohz_full=LIST rcu_nocbs=LIST irqaffinity=<the other CPUs> on the normal boot entries (alone: no device moves)', valueName: 'LIST' },
  'allow-smt-split': { type: 'boolean', description: 'with --isolate: allow host and VM to share a core\'s SMT siblings' },
  hugepages: { type: 'string', description: 'reserve huge pages at boot: hugepagesz=PAGE hugepages=N (and default_hugepagesz= when PAGE is not the default) on the normal boot entries (alone: no device moves); PAGE 2M (default) or 1G', valueName: 'SIZE[:PAGE]' },
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'check',
    maxPositionals: 0,
    summary: 'readiness report for passthrough on this host, with the fix for each failing line',
    usage: 'vfiokit check [--json]',
    description: 'Exit 0 when the host is ready, 3 when something must be fixed first.',
    options: { json },
    load: () => import('./commands/check.js'),
  },
  {
    name: 'inspect',
    maxPositionals: 0,
    summary: 'the whole host snapshot (the JSON every plan is made from)',
    usage: 'vfiokit inspect [--json]',
    description: 'The JSON schema is documented in docs/snapshot-schema.md.',
    options: { json },
    load: () => import('./commands/inspect.js'),
  },
  {
    name: 'groups',
    maxPositionals: 0,
    summary: 'IOMMU groups with names, drivers and a verdict per group; predicted vs kernel groups',
    usage: 'vfiokit groups [--json] [--gpu]',
    options: { json, gpu: { type: 'boolean', description: 'only groups that contain a GPU (display class 03xx)' } },
    load: () => import('./commands/groups.js'),
  },
  {
    name: 'diagnose',
    summary: 'turn the logs of a failed passthrough into the cause and the fix for this host',
    usage: 'vfiokit diagnose [FILE...|-] [--since boot|DURATION] [--host] [--json]',
    description:
      'Without FILE it reads this host (under --root): the kernel log of this boot (journal, dmesg or /var/log/kern.log), libvirt\'s QEMU logs and daemon journal, and vfiokit\'s journal. FILE (or - for standard input) may hold pasted dmesg, journal, syslog, QEMU or libvirt text, mixed. Findings are ranked, the first is the most likely root cause; causes are documented in docs/diagnose.md. Exit 0 when the logs were read (with or without findings).',
    options: {
      json,
      since: { type: 'string', description: 'how far back to read the host journal: boot (default) or a duration (90s, 30m, 2h, 1d)', valueName: 'boot|DURATION' },
      host: { type: 'boolean', description: 'check pasted FILEs against this host too (always on without FILE or with --root)' },
    },
    load: () => import('./commands/diagnose.js'),
  },
  {
    name: 'report',
    maxPositionals: 0,
    summary: 'one self-contained HTML page: topology, IOMMU groups by verdict, readiness, status, what can be passed',
    usage: 'vfiokit report [-o FILE.html] [--open] [--json] [--dry-run]',
    description:
      'The page needs no network (no external scripts, fonts or styles): open it from disk or send it as an attachment. Without -o it is printed on standard output. --open shows it with xdg-open (a temporary file when -o is not given). --json prints the data the page is made from.',
    options: {
      json: { type: 'boolean', description: 'print the report data as JSON instead of the page' },
      output: { type: 'string', short: 'o', description: 'write the page to FILE', valueName: 'FILE.html' },
      open: { type: 'boolean', description: 'open the written page with xdg-open' },
      'dry-run': { type: 'boolean', description: 'say what would be written, write nothing' },
    },
    load: () => import('./commands/report.js'),
  },
  {
    name: 'snapshot',
    summary: 'archive exactly the files vfiokit reads (redacted) for bug reports and test fixtures',
    usage: 'vfiokit snapshot OUT.tar.gz [--force]',
    description: 'Serial numbers, MAC addresses, hostnames, machine IDs and disk UUIDs are redacted (each disk UUID by the same stand-in everywhere, so UUID= mounts still replay). Extract the archive and pass the directory to --root. An existing OUT.tar.gz is replaced only with --force.',
    options: { force: { type: 'boolean', description: 'replace OUT.tar.gz when it exists' } },
    load: () => import('./commands/snapshot.js'),
  },
  {
    name: 'vm',
    summary: 'libvirt domain XML or QEMU command line for a passthrough VM; define it, or attach devices to a domain',
    usage: 'vfiokit vm xml|qemu|define NAME --device SELECTOR... [--with ADDR]... [--allow-boot-vga] [--allow-chipset] [--memory 8G] [--vcpus N] [--disk PATH] [--cdrom PATH] [--rom FILE] [--hugepages] [--pin auto|none]\n       [--os win11|win10|linux] [--tpm on|off] [--secure-boot on|off] [--hyperv on|off] [--virtio-win PATH|none] [--input auto|PATH,...] [--audio pipewire|pulseaudio|none] [--looking-glass [WxH|auto]] [--looking-glass-size MiB] [--hooks single-gpu,isolate,hugepages] [--connect URI] [--dry-run] [--json]\n       vfiokit vm attach DOMAIN --device SELECTOR... [--with ADDR]... [--rom FILE] [--connect URI] [--dry-run] [--json]',
    description:
      'xml prints a q35/UEFI domain with every function of each device (and every endpoint of its IOMMU group) as managed <hostdev>s in the host\'s multifunction layout, vCPUs pinned to whole host cores (core 0 left to the host), Hyper-V enlightenments. qemu prints the same VM as a QEMU command line, one option per line. define runs `virsh define` (refusing to replace an existing domain); attach adds the devices to an existing domain\'s inactive XML and redefines it. Notes and warnings go to stderr.',
    options: {
      json,
      device: { type: 'string', multiple: true, description: 'device to pass through: PCI address or vendor:device (repeatable, or comma-separated)', valueName: 'SELECTOR' },
      with: { type: 'string', multiple: true, description: 'also take this device of the same IOMMU group (repeatable)', valueName: 'ADDR' },
      'allow-boot-vga': { type: 'boolean', description: 'allow the host\'s boot display' },
      'allow-chipset': { type: 'boolean', description: 'allow chipset functions (ISA/LPC bridge, SMBus…) that share the group' },
      memory: { type: 'string', description: 'guest memory, binary units (8G, 8192M); default 8G, at most half the host', valueName: 'SIZE' },
      vcpus: { type: 'string', description: 'vCPU count; default: one L3 domain of whole cores, at most half the host', valueName: 'N' },
      disk: { type: 'string', description: 'virtio disk image or block device', valueName: 'PATH' },
      cdrom: { type: 'string', description: 'installer ISO (SATA CD-ROM)', valueName: 'PATH' },
      rom: { type: 'string', description: 'option ROM for the GPU, validated first', valueName: 'FILE' },
      hugepages: { type: 'boolean', description: 'back guest memory with huge pages (says how to reserve them)' },
      pin: { type: 'string', description: 'auto (default): pin vCPUs to whole host cores; none: no pinning', valueName: 'auto|none' },
      os: { type: 'string', description: 'guest profile: win11 (TPM 2.0, Secure Boot with Microsoft keys, SMM, Hyper-V, virtio-win disc), win10 (Hyper-V, virtio-win), linux (virtio, no Hyper-V, no TPM)', valueName: 'win11|win10|linux' },
      tpm: { type: 'string', description: 'emulated TPM 2.0 (swtpm, CRB); default on for win11', valueName: 'on|off' },
      'secure-boot': { type: 'string', description: 'Secure Boot firmware with Microsoft keys enrolled, SMM on; default on for win11', valueName: 'on|off' },
      hyperv: { type: 'string', description: 'Hyper-V enlightenments and clock; default off for linux', valueName: 'on|off' },
      'virtio-win': { type: 'string', description: 'virtio-win driver ISO as a second CD-ROM (default for Windows: found where distributions install it)', valueName: 'PATH|none' },
      input: { type: 'string', multiple: true, description: 'pass keyboard/mouse with evdev: auto (the by-id keyboard and mouse) or event device paths; both Ctrl keys switch host/guest', valueName: 'auto|PATH,...' },
      audio: { type: 'string', description: 'emulated HDA audio into the desktop user\'s PipeWire or PulseAudio; default none', valueName: 'pipewire|pulseaudio|none' },
      'looking-glass': { type: 'string', description: 'Looking Glass shared memory sized for the resolution (alone or auto: 1920x1080): kvmfr when loaded, else /dev/shm', valueName: 'WxH|auto', optionalValue: { value: 'auto', pattern: /^(auto|\d+x\d+)$/i } },
      'looking-glass-size': { type: 'string', description: 'Looking Glass shared memory in MiB (checked against the resolution)', valueName: 'MiB' },
      connect: { type: 'string', description: 'libvirt URI for define/attach (virsh -c), e.g. qemu:///system', valueName: 'URI' },
      hooks: { type: 'string', description: 'define: also install the domain\'s libvirt hook with these parts, comma-separated (as `hooks install --single-gpu --isolate --hugepages`, a second transaction); single-gpu implies --allow-boot-vga, hugepages implies --hugepages', valueName: 'single-gpu,isolate,hugepages' },
      'dry-run': { type: 'boolean', description: 'define/attach: print the XML and the virsh command, run nothing' },
    },
    load: () => import('./commands/vm.js'),
  },
  {
    name: 'rom',
    summary: 'GPU option ROMs (VBIOS): dump a device\'s ROM, check a file, strip a vendor header, install it where libvirt\'s QEMU may read it',
    usage:
      'vfiokit rom check FILE|SELECTOR [--device SELECTOR] [--json]\n       vfiokit rom strip IN -o OUT [--force] [--dry-run] [--json]\n       vfiokit rom dump SELECTOR [-o FILE] [--force] [--dry-run] [--yes] [--json]\n       vfiokit rom install FILE --device SELECTOR [--dry-run] [--yes] [--json]',
    description:
      'check lists every image of a file (or of a device\'s ROM: SELECTOR dumps it like `rom dump`, into /var/lib/vfiokit/rom-dumps) (offset, length, code type, IDs, class, last-image flag, legacy checksum, EFI header, NVIDIA NPDE/NPDS) and gives a verdict: usable with OVMF, legacy BIOS only (both exit 0), needs strip, wrong device (with --device), broken (exit 3). strip removes a vendor header (nvflash/GPU-Z) and bytes after the last image; a ROM that needs nothing is copied unchanged. dump is a transaction: it enables the device\'s `rom` attribute, copies it (at most the ROM BAR size) and disables it again (undo and `vfiokit recover` disable it too); -o is a host path (under --root when given). install copies a usable ROM (mode 644) to a directory libvirt\'s AppArmor abstraction / SELinux labels let QEMU read and prints the --rom to use. Files over 16 MiB (the largest ROM BAR) are refused.',
    options: {
      json,
      yes,
      device: { type: 'string', description: 'check/install: the device the ROM is for (its IDs must match)', valueName: 'SELECTOR' },
      output: { type: 'string', short: 'o', description: 'strip/dump: output file', valueName: 'FILE' },
      force: { type: 'boolean', description: 'replace an existing output file' },
      'dry-run': { type: 'boolean', description: 'dump/strip/install: show what would be done, change nothing' },
    },
    load: () => import('./commands/rom.js'),
  },
  {
    name: 'plan',
    summary: 'show what `apply` would change to bind devices to vfio-pci from boot: diffs and commands',
    usage: 'vfiokit plan SELECTOR... [--with ADDR]... [--allow-boot-vga] [--allow-root-storage] [--allow-default-nic] [--allow-chipset]\n       [--isolate LIST [--allow-smt-split]] [--hugepages SIZE[:PAGE]] [--json]\n       vfiokit plan --isolate LIST|--hugepages SIZE[:PAGE] [--json]',
    description:
      'SELECTOR is a PCI address (0000:01:00.0 or 01:00.0) or vendor:device (10de:2204). Every endpoint of the device\'s IOMMU group is included (GPU + HDMI audio + USB-C); bridges are ignored. Nothing is changed.',
    options: { json, ...bootFlags },
    load: () => import('./commands/plan.js'),
  },
  {
    name: 'apply',
    summary: 'apply the plan as one transaction (journaled, atomic, rolled back on failure)',
    usage: 'vfiokit apply SELECTOR... [--with ADDR]... [--allow-boot-vga] [--allow-root-storage] [--allow-default-nic] [--allow-chipset]\n       [--isolate LIST [--allow-smt-split]] [--hugepages SIZE[:PAGE]] [--yes] [--json] [--dry-run]\n       vfiokit apply --isolate LIST|--hugepages SIZE[:PAGE] [--yes] [--json] [--dry-run]',
    description: 'Finishes any transaction a crash left unfinished first (and refuses while one cannot be finished). Asks for confirmation on a terminal; without one, --yes is required. Reboot afterwards and run `vfiokit status`. With --json (needs --yes): the result as JSON (changed, txid, touched files, commands, rebootRequired); errors also as one JSON line on stderr.',
    options: { yes, 'dry-run': dryRun, json, ...bootFlags },
    load: () => import('./commands/apply.js'),
  },
  {
    name: 'status',
    maxPositionals: 0,
    summary: 'after reboot: check the applied passthrough is in effect (drivers, kernel arguments, /dev/vfio)',
    usage: 'vfiokit status [--json]',
    description: 'Exit 0 only when everything is in effect; otherwise each mismatch with its likely cause (exit 3). Hardware changes since apply (a passed device moved to another address, or its address now holds another device) are named with what they mean at the next boot and the command that re-targets the passthrough (also in `drift` with --json; `plan` warns about them too).',
    options: { json },
    load: () => import('./commands/status.js'),
  },
  {
    name: 'undo',
    maxPositionals: 0,
    summary: 'revert the newest (or a named) applied transaction of any kind: files byte for byte, drivers, attributes, domains',
    usage: 'vfiokit undo [--id TXID] [--yes] [--force] [--dry-run] [--json]',
    description: '--json (with --yes or --dry-run) prints the result as JSON. Refuses when a file was edited (or a device moved) since apply, listing it, unless --force (your edited version is then kept in the journal directory, and its path printed). A runtime value changed since (an IRQ affinity moved by irqbalance, AllowedCPUs set by hand) is left as it is and named; --force restores it too. --dry-run lists what would be restored or left, changing nothing, and exits 3 with the same error when the undo would be refused. With --id, refuses while a later transaction changed the same things, and names the order to undo in. `vfiokit history` lists the ids.',
    options: { yes, json, 'dry-run': dryRun, id: { type: 'string', description: 'the transaction to undo (see `vfiokit history`)', valueName: 'TXID' }, force: { type: 'boolean', description: 'restore over what changed since apply: edited files (your version is kept in the journal directory) and runtime values changed since (each is named)' } },
    load: () => import('./commands/undo.js'),
  },
  {
    name: 'bind',
    summary: 'move the selected devices\' IOMMU groups to vfio-pci now, without a reboot',
    usage: 'vfiokit bind SELECTOR... [--with ADDR]... [--allow-chipset] [--force] [--yes] [--json] [--dry-run]',
    description:
      'Every endpoint of each selected device\'s IOMMU group moves (driver_override, unbind, drivers_probe); bridges stay on pcieport. One journaled transaction: each device\'s driver and driver_override are recorded before it moves; a failure at any step puts every device back; `vfiokit unbind` or `vfiokit undo` returns them. Refused (exit 3, nothing changed) when a VM holds the group, for the boot display while it drives the console (unless --force), for bridges, and for groups shared with other devices unless taken with --with.',
    options: {
      json,
      yes,
      with: { type: 'string', multiple: true, description: 'also take this device of the same IOMMU group (repeatable)', valueName: 'ADDR' },
      force: { type: 'boolean', description: 'take the boot display even while it drives the host console' },
      'allow-chipset': { type: 'boolean', description: 'allow chipset functions (ISA/LPC bridge, SMBus…) that share the group' },
      'dry-run': dryRun,
    },
    load: () => import('./commands/bind.js'),
  },
  {
    name: 'unbind',
    summary: 'return devices from vfio-pci to the drivers they had before `vfiokit bind`',
    usage: 'vfiokit unbind SELECTOR... [--yes] [--json] [--dry-run]',
    description: 'Devices a `vfiokit bind` of this boot moved go back by undoing that transaction (exactly the recorded drivers); devices vfiokit did not bind go to the kernel\'s default driver. Refused (exit 3) while a VM holds the group.',
    options: { json, yes, 'dry-run': dryRun },
    load: () => import('./commands/unbind.js'),
  },
  {
    name: 'export',
    summary: 'hand the devices to KubeVirt, OpenStack Nova or Proxmox VE: permitted devices, aliases, mappings, node preparation',
    usage: 'vfiokit export kubevirt|nova|proxmox [SELECTOR...] [--with ADDR]... [--allow-boot-vga] [--node NAME[=DIR]]... [--resource-name DOMAIN/NAME]... [-o DIR] [--dry-run] [--json]',
    description:
      'Reads one host (--root) or several (--node NAME=DIR, e.g. extracted `vfiokit snapshot` archives). Without selectors, every GPU that is not the boot display. Each device comes with every function of its IOMMU group (audio, USB-C, UCSI): kubevirt prints the KubeVirt CR patch (permittedHostDevices.pciHostDevices), node labels, a VirtualMachine snippet and the node preparation; nova prints [pci] device_spec and alias entries and the flavor extra spec; proxmox prints /etc/pve/mapping/pci.cfg mappings. Output is validated before it is written. A node lacking the devices is skipped with the reason (exit 3; the others are still exported).',
    options: {
      json,
      node: { type: 'string', multiple: true, description: 'a node: its name and root directory (NAME alone names the --root host); repeatable', valueName: 'NAME[=DIR]' },
      'resource-name': { type: 'string', multiple: true, description: 'Kubernetes extended resource name for a device model, in vendor:device order (default from the vendor and model name)', valueName: 'DOMAIN/NAME' },
      with: { type: 'string', multiple: true, description: 'also take this device of the same IOMMU group (repeatable)', valueName: 'ADDR' },
      'allow-boot-vga': { type: 'boolean', description: 'allow the boot display device' },
      output: { type: 'string', short: 'o', description: 'write the files into DIR instead of printing them', valueName: 'DIR' },
      'dry-run': { type: 'boolean', description: 'with -o: list the files that would be written, write nothing' },
    },
    load: () => import('./commands/export.js'),
  },
  {
    name: 'recover',
    maxPositionals: 0,
    summary: 'finish what an interrupted apply or undo left half done, and retry rollbacks that could not finish',
    usage: 'vfiokit recover [--dry-run] [--json]',
    description: 'Every writing command does this first. Exit 5 while a transaction stays unfinished. --dry-run lists each unfinished transaction, whether it would be rolled back or its undo finished, and the steps it would reverse, changing nothing (exit 0).',
    options: { json, 'dry-run': dryRun },
    load: () => import('./commands/recover.js'),
  },
  {
    name: 'history',
    maxPositionals: 0,
    summary: 'every transaction: id, kind, time, what it did and its state; unreadable journals',
    usage: 'vfiokit history [--json] [--steps]',
    description: 'Exit 3 when a transaction is unfinished or a journal cannot be read.',
    options: { json, steps: { type: 'boolean', description: 'list every step of every transaction' } },
    load: () => import('./commands/history.js'),
  },
  {
    name: 'hooks',
    maxPositionals: 2,
    summary: 'install, remove or list vfiokit\'s libvirt hook for a domain (device handoff, single-GPU, CPU isolation, hugepages)',
    usage: 'vfiokit hooks install DOMAIN [--single-gpu] [--isolate] [--hugepages] [--vfiokit PATH] [--dry-run] [--json]\n       vfiokit hooks remove DOMAIN [--dry-run] [--json]\n       vfiokit hooks list [--json]',
    description:
      'install puts one executable in /etc/libvirt/hooks/qemu.d/ (libvirt >= 6.5 runs it for every domain; it exits at once for other domains) that runs `vfiokit handoff prepare|release DOMAIN` with the flags given here. At prepare: hugepages reserve (--hugepages), the device handoff, then the CPU isolation (--isolate); a failure undoes the parts before it and libvirt refuses the start. At release (every stop: shutdown, virsh destroy, a QEMU crash, a failed start): isolation undone, devices given back, hugepages released, each tried even when one before it fails; the exit and the log name what did not come back. An existing /etc/libvirt/hooks/qemu is left as it is. One transaction: `vfiokit undo --id TXID` reverts it (installing again with other flags replaces the hook, and undo gives back the old one byte for byte). --isolate is checked against this host at install (the refusals of `vfiokit isolate DOMAIN`). Says when libvirtd/virtqemud must be restarted to see a first hook.',
    options: {
      json,
      'single-gpu': { type: 'boolean', description: 'the host\'s only GPU: stop the display manager, release consoles, framebuffer and driver first, and give them back after' },
      isolate: { type: 'boolean', description: 'while the VM runs, keep the host\'s units, movable IRQs and unbound workqueues off its CPUs (as `vfiokit isolate DOMAIN --irqs --workqueues`: its <vcpupin>s or the pinning plan)' },
      hugepages: { type: 'boolean', description: 'reserve the domain\'s hugepages before it starts and release them after (`vfiokit hugepages reserve --domain DOMAIN`)' },
      'dry-run': { type: 'boolean', description: 'print the plan, change nothing' },
      vfiokit: { type: 'string', description: 'command the hook runs vfiokit with (default: this installation)', valueName: 'PATH' },
    },
    load: () => import('./commands/hooks.js'),
  },
  {
    name: 'handoff',
    maxPositionals: 2,
    summary: 'hand a domain\'s devices from the host to vfio-pci (prepare) and back (release); what the libvirt hook runs',
    usage: 'vfiokit handoff prepare|release DOMAIN [--single-gpu] [--isolate] [--hugepages] [--hook] [--timeout S] [--dry-run] [--json]\n       vfiokit handoff release DOMAIN ... [--reason REASON]\n       vfiokit handoff status [DOMAIN] [--json]',
    description:
      'Reads the domain XML from stdin (--hook, as libvirt passes it) or /etc/libvirt/qemu/DOMAIN.xml and never calls libvirt. prepare moves every function of every hostdev group to vfio-pci as one transaction (with --single-gpu first: display manager stopped, GPU users waited for, framebuffer consoles unbound, firmware framebuffer released, NVIDIA modules unloaded); a failure rolls everything back and exits non-zero so libvirt refuses the start. release undoes that transaction, trying every step, then checks that the display came back and prints the fix for what did not. --hugepages reserves the domain\'s hugepages first and --isolate restricts the host\'s units to the other CPUs last, each its own transaction; a failure of one undoes those before it (exit 3/4 as the failed part, 5 when something could not be given back). release with them: isolation undone, devices back, hugepages released, every part tried; exit 1 names the parts that did not come back. A vfiokit killed mid-prepare leaves its transaction unfinished: libvirt then runs release, which recovers it first and gives back the rest.',
    options: {
      json,
      'single-gpu': { type: 'boolean', description: 'the GPU is the host\'s display: free it from the desktop first' },
      hook: { type: 'boolean', description: 'run as the libvirt hook: read the domain XML from stdin' },
      isolate: { type: 'boolean', description: 'prepare: then move the host\'s units, movable IRQs and unbound workqueues off the VM\'s CPUs; release: give them back first' },
      hugepages: { type: 'boolean', description: 'prepare: reserve the domain\'s hugepages first; release: release them last' },
      reason: { type: 'string', description: 'release: the shutoff reason libvirt passes (logged)', valueName: 'REASON' },
      timeout: { type: 'string', description: 'seconds to wait for processes to close the GPU (default 10)', valueName: 'S' },
      'dry-run': { type: 'boolean', description: 'print the plan, change nothing' },
    },
    load: () => import('./commands/handoff.js'),
  },
  {
    name: 'isolate',
    maxPositionals: 1,
    summary: 'keep the host off the VM\'s CPUs while it runs (systemd AllowedCPUs, IRQs, workqueues, governor), and give every value back',
    usage: 'vfiokit isolate DOMAIN|--cpus LIST [--irqs] [--workqueues] [--governor G] [--allow-smt-split] [--dry-run] [--json]\n       vfiokit isolate --undo [--force] [--dry-run] [--json]',
    description:
      'One transaction, runtime only (nothing survives a reboot): `systemctl set-property --runtime` AllowedCPUs= of system.slice, user.slice and init.scope to the host CPUs (every online CPU not given to the VM); machine.slice keeps the VM CPUs. The VM CPUs are --cpus, the domain\'s <vcpupin>s, or the pinning plan `vm xml --pin auto` makes for its <vcpu> count. --irqs moves every IRQ that reaches a VM CPU and the default affinity to the host CPUs (IRQs the kernel keeps — managed ones — are counted, not failed); --workqueues the unbound workqueue cpumask; --governor the VM CPUs\' cpufreq governor. Each value before (AllowedCPUs "not set" and the runtime drop-in included) is journaled; --undo (or `vfiokit undo`) restores them exactly; a value changed since the isolation (AllowedCPUs or an IRQ affinity set by hand, irqbalance) is left as it is and named, and every other value is given back; --undo --force restores the recorded values over it too and says which; `vfiokit recover` finishes one cut off. Refused (exit 3, nothing changed): cgroup v1 or hybrid, no systemd, no cpuset controller, CPUs absent or offline, no CPU left to the host, SMT siblings split between host and VM (unless --allow-smt-split). A malformed list is exit 2.',
    options: {
      json,
      'dry-run': dryRun,
      cpus: { type: 'string', description: 'the VM\'s CPUs, in the kernel\'s list format (2-7,10-15)', valueName: 'LIST' },
      irqs: { type: 'boolean', description: 'move movable IRQs and the default IRQ affinity to the host CPUs' },
      workqueues: { type: 'boolean', description: 'move unbound workqueues to the host CPUs' },
      governor: { type: 'string', description: 'cpufreq governor for the VM CPUs (e.g. performance)', valueName: 'G' },
      'allow-smt-split': { type: 'boolean', description: 'allow host and VM to share a core\'s SMT siblings' },
      undo: { type: 'boolean', description: 'give back what the isolation of this boot changed' },
      force: { type: 'boolean', description: 'with --undo: restore the recorded values even over ones changed since the isolation (without it those are left as they are; each is reported either way)' },
    },
    load: () => import('./commands/isolate.js'),
  },
  {
    name: 'hugepages',
    maxPositionals: 2,
    summary: 'reserve huge pages for a running VM as a transaction (compaction, then nr_hugepages), release them exactly, show the pools',
    usage: 'vfiokit hugepages reserve SIZE|--domain DOMAIN [--page 2M|1G] [--node N] [--hook] [--dry-run] [--json]\n       vfiokit hugepages release [DOMAIN] [--dry-run] [--json]\n       vfiokit hugepages [status] [--json]',
    description:
      'reserve is one transaction (kind hugepages, tagged with the domain): write 1 to /proc/sys/vm/compact_memory (a one-shot trigger, nothing to restore), then raise nr_hugepages of the pool (a NUMA node\'s with --node or when the domain\'s pinned CPUs or GPU sit on one node of several, else the global pool) by what free pages do not already cover; the value before is journaled. SIZE is in binary units as for `vm --memory` (8G, 8192M); --domain takes the size from the domain\'s <memory>, the page from its <memoryBacking><hugepages><page> (else 2M), reading /etc/libvirt/qemu/DOMAIN.xml (or stdin with --hook). When the kernel gives fewer pages than asked (fragmented memory) everything is rolled back and the exit is 3, with the shortfall and the boot-time alternative `vfiokit apply --hugepages SIZE[:PAGE]`. The same need again is "in effect already" (exit 0). release undoes the reservation of DOMAIN (else the latest one); nothing to release is exit 0; `vfiokit undo` and `vfiokit recover` work too. Refused (exit 3, nothing changed): 1G pages without the CPU\'s pdpe1gb flag, a size that is not a multiple of the page, more than MemAvailable (a node\'s MemFree with a node), an absent node, an unknown domain. status lists every pool by size and node (total, free, surplus) and which vfiokit transaction holds pages.',
    options: {
      json,
      'dry-run': dryRun,
      domain: { type: 'string', description: 'reserve for this libvirt domain (size, page size and node from its XML)', valueName: 'DOMAIN' },
      page: { type: 'string', description: 'huge page size: 2M (default) or 1G', valueName: '2M|1G' },
      node: { type: 'string', description: 'the NUMA node whose pool is raised (default: the domain\'s, else the global pool)', valueName: 'N' },
      hook: { type: 'boolean', description: 'with --domain: read the domain XML from stdin (as libvirt passes it to its hook)' },
    },
    load: () => import('./commands/hugepages.js'),
  },
];

export const EXIT_CODES_HELP = `Exit codes:
  0  success (or nothing to do); for check/status: ready / in effect
  1  failure
  2  usage error (unknown command, flag or malformed selector)
  3  preconditions not met; nothing was changed
  4  apply failed and everything done was rolled back
  5  rollback incomplete; the journal ID is printed
  141  the reader of the output went away (\`vfiokit … | head\`); nothing else is printed`;
