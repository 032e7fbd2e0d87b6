// The streamed path: chunks cut anywhere at line ends, bytes cut anywhere
// (inside a UTF-8 character too), give the same diagnosis as the lines fed
// one by one; the prefilter never hides a message a rule knows, whatever the
// case and whatever surrounds it.

import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Diagnoser, diagnoseLines } from '../../../src/analysis/diagnose/engine.js';
import { streamLines } from '../../../src/host/logs.js';

const LINES = [
  '[   12.345678] usb 1-2: new high-speed USB device number 3 using xhci_hcd',
  '[   12.400000] pci 0000:00:01.0: Adding to iommu group 1',
  'Jun  4 07:25:13 pve1 kernel: [   13.000001] e1000e 0000:00:1f.6 eno1: NIC Link is Up',
  "[   15.000000] vfio-pci 0000:01:00.0: BAR 0: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]",
  'qemu-system-x86_64: -device vfio-pci,host=01:00.0: vfio 0000:01:00.0: group 8 is not viable',
  '[   44.230103] vfio_pin_pages_remote: RLIMIT_MEMLOCK (33554432) exceeded',
  'LC_ALL=C /usr/bin/qemu-system-x86_64 -machine q35 -m 4096 -device vfio-pci,host=01:00.0',
  'Gerät wurde zurückgesetzt — ünïcödé ✓ 0000:02:00.0 not ready 1023ms after FLR; waiting',
  '',
  'DMAR: DRHD: handling fault status reg 3',
  'kvm: already loaded vendor module',
];

const whole = (lines: string[]) => {
  const d = new Diagnoser();
  lines.forEach((l, i) => d.feed(l, 'x', i + 1));
  return d.result();
};

describe('streamed chunks and bytes', () => {
  it('chunks cut at any line ends give the same result as single lines', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...LINES), { minLength: 1, maxLength: 60 }), fc.array(fc.nat(), { maxLength: 10 }), (lines, cuts) => {
        const d = new Diagnoser();
        const at = [...new Set(cuts.map((c) => c % lines.length))].sort((a, b) => a - b);
        let first = 0;
        for (const end of [...at, lines.length]) {
          if (end <= first) continue;
          expect(d.feedText(lines.slice(first, end).join('\n') + '\n', 'x', first + 1)).toBe(end - first);
          first = end;
        }
        expect(d.result()).toEqual(whole(lines));
      }),
    );
  });
  it('bytes cut anywhere (inside a UTF-8 character too) stream to the same result', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...LINES), { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 12 }), fc.boolean(), async (lines, cuts, trailing) => {
        const bytes = Buffer.from(lines.join('\n') + (trailing ? '\n' : ''), 'utf8');
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces: Buffer[] = [];
        let prev = 0;
        for (const c of [...at, bytes.length]) {
          pieces.push(bytes.subarray(prev, c));
          prev = c;
        }
        const d = new Diagnoser();
        const n = await streamLines(Readable.from(pieces), 'x', (text, src, first) => d.feedText(text, src, first));
        // a stream's last empty line (after the final newline) is no line
        const trimmed = trailing || lines[lines.length - 1] !== '' ? whole(lines) : whole(lines.slice(0, -1));
        expect(n).toBe(trimmed.linesRead);
        expect(d.result()).toEqual(trimmed);
      }),
    );
  });
  it('facts come from the lines: the guest memory from -m, the limit from the kernel warning (bytes → KiB)', () => {
    const r = whole(LINES);
    expect(r.facts).toEqual({ guestMemoryMiB: 4096, memlockKiB: 32768 });
    expect(r.findings[0].cause).toBe('bar_reserved_by_framebuffer');
    expect(r.findings.map((f) => f.cause)).toContain('memlock');
  });
});

describe('the prefilter hides no message', () => {
  const MESSAGES: [string, string][] = [
    ['vfio 0000:01:00.0: group 8 is not viable', 'group_not_viable'],
    ['vfio_pin_pages_remote: RLIMIT_MEMLOCK (33554432) exceeded', 'memlock'],
    ['vfio-pci 0000:09:00.0: not ready 65535ms after FLR; giving up', 'reset_failed'],
    ["vfio-pci 0000:01:00.0: BAR 0: can't reserve [mem 0xc0000000-0xcfffffff 64bit pref]", 'bar_reserved_by_framebuffer'],
    ['vfio-pci 0000:0b:00.0: Relaying device request to user (#10)', 'detach_hang'],
  ];
  it('whatever surrounds the message on its line', () => {
    fc.assert(
      fc.property(fc.constantFrom(...MESSAGES), fc.string({ maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 30 }), ([msg, cause], before, after) => {
        const line = `${before.replace(/[\r\n]/g, '')} ${msg} ${after.replace(/[\r\n]/g, '')}`;
        expect(diagnoseLines([line]).findings.map((f) => f.cause)).toContain(cause);
      }),
    );
  });
});
