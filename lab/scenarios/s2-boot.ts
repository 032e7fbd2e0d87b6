// Scenario 2 — boot-time passthrough on each image: `vfiokit apply <gpu> --yes`,
// reboot: `vfiokit status` exits 0, both GPU functions are on vfio-pci from
// boot while the boot display keeps its driver; `vfiokit undo --yes`, reboot:
// the host drivers are back and the boot configuration is as before.
// Scenario 3 — twin identical GPUs: only the selected one moves to vfio-pci.

import { parseListing, type GuestListing } from '../lib/guest-script.js';
import type { TestContext, TestDef } from '../lib/harness.js';
import { getImage, type ImageName } from '../lib/images.js';
import { driversOf, GuestSession, outputOf, rcOf } from '../lib/session.js';
import type { FullRun } from '../lib/full-guest.js';
import { BOOT_DISPLAY_ADDR, UEFI_BOOT_DISPLAY_ADDR } from '../lib/qemu.js';

export const GPU_ID = '0x1234:0x1111';
const HOST_DRIVERS: Record<string, string> = { '.0': 'bochs-drm', '.1': 'snd_hda_intel' };

export function listingOf(r: FullRun, name: string): GuestListing {
  return parseListing(r.read(`${name}.groups`) ?? '', r.read(`${name}.devices`) ?? '');
}

export function gpus(l: GuestListing): string[] {
  return [...l.devices.entries()].filter(([, d]) => d.vendor === '1234' && d.device === '1111').map(([a]) => a).sort();
}

export function functionsOf(gpu: string): string[] {
  return [gpu, gpu.replace(/\.0$/, '.1')];
}

function displayAddr(l: GuestListing): string | undefined {
  return [BOOT_DISPLAY_ADDR, UEFI_BOOT_DISPLAY_ADDR].find((a) => l.devices.has(a) && l.devices.get(a)?.vendor !== '1234');
}

export function onHostDrivers(l: GuestListing, gpu: string): boolean {
  return functionsOf(gpu).every((a) => l.devices.get(a)?.driver === HOST_DRIVERS[a.slice(-2)]);
}

export function onVfio(l: GuestListing, gpu: string): boolean {
  return functionsOf(gpu).every((a) => l.devices.get(a)?.driver === 'vfio-pci');
}

/** Files whose checksums differ between two lab_bootstate outputs. */
export function bootstateDiff(a: string, b: string): string[] {
  const parse = (s: string) => new Map(s.split('\n').filter(Boolean).map((l) => [l.slice(66).trim(), l.slice(0, 64)] as [string, string]));
  const ma = parse(a);
  const mb = parse(b);
  const files = new Set([...ma.keys(), ...mb.keys()]);
  return [...files].filter((f) => ma.get(f) !== mb.get(f)).map((f) => (!ma.has(f) ? `${f} (added)` : !mb.has(f) ? `${f} (removed)` : `${f} (changed)`));
}

const APPLY_SCRIPT = (pick: 'head' | 'tail') => `
lab_listing before
lab_bootstate before
GPU=$(lab_find ${GPU_ID} | ${pick} -n 1)
lab_say "selected GPU: $GPU"
lab_run plan vfiokit plan "\${GPU#0000:}"
lab_run apply vfiokit apply "\${GPU#0000:}" --yes
lab_bootstate applied
`;

const APPLIED_SCRIPT = `
lab_listing boot
lab_vfio_devnodes boot
lab_run status vfiokit status
lab_run status-json vfiokit status --json
lab_run undo vfiokit undo --yes
lab_bootstate undone
`;

const UNDONE_SCRIPT = `
lab_listing boot
lab_bootstate boot
lab_run status-json vfiokit status --json
`;

async function applyBoot(t: TestContext, s: GuestSession, pick: 'head' | 'tail'): Promise<{ gpu: string; before: GuestListing; r1: FullRun }> {
  const r1 = await s.boot('apply', APPLY_SCRIPT(pick), { timeoutMs: 40 * 60_000 });
  const before = listingOf(r1, 'before');
  const all = gpus(before);
  t.require('the guest has the GPU-like device(s)', all.length >= 1, `found ${all.join(', ') || 'none'}`);
  const gpu = pick === 'head' ? all[0]! : all[all.length - 1]!;
  t.log(`GPU-like device: ${gpu} (+ ${functionsOf(gpu)[1]}); display ${displayAddr(before) ?? '?'}`);
  t.require('before apply: the GPU functions are on their host drivers (bochs-drm, snd_hda_intel)', onHostDrivers(before, gpu), driversOf(before, functionsOf(gpu)));
  t.require(`\`vfiokit apply ${gpu.slice(5)} --yes\` exits 0`, rcOf(r1, 'apply') === 0, `exit ${rcOf(r1, 'apply')}\n${outputOf(r1, 'apply')}`);
  const changed = bootstateDiff(r1.read('before.bootstate') ?? '', r1.read('applied.bootstate') ?? '');
  t.check('apply changed the boot configuration', changed.length > 0, 'no boot configuration file changed');
  t.log(`apply changed: ${changed.join(', ') || 'nothing'}`);
  return { gpu, before, r1 };
}

function checkApplied(t: TestContext, r2: FullRun, gpu: string, before: GuestListing): void {
  const l = listingOf(r2, 'boot');
  t.check('after reboot: both GPU functions are on vfio-pci from boot', onVfio(l, gpu), driversOf(l, functionsOf(gpu)));
  const disp = displayAddr(before);
  const dispDriver = disp ? before.devices.get(disp)?.driver : undefined;
  t.check(
    `after reboot: the boot display keeps its driver (${dispDriver ?? 'none'})`,
    !!disp && !!dispDriver && dispDriver !== 'vfio-pci' && l.devices.get(disp)?.driver === dispDriver,
    disp ? `before ${driversOf(before, [disp])}, after ${driversOf(l, [disp])}` : 'no display',
  );
  const group = l.devices.get(gpu)?.group;
  const nodes = (r2.read('boot.vfio') ?? '').trim().split(/\s+/);
  t.check('after reboot: /dev/vfio/<group> exists for the GPU group', group !== null && group !== undefined && nodes.includes(String(group)), `group ${group}, /dev/vfio: ${nodes.join(' ') || 'empty'}`);
  t.check('after reboot: `vfiokit status` exits 0 (in effect)', rcOf(r2, 'status') === 0, `exit ${rcOf(r2, 'status')}\n${outputOf(r2, 'status')}`);
}

async function bootPassthrough(t: TestContext, imageName: ImageName): Promise<void> {
  const image = await getImage(imageName);
  const s = new GuestSession(t, image, { topology: 'gpu' });
  await s.init();
  const { gpu, before, r1 } = await applyBoot(t, s, 'head');
  const r2 = await s.boot('applied', APPLIED_SCRIPT, { timeoutMs: 40 * 60_000 });
  checkApplied(t, r2, gpu, before);
  t.require('`vfiokit undo --yes` exits 0', rcOf(r2, 'undo') === 0, `exit ${rcOf(r2, 'undo')}\n${outputOf(r2, 'undo')}`);
  const r3 = await s.boot('undone', UNDONE_SCRIPT);
  const l3 = listingOf(r3, 'boot');
  t.check('after undo + reboot: the host drivers are back', onHostDrivers(l3, gpu), driversOf(l3, functionsOf(gpu)));
  const diff = bootstateDiff(r1.read('before.bootstate') ?? '', r3.read('boot.bootstate') ?? '');
  t.check('after undo: the boot configuration files are byte-identical to before apply', diff.length === 0, diff.join(', '));
}

async function twin(t: TestContext): Promise<void> {
  const image = await getImage('grub-itools');
  const s = new GuestSession(t, image, { topology: 'twin-gpu' });
  await s.init();
  const { gpu, before } = await applyBoot(t, s, 'tail');
  const all = gpus(before);
  t.require('the guest has two identical GPU-like devices', all.length === 2, all.join(', '));
  const other = all.find((a) => a !== gpu)!;
  const r2 = await s.boot('applied', APPLIED_SCRIPT, { timeoutMs: 40 * 60_000 });
  checkApplied(t, r2, gpu, before);
  const l = listingOf(r2, 'boot');
  t.check(`the other, identical GPU (${other}) stays on its host drivers`, onHostDrivers(l, other), driversOf(l, functionsOf(other)));
  t.check('`vfiokit undo --yes` exits 0', rcOf(r2, 'undo') === 0, `exit ${rcOf(r2, 'undo')}\n${outputOf(r2, 'undo')}`);
}

const BOOT_CMDS = ['apply', 'status', 'undo'];

export const scenario2: TestDef[] = [
  { id: '2.grub-itools', title: 'boot-time passthrough: GRUB + initramfs-tools (BIOS)', needs: BOOT_CMDS, cost: 4, run: (t) => bootPassthrough(t, 'grub-itools') },
  { id: '2.grub-dracut', title: 'boot-time passthrough: GRUB + dracut (BIOS)', needs: BOOT_CMDS, cost: 7.5, run: (t) => bootPassthrough(t, 'grub-dracut') },
  { id: '2.uefi-sdboot', title: 'boot-time passthrough: systemd-boot + /etc/kernel/cmdline (UEFI)', needs: BOOT_CMDS, cost: 4.5, run: (t) => bootPassthrough(t, 'uefi-sdboot') },
];

export const scenario3: TestDef[] = [{ id: '3.twin-gpu', title: 'twin identical GPUs: only the selected one moves to vfio-pci', needs: BOOT_CMDS, cost: 3.5, run: twin }];
