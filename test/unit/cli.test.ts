import { describe, expect, it } from 'vitest';
import { COMMANDS, fillOptionalValues } from '../../src/cli/registry.js';
import { runCli } from '../helpers/run-cli.js';

describe('cli shell', () => {
  it('prints the version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vfiokit \d+\.\d+\.\d+/);
  });
  it('lists commands and exit codes in --help', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['check', 'inspect', 'groups', 'snapshot']) expect(r.stdout).toContain(`  ${c} `);
    expect(r.stdout).toContain('3  preconditions not met');
  });
  it('rejects an unknown command with exit 2', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
  });
  it('a command that takes a bounded number of words refuses more, naming them, before it reads anything', async () => {
    const bounded = COMMANDS.filter((c) => c.maxPositionals !== undefined);
    expect(bounded.map((c) => c.name)).toEqual(expect.arrayContaining(['undo', 'history', 'isolate', 'hugepages', 'hooks', 'handoff']));
    for (const c of bounded) {
      const words = [...Array.from({ length: c.maxPositionals! }, (_, i) => `w${i}`), 'extra1', 'extra2'];
      const r = await runCli([c.name, ...words, '--root', '/nonexistent-vfiokit-root']);
      expect(r.code, c.name).toBe(2);
      expect(r.stderr, c.name).toBe(`vfiokit ${c.name}: unexpected arguments 'extra1' 'extra2'\nUsage: ${c.usage}\nSee \`vfiokit ${c.name} --help\` for the options and exit codes.\n`);
    }
    // `vfiokit undo TXID` would have undone the newest transaction, not TXID.
    const u = await runCli(['undo', '20261203T053828Z-0005']);
    expect(u.stderr).toMatch(/^vfiokit undo: unexpected argument '20261203T053828Z-0005'\nUsage: vfiokit undo \[--id TXID\]/);
  });
  it('rejects an unknown flag with exit 2 and the command usage', async () => {
    const r = await runCli(['inspect', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--bogus');
    expect(r.stderr).toContain('Usage: vfiokit inspect');
  });
  it('every command answers a usage error with the error, its usage lines and where the help is, not the whole help', async () => {
    for (const c of COMMANDS) {
      for (const argv of [[c.name, '--bogus'], [c.name, '--root', '/nonexistent-vfiokit-root']]) {
        const r = await runCli(argv);
        expect(r.code, argv.join(' ')).toBe(2);
        const lines = r.stderr.trimEnd().split('\n');
        expect(lines[0], argv.join(' ')).toMatch(new RegExp(`^vfiokit ${c.name}: (Unknown option '--bogus'|--root /nonexistent-vfiokit-root: )`));
        expect(r.stderr, argv.join(' ')).toContain(`Usage: ${c.usage}\n`);
        expect(lines[lines.length - 1]).toBe(`See \`vfiokit ${c.name} --help\` for the options and exit codes.`);
        expect(r.stderr, argv.join(' ')).not.toContain('Exit codes:');
        expect(r.stderr, argv.join(' ')).not.toContain('Options:');
      }
    }
  });
  it('an option without its value is said in one line', async () => {
    for (const [argv, flag] of [[['export', 'kubevirt', '--node'], '--node'], [['undo', '--id', '--yes'], '--id']] as const) {
      const r = await runCli([...argv]);
      expect(r.code).toBe(2);
      expect(r.stderr.split('\n')[0]).toBe(`vfiokit ${argv[0]}: ${flag} needs a value (write ${flag}=VALUE for a value that starts with a dash)`);
    }
  });
  it('an unknown command points at --help instead of printing it', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.stderr).toBe("vfiokit: unknown command 'frobnicate'\nUsage: vfiokit <command> [options]\nSee `vfiokit --help` for the commands.\n");
  });
  it('shows per-command help', async () => {
    const r = await runCli(['groups', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--gpu');
  });
});

describe('options whose value may be left out', () => {
  const opts = { 'looking-glass': { type: 'string' as const, description: '', optionalValue: { value: 'auto', pattern: /^(auto|\d+x\d+)$/i } }, device: { type: 'string' as const, description: '' } };
  it('alone, before another option or before a word that is not a value: the default; otherwise the given value', () => {
    expect(fillOptionalValues(['w', '--looking-glass'], opts)).toEqual(['w', '--looking-glass=auto']);
    expect(fillOptionalValues(['--looking-glass', '--device', 'x'], opts)).toEqual(['--looking-glass=auto', '--device', 'x']);
    expect(fillOptionalValues(['--looking-glass', 'w'], opts)).toEqual(['--looking-glass=auto', 'w']);
    expect(fillOptionalValues(['--looking-glass', '2560x1440', 'w'], opts)).toEqual(['--looking-glass', '2560x1440', 'w']);
    expect(fillOptionalValues(['--looking-glass=3840x2160'], opts)).toEqual(['--looking-glass=3840x2160']);
    expect(fillOptionalValues(['--', '--looking-glass'], opts)).toEqual(['--', '--looking-glass']);
  });
});
