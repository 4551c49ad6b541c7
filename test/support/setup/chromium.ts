import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { prerequisiteMissing } from './prerequisite.js';

/** How the console suite launches its browser: the binary, and what the browser's environment needs beyond ours. */
export interface ChromiumLaunch {
  readonly executablePath: string;
  readonly env: Record<string, string>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The browser this setup made ready; null when there is none (the console suite then skips, loudly). */
    chromium: ChromiumLaunch | null;
  }
}

/**
 * The operator console suite drives a real browser through playwright-core, which brings none of its own: the
 * headless Chromium that the @sparticuz/chromium dev dependency ships compressed, which it decompresses on
 * first use to `<tmpdir>/chromium` (about 2 s) and reuses after. CHROMIUM_PATH uses a browser of yours instead.
 */
const CONSOLE_SUITE = 'Operator console suite (test/integration/console.test.ts)';
const CHROMIUM_REMEDY = 'Run npm ci (it installs @sparticuz/chromium), or set CHROMIUM_PATH to a Chromium of yours';

/** Throws, with the loader's or the binary's own words, unless the binary runs. */
const checkRuns = (path: string) => execFileSync(path, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });

async function bundledChromium(): Promise<string> {
  const { default: chromium } = await import('@sparticuz/chromium');
  const path = await chromium.executablePath();
  try {
    checkRuns(path);
    return path;
  } catch {
    // Most likely a file cut short by an interrupted first run (it is reused as it is): decompress it again.
    rmSync(path, { force: true });
    const again = await chromium.executablePath();
    checkRuns(again);
    return again;
  }
}

/**
 * Chromium finds fonts through the system's fontconfig. Where there is none (a slim image), it gets the Open
 * Sans that @sparticuz/chromium decompresses beside the binary, so that screenshots show text, not boxes.
 */
const fontEnv = (): Record<string, string> => (existsSync('/etc/fonts/fonts.conf') ? {} : { FONTCONFIG_PATH: join(tmpdir(), 'fonts') });

export async function setupChromium(project: TestProject): Promise<void> {
  project.provide('chromium', null);
  const given = process.env.CHROMIUM_PATH;
  if (given) {
    if (!existsSync(given)) return prerequisiteMissing(CONSOLE_SUITE, `CHROMIUM_PATH names no file (${given})`, CHROMIUM_REMEDY);
    project.provide('chromium', { executablePath: given, env: {} });
    return;
  }
  try {
    project.provide('chromium', { executablePath: await bundledChromium(), env: fontEnv() });
  } catch (err) {
    prerequisiteMissing(CONSOLE_SUITE, `the Chromium of @sparticuz/chromium does not run: ${(err as Error).message.trim()}`, CHROMIUM_REMEDY);
  }
}
