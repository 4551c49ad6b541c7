import { setupChromium } from './chromium.js';
import { setupPython } from './python.js';

/**
 * vitest's global setup: everything a suite needs that npm does not install, set up by `npm test` itself.
 * One small module per prerequisite, each idempotent and quick when already done.
 */
export default async function setup(): Promise<void> {
  setupChromium();
  await setupPython();
}
