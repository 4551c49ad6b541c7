import type pg from 'pg';
import { buckets, evaluateJob, evaluateRequest, rateInfo, type Admission, type UsageSnapshot } from '../../domain/quota-policy.js';
import type { Row } from '../rows.js';
import { admissionMove } from '../spend.js';
import type { NewJob, Principal, RequestCount } from '../types.js';
import { classify, DB_NOW_MS, nowMs, PgPart, scopeKey, sec, type Bump } from './part.js';

/** A request admission waiting for its team's turn (`PostgresStore.admitRequest`). */
type PendingRequest = { readonly principal: Principal; readonly nowArg: number; resolve(a: Admission): void; reject(err: unknown): void };

/** Admissions: the per-minute count of every request, and the reservation of a job's seconds and slot. */
export class PgAdmission extends PgPart {
  /** Per team, the request admissions waiting for the transaction in flight for that team (`admitRequest`). */
  private readonly admitting = new Map<string, PendingRequest[]>();

  /**
   * The admission of a request to a key with a per-minute limit: every such request, so the hot path. A
   * replica runs a team's admissions in turns, one transaction each turn for all that arrived while the
   * previous one ran (one alone when they do not overlap; they would wait on the same row lock anyway).
   * Three round trips per turn, and the counter rows locked for the last one only:
   * 1. `BEGIN` and the database's clock, sent as one query without parameters, which node-postgres sends in
   *    the simple protocol: both statements in one round trip. No lock is taken.
   * 2. One statement counts every request of the turn in the minute, day and month counters of its key and
   *    of the team, unconditionally, and returns the counts (`bump`: rows merged, in its sorted order, the
   *    same for every writer of counters, so no two can wait on each other in a cycle).
   * 3. The shared rule judges the requests one after the other, in arrival order, each on the counts as they
   *    were before the turn (returned minus the turn's own) plus the requests admitted before it. Admitted
   *    ones stay counted; refused ones are taken out again (one more statement, under the same locks), or,
   *    when all are refused, the transaction rolls back: a refused request is counted nowhere, in no scope,
   *    exactly as in the embedded store. Then COMMIT.
   * Why this is exact across replicas: INSERT … ON CONFLICT DO UPDATE locks each counter row it writes until
   * the transaction ends, and when it had to wait for that lock, it updates (and returns) the row as the
   * holder committed it (READ COMMITTED re-reads the locked row's latest version for the update, whatever
   * the statement's snapshot), or as it was if the holder rolled back. Every turn for a team, on any
   * replica, writes the team's minute row, so the turns form one serial order on that row lock, each judging
   * the counts all earlier turns committed; within a turn the requests are judged serially too. So no limit
   * admits more than it allows, and a refused count, taken out before the locks are released, is never seen
   * by anyone. The counts and the admissions commit together or not at all, so each admitted request is
   * counted exactly once (a COMMIT whose answer is lost surfaces as store_unavailable, as in `tx`).
   * The minute boundary: the clock is read before the lock is waited for, so a turn that waits across the
   * boundary counts in the minute it read. Each minute's row still holds exactly the admissions stamped in
   * that minute, at most the limit; only their commits can trail into the next minute by the lock wait
   * (bounded by the statement timeout), which a fixed window cannot tell from requests that came earlier.
   * No `quota_scopes` lock: the counter rows are the locks here, and they are held for one round trip
   * (two with a partial refusal), where `admitJob` holds its locks for four.
   */
  admitRequest(principal: Principal, nowArg: number): Promise<Admission> {
    return new Promise((resolve, reject) => {
      const pending = { principal, nowArg, resolve, reject };
      const waiting = this.admitting.get(principal.teamId);
      if (waiting) waiting.push(pending);
      else void this.admitInTurns(principal.teamId, [pending]);
    });
  }

  /** Runs a team's turns one after the other, each with all the admissions that arrived meanwhile. */
  private async admitInTurns(teamId: string, turn: PendingRequest[]): Promise<void> {
    while (turn.length > 0) {
      this.admitting.set(teamId, []);
      try {
        const out = await this.admitTurn(turn);
        turn.forEach((p, i) => p.resolve(out[i]!));
      } catch (err) {
        for (const p of turn) p.reject(err);
      }
      turn = this.admitting.get(teamId)!;
    }
    this.admitting.delete(teamId);
  }

  private async admitTurn(turn: readonly PendingRequest[]): Promise<Admission[]> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.connect();
      try {
        const [, clock] = await this.simple(c, `BEGIN; SELECT ${DB_NOW_MS} AS now_ms`);
        const at = (p: PendingRequest) => (this.clock === 'caller' ? p.nowArg : (clock!.rows[0]!.now_ms as number));
        const bumps = turn.flatMap((p) => this.requestBumps(p.principal.teamId, p.principal.keyId, at(p), 1, 0));
        const counts = new Map((await this.bump(c, bumps)).map((r) => [`${r.scope}\0${r.bucket}`, r.requests as number]));
        for (const b of bumps) counts.set(`${b.scope}\0${b.bucket}`, counts.get(`${b.scope}\0${b.bucket}`)! - b.requests);
        const refused: Bump[] = [];
        const out = turn.map((pending): Admission => {
          const p = pending.principal;
          const now = at(pending);
          const minute = `min:${buckets(now).minute}`;
          const rows = { key: `${scopeKey('key', p.keyId)}\0${minute}`, team: `${scopeKey('team', p.teamId)}\0${minute}` };
          const usage = (row: string): UsageSnapshot => ({ requestsThisMinute: counts.get(row)!, activeJobs: 0, daySeconds: 0, monthSeconds: 0, dayMicros: 0, monthMicros: 0 });
          const scopes = [
            { scope: 'key' as const, policy: p.keyPolicy, usage: usage(rows.key) },
            { scope: 'team' as const, policy: p.teamPolicy, usage: usage(rows.team) },
          ];
          const refusal = evaluateRequest(scopes, now);
          if (refusal) {
            refused.push(...this.requestBumps(p.teamId, p.keyId, now, -1, 0));
            return { ok: false, refusal };
          }
          for (const row of [rows.key, rows.team]) counts.set(row, counts.get(row)! + 1);
          return { ok: true, rate: rateInfo(scopes, now) };
        });
        const admitted = out.some((a) => a.ok);
        if (admitted && refused.length > 0) await this.bump(c, refused);
        await this.q(c, admitted ? 'COMMIT' : 'ROLLBACK');
        c.release();
        return out;
      } catch (err) {
        if (await this.discard(c, err, attempt)) continue;
        throw err;
      }
    }
  }

  /** Several statements in one round trip (the simple protocol: no parameters); one result each. */
  private async simple(c: pg.PoolClient, text: string): Promise<pg.QueryResult<Row>[]> {
    try {
      return (await c.query<Row>(text)) as unknown as pg.QueryResult<Row>[];
    } catch (err) {
      throw classify(err);
    }
  }

  /**
   * One admission of a job, one transaction:
   * 1. Lock the team's row, then the key's, in `quota_scopes` (always in that order, so two admissions can
   *    never wait on each other in a cycle). The rows are created by the same statement on first use: static
   *    keys, and principals whose team row is gone, have no `teams`/`api_keys` row to lock, yet must be
   *    counted like any other. The statement also reads the clock, after both locks are held.
   * 2. Read the counters and the active jobs of both scopes — a new statement, so it sees every admission
   *    committed before this one got its locks.
   * 3. Evaluate the shared rule, then reserve the seconds and record the job, and commit, which releases the
   *    locks.
   * Every replica admitting a job for this team queues on the same row lock and reads what the previous
   * holder committed, on one clock: the job admissions of a team are a single serial sequence however many
   * replicas there are, so no limit admits more than it allows and each admission is counted exactly once.
   * Seconds and slots freed concurrently by a settle or refund (which do not take these locks) can only make
   * the counts read here too high for an instant, never too low. The active jobs have no row to lock, hence
   * `quota_scopes` rather than the counter rows `admitRequest` locks; it also keeps the per-request
   * admissions of the team from waiting behind this transaction's reads (the counter rows are locked here
   * only from the reservation to the commit).
   */
  admitJob(principal: Principal, job: NewJob, nowArg: number): Promise<Admission> {
    return this.tx(async (c, moves) => {
      const team = scopeKey('team', principal.teamId);
      const key = scopeKey('key', principal.keyId);
      const locked = await this.q(
        c,
        `INSERT INTO quota_scopes AS s (scope) VALUES ($1), ($2)
         ON CONFLICT (scope) DO UPDATE SET scope = excluded.scope
         RETURNING ${nowMs(3)} AS now_ms`,
        [team, key, this.at(nowArg)],
      );
      const now = Math.max(...locked.map((r) => r.now_ms as number));
      const b = buckets(now);
      // The day, the month and the slots (the job's request was counted on arrival).
      const [read] = await this.q(
        c,
        `SELECT
           (SELECT coalesce(json_agg(json_build_array(scope, bucket, seconds_reserved + seconds_settled, usd_reserved_micros + usd_settled_micros)), '[]')
              FROM counters WHERE scope IN ($1, $2) AND bucket IN ($3, $4)) AS counters,
           (SELECT count(*) FROM jobs WHERE team_id = $5 AND charge = 'reserved') AS team_active,
           (SELECT count(*) FROM jobs WHERE key_id = $6 AND charge = 'reserved') AS key_active`,
        [team, key, `day:${b.day}`, `month:${b.month}`, principal.teamId, principal.keyId],
      );
      const used = new Map((read!.counters as Array<[string, string, number, number]>).map(([s, bk, secs, micros]) => [`${s}\0${bk}`, { secs, micros }]));
      const snapshot = (scope: string, activeJobs: number): UsageSnapshot => ({
        requestsThisMinute: 0,
        activeJobs,
        daySeconds: used.get(`${scope}\0day:${b.day}`)?.secs ?? 0,
        monthSeconds: used.get(`${scope}\0month:${b.month}`)?.secs ?? 0,
        dayMicros: used.get(`${scope}\0day:${b.day}`)?.micros ?? 0,
        monthMicros: used.get(`${scope}\0month:${b.month}`)?.micros ?? 0,
      });
      const scopes = [
        { scope: 'key' as const, policy: principal.keyPolicy, usage: snapshot(key, read!.key_active as number) },
        { scope: 'team' as const, policy: principal.teamPolicy, usage: snapshot(team, read!.team_active as number) },
      ];
      const refusal = evaluateJob(scopes, job);
      if (refusal) return { ok: false, refusal };
      await this.bump(c, this.requestBumps(principal.teamId, principal.keyId, now, 0, job.seconds, job.estimateMicros ?? 0));
      await this.q(
        c,
        `INSERT INTO jobs (id, team_id, key_id, model, prompt, seconds, resolution, aspect_ratio, status, progress,
           created_at, updated_at_ms, charge, charge_day, charge_month, source_video_id, derivation, cost_estimate_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $10, 'reserved', $11, $12, $13, $14, $15)`,
        [
          job.id, job.teamId, job.keyId, job.model, job.prompt, job.seconds, job.resolution, job.aspectRatio, sec(now), now, b.day, b.month,
          job.sourceVideoId ?? null, job.derivation ?? null, job.estimateMicros ?? null,
        ],
      );
      moves.push([job.teamId, 'reserved', job.seconds, admissionMove(job)]);
      return { ok: true, rate: null };
    });
  }

  /** These counts carry the moment they were made (on the replica that made them); no limit depends on them. */
  async countRequests(counts: readonly RequestCount[]): Promise<void> {
    if (counts.length === 0) return;
    await this.bump(this.pool, counts.flatMap((x) => this.requestBumps(x.teamId, x.keyId, x.atMs, x.count, 0)));
  }
}
