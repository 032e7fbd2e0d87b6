import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inspect } from '../../src/host/inspect.js';
import { buildFakeHost } from '../helpers/fake-host.js';
import { lookingGlassMib, parseResolution } from '../../src/vm/profile.js';
import { ryzenGaming } from './hosts.js';
import * as fs from 'node:fs';

describe('Looking Glass sizing and resolutions', () => {
  it('the size is the smallest power of two holding two SDR frames + 10 MiB', () => {
    fc.assert(
      fc.property(fc.integer({ min: 320, max: 16384 }), fc.integer({ min: 200, max: 16384 }), fc.boolean(), (w, h, hdr) => {
        const need = (w * h * (hdr ? 8 : 4) * 2) / 1048576 + 10;
        const mib = lookingGlassMib(w, h, hdr);
        expect(mib & (mib - 1)).toBe(0);
        expect(mib).toBeGreaterThanOrEqual(need);
        expect(mib / 2).toBeLessThan(need);
      }),
    );
  });
  it('parseResolution reads back what it is given and refuses anything else', () => {
    fc.assert(fc.property(fc.integer({ min: 320, max: 16384 }), fc.integer({ min: 200, max: 16384 }), (w, h) => {
      expect(parseResolution(`${w}x${h}`)).toEqual({ width: w, height: h });
    }));
    fc.assert(fc.property(fc.string(), (s) => {
      if (/^\d{3,5}x\d{3,5}$/i.test(s.trim())) return;
      expect(() => parseResolution(s)).toThrow(/not a resolution/);
    }));
  });
});

describe('host facts for guest profiles', () => {
  it('reads swtpm, virtio-win, by-id input, kvmfr and the PipeWire session from the tree', () => {
    const root = buildFakeHost(ryzenGaming);
    try {
      const v = inspect(root).vmHost;
      expect(v.swtpm).toBe('/usr/bin/swtpm');
      expect(v.swtpmSetup).toBe('/usr/bin/swtpm_setup');
      expect(v.virtioWin).toEqual(['/usr/share/virtio/virtio-win.iso']);
      expect(v.inputById).toEqual(['usb-Logitech_G502_HERO-event-mouse', 'usb-Logitech_G502_HERO-mouse', 'usb-Logitech_G915_Keyboard-event-kbd']);
      expect(v.kvmfr).toEqual({ loaded: true, devices: ['kvmfr0'] });
      expect(v.sessions).toEqual([{ uid: 1000, user: 'alex', runtimeDir: '/run/user/1000', pipewire: true, pulse: true }]);
      const fw = inspect(root).firmware.ovmf;
      expect(fw.map((f) => [f.code, f.secureBoot, f.enrolledKeys, f.requiresSmm])).toEqual([
        ['/usr/share/edk2/x64/OVMF_CODE.4m.fd', false, false, false],
        ['/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd', true, true, true],
      ]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
