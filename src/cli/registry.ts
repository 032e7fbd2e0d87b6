// The command table: names, help text and flags for every subcommand. Kept
// free of imports so `vfiokit --version` and `--help` start instantly; each
// command's code is imported only when it runs.

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  description: string;
  valueName?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  description?: string;
  options: Record<string, OptionSpec>;
  /** Module under dist/src/cli/commands exporting `run(ctx)`. */
  load: () => Promise<{ run: (ctx: import('./context.js').CommandContext) => Promise<number> }>;
}

export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  root: { type: 'string', description: 'read (and write) the host under DIR instead of / (a snapshot or test tree)', valueName: 'DIR' },
  help: { type: 'boolean', short: 'h', description: 'show help for the command' },
};

const json: OptionSpec = { type: 'boolean', description: 'print machine-readable JSON' };
const yes: OptionSpec = { type: 'boolean', short: 'y', description: 'do not ask for confirmation (required without a terminal)' };

export const COMMANDS: CommandSpec[] = [
  {
    name: 'check',
    summary: 'readiness report for passthrough on this host, with the fix for each failing line',
    usage: 'vfiokit check [--json] [--root DIR]',
    description: 'Exit 0 when the host is ready, 3 when something must be fixed first.',
    options: { json },
    load: () => import('./commands/check.js'),
  },
  {
    name: 'inspect',
    summary: 'the whole host snapshot (the JSON every plan is made from)',
    usage: 'vfiokit inspect [--json] [--root DIR]',
    description: 'The JSON schema is documented in docs/snapshot-schema.md.',
    options: { json },
    load: () => import('./commands/inspect.js'),
  },
  {
    name: 'groups',
    summary: 'IOMMU groups with names, drivers and a verdict per group; predicted vs kernel groups',
    usage: 'vfiokit groups [--json] [--gpu] [--root DIR]',
    options: { json, gpu: { type: 'boolean', description: 'only groups that contain a GPU (display class 03xx)' } },
    load: () => import('./commands/groups.js'),
  },
  {
    name: 'snapshot',
    summary: 'archive exactly the files vfiokit reads (redacted) for bug reports and test fixtures',
    usage: 'vfiokit snapshot OUT.tar.gz [--root DIR]',
    description: 'Serial numbers, MAC addresses, hostnames and machine IDs are redacted. Extract the archive and pass the directory to --root.',
    options: {},
    load: () => import('./commands/snapshot.js'),
  },
];

export const EXIT_CODES_HELP = `Exit codes:
  0  success (or nothing to do); for check/status: ready / in effect
  1  failure
  2  usage error (unknown command, flag or malformed selector)
  3  preconditions not met; nothing was changed
  4  apply failed and everything done was rolled back
  5  rollback incomplete; the journal ID is printed`;
