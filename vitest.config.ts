import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Sets up what npm does not install (the Python SDK venvs, a PostgreSQL cluster), once per run; see test/support/setup/.
    globalSetup: ['test/support/setup/index.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
