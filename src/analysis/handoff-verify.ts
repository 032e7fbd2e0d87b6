// After a release: did the host display come back? Compares a fresh snapshot
// with what prepare recorded — every function on its recorded driver, the
// GPU's DRM card and connectors present, the recorded consoles bound, the
// display manager active — and names the exact recovery command for each
// failure. Pure.

import { shortAddress } from '../model/pci-address.js';
import type { HostSnapshot } from '../model/snapshot.js';
import { vtconsoleAttr } from '../model/display-paths.js';

export interface VerifyLine {
  ok: boolean;
  what: string;
  /** The command that fixes it (as root), when not ok. */
  fix?: string;
}

interface HandoffRecordView {
  devices: { address: string; driver: string | null }[];
  displayManager: string | null;
  vtconsoles: string[];
  drm: { device: string; connectors: string[] }[];
  modules: { module: string; also: string[] }[];
}

export function verifyDisplayBack(snap: HostSnapshot, rec: HandoffRecordView): VerifyLine[] {
  const out: VerifyLine[] = [];
  const byAddr = new Map(snap.pci.map((d) => [d.address, d]));
  for (const r of rec.devices) {
    const now = byAddr.get(r.address);
    const want = r.driver === 'vfio-pci' ? null : r.driver;
    if (!now) {
      out.push({ ok: false, what: `${shortAddress(r.address)} is not on the PCI bus`, fix: 'echo 1 > /sys/bus/pci/rescan' });
    } else if (want && now.driver !== want) {
      const mod = rec.modules.find((m) => m.module === want || m.also.includes(want));
      out.push({ ok: false, what: `${shortAddress(r.address)} is on ${now.driver ?? 'no driver'}, expected ${want}`, fix: mod && !now.driver ? `modprobe ${want}` : `echo > /sys/bus/pci/devices/${r.address}/driver_override; echo ${r.address} > /sys/bus/pci/drivers_probe` });
    } else {
      out.push({ ok: true, what: `${shortAddress(r.address)} on ${now.driver ?? 'no driver'}` });
    }
  }
  for (const d of rec.drm) {
    const cards = snap.display.drm.filter((c) => c.device === d.device);
    if (!cards.length) {
      out.push({ ok: false, what: `no DRM card for ${shortAddress(d.device)}`, fix: `check \`dmesg | tail\` for ${d.device}; reload the GPU driver (modprobe ${rec.devices.find((x) => x.address === d.device)?.driver ?? 'DRIVER'})` });
      continue;
    }
    const conns = new Set(cards.flatMap((c) => c.connectors.map((x) => x.name)));
    const missing = d.connectors.filter((c) => !conns.has(c));
    out.push(missing.length ? { ok: false, what: `${cards[0].id}: connector(s) ${missing.join(', ')} missing`, fix: `reload the GPU driver for ${d.device}` } : { ok: true, what: `${cards.map((c) => c.id).join(', ')} for ${shortAddress(d.device)} with ${d.connectors.length} connector(s)` });
  }
  for (const id of rec.vtconsoles) {
    const v = snap.display.vtconsoles.find((x) => x.id === id);
    out.push(v?.bound ? { ok: true, what: `console ${id} bound` } : { ok: false, what: `console ${id} is not bound`, fix: `echo 1 > ${vtconsoleAttr(id, 'bind')}` });
  }
  if (rec.displayManager) {
    const dm = snap.display.displayManager;
    out.push(dm && dm.unit === rec.displayManager && dm.active !== false ? { ok: true, what: `${rec.displayManager} ${dm.active ? 'active' : 'state unknown'}` } : { ok: false, what: `${rec.displayManager} is not running`, fix: `systemctl start ${rec.displayManager}` });
  }
  return out;
}
