// Every lab test, in the order they run.
import type { TestDef } from '../lib/harness.js';
import { scenario1 } from './s1-readonly.js';

export const ALL_TESTS: TestDef[] = [...scenario1];
