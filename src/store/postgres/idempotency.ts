import type pg from 'pg';
import { judgeClaim, KEY_WITH_JOB, toIdempotencyRow } from '../idempotency.js';
import type { Row } from '../rows.js';
import type { IdempotencyClaim, IdempotencyClaimRequest, IdempotentAnswer } from '../types.js';
import { nowMs, PgPart } from './part.js';

/**
 * The shared store's `Idempotency-Key` table (migration 6; see Store.claimIdempotencyKey). PgIdempotencyKeys
 * hands each function its statements' way to the database and, where times matter, the moment on the store's clock.
 */
export type PgQuery = (text: string, values?: unknown[]) => Promise<Row[]>;

/**
 * Inside one transaction. The insert claims a key nobody holds; one already there is locked and judged. Two
 * replicas claiming one new key at once: the second insert waits for the first transaction, then finds its
 * row. A row deleted between the insert and the lock (released, swept) is simply inserted again.
 */
export async function claimKey(query: PgQuery, req: IdempotencyClaimRequest, nowMs: number): Promise<IdempotencyClaim> {
  const fresh = [req.teamId, req.key, req.fingerprint, req.jobId, req.holder, nowMs + req.leaseMs, nowMs, nowMs + req.ttlMs];
  for (;;) {
    const inserted = await query(
      `INSERT INTO idempotency_keys (team_id, key, fingerprint, job_id, holder, lease_until_ms, created_at_ms, expires_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (team_id, key) DO NOTHING RETURNING 1 AS ok`,
      fresh,
    );
    if (inserted.length === 1) return { kind: 'claimed', jobId: req.jobId };
    const [row] = await query(`${KEY_WITH_JOB} WHERE k.team_id = $1 AND k.key = $2 FOR UPDATE OF k`, [req.teamId, req.key]);
    if (!row) continue;
    const { write, claim } = judgeClaim(toIdempotencyRow(row, (v) => v), req, nowMs);
    if (write === 'fresh') {
      await query(
        `UPDATE idempotency_keys SET fingerprint = $3, job_id = $4, holder = $5, lease_until_ms = $6, answer = NULL, created_at_ms = $7, expires_at_ms = $8
         WHERE team_id = $1 AND key = $2`,
        fresh,
      );
    } else if (write === 'takeover') {
      await query('UPDATE idempotency_keys SET holder = $3, lease_until_ms = $4 WHERE team_id = $1 AND key = $2', [req.teamId, req.key, req.holder, nowMs + req.leaseMs]);
    }
    return claim;
  }
}

export async function renewKey(query: PgQuery, teamId: string, key: string, holder: string, leaseUntilMs: number): Promise<boolean> {
  const rows = await query(
    'UPDATE idempotency_keys SET lease_until_ms = $4 WHERE team_id = $1 AND key = $2 AND holder = $3 AND answer IS NULL RETURNING 1 AS ok',
    [teamId, key, holder, leaseUntilMs],
  );
  return rows.length === 1;
}

export async function answerKey(query: PgQuery, teamId: string, key: string, holder: string, answer: IdempotentAnswer): Promise<boolean> {
  const rows = await query(
    `UPDATE idempotency_keys SET answer = $4::jsonb, holder = NULL, lease_until_ms = NULL
     WHERE team_id = $1 AND key = $2 AND holder = $3 AND answer IS NULL RETURNING 1 AS ok`,
    [teamId, key, holder, JSON.stringify(answer)],
  );
  return rows.length === 1;
}

export async function releaseKey(query: PgQuery, teamId: string, key: string, holder: string): Promise<void> {
  await query('DELETE FROM idempotency_keys WHERE team_id = $1 AND key = $2 AND holder = $3 AND answer IS NULL', [teamId, key, holder]);
}

/** SKIP LOCKED: replicas sweeping at once, or a claim holding an expired row, are passed over, not waited for. */
export async function sweepKeys(query: PgQuery, nowMs: number, limit: number): Promise<number> {
  const rows = await query(
    `DELETE FROM idempotency_keys WHERE (team_id, key) IN (
       SELECT team_id, key FROM idempotency_keys WHERE expires_at_ms <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1 AS ok`,
    [nowMs, limit],
  );
  return rows.length;
}

/** The store's part for the Idempotency-Key table: the functions above on its pool and clock. */
export class PgIdempotencyKeys extends PgPart {
  /** Now on the store's clock (see PostgresClock), for the table's leases and times. */
  private async moment(c: pg.Pool | pg.PoolClient, nowArg: number): Promise<number> {
    const [row] = await this.q(c, `SELECT ${nowMs(1)} AS now_ms`, [this.at(nowArg)]);
    return row!.now_ms as number;
  }

  private queryOn(c: pg.Pool | pg.PoolClient): PgQuery {
    return (text, values) => this.q(c, text, values);
  }

  claimIdempotencyKey(request: IdempotencyClaimRequest, nowArg: number): Promise<IdempotencyClaim> {
    return this.tx(async (c) => claimKey(this.queryOn(c), request, await this.moment(c, nowArg)));
  }

  async renewIdempotencyKey(teamId: string, key: string, holder: string, leaseMs: number, nowArg: number): Promise<boolean> {
    return renewKey(this.queryOn(this.pool), teamId, key, holder, (await this.moment(this.pool, nowArg)) + leaseMs);
  }

  answerIdempotencyKey(teamId: string, key: string, holder: string, answer: IdempotentAnswer): Promise<boolean> {
    return answerKey(this.queryOn(this.pool), teamId, key, holder, answer);
  }

  releaseIdempotencyKey(teamId: string, key: string, holder: string): Promise<void> {
    return releaseKey(this.queryOn(this.pool), teamId, key, holder);
  }

  async sweepIdempotencyKeys(nowArg: number, limit: number): Promise<number> {
    return sweepKeys(this.queryOn(this.pool), await this.moment(this.pool, nowArg), limit);
  }
}
