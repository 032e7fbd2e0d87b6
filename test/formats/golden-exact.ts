// Byte-exact golden files for the format tests (trailing newline or not matters here, so the
// shared expectGolden, which appends a newline, is not used). UPDATE_GOLDEN=1 rewrites them;
// a missing golden is written and the test fails.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';

export const FIXTURES = path.resolve(__dirname, '../fixtures/formats');

export function expectExactGolden(file: string, actual: string): void {
  const update = process.env.UPDATE_GOLDEN === '1';
  const existed = fs.existsSync(file);
  if (update || !existed) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, actual);
    if (!existed && !update) throw new Error(`golden ${path.relative(FIXTURES, file)} was missing; wrote it — review and re-run`);
    return;
  }
  expect(actual).toBe(fs.readFileSync(file, 'utf8'));
}
