// Golden files for what `vfiokit rom check` prints (text and JSON) for
// generated ROMs of each verdict (UPDATE_GOLDEN=1 rewrites them; review).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { expectGolden } from '../helpers/golden.js';
import { makeTempDir } from '../helpers/fake-host.js';
import { runCli } from '../helpers/run-cli.js';
import { buildRom, gpuRom } from '../vm/rom-builder.js';

let dir: string;
const cases: Record<string, Uint8Array> = {
  'legacy-efi': gpuRom(0x10de, 0x2204),
  'legacy-only': buildRom([{ codeType: 0, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true, deviceList: [0x73bf, 0x73af] }]),
  'nvidia-npde': buildRom([
    { codeType: 0, vendor: 0x10de, device: 0x1b80, blocks: 4, last: false, npde: { blocks: 4, last: false } },
    { codeType: 3, vendor: 0x10de, device: 0x1b80, blocks: 2, last: true, compression: 1, npde: { blocks: 2, last: true } },
  ]),
  'needs-strip': buildRom([], new Uint8Array(0x400).fill(0x20), gpuRom(0x10de, 0x1b80)),
  truncated: gpuRom().subarray(0, 3000),
  'aarch64-only': buildRom([{ codeType: 3, vendor: 0x1002, device: 0x73bf, blocks: 2, last: true, machine: 0xaa64 }]),
};
beforeAll(() => {
  dir = makeTempDir('vfiokit-romgold-');
  for (const [n, b] of Object.entries(cases)) fs.writeFileSync(path.join(dir, `${n}.rom`), b);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('rom check output', () => {
  it.each(Object.keys(cases))('%s', async (n) => {
    const file = path.join(dir, `${n}.rom`);
    const text = await runCli(['rom', 'check', file]);
    expectGolden(`rom/${n}.txt`, `exit ${text.code}\n${text.stdout.split(dir).join('<dir>')}`);
    const json = await runCli(['rom', 'check', file, '--json']);
    expectGolden(`rom/${n}.json`, json.stdout.split(dir).join('<dir>'));
  });
});
