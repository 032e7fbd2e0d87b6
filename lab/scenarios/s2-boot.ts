// Scenario 2 — boot-time passthrough on each image: `vfiokit apply <gpu> --yes`,
// reboot: `vfiokit status` exits 0, both GPU functions are on vfio-pci from
// boot while the boot display keeps its driver; `vfiokit undo --yes`, reboot:
// the host drivers are back and the boot configuration is as before.
// Scenario 3 — twin identical GPUs: only the selected one moves to vfio-pci.

import { defineLabTest, type BootDecl, type LabRun, type LabTestDecl } from '../lib/declare.js';
import type { TestContext } from '../lib/harness.js';
import type { ImageName } from '../lib/images.js';
import type { GuestListing } from '../lib/guest-script.js';
import { bootstateDiff, displayAddr, driversOf, functionsOf, GPU_ID, gpus, listingOf, onHostDrivers, onVfio } from '../lib/gpu.js';

// Kept for tests that import them from here; they live in lab/lib/gpu.ts.
export { bootstateDiff, functionsOf, GPU_ID, gpus, listingOf, onHostDrivers, onVfio };

type Pick = 'head' | 'tail';

/** The GPU the apply boot's script selects (first or last of the identical ones), as it reads the listing. */
const pickOf = (l: GuestListing, pick: Pick): string | undefined => (pick === 'head' ? gpus(l)[0] : gpus(l).at(-1));
const selected = (r: LabRun, pick: Pick): string => pickOf(r.boot('apply').listing('before'), pick)!;

const applyBoot = (pick: Pick): BootDecl => ({
  name: 'apply',
  timeoutMs: 40 * 60_000,
  steps: [
    'lab_listing before',
    'lab_bootstate before',
    `GPU=$(lab_find ${GPU_ID} | ${pick} -n 1)`,
    'lab_say "selected GPU: $GPU"',
    { label: 'plan', run: 'vfiokit plan "${GPU#0000:}"' },
    { label: 'apply', run: 'vfiokit apply "${GPU#0000:}" --yes', expectExit: 0, require: true, check: (b) => `\`vfiokit apply ${pickOf(b.listing('before'), pick)?.slice(5) ?? '(no GPU found)'} --yes\` exits 0` },
    'lab_bootstate applied',
  ],
  checks: (b, t, r) => {
    const before = b.listing('before');
    const all = gpus(before);
    t.require('the guest has the GPU-like device(s)', all.length >= 1, `found ${all.join(', ') || 'none'}`);
    const gpu = selected(r, pick);
    t.log(`GPU-like device: ${gpu} (+ ${functionsOf(gpu)[1]}); display ${displayAddr(before) ?? '?'}`);
    t.require('before apply: the GPU functions are on their host drivers (bochs-drm, snd_hda_intel)', onHostDrivers(before, gpu), driversOf(before, functionsOf(gpu)));
    const changed = bootstateDiff(b.read('before.bootstate') ?? '', b.read('applied.bootstate') ?? '');
    t.check('apply changed the boot configuration', changed.length > 0, 'no boot configuration file changed');
    t.log(`apply changed: ${changed.join(', ') || 'nothing'}`);
  },
});

const appliedBoot = (pick: Pick, undoRequired: boolean): BootDecl => ({
  name: 'applied',
  timeoutMs: 40 * 60_000,
  steps: [
    'lab_listing boot',
    'lab_vfio_devnodes boot',
    { label: 'status', run: 'vfiokit status', expectExit: 0, check: 'after reboot: `vfiokit status` exits 0 (in effect)' },
    { label: 'status-json', run: 'vfiokit status --json' },
    { label: 'undo', run: 'vfiokit undo --yes', expectExit: 0, require: undoRequired, check: '`vfiokit undo --yes` exits 0' },
    'lab_bootstate undone',
  ],
  checks: (b, t, r) => {
    const gpu = selected(r, pick);
    const before = r.boot('apply').listing('before');
    const l = b.listing('boot');
    t.check('after reboot: both GPU functions are on vfio-pci from boot', onVfio(l, gpu), driversOf(l, functionsOf(gpu)));
    const disp = displayAddr(before);
    const dispDriver = disp ? before.devices.get(disp)?.driver : undefined;
    t.check(
      `after reboot: the boot display keeps its driver (${dispDriver ?? 'none'})`,
      !!disp && !!dispDriver && dispDriver !== 'vfio-pci' && l.devices.get(disp)?.driver === dispDriver,
      disp ? `before ${driversOf(before, [disp])}, after ${driversOf(l, [disp])}` : 'no display',
    );
    const group = l.devices.get(gpu)?.group;
    const nodes = (b.read('boot.vfio') ?? '').trim().split(/\s+/);
    t.check('after reboot: /dev/vfio/<group> exists for the GPU group', group !== null && group !== undefined && nodes.includes(String(group)), `group ${group}, /dev/vfio: ${nodes.join(' ') || 'empty'}`);
  },
});

const undoneBoot: BootDecl = {
  name: 'undone',
  steps: ['lab_listing boot', 'lab_bootstate boot', { label: 'status-json', run: 'vfiokit status --json' }],
  checks: (b, t, r) => {
    const gpu = selected(r, 'head');
    const l3 = b.listing('boot');
    t.check('after undo + reboot: the host drivers are back', onHostDrivers(l3, gpu), driversOf(l3, functionsOf(gpu)));
    const diff = bootstateDiff(r.boot('apply').read('before.bootstate') ?? '', b.read('boot.bootstate') ?? '');
    t.check('after undo: the boot configuration files are byte-identical to before apply', diff.length === 0, diff.join(', '));
  },
};

const BOOT_CMDS = ['apply', 'status', 'undo'];
const FULL_MACHINE = { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1536 } satisfies LabTestDecl['machine'];

const passthrough = (id: string, title: string, image: ImageName, cost: number) =>
  defineLabTest({ id, title, needs: BOOT_CMDS, cost, guest: { kind: 'image', image }, machine: FULL_MACHINE, boots: [applyBoot('head'), appliedBoot('head', true), undoneBoot] });

export const scenario2 = [
  passthrough('2.grub-itools', 'boot-time passthrough: GRUB + initramfs-tools (BIOS)', 'grub-itools', 4),
  passthrough('2.grub-dracut', 'boot-time passthrough: GRUB + dracut (BIOS)', 'grub-dracut', 7.5),
  passthrough('2.uefi-sdboot', 'boot-time passthrough: systemd-boot + /etc/kernel/cmdline (UEFI)', 'uefi-sdboot', 4.5),
];

function twinChecks(r: LabRun, t: TestContext): void {
  const all = gpus(r.boot('apply').listing('before'));
  const gpu = selected(r, 'tail');
  const other = all.find((a) => a !== gpu)!;
  const l = r.boot('applied').listing('boot');
  t.check(`the other, identical GPU (${other}) stays on its host drivers`, onHostDrivers(l, other), driversOf(l, functionsOf(other)));
}

export const scenario3 = [
  defineLabTest({
    id: '3.twin-gpu',
    title: 'twin identical GPUs: only the selected one moves to vfio-pci',
    needs: BOOT_CMDS,
    cost: 3.5,
    guest: { kind: 'image', image: 'grub-itools' },
    machine: { ...FULL_MACHINE, topology: 'twin-gpu' },
    boots: [
      {
        ...applyBoot('tail'),
        checks: async (b, t, r) => {
          await applyBoot('tail').checks!(b, t, r);
          const all = gpus(b.listing('before'));
          t.require('the guest has two identical GPU-like devices', all.length === 2, all.join(', '));
        },
      },
      appliedBoot('tail', false),
    ],
    checks: twinChecks,
  }),
];
