import type { TestProject } from 'vitest/node';
import { setupChromium } from './chromium.js';
import { setupPostgres } from './postgres.js';
import { setupPython } from './python.js';

/**
 * vitest's global setup: everything a suite needs that npm does not install, set up by `npm test` itself.
 * One small module per prerequisite, each idempotent and quick when already done.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const [chromium, python, postgres] = await Promise.allSettled([setupChromium(project), setupPython(), setupPostgres(project)]);
  const stopPostgres = postgres.status === 'fulfilled' ? postgres.value : undefined;
  // A setup that fails the run (CI) must not leave the other's server behind.
  for (const r of [chromium, python, postgres]) {
    if (r.status === 'rejected') {
      stopPostgres?.();
      throw r.reason;
    }
  }
  return () => stopPostgres?.();
}
