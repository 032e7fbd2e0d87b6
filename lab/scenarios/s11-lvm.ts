// Scenario 11 — a real host's mess on a real kernel: the root file system on
// LVM (device-mapper over a virtio disk) and an /etc/default/grub whose
// comments hold a UTF-8 "é" and a bare Latin-1 byte. vfiokit follows the root
// file system through dm-0's slaves to the disk's PCI function and refuses to
// plan that controller; `apply <gpu> --yes`, reboot: `status` exits 0 with
// the GPU on vfio-pci; `undo --yes`, reboot: every boot file, the non-ASCII
// grub defaults included, is byte-identical to before.

import type { TestContext, TestDef } from '../lib/harness.js';
import { getImage } from '../lib/images.js';
import { driversOf, GuestSession, outputOf, rcOf } from '../lib/session.js';
import { bootstateDiff, functionsOf, GPU_ID, gpus, listingOf, onHostDrivers, onVfio } from './s2-boot.js';

/** Comment lines put in front of the image's /etc/default/grub: UTF-8 "é" and "—", then a Latin-1 0xE9. */
const GRUB_PREFIX_PRINTF = String.raw`# Paramètres de démarrage — réglés à la main\n# Latin-1: caf\351 cr\350me\n`;

const APPLY_SCRIPT = `
printf '${GRUB_PREFIX_PRINTF}' >/root/grub.new
cat /etc/default/grub >>/root/grub.new
cat /root/grub.new >/etc/default/grub
cp /etc/default/grub /root/grub.before
lab_listing before
lab_bootstate before
findmnt -no SOURCE / >"$LAB_OUT/rootsource"
ls /sys/block/dm-0/slaves >"$LAB_OUT/dm-slaves"
cd -P /sys/block/vda && echo "$PWD" >"$LAB_OUT/vda-path"; cd /
DISK=$(sed -n 's#.*/\\(0000:[0-9a-f:.]*\\)/virtio[0-9]*/block/vda$#\\1#p' "$LAB_OUT/vda-path")
lab_say "root disk controller: $DISK"
lab_run inspect vfiokit inspect --json
lab_run plan-disk vfiokit plan "\${DISK#0000:}" --json
GPU=$(lab_find ${GPU_ID} | head -n 1)
lab_say "selected GPU: $GPU"
lab_run apply vfiokit apply "\${GPU#0000:}" --yes
lab_bootstate applied
`;

const APPLIED_SCRIPT = `
lab_listing boot
lab_run status vfiokit status
lab_run undo vfiokit undo --yes
lab_bootstate undone
`;

const UNDONE_SCRIPT = `
lab_listing boot
lab_bootstate boot
findmnt -no SOURCE / >"$LAB_OUT/rootsource"
if cmp -s /etc/default/grub /root/grub.before; then echo same >"$LAB_OUT/grub-cmp"; else echo differs >"$LAB_OUT/grub-cmp"; fi
od -c /etc/default/grub | head -n 4 >"$LAB_OUT/grub-head"
`;

function json(text: string | undefined): Record<string, unknown> | null {
  try {
    return JSON.parse(text ?? '') as Record<string, unknown>;
  } catch {
    return null;
  }
}

async function lvmLatin1(t: TestContext): Promise<void> {
  const image = await getImage('grub-itools-lvm');
  const s = new GuestSession(t, image, { topology: 'gpu' });
  await s.init();
  const r1 = await s.boot('apply', APPLY_SCRIPT, { timeoutMs: 40 * 60_000 });
  t.require('the root file system is the logical volume', r1.read('rootsource')?.trim() === '/dev/mapper/labvg-root', r1.read('rootsource') ?? 'none');
  const slaves = (r1.read('dm-slaves') ?? '').trim().split(/\s+/);
  t.require('the kernel shows the logical volume over vda1 (/sys/block/dm-0/slaves)', slaves.includes('vda1'), slaves.join(' '));
  const disk = /\/(0000:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\/virtio\d+\/block\/vda$/.exec(r1.read('vda-path')?.trim() ?? '')?.[1];
  t.require('the virtio disk has a PCI function', !!disk, r1.read('vda-path') ?? 'none');
  const inspect = json(r1.read('inspect.out'));
  const rootStorage = ((inspect?.boot as { rootStorage?: string[] } | undefined)?.rootStorage ?? []) as string[];
  t.check(`\`inspect\`: the root file system's storage is ${disk} (followed through device-mapper)`, rootStorage.includes(disk!), `rootStorage: ${JSON.stringify(rootStorage)}`);
  const plan = json(r1.read('plan-disk.out'));
  const codes = ((plan?.problems as { code: string }[] | undefined) ?? []).map((p) => p.code);
  t.check(`\`plan ${disk!.slice(5)}\` refuses the root disk's controller (E_ROOT_STORAGE)`, rcOf(r1, 'plan-disk') !== 0 && codes.includes('E_ROOT_STORAGE'), `exit ${rcOf(r1, 'plan-disk')}, problems ${codes.join(', ') || 'none'}\n${outputOf(r1, 'plan-disk').slice(0, 2000)}`);

  const before = listingOf(r1, 'before');
  const gpu = gpus(before)[0];
  t.require('the guest has the GPU-like device', !!gpu, 'none found');
  t.require('before apply: the GPU functions are on their host drivers', onHostDrivers(before, gpu!), driversOf(before, functionsOf(gpu!)));
  t.require(`\`vfiokit apply ${gpu!.slice(5)} --yes\` exits 0 with the non-ASCII /etc/default/grub`, rcOf(r1, 'apply') === 0, `exit ${rcOf(r1, 'apply')}\n${outputOf(r1, 'apply')}`);
  const changed = bootstateDiff(r1.read('before.bootstate') ?? '', r1.read('applied.bootstate') ?? '');
  t.check('apply changed the boot configuration', changed.length > 0, 'no boot configuration file changed');
  t.log(`apply changed: ${changed.join(', ') || 'nothing'}`);

  const r2 = await s.boot('applied', APPLIED_SCRIPT, { timeoutMs: 40 * 60_000 });
  const l2 = listingOf(r2, 'boot');
  t.check('after reboot: both GPU functions are on vfio-pci from boot', onVfio(l2, gpu!), driversOf(l2, functionsOf(gpu!)));
  t.check('after reboot: `vfiokit status` exits 0 (in effect)', rcOf(r2, 'status') === 0, `exit ${rcOf(r2, 'status')}\n${outputOf(r2, 'status')}`);
  t.require('`vfiokit undo --yes` exits 0', rcOf(r2, 'undo') === 0, `exit ${rcOf(r2, 'undo')}\n${outputOf(r2, 'undo')}`);

  const r3 = await s.boot('undone', UNDONE_SCRIPT);
  const l3 = listingOf(r3, 'boot');
  t.check('after undo + reboot: the host drivers are back', onHostDrivers(l3, gpu!), driversOf(l3, functionsOf(gpu!)));
  t.check('after undo + reboot: still booted from the logical volume', r3.read('rootsource')?.trim() === '/dev/mapper/labvg-root', r3.read('rootsource') ?? 'none');
  t.check('after undo: /etc/default/grub is byte-identical, "é" and the Latin-1 byte included', r3.read('grub-cmp')?.trim() === 'same', `${r3.read('grub-cmp') ?? 'no result'}\n${r3.read('grub-head') ?? ''}`);
  const diff = bootstateDiff(r1.read('before.bootstate') ?? '', r3.read('boot.bootstate') ?? '');
  t.check('after undo: every boot configuration file is byte-identical to before apply', diff.length === 0, diff.join(', '));
}

export const scenario11: TestDef[] = [
  { id: '11.lvm-latin1', title: 'LVM root + non-ASCII /etc/default/grub: root guard through device-mapper, apply, reboot, undo, byte-identical', needs: ['inspect', 'plan', 'apply', 'status', 'undo'], cost: 5, run: lvmLatin1 },
];
