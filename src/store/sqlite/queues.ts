import type Database from 'better-sqlite3';
import { leaseToken } from '../lifecycle.js';
import type { Row } from '../rows.js';
import type { DueChecks } from '../../domain/job.js';
import type { CheckSchedule, DeliveryShares, DueJobsOptions } from '../types.js';

/**
 * The embedded store's two work queues, both handed out in turns across teams: active jobs whose status check
 * is due (the tracker, §11) and webhook deliveries that are due (§6). One process uses the file, so a claim is
 * a column this process alone reads; it still guards against handing out what is in flight here.
 */

/** Active jobs that no claim holds. */
const UNCLAIMED = `charge = 'reserved' AND (claimed_until IS NULL OR claimed_until <= @now)`;

/** No per-team bound: every due delivery may be handed out. */
const UNSHARED: DeliveryShares = { perTeam: Number.MAX_SAFE_INTEGER, busy: {} };

export class SqliteQueues {
  private readonly s;

  constructor(private readonly db: Database.Database) {
    this.s = {
      // Both queues are ranked on narrow columns, and only the rows handed out are read whole: a backlog may
      // hold thousands.
      dueJobs: db.prepare(
        `SELECT j.* FROM (
           SELECT seq, next_check_at AS due, row_number() OVER (PARTITION BY team_id ORDER BY next_check_at, seq) AS turn FROM jobs
           WHERE ${UNCLAIMED} AND next_check_at <= @dueBy AND (upstream_id IS NOT NULL OR created_at <= @pendingBefore)
           ORDER BY turn, due LIMIT @limit) d
         JOIN jobs j ON j.seq = d.seq ORDER BY d.turn, d.due`,
      ),
      claimJob: db.prepare('UPDATE jobs SET claimed_until = ? WHERE id = ?'),
      // What a call saw moves a running job forward only (see Store.scheduleChecks).
      schedule: db.prepare(
        `UPDATE jobs SET next_check_at = coalesce(@now + @inMs, next_check_at), status_checks = status_checks + @checks,
           updated_at_ms = CASE WHEN @checks > 0 THEN @now ELSE updated_at_ms END, claimed_until = NULL,
           status = CASE WHEN status = 'queued' AND @status IS NOT NULL THEN @status ELSE status END,
           progress = CASE WHEN status IN ('queued', 'in_progress') THEN max(progress, coalesce(@progress, 0)) ELSE progress END
         WHERE id = @id`,
      ),
      dueCount: db.prepare(`SELECT count(*) AS n FROM jobs WHERE ${UNCLAIMED} AND upstream_id IS NOT NULL AND next_check_at <= @now`),
      nextDue: db.prepare(`SELECT next_check_at AS at FROM jobs WHERE ${UNCLAIMED} AND upstream_id IS NOT NULL ORDER BY next_check_at LIMIT 1`),
      dueDeliveries: db.prepare(
        `SELECT w.* FROM (
           SELECT seq, due, turn FROM (
             SELECT d.seq, d.next_attempt_at_ms AS due,
               row_number() OVER (PARTITION BY d.team_id ORDER BY d.next_attempt_at_ms, d.seq) + coalesce(b.value, 0) AS turn
             FROM webhook_deliveries d LEFT JOIN json_each(@busy) b ON b.key = d.team_id
             WHERE d.status = 'pending' AND d.next_attempt_at_ms <= @now AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= @now))
           WHERE turn <= @perTeam ORDER BY turn, due LIMIT @limit) r
         JOIN webhook_deliveries w ON w.seq = r.seq ORDER BY r.turn, r.due`,
      ),
      lease: db.prepare('UPDATE webhook_deliveries SET lease_until_ms = ?, lease_token = ? WHERE id = ?'),
    };
  }

  claimDueJobs(limit: number, leaseMs: number, now: number, opts: DueJobsOptions): Row[] {
    return this.db
      .transaction(() => {
        const rows = this.s.dueJobs.all({ now, limit, dueBy: now + opts.horizonMs, pendingBefore: Math.floor((now - opts.pendingGraceMs) / 1000) }) as Row[];
        for (const r of rows) this.s.claimJob.run(now + leaseMs, r.id);
        return rows;
      })
      .immediate();
  }

  scheduleChecks(items: readonly CheckSchedule[], now: number): void {
    this.db.transaction(() => {
      for (const item of items) this.s.schedule.run({ id: item.id, inMs: item.inMs, checks: item.checks, now, status: item.seen?.status ?? null, progress: item.seen?.progress ?? null });
    })();
  }

  dueChecks(now: number): DueChecks {
    return { due: (this.s.dueCount.get({ now }) as { n: number }).n, nextInMs: this.nextCheckInMs(now) };
  }

  nextCheckInMs(now: number): number | null {
    const next = this.s.nextDue.get({ now }) as { at: number } | undefined;
    return next ? next.at - now : null;
  }

  claimDeliveries(limit: number, leaseMs: number, now: number, shares: DeliveryShares = UNSHARED): Array<Row & { leaseToken: string }> {
    return this.db
      .transaction(() =>
        (this.s.dueDeliveries.all({ now, limit, perTeam: shares.perTeam, busy: JSON.stringify(shares.busy) }) as Row[]).map((r) => {
          const token = leaseToken();
          this.s.lease.run(now + leaseMs, token, r.id);
          return { ...r, leaseToken: token };
        }),
      )
      .immediate();
  }
}
