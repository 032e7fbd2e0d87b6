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
    el('source', {}, [el('address', { domain: hx(a.domain, 4), bus: hx(a.bus, 2), slot: hx(a.slot, 2), function: hx(a.fn, 1) })]),
    h.rom ? el('rom', { bar: 'on', file: h.rom }) : null,
    el('address', { type: 'pci', domain: '0x0000', bus: hx(h.guestBus, 2), slot: '0x00', function: hx(h.guestFunction, 1), multifunction: h.multifunction ? 'on' : undefined }),
  ]);
}

export function rootPortElement(index: number): XmlElement {
  return el('controller', { type: 'pci', index, model: 'pcie-root-port' });
}

export function buildDomain(s: VmSpec): XmlElement {
  const p = s.pinning;
  const fw = s.firmware;
  const os = el('os', fw.kind === 'auto' ? { firmware: 'efi' } : {}, [
    el('type', { arch: 'x86_64', machine: 'q35' }, 'hvm'),
    fw.kind === 'pflash' ? el('loader', { readonly: 'yes', type: 'pflash' }, fw.code) : null,
    fw.kind === 'pflash' ? el('nvram', { template: fw.varsTemplate ?? undefined }, fw.nvram) : null,
  ]);
  const features = el('features', {}, [
    el('acpi'),
    el('apic'),
    el('hyperv', { mode: 'custom' }, [
      el('relaxed', { state: 'on' }),
      el('vapic', { state: 'on' }),
      el('spinlocks', { state: 'on', retries: 8191 }),
      el('vpindex', { state: 'on' }),
      el('synic', { state: 'on' }),
      el('stimer', { state: 'on' }),
      el('reset', { state: 'on' }),
      s.nvidia ? el('vendor_id', { state: 'on', value: HYPERV_VENDOR_ID }) : null,
      el('frequencies', { state: 'on' }),
    ]),
    s.nvidia ? el('kvm', {}, [el('hidden', { state: 'on' })]) : null,
    el('vmport', { state: 'off' }),
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
  return el('domain', { type: 'kvm' }, [
    el('name', {}, s.name),
    el('memory', { unit: 'KiB' }, String(s.memoryKib)),
    el('currentMemory', { unit: 'KiB' }, String(s.memoryKib)),
    s.hugepageKb ? el('memoryBacking', {}, [el('hugepages', {}, [el('page', { size: s.hugepageKb, unit: 'KiB' })])]) : null,
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
      el('timer', { name: 'hypervclock', present: 'yes' }),
    ]),
    el('on_poweroff', {}, 'destroy'),
    el('on_reboot', {}, 'restart'),
    el('on_crash', {}, 'destroy'),
    el('pm', {}, [el('suspend-to-mem', { enabled: 'no' }), el('suspend-to-disk', { enabled: 'no' })]),
    el('devices', {}, [
      disk,
      cdrom,
      el('controller', { type: 'pci', index: 0, model: 'pcie-root' }),
      ...Array.from({ length: s.rootPorts }, (_, i) => rootPortElement(i + 1)),
      ...s.hostdevs.map(hostdevElement),
      el('interface', { type: 'network' }, [el('source', { network: 'default' }), el('model', { type: 'virtio' })]),
      el('memballoon', { model: 'none' }),
    ]),
  ]);
}

export function renderDomainXml(s: VmSpec): string {
  return renderXml(buildDomain(s));
}
