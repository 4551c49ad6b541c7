import type { Config } from '../config.js';
import { PostgresStore, safeDatabaseLabel } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { ChargeListener, Store } from './types.js';

/** DATABASE_URL chooses the shared store; without it, the embedded one under DATA_DIR. The gateway and the CLI open it here. */
export async function openStore(config: Config, onCharge?: ChargeListener): Promise<Store> {
  if (!config.databaseUrl) return SqliteStore.inDataDir(config.dataDir, onCharge);
  try {
    return await PostgresStore.open({ url: config.databaseUrl, ...config.database, ...(onCharge ? { onCharge } : {}) });
  } catch (err) {
    throw new Error(`cannot open the PostgreSQL store at ${safeDatabaseLabel(config.databaseUrl)}: ${(err as Error).message}`);
  }
}
