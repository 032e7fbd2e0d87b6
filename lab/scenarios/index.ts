// Every lab test, in the order they run (scenario 1 first: it needs no image).
import type { TestDef } from '../lib/harness.js';
import { scenario1 } from './s1-readonly.js';
import { scenario2, scenario3 } from './s2-boot.js';
import { scenario4 } from './s4-crash.js';
import { scenario5 } from './s5-runtime.js';
import { scenario6 } from './s6-rom.js';
import { scenario7 } from './s7-libvirt.js';
import { scenario8 } from './s8-isolate.js';
import { scenario9 } from './s9-diagnose.js';
import { scenario10 } from './s10-fleet.js';
import { scenario11 } from './s11-lvm.js';
import { scenario12 } from './s12-hugepages.js';

export const ALL_TESTS: TestDef[] = [...scenario1, ...scenario2, ...scenario3, ...scenario4, ...scenario5, ...scenario6, ...scenario7, ...scenario8, ...scenario9, ...scenario10, ...scenario11, ...scenario12];
