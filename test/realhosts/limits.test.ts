// Item: big input. A configuration file far larger than its kind can hold is
// refused by name before any parser sees it; the shell parser numbers lines in
// one pass (linear; throughput is measured by `npm run bench:parsers`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFakeHost } from '../helpers/fake-host.js';
import { debianGrub } from '../helpers/distros.js';
import { runCli } from '../helpers/run-cli.js';
import { parseShell } from '../../src/formats/shell.js';

const tmp: string[] = [];
afterAll(() => {
  for (const t of tmp) fs.rmSync(t, { recursive: true, force: true });
});

describe('size limits and line numbers', () => {
  it('a 5 MiB /etc/default/grub is refused with E_FILE_TOO_LARGE naming the file', async () => {
    const root = buildFakeHost(debianGrub);
    tmp.push(root);
    const grub = path.join(root, 'etc/default/grub');
    fs.writeFileSync(grub, fs.readFileSync(grub, 'latin1') + '# padding\n'.repeat(524_288));
    const r = await runCli(['plan', '01:00.0', '--json', '--root', root]);
    expect(r.code).toBe(3);
    const p = JSON.parse(r.stdout);
    expect(p.problems).toEqual([expect.objectContaining({ code: 'E_FILE_TOO_LARGE', subject: '/etc/default/grub' })]);
  }, 30_000);

  it('statement line numbers are right deep into a file (incremental counting)', () => {
    const text = 'A=1\nB="x\ny"\n' + '# c\n'.repeat(1000) + 'C=3\n';
    const doc = parseShell(text, 'f');
    const c = doc.statements.find((s) => s.assign?.name === 'C')!;
    expect(c.line).toBe(1 + 2 + 1000 + 1);
    const b = doc.statements.find((s) => s.assign?.name === 'B')!;
    expect(b.line).toBe(2);
  });

  it('an unterminated quote opened on line 2 is reported at line 2', () => {
    expect(() => parseShell('A=1\nB="x\nC=2\n', 'f')).toThrow(/^f:2: unterminated double quote/);
  });
});
