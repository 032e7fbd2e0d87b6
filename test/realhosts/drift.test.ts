// Identity and drift: a boot-time transaction records what each passed device
// is (IDs, subsystem, class, slot, bridges); when the hardware changes after
// apply, `status` and `plan` say which device moved or what now sits at its
// address, what that means for the next boot, and the command that re-targets.
// The "after" hosts are written down here as the hardware would look.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyPlan, recordingRunner } from '../../src/apply/index.js';
import { inspect } from '../../src/host/inspect.js';
import { assembleBootPlan } from '../../src/plan/boot-plan.js';
import { buildFakeHost, type FakeHost, type FakePci } from '../helpers/fake-host.js';
import { debianGrub, debianTwin } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => fs.promises.rm(r, { recursive: true, force: true })));
});
const build = (h: FakeHost) => {
  const r = buildFakeHost(h);
  roots.push(r);
  return r;
};

/** Applies `sel` on `before`, then gives the "after" hardware the same /etc, /boot and journal (the disk moved with the host). */
async function applyThenChange(before: FakeHost, sel: string[], after: FakeHost): Promise<{ root: string; txid: string; intent: Record<string, unknown> }> {
  const a = build(before);
  const plan = assembleBootPlan(inspect(a), { selectors: sel });
  expect(plan.problems).toEqual([]);
  const res = await applyPlan(plan, { root: a, runner: recordingRunner() });
  const b = build(after);
  for (const d of ['etc', 'boot', 'var', 'usr/local']) if (fs.existsSync(path.join(a, d))) fs.cpSync(path.join(a, d), path.join(b, d), { recursive: true, force: true });
  return { root: b, txid: (res as { txid: string }).txid, intent: plan.intent };
}

/** Moves a row to another address (and its children with it). */
const at = (rows: FakePci[], moves: Record<string, string>): FakePci[] => rows.map((r) => ({ ...r, addr: moves[r.addr] ?? r.addr, ...(r.parent ? { parent: moves[r.parent] ?? r.parent } : {}) }));

describe('device identity in the transaction', () => {
  it('records vendor:device, subsystem, class, slot and the bridge path of each passed device', () => {
    const plan = assembleBootPlan(inspect(build(debianGrub)), { selectors: ['01:00.0'] });
    const dev = (plan.intent.devices as { address: string; identity: unknown }[]).find((d) => d.address === '0000:01:00.0');
    expect(dev?.identity).toEqual({ id: '10de:1f08', subsystem: '1458:3fc2', class: '030000', slot: '0000:01:00', bridges: ['0000:00:01.0 [8086:1901]'] });
  });
});

describe('drift after apply', () => {
  // The GPU (behind 00:01.0) and the NVMe drive (behind 00:1b.0) swap slots: the GPU is now 02:00.x, the drive 01:00.0.
  const swapped: FakeHost = {
    ...debianGrub,
    pci: at(debianGrub.pci, { '01:00.0': '02:00.0', '01:00.1': '02:00.1', '01:00.2': '02:00.2', '01:00.3': '02:00.3', '02:00.0': '01:00.0' }).map((r) =>
      r.addr.startsWith('02:00') ? { ...r, parent: '00:1b.0', group: 7 } : r.addr === '01:00.0' ? { ...r, parent: '00:01.0', group: 1 } : r,
    ),
    blocks: [{ name: 'nvme0n1', dev: '259:0', pci: '01:00.0', parts: { nvme0n1p1: '259:1', nvme0n1p2: '259:2' } }],
  };

  it('status: the GPU moved to 02:00.0, 01:00.0 holds the NVMe drive; by IDs it is still bound; the fix re-targets', async () => {
    const { root, txid } = await applyThenChange(debianGrub, ['01:00.0'], swapped);
    const r = await runCli(['status', '--root', root]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/01:00\.0 \[10de:1f08 1458:3fc2\] moved to 02:00\.0; 01:00\.0 now holds another device \[144d:a808/);
    expect(r.stdout).toMatch(/vfio-pci\.ids matches by ID, so 02:00\.0 is still bound at the next boot/);
    expect(r.stdout).toContain(`vfiokit undo --id ${txid} --yes && vfiokit apply 02:00.0 --yes`);
    const j = await runCli(['status', '--json', '--root', root]);
    const drift = (JSON.parse(j.stdout) as { drift: { address: string; kind: string; now: string }[] }).drift;
    expect(drift.filter((d) => d.kind === 'moved').map((d) => [d.address, d.now])).toEqual([
      ['0000:01:00.0', '0000:02:00.0'],
      ['0000:01:00.1', '0000:02:00.1'],
      ['0000:01:00.2', '0000:02:00.2'],
      ['0000:01:00.3', '0000:02:00.3'],
    ]);
  });

  it('plan warns with the same fix', async () => {
    const { root, txid } = await applyThenChange(debianGrub, ['01:00.0'], swapped);
    const r = await runCli(['plan', '02:00.0', '--root', root]);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`hardware changed since transaction ${txid}: the device passed as 01:00\\.0 \\[10de:1f08`));
    expect(r.stdout + r.stderr).toContain(`vfiokit undo --id ${txid} --yes && vfiokit apply 02:00.0 --yes`);
  });

  it('by address (twin GPUs): a replaced card means the install hook would take a device never chosen', async () => {
    // 0b:00.x now holds an AMD card; the chosen NVIDIA card is gone.
    const replaced: FakeHost = {
      ...debianTwin,
      pci: debianTwin.pci.map((r) => (r.addr === '0b:00.0' ? { ...r, id: '1002:73bf', subsys: '1002:0e3a', driver: 'amdgpu' } : r.addr === '0b:00.1' ? { ...r, id: '1002:ab28', subsys: '1002:0e3a' } : r)),
    };
    const { root, txid } = await applyThenChange(debianTwin, ['0b:00.0'], replaced);
    const r = await runCli(['status', '--root', root]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/0b:00\.0 \[10de:2204 3842:3987\] is not at its address: 0b:00\.0 now holds another device \[1002:73bf/);
    expect(r.stdout).toMatch(/the install hook binds by address: at the next boot it takes 0b:00\.0 \[1002:73bf\] from its driver — a device you never chose/);
    expect(r.stdout).toContain(`vfiokit undo --id ${txid} --yes, then plan again`);
  });

  // The GPU stays at 01:00.0, but the root port above it is another model now (a board swapped for its twin, a new riser).
  const newPort = (extra: (r: FakePci) => FakePci = (r) => r): FakeHost => ({ ...debianGrub, pci: debianGrub.pci.map((r) => extra(r.addr === '00:01.0' ? { ...r, id: '8086:1905' } : r)) });

  it('status: only the bridge above the passed GPU changed — a warning naming both paths, and the group still holds only the passed devices', async () => {
    const { root } = await applyThenChange(debianGrub, ['01:00.0'], newPort());
    const r = await runCli(['status', '--root', root]);
    expect(r.stdout).toContain('[warn] 01:00.0 [10de:1f08] bridges: 01:00.0 [10de:1f08] is still there, but the bridges above it changed (0000:00:01.0 [8086:1901] then, 0000:00:01.0 [8086:1905] now)');
    expect(r.stdout).toMatch(/note: the same device is bound; check its IOMMU group with `vfiokit groups`; IOMMU group 1 holds only the passed devices/);
    const j = JSON.parse((await runCli(['status', '--json', '--root', root])).stdout) as { drift: { address: string; kind: string }[]; lines: { subject: string; ok: boolean; warn?: boolean }[] };
    expect(j.drift.map((d) => [d.address, d.kind])).toEqual(['0000:01:00.0', '0000:01:00.1', '0000:01:00.2', '0000:01:00.3'].map((a) => [a, 'bridges-changed']));
    expect(j.lines.find((l) => l.subject === '01:00.0 [10de:1f08] bridges')).toMatchObject({ ok: true, warn: true });
  });

  it('status: the new bridge merged another device into the passed group — a failure naming it and the fix', async () => {
    const { root, txid } = await applyThenChange(debianGrub, ['01:00.0'], newPort((r) => (r.addr === '02:00.0' ? { ...r, group: 1 } : r)));
    const r = await runCli(['status', '--root', root]);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('[FAIL] 01:00.0 [10de:1f08] bridges: 01:00.0 [10de:1f08] is still there, but the bridges above it changed');
    expect(r.stdout).toContain(`IOMMU group 1 now also holds 02:00.0 [144d:a808] on nvme, which the transaction did not pass: the group is not viable for a VM until they are on vfio-pci too; run \`vfiokit groups\`, then \`vfiokit undo --id ${txid} --yes\` and plan again`);
  });

  it('no drift, no noise: the same hardware gives no drift and plan no such warning', async () => {
    const { root } = await applyThenChange(debianGrub, ['01:00.0'], debianGrub);
    const j = JSON.parse((await runCli(['status', '--json', '--root', root])).stdout) as { drift: unknown[] };
    expect(j.drift).toEqual([]);
    const r = await runCli(['plan', '01:00.0', '--root', root]);
    expect(r.stdout + r.stderr).not.toMatch(/hardware changed/);
  });
});
