// Which bootloader and initramfs generator this host uses, with the evidence
// (pure: decided from files and tools recorded in the snapshot).

import { CONFIG_LOCATIONS } from '../model/config-paths.js';
import type { HostSnapshot } from '../model/snapshot.js';

import type { BootloaderKind, InitramfsKind } from '../model/plan.js';
export type { BootloaderKind, InitramfsKind };

export interface Detected<K> {
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
  if (has(s, '/etc/kernel/proxmox-boot-uuids') && t['proxmox-boot-tool']) {
    return { kind: 'proxmox-boot-tool', evidence: ['/etc/kernel/proxmox-boot-uuids lists the ESPs proxmox-boot-tool keeps in sync', `${t['proxmox-boot-tool']} exists`] };
  }
  if (has(s, '/etc/kernelstub/configuration') && t.kernelstub) {
    return { kind: 'kernelstub', evidence: ['/etc/kernelstub/configuration exists (Pop!_OS)', `${t.kernelstub} exists`] };
  }
  const entries = loaderEntryDirs(s);
  if (s.boot.loaderInfo?.startsWith('systemd-boot')) {
    ev.push(`EFI variable LoaderInfo says "${s.boot.loaderInfo}"`);
    if (entries.length) ev.push(`loader entries in ${entries.join(', ')}`);
    return { kind: 'systemd-boot', evidence: ev };
  }
  const grubDefault = s.boot.files['/etc/default/grub'];
  const grubCfg = listed(s, '/boot/grub').includes('grub.cfg') || listed(s, '/boot/grub2').includes('grub.cfg');
  if (grubDefault && /^\s*GRUB_ENABLE_BLSCFG\s*=\s*["']?true/m.test(grubDefault.content)) {
    // GRUB builds its menu from the BLS entries: kernel arguments go there, never only to /etc/default/grub.
    return {
      kind: 'grubby-bls',
      evidence: ['GRUB_ENABLE_BLSCFG=true in /etc/default/grub', entries.length ? `BLS entries in ${entries.join(', ')}` : 'no BLS entries found', ...(t.grubby ? [`${t.grubby} exists`] : [])],
    };
  }
  if (grubDefault && (grubCfg || t['update-grub'] || t['grub-mkconfig'] || t['grub2-mkconfig'])) {
    ev.push('/etc/default/grub exists');
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
  if (lim || has(s, '/etc/default/limine')) return { kind: 'limine', evidence: [lim ? `${lim} exists` : '/etc/default/limine exists'] };
  return { kind: 'unknown', evidence: ['no GRUB, BLS, systemd-boot, kernelstub, Proxmox, rEFInd or Limine configuration found'] };
}

export function detectInitramfs(s: HostSnapshot): Detected<InitramfsKind> {
  const t = s.boot.tools;
  if (t['update-initramfs'] && (has(s, '/etc/initramfs-tools/initramfs.conf') || has(s, '/etc/initramfs-tools/modules')))
    return { kind: 'initramfs-tools', evidence: [`${t['update-initramfs']} exists`, '/etc/initramfs-tools is configured'] };
  if (has(s, '/etc/booster.yaml') && (t.booster || t['booster-regenerate'])) return { kind: 'booster', evidence: ['/etc/booster.yaml exists', `${t.booster ?? t['booster-regenerate']} exists`] };
  if (has(s, '/etc/mkinitcpio.conf') && t.mkinitcpio) return { kind: 'mkinitcpio', evidence: ['/etc/mkinitcpio.conf exists', `${t.mkinitcpio} exists`] };
  if (t.dracut) return { kind: 'dracut', evidence: [`${t.dracut} exists`, ...(has(s, '/etc/dracut.conf') || listed(s, '/etc/dracut.conf.d').length ? ['dracut configuration in /etc'] : [])] };
  if (t['update-initramfs']) return { kind: 'initramfs-tools', evidence: [`${t['update-initramfs']} exists`] };
  return { kind: 'unknown', evidence: ['no update-initramfs, dracut, mkinitcpio or booster found'] };
}
