// VmSpec → libvirt domain XML (pure). Element choices follow libvirt's
// formatdomain documentation (reference §7): q35, UEFI, PCIe root ports with
// the host's multifunction layout, Hyper-V enlightenments, host-passthrough
// CPU with a topology matching the pinned cores, virtio disk and network,
// no memory balloon (VFIO pins guest memory; ballooning cannot work).

import { pciAddressParts } from '../model/pci-address.js';
import { formatCpuList } from '../formats/cpu-list.js';
import { HYPERV_VENDOR_ID, type GuestHostdev, type VmSpec } from '../vm/plan.js';
import { el, renderXml, type XmlElement } from '../formats/xml-tree.js';

const hx = (n: number, w: number) => `0x${n.toString(16).padStart(w, '0')}`;

/** One <hostdev> for a host function at its guest address. */
export function hostdevElement(h: GuestHostdev): XmlElement {
  const a = pciAddressParts(h.host);
  return el('hostdev', { mode: 'subsystem', type: 'pci', managed: 'yes' }, [
    // Explicit: libvirt 9's domxml-to-native rejects the default ("invalid PCI passthrough type 'default'").
    el('driver', { name: 'vfio' }),
    el('source', {}, [el('address', { domain: hx(a.domain, 4), bus: hx(a.bus, 2), slot: hx(a.slot, 2), function: hx(a.fn, 1) })]),
    h.rom ? el('rom', { bar: 'on', file: h.rom }) : null,
    el('address', { type: 'pci', domain: '0x0000', bus: hx(h.guestBus, 2), slot: '0x00', function: hx(h.guestFunction, 1), multifunction: h.multifunction ? 'on' : undefined }),
  ]);
}

export function rootPortElement(index: number): XmlElement {
  return el('controller', { type: 'pci', index, model: 'pcie-root-port' });
}

function buildDomain(s: VmSpec): XmlElement {
  const p = s.pinning;
  const fw = s.firmware;
  const g = s.profile;
  const fwFeatures =
    fw.kind !== 'auto'
      ? null
      : g.secureBoot
        ? el('firmware', {}, [el('feature', { enabled: 'yes', name: 'secure-boot' }), el('feature', { enabled: 'yes', name: 'enrolled-keys' })])
        : g.plainFirmwareOnly
          ? el('firmware', {}, [el('feature', { enabled: 'no', name: 'secure-boot' })])
          : null;
  const os = el('os', fw.kind === 'auto' ? { firmware: 'efi' } : {}, [
    el('type', { arch: 'x86_64', machine: 'q35' }, 'hvm'),
    fwFeatures,
    fw.kind === 'pflash' ? el('loader', { readonly: 'yes', secure: fw.secure ? 'yes' : undefined, type: 'pflash' }, fw.code) : null,
    fw.kind === 'pflash' ? el('nvram', { template: fw.varsTemplate ?? undefined }, fw.nvram) : null,
  ]);
  const features = el('features', {}, [
    el('acpi'),
    el('apic'),
    g.hyperv
      ? el('hyperv', { mode: 'custom' }, [
          el('relaxed', { state: 'on' }),
          el('vapic', { state: 'on' }),
          el('spinlocks', { state: 'on', retries: 8191 }),
          el('vpindex', { state: 'on' }),
          g.os ? el('runtime', { state: 'on' }) : null,
          el('synic', { state: 'on' }),
          el('stimer', { state: 'on' }),
          el('reset', { state: 'on' }),
          s.nvidia ? el('vendor_id', { state: 'on', value: HYPERV_VENDOR_ID }) : null,
          el('frequencies', { state: 'on' }),
          g.os ? el('tlbflush', { state: 'on' }) : null,
          g.os ? el('ipi', { state: 'on' }) : null,
        ])
      : null,
    s.nvidia ? el('kvm', {}, [el('hidden', { state: 'on' })]) : null,
    el('vmport', { state: 'off' }),
    g.smm ? el('smm', { state: 'on' }) : null,
    el('ioapic', { driver: 'kvm' }),
  ]);
  const t = s.topology;
  const cpu = el('cpu', { mode: 'host-passthrough', check: 'none', migratable: 'on' }, [
    el('topology', { sockets: t.sockets, dies: t.dies, cores: t.cores, threads: t.threads }),
    el('cache', { mode: 'passthrough' }),
    s.cpuVendor === 'amd' && t.threads > 1 ? el('feature', { policy: 'require', name: 'topoext' }) : null,
  ]);
  const cputune = p
    ? el('cputune', {}, [
        ...p.vcpuPins.map((c, i) => el('vcpupin', { vcpu: i, cpuset: String(c) })),
        el('emulatorpin', { cpuset: formatCpuList(p.hostCpus) }),
        el('iothreadpin', { iothread: 1, cpuset: formatCpuList(p.hostCpus) }),
      ])
    : null;
  const disk = s.disk
    ? el('disk', { type: s.disk.block ? 'block' : 'file', device: 'disk' }, [
        el('driver', { name: 'qemu', type: s.disk.format, cache: 'none', io: 'native', discard: 'unmap', iothread: p ? 1 : undefined }),
        el('source', s.disk.block ? { dev: s.disk.path } : { file: s.disk.path }),
        el('target', { dev: 'vda', bus: 'virtio' }),
        el('boot', { order: 1 }),
      ])
    : null;
  const cdrom = s.cdrom
    ? el('disk', { type: 'file', device: 'cdrom' }, [
        el('driver', { name: 'qemu', type: 'raw' }),
        el('source', { file: s.cdrom }),
        el('target', { dev: 'sda', bus: 'sata' }),
        el('readonly'),
        el('boot', { order: s.disk ? 2 : 1 }),
      ])
    : null;
  const virtioWin = g.virtioWin
    ? el('disk', { type: 'file', device: 'cdrom' }, [el('driver', { name: 'qemu', type: 'raw' }), el('source', { file: g.virtioWin }), el('target', { dev: 'sdb', bus: 'sata' }), el('readonly')])
    : null;
  const lg = g.lookingGlass;
  const lgBytes = lg ? lg.sizeMib * 1024 * 1024 : 0;
  return el('domain', { type: 'kvm', 'xmlns:qemu': lg?.kvmfr ? 'http://libvirt.org/schemas/domain/qemu/1.0' : undefined }, [
    el('name', {}, s.name),
    el('memory', { unit: 'KiB' }, String(s.memoryKib)),
    el('currentMemory', { unit: 'KiB' }, String(s.memoryKib)),
    s.hugepageKb ? el('memoryBacking', {}, [el('hugepages', {}, [el('page', { size: s.hugepageKb, unit: 'KiB' })]), el('allocation', { mode: 'immediate' })]) : null,
    el('vcpu', { placement: 'static' }, String(s.vcpus)),
    p ? el('iothreads', {}, '1') : null,
    cputune,
    s.memoryNode !== null ? el('numatune', {}, [el('memory', { mode: 'preferred', nodeset: String(s.memoryNode) })]) : null,
    os,
    features,
    cpu,
    el('clock', { offset: 'utc' }, [
      el('timer', { name: 'rtc', tickpolicy: 'catchup' }),
      el('timer', { name: 'pit', tickpolicy: 'delay' }),
      el('timer', { name: 'hpet', present: 'no' }),
      g.hyperv ? el('timer', { name: 'hypervclock', present: 'yes' }) : null,
    ]),
    el('on_poweroff', {}, 'destroy'),
    el('on_reboot', {}, 'restart'),
    el('on_crash', {}, 'destroy'),
    el('pm', {}, [el('suspend-to-mem', { enabled: 'no' }), el('suspend-to-disk', { enabled: 'no' })]),
    el('devices', {}, [
      disk,
      cdrom,
      virtioWin,
      el('controller', { type: 'pci', index: 0, model: 'pcie-root' }),
      ...Array.from({ length: s.rootPorts }, (_, i) => rootPortElement(i + 1)),
      ...s.hostdevs.map(hostdevElement),
      el('interface', { type: 'network' }, [el('source', { network: 'default' }), el('model', { type: 'virtio' })]),
      ...g.inputs.map((i) => el('input', { type: 'evdev' }, [el('source', i.kind === 'keyboard' ? { dev: i.path, grab: 'all', grabToggle: 'ctrl-ctrl', repeat: 'on' } : { dev: i.path })])),
      g.tpm ? el('tpm', { model: 'tpm-crb' }, [el('backend', { type: 'emulator', version: '2.0' })]) : null,
      g.audio ? el('sound', { model: 'ich9' }, [el('audio', { id: 1 })]) : null,
      g.audio ? el('audio', { id: 1, type: 'pulseaudio', serverName: `unix:${g.audio.server}` }) : null,
      lg && !lg.kvmfr ? el('shmem', { name: 'looking-glass' }, [el('model', { type: 'ivshmem-plain' }), el('size', { unit: 'M' }, String(lg.sizeMib))]) : null,
      el('memballoon', { model: 'none' }),
    ]),
    lg?.kvmfr
      ? el('qemu:commandline', {}, [
          el('qemu:arg', { value: '-device' }),
          el('qemu:arg', { value: JSON.stringify({ driver: 'ivshmem-plain', id: 'shmem0', memdev: 'looking-glass' }) }),
          el('qemu:arg', { value: '-object' }),
          el('qemu:arg', { value: JSON.stringify({ 'qom-type': 'memory-backend-file', id: 'looking-glass', 'mem-path': lg.path, size: lgBytes, share: true }) }),
        ])
      : null,
  ]);
}

export function renderDomainXml(s: VmSpec): string {
  return renderXml(buildDomain(s));
}
