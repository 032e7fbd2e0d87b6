// The system Chromium (Debian's `chromium` package) driven by playwright-core;
// no browser is ever downloaded. Under CI=1 a missing browser is a failure,
// elsewhere the caller skips and says why.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

export function findChromium(env: Record<string, string | undefined> = process.env): string | null {
  if (env.VFIOKIT_CHROMIUM) return fs.existsSync(env.VFIOKIT_CHROMIUM) ? env.VFIOKIT_CHROMIUM : null;
  return CHROMIUM_CANDIDATES.find((p) => fs.existsSync(p)) ?? null;
}

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launch with a fresh profile directory; close() removes it. */
export async function launchChromium(executablePath: string, colorScheme: 'light' | 'dark' = 'light'): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  // A fresh --user-data-dir (playwright passes the directory as that flag).
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vfiokit-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath, args: CHROMIUM_ARGS, headless: true, colorScheme, viewport: { width: 1280, height: 900 } });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
