import type Database from 'better-sqlite3';

/**
 * The embedded store's money columns (§10). Jobs keep their estimate, their price at the upstream that took them and their actual cost; counters keep
 * micro-dollars reserved and settled beside the seconds.
 */
const COLUMNS: ReadonlyArray<[table: string, column: string, type: string]> = [
  ['jobs', 'cost_estimate_micros', 'INTEGER'],
  ['jobs', 'cost_price_micros', 'INTEGER'],
  ['jobs', 'cost_micros', 'INTEGER'],
  ['jobs', 'cost_source', 'TEXT'],
  ['counters', 'usd_reserved_micros', 'INTEGER NOT NULL DEFAULT 0'],
  ['counters', 'usd_settled_micros', 'INTEGER NOT NULL DEFAULT 0'],
];

/** Adds the money columns to a new file and to one made before money was kept (its jobs then have no cost: unknown). */
export function addSpendColumns(db: Database.Database): void {
  db.transaction(() => {
    for (const [table, column, type] of COLUMNS) {
      const present = (db.pragma(`table_info(${table})`) as Array<{ name: string }>).some((c) => c.name === column);
      if (!present) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }).immediate();
}
