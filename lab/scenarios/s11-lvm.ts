// Scenario 11 — a real host's mess on a real kernel: the root file system on
// LVM (device-mapper over a virtio disk) and an /etc/default/grub whose
// comments hold a UTF-8 "é" and a bare Latin-1 byte. vfiokit follows the root
// file system through dm-0's slaves to the disk's PCI function and refuses to
// plan that controller; `apply <gpu> --yes`, reboot: `status` exits 0 with
// the GPU on vfio-pci; `undo --yes`, reboot: every boot file, the non-ASCII
// grub defaults included, is byte-identical to before.

import { defineLabTest, type LabRun } from '../lib/declare.js';
import { bootstateDiff, driversOf, functionsOf, GPU_ID, gpus, onHostDrivers, onVfio } from '../lib/gpu.js';

/** Comment lines put in front of the image's /etc/default/grub: UTF-8 "é" and "—", then a Latin-1 0xE9. */
const GRUB_PREFIX_PRINTF = String.raw`# Paramètres de démarrage — réglés à la main\n# Latin-1: caf\351 cr\350me\n`;

const gpuOf = (r: LabRun) => gpus(r.boot('apply').listing('before'))[0]!;

export const scenario11 = [
  defineLabTest({
    id: '11.lvm-latin1',
    title: 'LVM root + non-ASCII /etc/default/grub: root guard through device-mapper, apply, reboot, undo, byte-identical',
    needs: ['inspect', 'plan', 'apply', 'status', 'undo'],
    cost: 5,
    guest: { kind: 'image', image: 'grub-itools-lvm' },
    machine: { iommu: 'intel', topology: 'gpu', smp: 1, memoryMiB: 1536 },
    boots: [
      {
        name: 'apply',
        timeoutMs: 40 * 60_000,
        steps: [
          `printf '${GRUB_PREFIX_PRINTF}' >/root/grub.new`,
          'cat /etc/default/grub >>/root/grub.new',
          'cat /root/grub.new >/etc/default/grub',
          'cp /etc/default/grub /root/grub.before',
          'lab_listing before',
          'lab_bootstate before',
          'findmnt -no SOURCE / >"$LAB_OUT/rootsource"',
          'ls /sys/block/dm-0/slaves >"$LAB_OUT/dm-slaves"',
          'cd -P /sys/block/vda && echo "$PWD" >"$LAB_OUT/vda-path"; cd /',
          `DISK=$(sed -n 's#.*/\\(0000:[0-9a-f:.]*\\)/virtio[0-9]*/block/vda$#\\1#p' "$LAB_OUT/vda-path")`,
          'lab_say "root disk controller: $DISK"',
          { label: 'inspect', run: 'vfiokit inspect --json' },
          { label: 'plan-disk', run: `vfiokit plan "\${DISK#0000:}" --json` },
          `GPU=$(lab_find ${GPU_ID} | head -n 1)`,
          'lab_say "selected GPU: $GPU"',
          { label: 'apply', run: `vfiokit apply "\${GPU#0000:}" --yes`, expectExit: 0, require: true, check: (b) => `\`vfiokit apply ${gpus(b.listing('before'))[0]?.slice(5) ?? '(no GPU found)'} --yes\` exits 0 with the non-ASCII /etc/default/grub` },
          'lab_bootstate applied',
        ],
        checks: (b, t) => {
          t.require('the root file system is the logical volume', b.read('rootsource')?.trim() === '/dev/mapper/labvg-root', b.read('rootsource') ?? 'none');
          const slaves = (b.read('dm-slaves') ?? '').trim().split(/\s+/);
          t.require('the kernel shows the logical volume over vda1 (/sys/block/dm-0/slaves)', slaves.includes('vda1'), slaves.join(' '));
          const disk = /\/(0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\/virtio\d+\/block\/vda$/.exec(b.read('vda-path')?.trim() ?? '')?.[1];
          t.require('the virtio disk has a PCI function', !!disk, b.read('vda-path') ?? 'none');
          const rootStorage = b.json<{ boot?: { rootStorage?: string[] } }>('inspect')?.boot?.rootStorage ?? [];
          t.check(`\`inspect\`: the root file system's storage is ${disk} (followed through device-mapper)`, rootStorage.includes(disk!), `rootStorage: ${JSON.stringify(rootStorage)}`);
          const codes = (b.json<{ problems?: { code: string }[] }>('plan-disk')?.problems ?? []).map((p) => p.code);
          t.check(`\`plan ${disk!.slice(5)}\` refuses the root disk's controller (E_ROOT_STORAGE)`, b.rc('plan-disk') !== 0 && codes.includes('E_ROOT_STORAGE'), `exit ${b.rc('plan-disk')}, problems ${codes.join(', ') || 'none'}\n${b.out('plan-disk').slice(0, 2000)}`);
          const before = b.listing('before');
          const gpu = gpus(before)[0];
          t.require('the guest has the GPU-like device', !!gpu, 'none found');
          t.require('before apply: the GPU functions are on their host drivers', onHostDrivers(before, gpu!), driversOf(before, functionsOf(gpu!)));
          const changed = bootstateDiff(b.read('before.bootstate') ?? '', b.read('applied.bootstate') ?? '');
          t.check('apply changed the boot configuration', changed.length > 0, 'no boot configuration file changed');
          t.log(`apply changed: ${changed.join(', ') || 'nothing'}`);
        },
      },
      {
        name: 'applied',
        timeoutMs: 40 * 60_000,
        steps: [
          'lab_listing boot',
          { label: 'status', run: 'vfiokit status', expectExit: 0, check: 'after reboot: `vfiokit status` exits 0 (in effect)' },
          { label: 'undo', run: 'vfiokit undo --yes', expectExit: 0, require: true, check: '`vfiokit undo --yes` exits 0' },
          'lab_bootstate undone',
        ],
        checks: (b, t, r) => {
          const gpu = gpuOf(r);
          const l2 = b.listing('boot');
          t.check('after reboot: both GPU functions are on vfio-pci from boot', onVfio(l2, gpu), driversOf(l2, functionsOf(gpu)));
        },
      },
      {
        name: 'undone',
        steps: [
          'lab_listing boot',
          'lab_bootstate boot',
          'findmnt -no SOURCE / >"$LAB_OUT/rootsource"',
          'if cmp -s /etc/default/grub /root/grub.before; then echo same >"$LAB_OUT/grub-cmp"; else echo differs >"$LAB_OUT/grub-cmp"; fi',
          'od -c /etc/default/grub | head -n 4 >"$LAB_OUT/grub-head"',
        ],
        checks: (b, t, r) => {
          const gpu = gpuOf(r);
          const l3 = b.listing('boot');
          t.check('after undo + reboot: the host drivers are back', onHostDrivers(l3, gpu), driversOf(l3, functionsOf(gpu)));
          t.check('after undo + reboot: still booted from the logical volume', b.read('rootsource')?.trim() === '/dev/mapper/labvg-root', b.read('rootsource') ?? 'none');
          t.check('after undo: /etc/default/grub is byte-identical, "é" and the Latin-1 byte included', b.read('grub-cmp')?.trim() === 'same', `${b.read('grub-cmp') ?? 'no result'}\n${b.read('grub-head') ?? ''}`);
          const diff = bootstateDiff(r.boot('apply').read('before.bootstate') ?? '', b.read('boot.bootstate') ?? '');
          t.check('after undo: every boot configuration file is byte-identical to before apply', diff.length === 0, diff.join(', '));
        },
      },
    ],
  }),
];
