// Fault injection at every step of a plan, as one set of test cases: a failure
// before and after each step's effect must roll back byte for byte (exit 4),
// and a power cut after each step must be finished by `recover` to the same
// bytes. Call inside a describe; `setup` builds a fresh host per case.

import { expect, it } from 'vitest';
import { applyPlan, recoverInterrupted, SimulatedCrash, type Runner, type SysfsWriter } from '../../src/apply/index.js';
import { ApplyError } from '../../src/errors.js';
import type { Plan } from '../../src/model/plan.js';
import { treeFingerprint } from '../apply/_tree.js';

export interface FaultHost {
  dir: string;
  runner: Runner;
  kernel: SysfsWriter;
}

export function faultAtEveryStep(steps: number, setup: () => FaultHost, plan: (dir: string) => Plan): void {
  for (let k = 0; k < steps; k++) {
    for (const after of [false, true]) {
      it(`step ${k + 1} fails ${after ? 'after' : 'before'} its effect → rolled back byte for byte`, async () => {
        const { dir, runner, kernel } = setup();
        const before = treeFingerprint(dir);
        const err = (await applyPlan(plan(dir), { root: dir, runner, sysfs: kernel, failAt: { step: k, after } }).catch((e) => e)) as ApplyError;
        expect(err).toBeInstanceOf(ApplyError);
        expect(err.exitCode).toBe(4);
        expect(treeFingerprint(dir)).toEqual(before);
      });
    }
    it(`power cut after step ${k + 1} → recover gives every byte back`, async () => {
      const { dir, runner, kernel } = setup();
      const before = treeFingerprint(dir);
      await expect(applyPlan(plan(dir), { root: dir, runner, sysfs: kernel, failAt: { step: k, after: true, crash: true } })).rejects.toBeInstanceOf(SimulatedCrash);
      await recoverInterrupted(dir, runner, { sysfs: kernel, lock: { isAlive: () => false } });
      expect(treeFingerprint(dir)).toEqual(before);
    });
  }
}
