// The command table's usage lines agree with its options: every option a
// command takes is in its usage, and the usage names no option the command
// does not take. Every command but snapshot (it writes only the archive it
// is given) has --json; every command that changes the host has --dry-run.

import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMANDS, GLOBAL_OPTIONS } from '../../src/cli/registry.js';

const usageFlags = (usage: string) => new Set([...usage.matchAll(/(?:^|[\s[|])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
const usageShorts = (usage: string) => new Set([...usage.matchAll(/(?:^|[\s[])-([a-zA-Z])\b/g)].map((m) => m[1]));

describe('the command table', () => {
  for (const c of COMMANDS) {
    it(`${c.name}: the usage names every option and only those`, () => {
      const flags = usageFlags(c.usage);
      const shorts = usageShorts(c.usage);
      const missing = Object.entries(c.options)
        .filter(([name, o]) => !flags.has(name) && !(o.short && shorts.has(o.short)))
        .map(([name]) => `--${name}`);
      expect(missing, `add them to the usage of ${c.name}`).toEqual([]);
      const unknown = [...flags].filter((f) => !(f in c.options) && !(f in GLOBAL_OPTIONS));
      expect(unknown, `the usage of ${c.name} names options it does not take`).toEqual([]);
    });
  }

  it('README.md has a row for every command', () => {
    const readme = fs.readFileSync('README.md', 'utf8');
    const rows = readme.split('\n').filter((l) => l.startsWith('| `vfiokit '));
    const named = new Set(rows.flatMap((l) => [...l.split('|')[1].matchAll(/`vfiokit ([a-z]+)|\/ ([a-z]+) /g)].map((m) => m[1] ?? m[2])));
    expect(COMMANDS.map((c) => c.name).filter((n) => !named.has(n))).toEqual([]);
  });

  it('--json on every command but snapshot; --dry-run on every writing command', () => {
    expect(COMMANDS.filter((c) => !('json' in c.options)).map((c) => c.name)).toEqual(['snapshot']);
    const writing = ['report', 'vm', 'rom', 'apply', 'undo', 'bind', 'unbind', 'export', 'recover', 'hooks', 'handoff', 'isolate', 'hugepages'];
    expect(writing.filter((n) => !('dry-run' in COMMANDS.find((c) => c.name === n)!.options))).toEqual([]);
    expect(COMMANDS.filter((c) => 'dry-run' in c.options).map((c) => c.name).sort()).toEqual([...writing].sort());
  });
});
