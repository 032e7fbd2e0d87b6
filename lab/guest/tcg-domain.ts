// Runs inside a lab guest, called by the lab's virsh wrapper before every
// `virsh define FILE`: lab guests have no KVM, so the domain XML vfiokit
// wrote is adapted in place for QEMU's TCG, and each adaptation is printed
// (the scenario logs them). The <hostdev>s, firmware, TPM, machine type and
// memory are left exactly as vfiokit generated them; what only KVM can run
// (host-passthrough CPU, Hyper-V enlightenments, KVM irqchip) is not tested here.
//
//   node tcg-domain.js FILE

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function adaptForTcg(xml: string): { xml: string; adaptations: string[] } {
  const adaptations: string[] = [];
  const sub = (re: RegExp, to: string, what: string) => {
    if (!re.test(xml)) return;
    xml = xml.replace(re, to);
    adaptations.push(what);
  };
  sub(/<domain type='kvm'/, "<domain type='qemu'", "domain type kvm → qemu (TCG: the guest has no /dev/kvm)");
  // libvirt accepts host-passthrough only with KVM; 'maximum' is -cpu max, which TCG has.
  sub(/<cpu mode='host-passthrough'/, "<cpu mode='maximum'", "cpu mode host-passthrough → maximum");
  sub(/\s*<cache mode='passthrough'\/>/, '', 'cpu cache passthrough dropped (host-passthrough only)');
  // kernel_irqchip=split is a KVM accelerator property.
  sub(/\s*<ioapic driver='kvm'\/>/, '', "ioapic driver='kvm' dropped (a KVM accelerator property)");
  sub(/\s*<kvm>\s*<hidden state='on'\/>\s*<\/kvm>/, '', 'kvm hidden dropped (KVM only)');
  // QEMU 7.2 under TCG: "kernel doesn't allow setting HyperV VP_INDEX" — the enlightenments need KVM.
  sub(/\s*<hyperv [^>]*>[\s\S]*?<\/hyperv>/, '', 'Hyper-V enlightenments dropped (KVM only: QEMU stops with "kernel doesn\'t allow setting HyperV VP_INDEX")');
  sub(/\s*<timer name='hypervclock' present='yes'\/>/, '', 'Hyper-V clock dropped (KVM only)');
  // No libvirt network is defined in the guest: user-mode networking keeps a NIC of the same model.
  sub(/<interface type='network'>\s*<source network='default'\/>/, "<interface type='user'>", "interface network 'default' → user (no libvirt network in the guest)");
  return { xml, adaptations };
}

const file = process.argv[2];
if (file && process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  const { xml, adaptations } = adaptForTcg(readFileSync(file, 'utf8'));
  writeFileSync(file, xml);
  console.log(`${file}: ${adaptations.length ? adaptations.join('; ') : 'no adaptation needed'}`);
}
