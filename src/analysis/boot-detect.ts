// Which bootloader and initramfs generator this host uses, with the evidence
// (pure: decided from files and tools recorded in the snapshot).

import { CONFIG_LOCATIONS } from '../model/config-paths.js';
import type { HostSnapshot } from '../model/snapshot.js';

import type { BootloaderKind, InitramfsKind } from '../model/plan.js';
import { BOOSTER_YAML, DRACUT_CONF, DRACUT_CONF_D, ETC, GRUB_DEFAULT, INITRAMFS_TOOLS_CONF, INITRAMFS_TOOLS_DIR, INITRAMFS_TOOLS_MODULES, KERNELSTUB_CONFIG, LIMINE_DEFAULTS, MKINITCPIO_CONF, PROXMOX_BOOT_UUIDS } from '../model/config-paths.js';
export type { BootloaderKind, InitramfsKind };

interface Detected<K> {
  kind: K;
  evidence: string[];
}

const has = (s: HostSnapshot, p: string) => p in s.boot.files;
const listed = (s: HostSnapshot, dir: string) => s.boot.dirs[dir] ?? [];


/**
 * Whether a config file that is a symlink points at the same kind of file:
 * inside a configuration location, and either of the same name or in the
 * same directory (grub → grub.local; not grub → /etc/shadow).
 */
export function linkTargetIsSameKind(link: string, target: string): boolean {
  const dir = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';
  const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
  return CONFIG_LOCATIONS.some((l) => target.startsWith(l)) && (base(target) === base(link) || dir(target) === dir(link));
}

export function loaderEntryDirs(s: HostSnapshot): string[] {
  return ['/boot/loader/entries', '/boot/efi/loader/entries', '/efi/loader/entries'].filter((d) => listed(s, d).some((n) => n.endsWith('.conf')));
}

export function limineConf(s: HostSnapshot): string | null {
  return ['/boot/limine.conf', '/boot/limine/limine.conf', '/limine.conf', '/boot/EFI/BOOT/limine.conf', '/boot/efi/EFI/BOOT/limine.conf'].find((p) => has(s, p)) ?? null;
}

export function isDebianLike(s: HostSnapshot): boolean {
  return [s.os.id ?? '', ...s.os.idLike].some((i) => i === 'debian' || i === 'ubuntu');
}

export function detectBootloader(s: HostSnapshot): Detected<BootloaderKind> {
  const t = s.boot.tools;
  const ev: string[] = [];
  if (has(s, PROXMOX_BOOT_UUIDS) && t['proxmox-boot-tool']) {
    return { kind: 'proxmox-boot-tool', evidence: [`${PROXMOX_BOOT_UUIDS} lists the ESPs proxmox-boot-tool keeps in sync`, `${t['proxmox-boot-tool']} exists`] };
  }
  if (has(s, KERNELSTUB_CONFIG) && t.kernelstub) {
    return { kind: 'kernelstub', evidence: [`${KERNELSTUB_CONFIG} exists (Pop!_OS)`, `${t.kernelstub} exists`] };
  }
  const entries = loaderEntryDirs(s);
  if (s.boot.loaderInfo?.startsWith('systemd-boot')) {
    ev.push(`EFI variable LoaderInfo says "${s.boot.loaderInfo}"`);
    if (entries.length) ev.push(`loader entries in ${entries.join(', ')}`);
    return { kind: 'systemd-boot', evidence: ev };
  }
  const grubDefault = s.boot.files[GRUB_DEFAULT];
  const grubCfg = listed(s, '/boot/grub').includes('grub.cfg') || listed(s, '/boot/grub2').includes('grub.cfg');
  if (grubDefault && /^\s*GRUB_ENABLE_BLSCFG\s*=\s*["']?true/m.test(grubDefault.content)) {
    // GRUB builds its menu from the BLS entries: kernel arguments go there, never only to /etc/default/grub.
    return {
      kind: 'grubby-bls',
      evidence: [`GRUB_ENABLE_BLSCFG=true in ${GRUB_DEFAULT}`, entries.length ? `BLS entries in ${entries.join(', ')}` : 'no BLS entries found', ...(t.grubby ? [`${t.grubby} exists`] : [])],
    };
  }
  if (grubDefault && (grubCfg || t['update-grub'] || t['grub-mkconfig'] || t['grub2-mkconfig'])) {
    ev.push(`${GRUB_DEFAULT} exists`);
    if (grubCfg) ev.push(`${listed(s, '/boot/grub').includes('grub.cfg') ? '/boot/grub/grub.cfg' : '/boot/grub2/grub.cfg'} exists`);
    const tool = t['update-grub'] ?? t['grub-mkconfig'] ?? t['grub2-mkconfig'];
    if (tool) ev.push(`${tool} exists`);
    return { kind: 'grub', evidence: ev };
  }
  if (entries.length && (t.bootctl || t['kernel-install'])) {
    return { kind: 'systemd-boot', evidence: [`loader entries in ${entries.join(', ')}`, `${t.bootctl ?? t['kernel-install']} exists`, 'no GRUB configuration'] };
  }
  if (has(s, '/boot/refind_linux.conf')) return { kind: 'refind', evidence: ['/boot/refind_linux.conf exists'] };
  const lim = limineConf(s);
  if (lim || has(s, LIMINE_DEFAULTS)) return { kind: 'limine', evidence: [lim ? `${lim} exists` : `${LIMINE_DEFAULTS} exists`] };
  return { kind: 'unknown', evidence: ['no GRUB, BLS, systemd-boot, kernelstub, Proxmox, rEFInd or Limine configuration found'] };
}

export function detectInitramfs(s: HostSnapshot): Detected<InitramfsKind> {
  const t = s.boot.tools;
  if (t['update-initramfs'] && (has(s, INITRAMFS_TOOLS_CONF) || has(s, INITRAMFS_TOOLS_MODULES)))
    return { kind: 'initramfs-tools', evidence: [`${t['update-initramfs']} exists`, `${INITRAMFS_TOOLS_DIR} is configured`] };
  if (has(s, BOOSTER_YAML) && (t.booster || t['booster-regenerate'])) return { kind: 'booster', evidence: [`${BOOSTER_YAML} exists`, `${t.booster ?? t['booster-regenerate']} exists`] };
  if (has(s, MKINITCPIO_CONF) && t.mkinitcpio) return { kind: 'mkinitcpio', evidence: [`${MKINITCPIO_CONF} exists`, `${t.mkinitcpio} exists`] };
  if (t.dracut) return { kind: 'dracut', evidence: [`${t.dracut} exists`, ...(has(s, DRACUT_CONF) || listed(s, DRACUT_CONF_D).length ? [`dracut configuration in ${ETC}`] : [])] };
  if (t['update-initramfs']) return { kind: 'initramfs-tools', evidence: [`${t['update-initramfs']} exists`] };
  return { kind: 'unknown', evidence: ['no update-initramfs, dracut, mkinitcpio or booster found'] };
}
