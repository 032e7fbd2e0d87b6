// Lines from public user reports outside the shared corpus, as the users
// pasted them (the URL of each is given), with the cause the thread settled
// on: the first finding must be that cause, and no other cause may be high.

import { describe, expect, it } from 'vitest';
import { diagnoseLines } from '../../../src/analysis/diagnose/engine.js';

const REPORTS: { url: string; lines: string[]; cause: string; device?: string; limitKiB?: number }[] = [
  {
    url: 'https://github.com/seapath/meta-seapath/issues/166',
    lines: [
      'sudo virsh start --console myVM',
      "error: Failed to start domain 'myVM'",
      'error: internal error: qemu unexpectedly closed the monitor: 2024-02-07T09:02:08.234524Z qemu-system-x86_64: -device vfio-pci,host=0000:07:00.0,id=hostdev0,bus=pci.2,addr=0x0: VFIO_MAP_DMA failed: Cannot allocate memory',
      '2024-02-07T09:02:08.235790Z qemu-system-x86_64: -device vfio-pci,host=0000:07:00.0,id=hostdev0,bus=pci.2,addr=0x0: vfio 0000:07:00.0: failed to setup container for group 49: memory listener initialization failed: Region pc.ram: vfio_dma_map(0x648f08f946c0, 0x0, 0x80000000, 0x715dc0000000) = -12 (Cannot allocate memory)',
    ],
    cause: 'memlock',
    device: '0000:07:00.0',
  },
  {
    url: 'https://github.com/kubevirt/kubevirt/issues/8472',
    lines: ['# dmesg', '[  +0.001779] vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded', '# ulimit -a', 'max locked memory       (kbytes, -l) 64', 'max memory size         (kbytes, -m) unlimited'],
    cause: 'memlock',
    limitKiB: 64,
  },
  {
    url: 'https://github.com/intel/gvt-linux/issues/60',
    lines: [
      'Jul 28 16:14:53 s510u kernel: vfio_pin_page_external: Task qemu-system-x86 (575712) RLIMIT_MEMLOCK (1048576) exceeded',
      'Jul 28 16:14:53 s510u kernel: gvt: vgpu 1: vfio_pin_pages failed for gfn 0x1d7b8a, ret -12',
      'Jul 28 16:14:53 s510u kernel: gvt: vgpu 1: fail to populate guest ggtt entry',
    ],
    cause: 'memlock',
    limitKiB: 1024,
  },
  {
    url: 'https://github.com/foxlet/vmra1n/issues/17',
    lines: ['qemu-system-x86_64: -device vfio-pci,host=00:14.0,bus=port.1: vfio error: 0000:00:14.0: failed to open /dev/vfio/2: No such file or directory'],
    cause: 'vfio_not_bound',
    device: '0000:00:14.0',
  },
  {
    url: 'https://github.com/foxlet/macOS-Simple-KVM/issues/497',
    lines: [
      '$ ./basic.sh ',
      'qemu-system-x86_64: -device vfio-pci,host=0000:00:02.0,multifunction=on: vfio 0000:00:02.0: failed to open /dev/vfio/1: No such file or directory',
      '[ 0.033906] DMAR: IOMMU enabled',
      '[ 0.069581] DMAR-IR: IOAPIC id 2 under DRHD base 0xfed91000 IOMMU 3',
      '[ 0.505730] pci 0000:00:02.0: DMAR: Skip IOMMU disabling for graphics',
    ],
    cause: 'vfio_not_bound',
    device: '0000:00:02.0',
  },
  {
    url: 'https://github.com/kubevirt/kubevirt/issues/6771',
    lines: [
      "    LibvirtError(Code=1, Domain=10, Message='internal error: ",
      '            2021-11-04T10:57:09.806965Z qemu-kvm: warning: host doesn\'t support requested feature: CPUID.40000001H:EAX.kvm-asyncpf-int [bit 14]',
      '            2021-11-04T10:57:09.827813Z qemu-kvm: -device vfio-pci,host=0000:af:04.7,id=ua-sriov-sriov-vlan,bus=pci.6,addr=0x0: vfio 0000:af:04.7: failed to setup container for group 106: failed to open /dev/vfio/vfio: Permission denied',
    ],
    cause: 'vfio_permission',
    device: '0000:af:04.7',
  },
  {
    url: 'https://github.com/retspen/webvirtcloud/issues/536',
    lines: ['libvirt Error - Hook script execution failed: internal error: Child process (LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/snap/bin /etc/libvirt/hooks/qemu test prepare begin -) unexpected exit status 1'],
    cause: 'hook_failed',
  },
  {
    url: 'https://github.com/bryansteiner/gpu-passthrough-tutorial/issues/23',
    lines: [
      "Unable to complete install: 'Hook script execution failed: internal error: Child process (LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /etc/libvirt/hooks/qemu win10 prepare begin -) unexpected exit status 1: error: unknown command: 'nodedev-detach=pci_0000_04:00.0'",
      "error: Could not find matching device 'pci_0000_04:00.1'",
      "error: Node device not found: no node device with matching name 'pci_0000_04:00.1'",
    ],
    cause: 'hook_failed',
  },
  {
    url: 'https://github.com/PassthroughPOST/VFIO-Tools/issues/17',
    lines: ['Hook 脚本执行失败：内部错误：子进程（LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/bin USER=root /etc/libvirt/hooks/qemu 1.lux release end shutdown）意外 退出状态 137: + modprobe -r vfio_pci', '                                        + modprobe -r vfio_iommu_type1'],
    cause: 'hook_failed',
  },
  {
    url: 'https://github.com/NVIDIA/nvtrust/issues/46',
    lines: ["qemu-system-x86_64: -device vfio-pci,host=b0:00.0,bus=pci.1: warning: vfio_register_ram_discard_listener: possibly running out of DMA mappings. E.g., try increasing the 'block-size' of virtio-mem devies. Maximum possible DMA mappings: 65535, Maximum possible memslots: 32764"],
    cause: 'dma_entry_limit',
  },
  {
    url: 'https://github.com/cloud-hypervisor/cloud-hypervisor/issues/165',
    lines: ['`[  365.159219] vfio_pin_pages_remote: RLIMIT_MEMLOCK (4194304) exceeded`'],
    cause: 'memlock',
    limitKiB: 4096,
  },
  {
    url: 'https://github.com/VoltCyclone/PCILeechFWGenerator/issues/560',
    lines: ['[  188.562656] vfio-pci 0000:02:00.0: resetting', '[  188.673718] vfio-pci 0000:02:00.0: reset done', '[  194.862669] vfio-pci 0000:02:00.0: No device request channel registered, blocked until released by user'],
    cause: 'detach_hang',
    device: '0000:02:00.0',
  },
];

describe('lines from public user reports (not in the corpus)', () => {
  for (const r of REPORTS)
    it(`${r.cause}: ${r.url}`, () => {
      const d = diagnoseLines(r.lines, 'report');
      expect(d.findings[0]?.cause).toBe(r.cause);
      if (r.device) expect(d.findings[0].devices).toContain(r.device);
      for (const f of d.findings.slice(1)) if (f.confidence === 'high') expect.fail(`a second high-confidence cause: ${f.cause}`);
      if (r.limitKiB !== undefined) expect(d.facts.memlockKiB).toBe(r.limitKiB);
    });
});
