import * as path from 'node:path';
import { UsageError } from '../../errors.js';
import { writeSnapshotArchive } from '../../host/capture.js';
import { out, type CommandContext } from '../context.js';

export async function run(ctx: CommandContext): Promise<number> {
  const [file, ...extra] = ctx.positionals;
  if (!file || extra.length) throw new UsageError('snapshot takes exactly one argument: the archive to write (OUT.tar.gz)');
  if (!/\.(tar\.gz|tgz)$/.test(file)) throw new UsageError(`snapshot archive name ${file} must end in .tar.gz or .tgz`);
  const res = await writeSnapshotArchive(ctx.root, path.resolve(file));
  out(ctx, `wrote ${file}: ${res.files} files, ${res.links} symlinks, ${res.dirs} directories from ${ctx.root.dir}`);
  out(ctx, `redacted: ${res.redactions.length ? res.redactions.join(', ') : 'nothing identifying was found'}`);
  out(ctx, `read it back with: mkdir snap && tar -xzf ${file} -C snap && vfiokit inspect --root snap`);
  return 0;
}
