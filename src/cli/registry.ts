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
  {
    name: 'bind',
    summary: 'move the selected devices\' IOMMU groups to vfio-pci now, without a reboot',
    usage: 'vfiokit bind SELECTOR... [--with ADDR]... [--force] [--yes] [--json]',
    description:
      'Every endpoint of each selected device\'s IOMMU group moves (driver_override, unbind, drivers_probe); bridges stay on pcieport. The original drivers are recorded for `vfiokit unbind`. Refused (exit 3, nothing changed) when a VM holds the group, for the boot display while it drives the console (unless --force), for bridges, and for groups shared with other devices unless taken with --with.',
    options: {
      json,
      yes,
      with: { type: 'string', multiple: true, description: 'also take this device of the same IOMMU group (repeatable)', valueName: 'ADDR' },
      force: { type: 'boolean', description: 'take the boot display even while it drives the host console' },
    },
    load: () => import('./commands/bind.js'),
  },
  {
    name: 'unbind',
    summary: 'return devices from vfio-pci to the drivers they had before `vfiokit bind`',
    usage: 'vfiokit unbind SELECTOR... [--yes] [--json]',
    description: 'Devices vfiokit did not bind go to the kernel\'s default driver. Refused (exit 3) while a VM holds the group.',
    options: { json, yes },
    load: () => import('./commands/unbind.js'),
  },
  {
    name: 'recover',
    summary: 'finish what an interrupted apply or undo left half done (rolls back / completes it)',
    usage: 'vfiokit recover [--json] [--root DIR]',
    description: 'apply, undo and status do this automatically first. Exit 5 when recovery could not complete.',
    options: { json },
    load: () => import('./commands/recover.js'),
  },
];

export const EXIT_CODES_HELP = `Exit codes:
  0  success (or nothing to do); for check/status: ready / in effect
  1  failure
  2  usage error (unknown command, flag or malformed selector)
  3  preconditions not met; nothing was changed
  4  apply failed and everything done was rolled back
  5  rollback incomplete; the journal ID is printed`;
