import * as fs from 'node:fs';
import * as path from 'node:path';
import { PreconditionError, UsageError } from '../../errors.js';
import { writeSnapshotArchive } from '../../host/capture.js';
import { out, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  const [file, ...extra] = ctx.positionals;
  if (!file || extra.length) throw new UsageError('snapshot takes exactly one argument: the archive to write (OUT.tar.gz)');
  if (!/\.(tar\.gz|tgz)$/.test(file)) throw new UsageError(`snapshot archive name ${file} must end in .tar.gz or .tgz`);
  const dest = path.resolve(file);
  // Someone's file: replaced only when asked (as rom dump/strip -o do).
  if (fs.existsSync(dest) && !ctx.values.force) throw new PreconditionError('E_OUTPUT_EXISTS', `${file} exists; nothing was written`, 'give another archive name, or --force to replace it', file);
  const res = await writeSnapshotArchive(ctx.root, dest);
  out(ctx, `wrote ${file}: ${res.files} files, ${res.links} symlinks, ${res.dirs} directories from ${ctx.root.dir}`);
  out(ctx, `redacted: ${res.redactions.length ? res.redactions.join(', ') : 'nothing identifying was found'}`);
  out(ctx, `read it back with: mkdir snap && tar -xzf ${file} -C snap && vfiokit inspect --root snap`);
  return 0;
}
