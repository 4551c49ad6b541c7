import type pg from 'pg';
import { newDeliveryId, newEventId } from '../../domain/webhook-event.js';
import type { BudgetAlert } from '../types.js';

/**
 * Store.enqueueBudgetAlert on the shared store (§10): the alert's key in the video id column, whose unique
 * index makes it once-only whichever replica sees the crossing first. `now` is an SQL expression for the
 * store's moment in ms, with `$6` as its parameter.
 */
export async function enqueueBudgetAlert(c: pg.Pool, now: string, teamId: string, alert: BudgetAlert, nowArg: number | null): Promise<boolean> {
  const { rowCount } = await c.query(
    `INSERT INTO webhook_deliveries (id, event_id, team_id, video_id, type, created_at, status, next_attempt_at_ms, data)
     SELECT $1, $2, team_id, $3, 'budget.threshold', ${now} / 1000, 'pending', ${now}, $4::jsonb FROM webhook_endpoints
     WHERE team_id = $5 AND enabled AND events ? 'budget.threshold'
     ON CONFLICT (video_id) DO NOTHING`,
    [newDeliveryId(), newEventId(), alert.key, JSON.stringify(alert.data), teamId, nowArg],
  );
  return rowCount === 1;
}
