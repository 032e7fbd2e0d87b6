// Scenario 6 — the VBIOS pipeline on a real kernel, in a fast-boot guest:
// QEMU's emulated VGA device (1234:1111, behind a root port, not the boot
// display) carries SeaBIOS's vgabios-stdvga.bin in its ROM BAR. `vfiokit rom
// dump` must give that file back byte for byte through the kernel's `rom`
// attribute, `rom check` must call it legacy x86 with the device's IDs, and
// the attribute must be disabled afterwards (reading it fails with EINVAL) —
// also after vfiokit is killed with SIGKILL in the middle of a dump and
// `vfiokit recover` ran.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bootFast } from '../lib/fast-guest.js';
import { guestOutputs } from '../lib/guest-script.js';
import type { TestContext, TestDef } from '../lib/harness.js';
import { repoRoot } from '../lib/util.js';
import { BOOT_HELPERS } from '../lib/session.js';

/** The file QEMU loads into the VGA device's ROM BAR (its romfile default, vgabios-stdvga.bin from QEMU's data directory; Debian links it to SeaBIOS's). */
export const STDVGA_ROM = '/usr/share/seabios/vgabios-stdvga.bin';
const VGA_ID = '1234:1111';
const VGA_SYSFS_ID = '0x1234:0x1111';

async function romPipeline(t: TestContext): Promise<void> {
  let expected: Buffer;
  try {
    expected = readFileSync(STDVGA_ROM);
  } catch {
    return t.require(`${STDVGA_ROM} exists (package seabios)`, false, 'install seabios');
  }
  const hook = path.join(repoRoot(), 'dist', 'lab', 'guest', 'pause-rom-read.js');
  const script = `${BOOT_HELPERS}
lab_coldplug
GPU=$(lab_find ${VGA_SYSFS_ID} | head -n 1)
S=\${GPU#0000:}
echo "$GPU" >"$LAB_OUT/gpu"
cat "/sys/bus/pci/devices/$GPU/boot_vga" >"$LAB_OUT/boot_vga" 2>/dev/null
# rom_readable NAME: can the rom attribute be read now (it can only after "1" was written)?
rom_readable() { if cat "/sys/bus/pci/devices/$GPU/rom" >/dev/null 2>"$LAB_OUT/$1.readerr"; then echo yes; else echo no; fi >"$LAB_OUT/$1.readable"; }
rom_readable before
lab_run dump vfiokit rom dump "$S" -o /root/vga.rom --yes
cp /root/vga.rom "$LAB_OUT/vga.rom" 2>/dev/null
rom_readable after
lab_run check vfiokit rom check /root/vga.rom --device "$S" --json
# Kill -9 in the middle of a dump: the hook blocks vfiokit when it first opens the rom attribute.
export LAB_PAUSE_MARK="$LAB_OUT/paused"
NODE_OPTIONS="--import file://${hook}" $LAB_VFIOKIT rom dump "$S" -o /root/crash.rom --yes >"$LAB_OUT/crash.out" 2>"$LAB_OUT/crash.err" </dev/null &
PID=$!
_i=0; while [ ! -e "$LAB_PAUSE_MARK" ] && [ "$_i" -lt 300 ]; do sleep 0.1; _i=$((_i + 1)); done
rom_readable mid
kill -9 "$PID"; wait "$PID" 2>/dev/null
unset LAB_PAUSE_MARK
lab_run recover vfiokit recover
rom_readable recovered
if [ -e /root/crash.rom ]; then echo present; else echo absent; fi >"$LAB_OUT/crash.file"
lab_run dump2 vfiokit rom dump "$S" -o /root/vga2.rom --yes
cmp -s /root/vga.rom /root/vga2.rom && echo same >"$LAB_OUT/dump2.cmp" || echo differ >"$LAB_OUT/dump2.cmp"
rom_readable final
`;
  const r = await bootFast(t, {
    machine: { iommu: 'intel', topology: 'gpu', cpuVendor: 'GenuineIntel', memMb: 1024 },
    append: 'intel_iommu=on',
    script,
    timeoutMs: 10 * 60_000,
  });
  const { rc, out } = guestOutputs(r.read);
  const readable = (n: string) => `${(r.read(`${n}.readable`) ?? '?').trim()}${r.read(`${n}.readerr`)?.trim() ? ` (${r.read(`${n}.readerr`)!.trim()})` : ''}`;
  const gpu = (r.read('gpu') ?? '').trim();
  t.require(`the guest has the emulated VGA device ${VGA_ID}`, gpu !== '', 'lab_find found none');
  t.check('the VGA device is not the boot display (boot_vga 0)', (r.read('boot_vga') ?? '').trim() === '0', `boot_vga=${(r.read('boot_vga') ?? '').trim()}`);
  t.check('before the dump the rom attribute is not readable', readable('before').startsWith('no'), readable('before'));
  t.check('`vfiokit rom dump` exits 0', rc('dump') === 0, `exit ${rc('dump')}\n${out('dump')}`);
  let dumped: Buffer | null = null;
  try {
    dumped = readFileSync(path.join(r.outDir, 'vga.rom'));
  } catch {
    /* reported below */
  }
  t.check(`the dump equals ${STDVGA_ROM} byte for byte (${expected.length} bytes)`, dumped !== null && dumped.equals(expected), dumped ? `${dumped.length} bytes, first difference at ${firstDiff(dumped, expected)}` : 'no dump file');
  t.check('after the dump the rom attribute is disabled again (reading fails)', readable('after').startsWith('no'), readable('after'));
  let check: { verdict?: { kind?: string }; images?: { vendor: string; device: string; codeType: string; last: boolean; checksumOk: boolean | null }[] } = {};
  try {
    check = JSON.parse(r.read('check.out') ?? '{}');
  } catch {
    /* reported below */
  }
  const imgs = check.images ?? [];
  t.check('`vfiokit rom check --device` exits 0: legacy BIOS only', rc('check') === 0 && check.verdict?.kind === 'legacy-only', `exit ${rc('check')}, verdict ${check.verdict?.kind}\n${out('check').slice(0, 1500)}`);
  t.check(`check reports one legacy x86 image for ${VGA_ID}, last, checksum ok`, imgs.length === 1 && imgs[0].codeType === 'x86' && `${imgs[0].vendor}:${imgs[0].device}` === VGA_ID && imgs[0].last && imgs[0].checksumOk === true, JSON.stringify(imgs));
  t.check('mid-dump (vfiokit blocked, then killed) the rom attribute was enabled', readable('mid').startsWith('yes'), `${readable('mid')}; paused: ${(r.read('paused') ?? 'never').trim()}\n${(r.read('crash.err') ?? '').slice(-800)}`);
  t.check('`vfiokit recover` exits 0 after the kill -9', rc('recover') === 0, `exit ${rc('recover')}\n${out('recover')}`);
  t.check('after recover the rom attribute is disabled', readable('recovered').startsWith('no'), readable('recovered'));
  t.check('after recover no partial output file is left', (r.read('crash.file') ?? '').trim() === 'absent', (r.read('crash.file') ?? '').trim());
  t.log(`recover said: ${out('recover').split('\n').slice(0, 4).join(' / ')}`);
  t.check('a dump after the recovery works and gives the same bytes', rc('dump2') === 0 && (r.read('dump2.cmp') ?? '').trim() === 'same', `exit ${rc('dump2')}, ${(r.read('dump2.cmp') ?? '').trim()}\n${out('dump2').slice(-800)}`);
  t.check('the rom attribute is disabled at the end', readable('final').startsWith('no'), readable('final'));
}

function firstDiff(a: Buffer, b: Buffer): string {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return `offset ${i}`;
  return a.length === b.length ? 'none' : `length ${a.length} vs ${b.length}`;
}

export const scenario6: TestDef[] = [
  { id: '6.rom', title: 'ROM dump of the emulated VGA = vgabios-stdvga.bin; check; rom attribute disabled after, also after kill -9 + recover', needs: ['rom', 'recover'], cost: 0.5, run: romPipeline },
];
