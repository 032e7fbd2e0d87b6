// The mount table format (fstab(5), /proc/mounts, /proc/swaps): examples
// written out by hand, and fast-check properties — the document renders back
// byte for byte, comments and blank lines are never entries, fields with
// blanks and backslashes come back from the kernel's octal escapes (the
// escaping here is written out from fstab(5), not taken from the parser),
// and lines with missing fields are reported, never guessed.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hasMountOption, mountEntries, parseFstab, parseProcSwaps, renderFstab } from '../../src/formats/fstab.js';

/** fstab(5): "spaces or tabs … must be protected with \040 and \011"; newline \012, backslash \134; '#' as \043 (the kernel's mangle in /proc/mounts, so a field never starts a comment). */
const escape = (s: string) => s.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/\t/g, '\\011').replace(/\n/g, '\\012').replace(/#/g, '\\043');

describe('fstab', () => {
  it('reads a distribution fstab: comments, tabs, escapes, defaults for left-out fields', () => {
    const text = [
      '# /etc/fstab: static file system information.',
      '#',
      '# <file system> <mount point>   <type>  <options>       <dump>  <pass>',
      'UUID=9f1e-root /               ext4    errors=remount-ro 0       1',
      '\tUUID=7a3e-boot\t/boot\text4\tdefaults\t0\t2',
      '',
      'LABEL=My\\040Disk /media/My\\040Disk exfat nofail,x-systemd.device-timeout=5',
      '/dev/mapper/vg-swap none swap sw',
      'tmpfs /tmp tmpfs',
      '   # an indented comment',
      '/dev/sdz1 /broken',
      '/dev/sdz2 /bad ext4 defaults x 0',
    ].join('\n');
    const doc = parseFstab(text);
    expect(renderFstab(doc)).toBe(text);
    expect(mountEntries(text).map((e) => [e.spec, e.file, e.vfstype, e.options.join(','), e.freq, e.passno, e.line])).toEqual([
      ['UUID=9f1e-root', '/', 'ext4', 'errors=remount-ro', 0, 1, 4],
      ['UUID=7a3e-boot', '/boot', 'ext4', 'defaults', 0, 2, 5],
      ['LABEL=My Disk', '/media/My Disk', 'exfat', 'nofail,x-systemd.device-timeout=5', 0, 0, 7],
      ['/dev/mapper/vg-swap', 'none', 'swap', 'sw', 0, 0, 8],
      ['tmpfs', '/tmp', 'tmpfs', 'defaults', 0, 0, 9],
    ]);
    expect(doc.lines.map((l) => l.error).filter(Boolean)).toEqual([
      'line 11: "/dev/sdz1 /broken" has 2 fields; an entry needs at least a device, a mount point and a file system type',
      'line 12: the dump and pass fields of "/dev/sdz2 /bad ext4 defaults x 0" must be numbers',
    ]);
    const data = mountEntries(text)[2]!;
    expect(hasMountOption(data, 'nofail')).toBe(true);
    expect(hasMountOption(data, 'x-systemd.device-timeout')).toBe(true);
    expect(hasMountOption(data, 'noauto')).toBe(false);
  });

  it('reads /proc/mounts and /proc/swaps as the kernel writes them (CRLF copies too)', () => {
    expect(mountEntries('/dev/sdb1 /media/me/a\\040b\\134c exfat rw,relatime 0 0\r\n').map((e) => [e.spec, e.file])).toEqual([['/dev/sdb1', '/media/me/a b\\c']]);
    expect(parseProcSwaps('Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/nvme0n1p3                          partition\t8388604\t\t0\t\t-2\n/swap\\040file file 1024 0 -3\n')).toEqual([
      { filename: '/dev/nvme0n1p3', type: 'partition' },
      { filename: '/swap file', type: 'file' },
    ]);
  });

  const field = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '/', '=', '-', ' ', '\t', '\\', '\n', 'é', '#'), minLength: 1, maxLength: 12 });
  const blanks = fc.stringMatching(/^[ \t]{1,3}$/);
  const entry = fc.record({ spec: field, file: field, type: fc.stringMatching(/^[a-z0-9]{1,6}$/), options: fc.array(fc.stringMatching(/^[a-z0-9=._-]{1,10}$/), { minLength: 1, maxLength: 4 }), nums: fc.option(fc.tuple(fc.nat(9), fc.option(fc.nat(9)))) });
  const other = fc.oneof(fc.stringMatching(/^[ \t]*(#[^\n]*)?$/), fc.stringMatching(/^[ \t]*[a-z/]{1,6}([ \t]+[a-z/]{1,6})?[ \t]*$/));

  it('property: any text renders back byte for byte', () => {
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom('a', ' ', '\t', '\n', '\r', '#', '\\', '0', '4', 'é', '\u0000') }), (t) => renderFstab(parseFstab(t)) === t));
  });

  it('property: escaped entries among comments, blank lines and short lines come back field for field, in order; the others are never entries', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(entry.map((e) => ({ e })), other.map((o) => ({ o }))), { maxLength: 10 }), blanks, fc.boolean(), (items, sep, nl) => {
        const lines = items.map((it) => {
          if ('o' in it) return it.o;
          const { spec, file, type, options, nums } = it.e;
          const tail = nums ? [String(nums[0]), ...(nums[1] !== null ? [String(nums[1])] : [])] : [];
          return [escape(spec), escape(file), type, options.join(','), ...tail].join(sep);
        });
        const text = lines.join('\n') + (nl ? '\n' : '');
        const got = mountEntries(text);
        const want = items.flatMap((it, i) => ('e' in it ? [{ spec: it.e.spec, file: it.e.file, vfstype: it.e.type, options: it.e.options, freq: it.e.nums?.[0] ?? 0, passno: it.e.nums?.[1] ?? 0, line: i + 1 }] : []));
        expect(got).toEqual(want);
        const doc = parseFstab(text);
        expect(renderFstab(doc)).toBe(text);
        // The short lines (one or two fields) are reported, comments and blanks are not.
        items.forEach((it, i) => {
          if ('o' in it) expect(!!doc.lines[i]!.error).toBe(it.o.trim() !== '' && !it.o.trim().startsWith('#'));
        });
      }),
      { numRuns: 300 },
    );
  });
});
