import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { ApiError } from '../domain/errors.js';
import { PostgresStore, safeDatabaseLabel } from '../store/postgres/store.js';
import { SqliteStore } from '../store/sqlite/store.js';
import { StoreUnavailableError, type ImportSummary } from '../store/types.js';

/** What `grok-gateway migrate-sqlite` prints: per table, the records it added and those already there. */
export interface MigrationReport {
  readonly object: 'sqlite_migration';
  readonly from: string;
  readonly to: string;
  readonly tables: ReadonlyArray<{ table: string; copied: number; existing: number }>;
}

const TABLES: ReadonlyArray<[keyof ImportSummary, string]> = [
  ['team', 'teams'],
  ['key', 'keys'],
  ['job', 'jobs'],
  ['counter', 'usage counters'],
  ['webhook_endpoint', 'webhook endpoints'],
  ['webhook_delivery', 'webhook deliveries'],
];

const unavailable = (message: string) => new ApiError({ status: 503, type: 'server_error', code: 'store_unavailable', message });

/**
 * Copies the embedded store under `dataDir` into the PostgreSQL database at `databaseUrl` (its schema created
 * or migrated first, as a gateway would): teams with the tombstones of deleted ones, keys (hashes only: the
 * secrets were never stored), jobs in every state with their charges, the usage counters, the webhook
 * endpoints with their signing secrets, and the webhook outbox (pending deliveries are sent by the gateways on
 * PostgreSQL; delivered and failed ones stay listed). One transaction; records already there are left alone,
 * so a second run copies nothing twice.
 */
export async function migrateSqlite(dataDir: string, databaseUrl: string, database: Config['database']): Promise<MigrationReport> {
  const file = join(dataDir, 'gateway.db');
  // SqliteStore would create an empty store where none is: a mistyped --from must not "succeed" with nothing.
  if (!existsSync(file)) throw unavailable(`no embedded store at ${file}: give its DATA_DIR with --from`);
  const to = safeDatabaseLabel(databaseUrl);
  let target: PostgresStore;
  try {
    target = await PostgresStore.open({ url: databaseUrl, ...database });
  } catch (err) {
    throw unavailable(`cannot open the PostgreSQL store at ${to}: ${(err as Error).message}`);
  }
  const source = new SqliteStore(file);
  try {
    const summary = await target.importAll(source.exportAll());
    return { object: 'sqlite_migration', from: file, to, tables: TABLES.map(([kind, table]) => ({ table, ...summary[kind] })) };
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw unavailable(`PostgreSQL at ${to} stopped answering; nothing was copied: ${err.message}`);
    throw err;
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}
