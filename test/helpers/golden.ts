// Golden files: test/fixtures/golden/<name>. UPDATE_GOLDEN=1 rewrites them
// (review the diff). A missing golden is written out and the test still fails.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';

const DIR = path.resolve(__dirname, '../fixtures/golden');

export function expectGolden(name: string, actual: string, dir = DIR): void {
  const file = path.join(dir, name);
  const text = actual.endsWith('\n') ? actual : actual + '\n';
  if (process.env.UPDATE_GOLDEN === '1' || !fs.existsSync(file)) {
    const existed = fs.existsSync(file);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    if (!existed && process.env.UPDATE_GOLDEN !== '1') throw new Error(`golden ${name} was missing; wrote it — review and re-run`);
    return;
  }
  expect(text).toBe(fs.readFileSync(file, 'utf8'));
}

/** Replace a temp root path so JSON goldens are stable. */
export function stableRoot(text: string, root: string): string {
  return text.split(root).join('<root>');
}
