import type { DueChecks, JobRecord } from '../../domain/job.js';
import type { CheckSchedule, ClaimedDelivery, DeliveryShares, DueJobsOptions } from '../types.js';
import { nowMs, PgPart, toDelivery, toJob } from './part.js';

/**
 * The shared store's two work queues as SQL, both handed out in turns across teams: active jobs whose status
 * check is due (the tracker, §11) and webhook deliveries that are due (§6). Each claim is one statement: the
 * candidates are ranked per team (row_number over the team, which FOR UPDATE cannot sit beside, so in a
 * subquery), then locked with SKIP LOCKED, which passes over rows another replica is claiming at this
 * instant; a row it claimed and committed meanwhile is re-checked against its newest version (READ
 * COMMITTED), finds itself held, and is left out. So two claims never share a row.
 *
 * `now` is the SQL for the current moment in ms (the database's clock, or the caller's in tests).
 */

/** Active jobs that no claim holds (`t`: the table's alias and a dot, where there is one). */
const unclaimed = (now: string, t = '') => `${t}charge = 'reserved' AND (${t}claimed_until IS NULL OR ${t}claimed_until <= ${now})`;

/**
 * $1 limit, $2 lease ms, $3 claimant, $5 due horizon ms, $6 pending grace ms; `now` reads $4. Returns the
 * jobs with their `turn`, for the caller to keep the order.
 */
const claimDueJobsSql = (now: string) => `
  UPDATE jobs j SET claimed_by = $3, claimed_until = ${now} + $2::bigint
  FROM (
    SELECT w.seq, d.turn, w.next_check_at FROM jobs w
    JOIN (SELECT seq, row_number() OVER (PARTITION BY team_id ORDER BY next_check_at, seq) AS turn FROM jobs
          WHERE ${unclaimed(now)} AND next_check_at <= ${now} + $5::bigint
            AND (upstream_id IS NOT NULL OR created_at <= (${now} - $6::bigint) / 1000)) d USING (seq)
    WHERE ${unclaimed(now, 'w.')}
    ORDER BY d.turn, w.next_check_at LIMIT $1 FOR UPDATE OF w SKIP LOCKED) free
  WHERE j.seq = free.seq RETURNING j.*, free.turn`;

/**
 * $1 ids, $2 due in ms (null: unchanged), $3 status calls made, $6 and $7 the status and progress seen (null:
 * none), $5 claimant; `now` reads $4. Only this claimant's claims end: one whose lease ran out may have been
 * claimed by another replica since. What a call saw moves a running job forward only (Store.scheduleChecks).
 * The rows are locked in id order first: two replicas' batches that share a job (a lapsed lease, a poll here
 * while the other checks) would otherwise lock row by row in their own orders and could deadlock.
 */
const scheduleChecksSql = (now: string) => `
  WITH s AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $6::text[], $7::int[]) AS s(id, in_ms, checks, status, progress)),
  locked AS (SELECT j.id FROM jobs j WHERE j.id IN (SELECT id FROM s) ORDER BY j.id FOR UPDATE OF j)
  UPDATE jobs j SET next_check_at = coalesce(${now} + s.in_ms, j.next_check_at), status_checks = j.status_checks + s.checks,
    updated_at_ms = CASE WHEN s.checks > 0 THEN ${now} ELSE j.updated_at_ms END,
    claimed_by = CASE WHEN j.claimed_by = $5 THEN NULL ELSE j.claimed_by END,
    claimed_until = CASE WHEN j.claimed_by = $5 THEN NULL ELSE j.claimed_until END,
    status = CASE WHEN j.status = 'queued' AND s.status IS NOT NULL THEN s.status ELSE j.status END,
    progress = CASE WHEN j.status IN ('queued', 'in_progress') THEN greatest(j.progress, coalesce(s.progress, 0)) ELSE j.progress END
  FROM s JOIN locked USING (id)
  WHERE j.id = s.id`;

/** `now` reads $1. */
const nextCheckSql = (now: string) => `(SELECT next_check_at FROM jobs WHERE ${unclaimed(now)} AND upstream_id IS NOT NULL ORDER BY next_check_at LIMIT 1) - ${now}`;
const dueChecksSql = (now: string) => `
  SELECT (SELECT count(*) FROM jobs WHERE ${unclaimed(now)} AND upstream_id IS NOT NULL AND next_check_at <= ${now}) AS due, ${nextCheckSql(now)} AS next_in_ms`;

/**
 * $1 limit, $2 lease ms, $4 deliveries in flight here per team (a JSON object), $5 the most per team; `now`
 * reads $3. A team's turn counts what it has in flight here, so its share never passes $5.
 */
const claimDeliveriesSql = (now: string) => `
  WITH busy AS (SELECT key AS team_id, value::int AS n FROM jsonb_each_text($4::jsonb)),
  ranked AS (
    SELECT d.id, d.next_attempt_at_ms AS due, row_number() OVER (PARTITION BY d.team_id ORDER BY d.next_attempt_at_ms, d.seq) + coalesce(b.n, 0) AS turn
    FROM webhook_deliveries d LEFT JOIN busy b ON b.team_id = d.team_id
    WHERE d.status = 'pending' AND d.next_attempt_at_ms <= ${now} AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= ${now})),
  picked AS (
    SELECT w.id, r.turn, r.due FROM webhook_deliveries w JOIN ranked r ON r.id = w.id
    WHERE r.turn <= $5 AND w.status = 'pending' AND (w.lease_until_ms IS NULL OR w.lease_until_ms <= ${now})
    ORDER BY r.turn, r.due LIMIT $1 FOR UPDATE OF w SKIP LOCKED)
  UPDATE webhook_deliveries d SET lease_until_ms = ${now} + $2, lease_token = gen_random_uuid()::text
  FROM picked WHERE d.id = picked.id RETURNING d.*, picked.turn, picked.due`;

/** The two work queues of the shared store: the tracker's due jobs and the webhook outbox. */
export class PgQueues extends PgPart {
  /** One statement; the rows come back in their turns. */
  async claimDueJobs(limit: number, leaseMs: number, nowArg: number, opts: DueJobsOptions): Promise<JobRecord[]> {
    const rows = await this.q(this.pool, claimDueJobsSql(nowMs(4)), [limit, leaseMs, this.instance, this.at(nowArg), opts.horizonMs, opts.pendingGraceMs]);
    return rows.sort((a, b) => (a.turn as number) - (b.turn as number) || (a.next_check_at as number) - (b.next_check_at as number)).map(toJob);
  }

  async scheduleChecks(items: readonly CheckSchedule[], nowArg: number): Promise<void> {
    if (items.length === 0) return;
    await this.q(this.pool, scheduleChecksSql(nowMs(4)), [
      items.map((i) => i.id),
      items.map((i) => i.inMs),
      items.map((i) => i.checks),
      this.at(nowArg),
      this.instance,
      items.map((i) => i.seen?.status ?? null),
      items.map((i) => i.seen?.progress ?? null),
    ]);
  }

  async dueChecks(nowArg: number): Promise<DueChecks> {
    const [row] = await this.q(this.pool, dueChecksSql(nowMs(1)), [this.at(nowArg)]);
    return { due: row!.due as number, nextInMs: (row!.next_in_ms as number | null) ?? null };
  }

  async nextCheckInMs(nowArg: number): Promise<number | null> {
    const [row] = await this.q(this.pool, `SELECT ${nextCheckSql(nowMs(1))} AS next_in_ms`, [this.at(nowArg)]);
    return (row!.next_in_ms as number | null) ?? null;
  }

  /** One statement; the rows come back in their turns. */
  async claimDeliveries(limit: number, leaseMs: number, nowArg: number, shares?: DeliveryShares): Promise<ClaimedDelivery[]> {
    const rows = await this.q(this.pool, claimDeliveriesSql(nowMs(3)), [
      limit,
      leaseMs,
      this.at(nowArg),
      JSON.stringify(shares?.busy ?? {}),
      shares?.perTeam ?? Number.MAX_SAFE_INTEGER,
    ]);
    return rows
      .sort((a, b) => (a.turn as number) - (b.turn as number) || (a.due as number) - (b.due as number))
      .map((r) => ({ ...toDelivery(r), leaseToken: r.lease_token as string }));
  }
}
