// Hardware drift since a boot-time transaction (pure): for each device it
// passed, is the same device still at its address? If not, did it move
// (found elsewhere by identity), was it replaced, or is it gone — what that
// means for the next boot, and the command that re-targets the passthrough.

import { identityOf, sameDevice, type DeviceIdentity } from '../model/device-identity.js';
import { shortAddress, slotOf } from '../model/pci-address.js';
import type { BootTransactionIntent } from '../model/plan.js';
import type { HostSnapshot } from '../model/snapshot.js';

export interface Drift {
  address: string;
  kind: 'moved' | 'replaced' | 'gone' | 'bridges-changed';
  /** Where the device is now (moved), or null. */
  now: string | null;
  message: string;
  /** What the next boot does because of it. */
  nextBoot: string;
  /** The exact command that re-targets the passthrough, or null when there is nothing to re-target to. */
  fix: string | null;
}

type Recorded = BootTransactionIntent['devices'][number];

export function detectDrift(s: HostSnapshot, tx: { txid: string; intent: BootTransactionIntent }): Drift[] {
  const out: Drift[] = [];
  const recorded = tx.intent.devices.filter((d): d is Recorded & { identity: DeviceIdentity } => !!d.identity);
  const recordedAddrs = new Set(recorded.map((d) => d.address));
  const byAddr = new Map(s.pci.map((d) => [d.address, d]));
  const moves = new Map<string, string>();
  const drifts: Omit<Drift, 'fix'>[] = [];
  for (const want of recorded) {
    const here = byAddr.get(want.address);
    const hereId = here ? identityOf(here, s.pci) : null;
    if (hereId && sameDevice(hereId, want.identity)) {
      if (hereId.bridges.join() !== want.identity.bridges.join())
        drifts.push({ address: want.address, kind: 'bridges-changed', now: want.address, message: `${shortAddress(want.address)} [${want.identity.id}] is still there, but the bridges above it changed (${want.identity.bridges.join(' → ') || 'root bus'} then, ${hereId.bridges.join(' → ') || 'root bus'} now)`, nextBoot: 'the same device is bound; check its IOMMU group with `vfiokit groups`' });
      continue;
    }
    // The device elsewhere: same identity at an address no other recorded device holds.
    const stayed = new Set(tx.intent.stayed ?? []);
    const candidates = s.pci.filter((d) => d.address !== want.address && !recordedAddrs.has(d.address) && !stayed.has(d.address) && sameDevice(identityOf(d, s.pci), want.identity));
    const label = `${shortAddress(want.address)} [${want.identity.id}${want.identity.subsystem ? ` ${want.identity.subsystem}` : ''}]`;
    const occupant = here ? `${shortAddress(here.address)} now holds another device [${here.vendor}:${here.device}${here.subsystemVendor ? ` ${here.subsystemVendor}:${here.subsystemDevice}` : ''}]` : `${shortAddress(want.address)} is empty now`;
    const byAddress = tx.intent.strategy === 'address';
    if (candidates.length === 1) {
      const now = candidates[0]!.address;
      moves.set(want.address, now);
      drifts.push({
        address: want.address,
        kind: 'moved',
        now,
        message: `the device passed as ${label} moved to ${shortAddress(now)}; ${occupant}`,
        nextBoot: byAddress
          ? `the install hook binds by address: at the next boot it ${here ? `takes the device now at ${shortAddress(want.address)} from its driver (the wrong card)` : `binds nothing at ${shortAddress(want.address)}`} and leaves ${shortAddress(now)} on its host driver`
          : `vfio-pci.ids matches by ID, so ${shortAddress(now)} is still bound at the next boot; the transaction's record (status, undo) still names ${shortAddress(want.address)}`,
      });
    } else {
      drifts.push({
        address: want.address,
        kind: here ? 'replaced' : 'gone',
        now: null,
        message: `${label} is not at its address: ${occupant}${candidates.length > 1 ? `; devices like it are at ${candidates.map((c) => shortAddress(c.address)).join(', ')} (cannot tell which one it was)` : '; no device like it is anywhere on this host'}`,
        nextBoot: byAddress
          ? here
            ? `the install hook binds by address: at the next boot it takes ${shortAddress(want.address)} [${here.vendor}:${here.device}] from its driver — a device you never chose`
            : 'the install hook finds nothing to bind at that address'
          : `vfio-pci.ids still claims any ${want.identity.id} at the next boot${here ? `; the device now at ${shortAddress(want.address)} is ${`${here.vendor}:${here.device}` === want.identity.id ? 'of the same model and is bound' : 'not in the list and stays on its driver'}` : ''}`,
      });
    }
  }
  if (!drifts.length) return out;
  // One command re-targets every moved device; without a move there is only undo.
  const moved = drifts.some((d) => d.kind === 'moved');
  const primary = [...new Set(tx.intent.selectors.map((sel) => retarget(sel, moves)))];
  const fix = moved ? `vfiokit undo --id ${tx.txid} --yes && vfiokit apply ${primary.join(' ')} --yes` : `vfiokit undo --id ${tx.txid} --yes, then plan again for the device you want (\`vfiokit groups\`)`;
  for (const d of drifts) out.push({ ...d, fix: d.kind === 'bridges-changed' ? null : fix });
  return out;
}

/** A selector with moved addresses replaced (IDs and names select by what a device is, and stay). */
function retarget(selector: string, moves: Map<string, string>): string {
  const sel = selector.toLowerCase();
  for (const [from, to] of moves) {
    if (sel === from || sel === shortAddress(from)) return shortAddress(to);
    if (sel === slotOf(from) || sel === slotOf(shortAddress(from))) return slotOf(shortAddress(to));
  }
  return selector;
}
