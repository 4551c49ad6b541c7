import { PostgresStore, safeDatabaseLabel } from './postgres/store.js';
import { SqliteStore } from './sqlite/store.js';
import type { ChargeListener, Store } from './types.js';

/** The part of the configuration (src/config.ts) that chooses and opens the store. */
export interface StoreSettings {
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly database: { readonly connectTimeoutMs: number; readonly statementTimeoutMs: number; readonly poolSize: number };
}

/** DATABASE_URL chooses the shared store; without it, the embedded one under DATA_DIR. The gateway and the CLI open it here. */
export async function openStore(config: StoreSettings, onCharge?: ChargeListener): Promise<Store> {
  if (!config.databaseUrl) return SqliteStore.inDataDir(config.dataDir, onCharge);
  try {
    return await PostgresStore.open({ url: config.databaseUrl, ...config.database, ...(onCharge ? { onCharge } : {}) });
  } catch (err) {
    throw new Error(`cannot open the PostgreSQL store at ${safeDatabaseLabel(config.databaseUrl)}: ${(err as Error).message}`);
  }
}
