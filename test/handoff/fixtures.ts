// Single-GPU desktops for the handoff tests: the GPU pair drives the console
// (fbcon on its DRM framebuffer), a display manager runs, Xorg holds the card.
import type { FakeHost, FakePci } from '../helpers/fake-host.js';

const base = (gpu: FakePci[], extra: { files?: Record<string, string>; links?: Record<string, string> }): FakeHost => ({
  cpu: { vendor: 'amd', threads: 8 },
  iommu: 'amd',
  cmdline: 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=0b7c5e0e-1111-2222-3333-444455556666 ro quiet amd_iommu=on iommu=pt',
  libvirt: true,
  pci: [
    { addr: '00:00.0', id: '1022:1480', class: 0x060000, pcie: null, group: 0 },
    { addr: '00:01.1', id: '1022:1483', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 2 },
    ...gpu,
    { addr: '00:08.1', id: '1022:1485', class: 0x060400, pcie: 'root-port', acs: 'full', driver: 'pcieport', group: 5 },
    { addr: '05:00.0', id: '144d:a808', class: 0x010802, parent: '00:08.1', driver: 'nvme', group: 6, flr: true },
  ],
  files: {
    '/etc/os-release': 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    '/sys/class/vtconsole/vtcon0/name': '(S) dummy device\n',
    '/sys/class/vtconsole/vtcon0/bind': '0\n',
    '/sys/class/vtconsole/vtcon1/name': '(M) frame buffer device\n',
    '/sys/class/vtconsole/vtcon1/bind': '1\n',
    '/sys/fs/cgroup/system.slice/gdm.service/cgroup.procs': '1201\n',
    '/proc/4242/comm': 'Xorg\n',
    '/proc/1201/comm': 'gdm3\n',
    '/proc/1201/fd/.keep': '',
    '/usr/lib/x86_64-linux-gnu/libvirt.so.0.9000.0': '',
    '/etc/libvirt/qemu/win11.xml': domainXml('win11', ['0000:01:00.0', '0000:01:00.1']),
    '/etc/libvirt/qemu/nodev.xml': domainXml('nodev', []),
    ...extra.files,
  },
  links: {
    '/etc/systemd/system/display-manager.service': '/lib/systemd/system/gdm.service',
    '/proc/4242/fd/12': '/dev/dri/card0',
    ...extra.links,
  },
  execs: ['/usr/sbin/libvirtd', '/usr/bin/virsh', '/usr/bin/qemu-system-x86_64'],
});

export function domainXml(name: string, hostdevs: string[]): string {
  const hd = hostdevs.map((a) => {
    const [dom, bus, rest] = a.split(':');
    const [slot, fn] = rest.split('.');
    return `    <hostdev mode='subsystem' type='pci' managed='yes'>\n      <source>\n        <address domain='0x${dom}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'/>\n      </source>\n    </hostdev>\n`;
  });
  return `<domain type='kvm'>\n  <name>${name}</name>\n  <memory unit='GiB'>8</memory>\n  <devices>\n${hd.join('')}  </devices>\n</domain>\n`;
}

const drm = (card: string, render: string, addr: string, conns: string[]) => ({
  files: Object.fromEntries([
    [`/sys/class/drm/${card}/dev`, '226:0\n'],
    [`/sys/class/drm/${render}/dev`, '226:128\n'],
    ...conns.map((c) => [`/sys/class/drm/${card}-${c}/status`, 'connected\n']),
    ['/sys/class/graphics/fb0/name', `${card === 'card0' ? 'amdgpudrmfb' : 'drmfb'}\n`],
    ['/proc/fb', '0 amdgpudrmfb\n'],
  ]),
  links: {
    [`/sys/class/drm/${card}/device`]: `/sys/devices/pci0000:00/0000:00:01.1/${addr}`,
    [`/sys/class/drm/${render}/device`]: `/sys/devices/pci0000:00/0000:00:01.1/${addr}`,
    '/sys/class/graphics/fb0/device': `/sys/devices/pci0000:00/0000:00:01.1/${addr}`,
  },
});

/** Radeon RX 6800 as the only GPU: amdgpu + snd_hda_intel; amdgpu removed the firmware framebuffer. */
export const singleAmd: FakeHost = (() => {
  const d = drm('card0', 'renderD128', '0000:01:00.0', ['DP-1', 'HDMI-A-1']);
  return base(
    [
      { addr: '01:00.0', id: '1002:73bf', class: 0x030000, parent: '00:01.1', driver: 'amdgpu', bootVga: true, group: 3 },
      { addr: '01:00.1', id: '1002:ab28', class: 0x040300, parent: '00:01.1', driver: 'snd_hda_intel', group: 3 },
    ],
    { files: { ...d.files, '/proc/modules': 'amdgpu 9000000 12 - Live 0x0\ndrm_ttm_helper 16384 1 amdgpu, Live 0x0\nsnd_hda_intel 57344 2 - Live 0x0\n' }, links: d.links },
  );
})();

/** GeForce RTX 2070 with the proprietary driver, efifb still registered. */
export const singleNvidia: FakeHost = (() => {
  const d = drm('card0', 'renderD128', '0000:01:00.0', ['DP-1']);
  return base(
    [
      { addr: '01:00.0', id: '10de:1f08', class: 0x030000, parent: '00:01.1', driver: 'nvidia', bootVga: true, group: 3 },
      { addr: '01:00.1', id: '10de:10f9', class: 0x040300, parent: '00:01.1', driver: 'snd_hda_intel', group: 3 },
    ],
    {
      files: {
        ...d.files,
        '/proc/modules': 'nvidia_drm 73728 4 - Live 0x0\nnvidia_modeset 1327104 6 nvidia_drm, Live 0x0\nnvidia_uvm 1384448 0 - Live 0x0\nnvidia 56201216 120 nvidia_uvm,nvidia_modeset, Live 0x0\nsnd_hda_intel 57344 2 - Live 0x0\n',
        '/sys/bus/platform/devices/efi-framebuffer.0/uevent': 'DRIVER=efi-framebuffer\n',
        '/sys/bus/platform/drivers/efi-framebuffer/unbind': '',
        '/dev/nvidia0': '',
        '/dev/nvidiactl': '',
        '/dev/nvidia-modeset': '',
        ...Object.fromEntries(['nvidia_drm', 'nvidia_modeset', 'nvidia_uvm', 'nvidia'].map((m) => [`/sys/module/${m}/refcnt`, '1\n'])),
      },
      links: { ...d.links, '/sys/bus/platform/devices/efi-framebuffer.0/driver': '/sys/bus/platform/drivers/efi-framebuffer', '/proc/4242/fd/13': '/dev/nvidiactl' },
    },
  );
})();
