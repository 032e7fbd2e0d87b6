// Scenario 6 — the VBIOS pipeline on a real kernel, in a fast-boot guest:
// QEMU's emulated VGA device (1234:1111, behind a root port, not the boot
// display) carries SeaBIOS's vgabios-stdvga.bin in its ROM BAR. `vfiokit rom
// dump` must give that file back byte for byte through the kernel's `rom`
// attribute, `rom check` must call it legacy x86 with the device's IDs, and
// the attribute must be disabled afterwards (reading it fails with EINVAL) —
// also after vfiokit is killed with SIGKILL in the middle of a dump and
// `vfiokit recover` ran.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { defineLabTest, outFile, type BootView } from '../lib/declare.js';
import type { TestContext } from '../lib/harness.js';
import { firstDiff, ROM_HELPERS, STDVGA_ROM } from '../lib/rom.js';
import { GPU_ID } from '../lib/gpu.js';
import { repoRoot } from '../lib/util.js';

export { STDVGA_ROM };
const VGA_ID = '1234:1111';

type RomImage = { vendor: string; device: string; codeType: string; last: boolean; checksumOk: boolean | null };

function romChecks(b: BootView, t: TestContext): void {
  const expected = readFileSync(STDVGA_ROM);
  const { rc, out } = b;
  const readable = (n: string) => `${(b.read(`${n}.readable`) ?? '?').trim()}${b.read(`${n}.readerr`)?.trim() ? ` (${b.read(`${n}.readerr`)!.trim()})` : ''}`;
  const gpu = (b.read('gpu') ?? '').trim();
  t.require(`the guest has the emulated VGA device ${VGA_ID}`, gpu !== '', 'lab_find found none');
  t.check('the VGA device is not the boot display (boot_vga 0)', (b.read('boot_vga') ?? '').trim() === '0', `boot_vga=${(b.read('boot_vga') ?? '').trim()}`);
  t.check('before the dump the rom attribute is not readable', readable('before').startsWith('no'), readable('before'));
  let dumped: Buffer | null = null;
  try {
    dumped = readFileSync(outFile(b, 'vga.rom'));
  } catch {
    /* reported below */
  }
  t.check(`the dump equals ${STDVGA_ROM} byte for byte (${expected.length} bytes)`, dumped !== null && dumped.equals(expected), dumped ? `${dumped.length} bytes, first difference at ${firstDiff(dumped, expected)}` : 'no dump file');
  t.check('after the dump the rom attribute is disabled again (reading fails)', readable('after').startsWith('no'), readable('after'));
  const check = b.json<{ verdict?: { kind?: string } }>('check') ?? {};
  t.check('`vfiokit rom check --device` exits 0: legacy BIOS only', rc('check') === 0 && check.verdict?.kind === 'legacy-only', `exit ${rc('check')}, verdict ${check.verdict?.kind}\n${out('check').slice(0, 1500)}`);
  t.check('mid-dump (vfiokit blocked, then killed) the rom attribute was enabled', readable('mid').startsWith('yes'), `${readable('mid')}; paused: ${(b.read('paused') ?? 'never').trim()}\n${(b.read('crash.err') ?? '').slice(-800)}`);
  t.check('after recover the rom attribute is disabled', readable('recovered').startsWith('no'), readable('recovered'));
  t.check('after recover no partial output file is left', (b.read('crash.file') ?? '').trim() === 'absent', (b.read('crash.file') ?? '').trim());
  t.log(`recover said: ${out('recover').split('\n').slice(0, 4).join(' / ')}`);
  t.check('a dump after the recovery works and gives the same bytes', rc('dump2') === 0 && (b.read('dump2.cmp') ?? '').trim() === 'same', `exit ${rc('dump2')}, ${(b.read('dump2.cmp') ?? '').trim()}\n${out('dump2').slice(-800)}`);
  t.check('the rom attribute is disabled at the end', readable('final').startsWith('no'), readable('final'));
}

const hook = path.join(repoRoot(), 'dist', 'lab', 'guest', 'pause-rom-read.js');

export const scenario6 = [
  defineLabTest({
    id: '6.rom',
    title: 'ROM dump of the emulated VGA = vgabios-stdvga.bin; check; rom attribute disabled after, also after kill -9 + recover',
    needs: ['rom', 'recover'],
    cost: 0.5,
    guest: { kind: 'fast' },
    machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1024 },
    helpers: [ROM_HELPERS],
    prepare: (t) => t.require(`${STDVGA_ROM} exists (package seabios)`, existsSync(STDVGA_ROM), 'install seabios'),
    boots: [
      {
        name: 'boot',
        timeoutMs: 10 * 60_000,
        steps: [
          'lab_coldplug',
          `GPU=$(lab_find ${GPU_ID} | head -n 1)`,
          'S=${GPU#0000:}',
          'echo "$GPU" >"$LAB_OUT/gpu"',
          'cat "/sys/bus/pci/devices/$GPU/boot_vga" >"$LAB_OUT/boot_vga" 2>/dev/null',
          'rom_readable before',
          { label: 'dump', run: 'vfiokit rom dump "$S" -o /root/vga.rom --yes', expectExit: 0, check: '`vfiokit rom dump` exits 0' },
          'cp /root/vga.rom "$LAB_OUT/vga.rom" 2>/dev/null',
          'rom_readable after',
          {
            label: 'check',
            run: 'vfiokit rom check /root/vga.rom --device "$S" --json',
            expectJson: {
              check: `check reports one legacy x86 image for ${VGA_ID}, last, checksum ok`,
              ok: (j) => {
                const imgs = (j.images ?? []) as RomImage[];
                return imgs.length === 1 && imgs[0]!.codeType === 'x86' && `${imgs[0]!.vendor}:${imgs[0]!.device}` === VGA_ID && imgs[0]!.last && imgs[0]!.checksumOk === true;
              },
              detail: (j) => JSON.stringify(j.images ?? []),
            },
          },
          '# Kill -9 in the middle of a dump: the hook blocks vfiokit when it first opens the rom attribute.',
          'export LAB_PAUSE_MARK="$LAB_OUT/paused"',
          `NODE_OPTIONS="--import file://${hook}" $LAB_VFIOKIT rom dump "$S" -o /root/crash.rom --yes >"$LAB_OUT/crash.out" 2>"$LAB_OUT/crash.err" </dev/null &`,
          'PID=$!',
          '_i=0; while [ ! -e "$LAB_PAUSE_MARK" ] && [ "$_i" -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done',
          'rom_readable mid',
          'kill -9 "$PID"; wait "$PID" 2>/dev/null',
          'unset LAB_PAUSE_MARK',
          { label: 'recover', run: 'vfiokit recover', expectExit: 0, check: '`vfiokit recover` exits 0 after the kill -9' },
          'rom_readable recovered',
          'if [ -e /root/crash.rom ]; then echo present; else echo absent; fi >"$LAB_OUT/crash.file"',
          { label: 'dump2', run: 'vfiokit rom dump "$S" -o /root/vga2.rom --yes' },
          'cmp -s /root/vga.rom /root/vga2.rom && echo same >"$LAB_OUT/dump2.cmp" || echo differ >"$LAB_OUT/dump2.cmp"',
          'rom_readable final',
        ],
        checks: romChecks,
      },
    ],
  }),
];
