import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diagnoseLines, MAX_LINE } from '../../../src/analysis/diagnose/engine.js';
import { normalizeLine } from '../../../src/analysis/diagnose/normalize.js';
import { RULES } from '../../../src/analysis/diagnose/rules.js';

// Message texts as the kernel, QEMU and libvirt print them (written out here,
// not taken from the rules).
const FAILURES: [string, string][] = [
  ['vfio-pci 0000:01:00.0: BAR 0: can\'t reserve [mem 0xc0000000-0xcfffffff 64bit pref]', 'bar_reserved_by_framebuffer'],
  ['qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: group 1 is not viable', 'group_not_viable'],
  ['qemu-system-x86_64: -device vfio-pci,host=0000:03:00.0: vfio 0000:03:00.0: failed to open /dev/vfio/12: Permission denied', 'vfio_permission'],
  ['vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform', 'no_interrupt_remapping'],
  ['qemu-system-x86_64: VFIO_MAP_DMA failed: Cannot allocate memory', 'memlock'],
  ['qemu-system-x86_64: VFIO_MAP_DMA failed: No space left on device', 'dma_entry_limit'],
  ['vfio-pci 0000:0b:00.0: Relaying device request to user (#10)', 'detach_hang'],
  ['libvirt: error : Hook script execution failed: internal error: Child process (LC_ALL=C PATH=/usr/bin /etc/libvirt/hooks/qemu win10 prepare begin -) unexpected exit status 1', 'hook_failed'],
  ['qemu-system-x86_64: -device vfio-pci,host=01:00.0,x-vga=on: vfio 0000:01:00.0: Device does not support requested feature x-vga', 'x_vga_unsupported'],
  ['dracut-install: Failed to find module \'vfio_virqfd\'', 'vfio_virqfd_missing'],
  ['vfio-pci 0000:09:00.0: not ready 65535ms after FLR; giving up', 'reset_failed'],
  ['DMAR: IOMMU disabled', 'iommu_off'],
  ['vfio-pci 0000:01:00.0: Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping. Contact your platform vendor.', 'rmrr'],
  ['vfio_pin_pages_remote: RLIMIT_MEMLOCK (33554432) exceeded', 'memlock'],
  ['qemu-system-x86_64: -device vfio-pci,host=0000:01:00.0: vfio 0000:01:00.0: failed to open /dev/vfio/12: No such file or directory', 'vfio_not_bound'],
  ['vfio-pci 0000:01:00.0: probe with driver vfio-pci failed with error -22', 'iommu_off'],
  ['genirq: Flags mismatch irq 16. 00000000 (vfio-intx(0000:03:00.0)) vs. 00000080 (ehci_hcd:usb1)', 'msi_intx'],
  ['error: internal error: Non-endpoint PCI devices cannot be assigned to guests', 'bridge_assigned'],
  ["vfio-pci 0000:01:00.0: BAR 0 [mem 0xc0000000-0xcfffffff 64bit pref]: can't reserve", 'bar_reserved_by_framebuffer'],
  ['vfio-pci 0000:01:00.0: not ready 65535ms after PM D3HOT->D0; giving up', 'reset_failed'],
  ['NVRM: Xid (PCI:0000:01:00): 79, pid=1234, GPU has fallen off the bus.', 'reset_failed'],
  ['error: Requested operation is not valid: PCI device 0000:01:00.0 is in use by driver QEMU, domain win10', 'device_busy'],
];

const NOISE = [
  'usb 1-2: new high-speed USB device number 3 using xhci_hcd',
  'pci 0000:00:01.0: Adding to iommu group 1',
  'DMAR: IOMMU enabled',
  'vfio-pci 0000:01:00.0: vgaarb: changed VGA decodes: olddecodes=io+mem,decodes=io+mem:owns=none',
  'vfio-pci 0000:01:00.0: enabling device (0000 -> 0003)',
  'vfio_ecap_init: 0000:01:00.0 hiding ecap 0x19@0x900',
  'kvm: already loaded vendor module \'kvm_intel\'',
  'e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex',
  'systemd[1]: Started libvirtd.service - libvirt legacy monolithic daemon.',
];

describe('rules on kernel, QEMU and libvirt message texts', () => {
  for (const [line, cause] of FAILURES) it(cause, () => expect(diagnoseLines([line]).findings[0]?.cause).toBe(cause));
  it('healthy-host lines match nothing', () => {
    const r = diagnoseLines(NOISE);
    expect(r.findings).toEqual([]);
    expect(r.lookedAt.length).toBeGreaterThan(0);
  });
  it('a reset failure is the root of a later "device busy"', () => {
    const r = diagnoseLines([
      'vfio-pci 0000:01:00.0: not ready 65535ms after bus reset; giving up',
      'qemu-system-x86_64: vfio 0000:01:00.0: failed to open /dev/vfio/1: Device or resource busy',
    ]);
    expect(r.findings.map((f) => f.cause)).toEqual(['reset_failed', 'device_busy']);
    expect(r.findings[1].consequenceOf).toBe('reset_failed');
  });
  it('an INTx line shared with a host driver is the root of the "busy" QEMU prints', () => {
    const r = diagnoseLines(['qemu-system-x86_64: vfio: Error: Failed to setup INTx fd: Device or resource busy']);
    expect(r.findings.map((f) => [f.cause, f.confidence])).toEqual([['msi_intx', 'high'], ['device_busy', 'low']]);
  });
  it('lines healthy hosts print too stay low', () => {
    for (const line of ["qemu-system-x86_64: Could not open option rom 'sgabios.bin': No such file or directory", 'vfio: Cannot reset device 0000:01:00.1, no available reset mechanism.', 'vfio-pci 0000:01:00.0: Refused to change power state from D0 to D3hot', 'vfio-pci 0000:02:00.0: Masking broken INTx support', 'vfio-pci 0000:0b:00.0: vfio_bar_restore: 0000:0b:00.0 reset recovery - restoring BARs'])
      expect(diagnoseLines([line]).findings.map((f) => f.confidence)).toEqual(['low']);
  });
  it('a generic line never outranks a specific one', () => {
    const r = diagnoseLines(['dmar_fault: 12 callbacks suppressed', 'DMAR: DRHD: handling fault status reg 3', 'vfio-pci 0000:05:00.0: BAR 0: can\'t reserve [mem 0xd0000000-0xdfffffff 64bit pref]']);
    expect(r.findings[0].cause).toBe('bar_reserved_by_framebuffer');
  });
});

describe('properties', () => {
  const prefixes = [
    (m: string) => m,
    (m: string) => `[    3.141592] ${m}`,
    (m: string) => `[12345.000001] ${m}`,
    (m: string) => `[Tue Jan  2 10:00:00 2024] ${m}`,
    (m: string) => `Jun  4 07:25:13 pve1 kernel: ${m}`,
    (m: string) => `Jun 14 07:25:13 pve1 kernel: [   11.000000] ${m}`,
    (m: string) => `2024-06-04T07:25:13+0200 pve1 kernel: ${m}`,
    (m: string) => `2024-06-04T07:25:13.123456Z ${m}`,
    (m: string) => `2024-06-04 07:25:13.123+0000: ${m}`,
    (m: string) => `Jun 04 07:25:13 pve1 QEMU[3989106]: ${m}`,
    (m: string) => `    ${m}   `,
    (m: string) => `$ ${m}`,
    (m: string) => `**${m}**`,
    (m: string) => `(qemu) ${m}`,
  ];
  it('timestamps and prefixes are stripped in every common form', () => {
    fc.assert(
      fc.property(fc.constantFrom(...FAILURES.map((f) => f[0]), ...NOISE), fc.array(fc.integer({ min: 0, max: prefixes.length - 1 }), { minLength: 1, maxLength: 3 }), (msg, ps) => {
        const wrapped = ps.reduceRight((acc, i) => prefixes[i](acc), msg);
        // a timestamp can only come first: keep the property to realistic nestings
        const realistic = ps.length === 1 ? wrapped : prefixes[ps[0]](msg);
        expect(normalizeLine(realistic)).toBe(msg.trim());
        expect(wrapped.length).toBeGreaterThan(0);
      }),
    );
  });
  it('unrelated noise interleaved at random does not change the ranked causes', () => {
    fc.assert(
      fc.property(fc.subarray(FAILURES, { minLength: 1 }), fc.array(fc.constantFrom(...NOISE), { maxLength: 40 }), fc.integer(), (fails, noise, seed) => {
        const base = diagnoseLines(fails.map((f) => f[0])).findings.map((f) => [f.cause, f.confidence]);
        const mixed: string[] = [...noise];
        let s = seed;
        for (const [line] of fails) {
          s = (s * 1103515245 + 12345) & 0x7fffffff;
          mixed.splice(s % (mixed.length + 1), 0, line);
        }
        // keep the failures in their order: insert positions are increasing
        const ordered = mixed.filter((l) => !fails.some((f) => f[0] === l));
        let at = 0;
        const merged: string[] = [];
        for (const [line] of fails) {
          s = (s * 1103515245 + 12345) & 0x7fffffff;
          const take = ordered.length ? s % (ordered.length - at + 1) : 0;
          merged.push(...ordered.slice(at, at + take), line);
          at += take;
        }
        merged.push(...ordered.slice(at));
        expect(diagnoseLines(merged).findings.map((f) => [f.cause, f.confidence])).toEqual(base);
      }),
    );
  });
});

describe('regular expressions are linear', () => {
  // Nested unbounded quantifiers ((a+)+, (a*)*, (?:x|y+)*) are what backtracks
  // catastrophically; the sources must have none.
  const nested = /\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)[+*{]/;
  for (const r of RULES) it(`${r.id} has no nested unbounded quantifier`, () => expect(nested.test(r.re.source)).toBe(false));
  it('adversarial lines finish (each under the line cap)', () => {
    const evil = [
      'BAR 0: can\'t reserve [mem ' + '0'.repeat(10000),
      'group ' + '1'.repeat(10000) + ' is not',
      'vfio_dma_map(' + ', '.repeat(5000) + ' = -1',
      'DMAR: [DMA Read' + ']'.repeat(5000),
      '/etc/libvirt/hooks/' + 'a'.repeat(5000) + ' unexpected',
      'not ready ' + '9'.repeat(8000) + 'ms after resume',
      '{"msg":"' + '\\"'.repeat(5000),
      'Jun  4 07:25:13 ' + 'h'.repeat(9000),
      '[' + ' '.repeat(9000) + '1.',
      ...RULES.map((r) => (r.needle + ' ').repeat(2000)),
    ];
    const r = diagnoseLines(evil);
    expect(r.linesRead).toBe(evil.length);
    for (const e of r.findings.flatMap((f) => f.evidence)) expect(e.text.length).toBeLessThanOrEqual(MAX_LINE);
  });
});
