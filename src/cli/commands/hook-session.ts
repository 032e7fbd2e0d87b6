// What the libvirt hook does for one domain, as an ordered set of parts, each
// its own transaction of the engine (so each keeps its own undo: `vfiokit
// hugepages release`, `handoff release`, `isolate --undo`):
//
//   prepare (libvirt's prepare/begin, before QEMU exists):
//     1. hugepages reserve   — before QEMU allocates (and VFIO pins) guest memory
//     2. handoff prepare     — the domain's devices to vfio-pci (the desktop freed first with --single-gpu)
//     3. isolate             — the host's units off the VM's CPUs (machine.slice keeps them)
//   release (libvirt's release/end: after every stop, a QEMU crash, `virsh
//   destroy` and a start that failed):
//     3. isolate undo, 2. handoff release, 1. hugepages release
//
// Rollback rule: a part that fails at prepare has rolled itself back (its own
// transaction); the parts before it that changed the host are then released,
// newest first, each tried even when one fails; the error says which part
// failed and what, if anything, stays changed (exit 5 then), and the hook's
// non-zero exit makes libvirt refuse the start. A part that found its work in
// effect already (prepared or isolated before) changed nothing and is not
// rolled back. At release every part is tried even after a failure; the
// result names each part that did not come back.
//
// If vfiokit is killed in the middle of a prepare, the transaction of the
// part it was in stays unfinished and the hook exits with the signal; libvirt
// refuses the start and runs release (qemuProcessInit: a failed prepare hook
// goes to qemuProcessStop, which calls release/end). That release (like any
// writing command) first recovers the unfinished transaction, then releases
// the parts that completed — so the host comes back without the user doing
// anything; `vfiokit history` shows the rolled-back transaction.

import { EXIT, PreconditionError, VfioError } from '../../errors.js';

export interface HookPart {
  name: 'hugepages' | 'handoff' | 'isolate';
  /** Apply the part; true when it changed the host (a later failure then releases it). Throws VfioError when it fails (having rolled itself back). */
  prepare(): Promise<boolean>;
  /** Give back what the part holds; the failures (empty: all back). Never throws for host problems. */
  release(): Promise<string[]>;
}

/** A part of a hook's prepare failed; exit 5 when releasing the parts before it left something changed. */
class HookPartError extends VfioError {
  override readonly exitCode: number;
  constructor(
    readonly part: string,
    readonly failure: VfioError,
    readonly released: string[],
    readonly stays: { part: string; failures: string[] }[],
  ) {
    const undone = released.length ? `\nundone before it: ${released.join(', ')}` : '';
    const left = stays.length ? `\nNOT given back: ${stays.map((s) => `${s.part} (${s.failures.join('; ')})`).join(', ')}` : '';
    super(stays.length ? 'E_ROLLBACK_INCOMPLETE' : failure.code, `${part}: ${failure.message}${undone}${left}`, stays.length ? `fix what is named above, then give it back with \`vfiokit handoff release\` (same flags) or \`vfiokit undo\`; ${failure.hint ?? ''}`.replace(/; $/, '') : failure.hint, failure.subject);
    this.exitCode = stays.length ? EXIT.ROLLBACK_INCOMPLETE : failure.exitCode;
  }
}

/** Release parts in the order given, every one tried; the failures of each. */
export async function releaseParts(parts: HookPart[], log: (l: string) => void): Promise<{ part: string; failures: string[] }[]> {
  const out: { part: string; failures: string[] }[] = [];
  for (const p of parts) {
    let failures: string[];
    try {
      failures = await p.release();
    } catch (e) {
      if (!(e instanceof VfioError)) throw e;
      failures = [e.message];
    }
    for (const f of failures) log(`vfiokit: release ${p.name}: ${f}`);
    out.push({ part: p.name, failures });
  }
  return out;
}

/**
 * Prepare parts in order; on a failure, release the parts done before it
 * (newest first) and throw HookPartError. Returns the names of the parts that
 * changed the host.
 */
export async function prepareParts(parts: HookPart[], log: (l: string) => void): Promise<string[]> {
  const done: HookPart[] = [];
  for (const p of parts) {
    try {
      if (await p.prepare()) done.push(p);
    } catch (e) {
      if (!(e instanceof VfioError)) throw e;
      log(`vfiokit: prepare ${p.name} failed${done.length ? `; releasing ${done.map((d) => d.name).reverse().join(', ')}` : ''}`);
      const back = await releaseParts([...done].reverse(), log);
      const stays = back.filter((b) => b.failures.length);
      const err = new HookPartError(p.name, e, back.filter((b) => !b.failures.length).map((b) => b.part), stays);
      if (!stays.length && e instanceof PreconditionError) throw new PreconditionError(err.code, err.message, err.hint, err.subject, e.problems, e.warnings);
      throw err;
    }
  }
  return done.map((d) => d.name);
}
