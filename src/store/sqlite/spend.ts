import type Database from 'better-sqlite3';
import { newDeliveryId, newEventId } from '../../domain/webhook-event.js';
import type { BudgetAlert } from '../types.js';

/**
 * The embedded store's money (§10): its columns, and the budget alerts it queues. Jobs keep their estimate, their price at the upstream that took them and their actual cost; counters keep
 * micro-dollars reserved and settled beside the seconds; a webhook delivery about no video (a budget alert)
 * keeps its event's data.
 */
const COLUMNS: ReadonlyArray<[table: string, column: string, type: string]> = [
  ['jobs', 'cost_estimate_micros', 'INTEGER'],
  ['jobs', 'cost_price_micros', 'INTEGER'],
  ['jobs', 'cost_micros', 'INTEGER'],
  ['jobs', 'cost_source', 'TEXT'],
  ['counters', 'usd_reserved_micros', 'INTEGER NOT NULL DEFAULT 0'],
  ['counters', 'usd_settled_micros', 'INTEGER NOT NULL DEFAULT 0'],
  ['webhook_deliveries', 'data', 'TEXT'],
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

/** Store.enqueueBudgetAlert: the alert's key in the video id column, whose uniqueness makes it once-only. */
export function enqueueBudgetAlert(db: Database.Database, teamId: string, alert: BudgetAlert, nowMs: number): boolean {
  const inserted = db
    .prepare(
      `INSERT OR IGNORE INTO webhook_deliveries (id, event_id, team_id, video_id, type, created_at, status, next_attempt_at_ms, data)
       SELECT @id, @eventId, team_id, @key, 'budget.threshold', @createdAt, 'pending', @nowMs, @data FROM webhook_endpoints
       WHERE team_id = @teamId AND enabled = 1 AND EXISTS (SELECT 1 FROM json_each(events) WHERE value = 'budget.threshold')`,
    )
    .run({ id: newDeliveryId(), eventId: newEventId(), key: alert.key, createdAt: Math.floor(nowMs / 1000), nowMs, data: JSON.stringify(alert.data), teamId });
  return inserted.changes === 1;
}
