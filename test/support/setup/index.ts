import type { TestProject } from 'vitest/node';
import { setupPostgres } from './postgres.js';
import { setupPython } from './python.js';

/**
 * vitest's global setup: everything a suite needs that npm does not install, set up by `npm test` itself.
 * One small module per prerequisite, each idempotent and quick when already done.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const [, stopPostgres] = await Promise.all([setupPython(), setupPostgres(project)]);
  return () => stopPostgres?.();
}
