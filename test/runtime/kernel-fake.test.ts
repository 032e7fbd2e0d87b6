import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { twinGpus } from '../helpers/hosts.js';
import { KernelFake } from '../helpers/kernel-fake.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const make = () => {
  const d = buildFakeHost(twinGpus);
  dirs.push(d);
  return { d, k: new KernelFake(d) };
};
const code = (f: () => void) => {
  try {
    f();
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
  }
  return 'ok';
};

describe('kernel fake', () => {
  it('models bind/unbind/driver_override/drivers_probe like the kernel', () => {
    const { d, k } = make();
    const a = '0000:0b:00.0';
    k.loadModule('vfio-pci');
    expect(code(() => k.write('/sys/bus/pci/drivers/vfio-pci/bind', a))).toBe('EBUSY');
    expect(code(() => k.write('/sys/bus/pci/drivers/vfio-pci/unbind', a))).toBe('ENODEV');
    k.write('/sys/bus/pci/drivers/nvidia/unbind', a);
    expect(k.driverOf(a)).toBeNull();
    expect(fs.existsSync(path.join(d, 'sys/bus/pci/drivers/nvidia', a))).toBe(false);
    // vfio-pci matches only through driver_override.
    expect(code(() => k.write('/sys/bus/pci/drivers/vfio-pci/bind', a))).toBe('ENODEV');
    k.write(`/sys/bus/pci/devices/${a}/driver_override`, 'vfio-pci\n');
    expect(fs.readFileSync(path.join(d, 'sys/bus/pci/devices', a, 'driver_override'), 'utf8')).toBe('vfio-pci\n');
    expect(code(() => k.write('/sys/bus/pci/drivers/nvidia/bind', a))).toBe('ENODEV');
    k.write('/sys/bus/pci/drivers_probe', a);
    expect(k.driverOf(a)).toBe('vfio-pci');
    expect(fs.readlinkSync(path.join(d, 'sys/bus/pci/drivers/vfio-pci', a))).toMatch(/^\.\.\/\.\.\/\.\.\/\.\.\/devices\/pci0000:00\/0000:00:03\.2\/0000:0b:00\.0$/);
    expect(fs.existsSync(path.join(d, 'dev/vfio/4'))).toBe(true);
    // Probe of a bound device does nothing; clearing the override does not unbind.
    k.write(`/sys/bus/pci/devices/${a}/driver_override`, '\n');
    k.write('/sys/bus/pci/drivers_probe', a);
    expect(k.driverOf(a)).toBe('vfio-pci');
    expect(k.overrideOf(a)).toBeNull();
    k.write('/sys/bus/pci/drivers/vfio-pci/unbind', a);
    expect(fs.existsSync(path.join(d, 'dev/vfio/4'))).toBe(false);
    k.write('/sys/bus/pci/drivers_probe', a);
    expect(k.driverOf(a)).toBe('nvidia'); // the recorded default
  });

  it('throws on any other write and injects failures before any effect', () => {
    const { k } = make();
    expect(code(() => k.write('/sys/bus/pci/devices/0000:0b:00.0/reset', '1'))).toMatch(/not handled write/);
    expect(code(() => k.write('/sys/bus/pci/drivers/new_id', '10de 2204'))).toMatch(/not handled write/);
    expect(code(() => k.write('/etc/passwd', 'x'))).toMatch(/not handled write/);
    const { k: k2 } = make();
    const f = new KernelFake(k2.rootDir, { failAtWrite: 2, failCode: 'EBUSY' });
    f.write('/sys/bus/pci/devices/0000:0b:00.0/driver_override', 'vfio-pci');
    expect(code(() => f.write('/sys/bus/pci/drivers/nvidia/unbind', '0000:0b:00.0'))).toBe('EBUSY');
    expect(f.driverOf('0000:0b:00.0')).toBe('nvidia');
  });
});
