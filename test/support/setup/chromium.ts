import { existsSync } from 'node:fs';
import { prerequisiteMissing } from './prerequisite.js';

/**
 * The operator console suite drives a real browser: Debian's `chromium` through playwright-core (which
 * brings no browser of its own). Nothing to set up but its presence, which only a package manager run as
 * root can give: a workstation without it skips the suite loudly, CI fails (.ci/run installs it).
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_INSTALL = 'Install Chromium (Debian/Ubuntu: apt-get install chromium; or set CHROMIUM_PATH)';
export const CONSOLE_SUITE = 'Operator console suite (test/integration/console.test.ts)';

export const chromiumFound = (): boolean => existsSync(CHROMIUM_PATH);

export function setupChromium(): void {
  if (!chromiumFound()) prerequisiteMissing(CONSOLE_SUITE, `no Chromium at ${CHROMIUM_PATH}`, CHROMIUM_INSTALL);
}
