import type { JobRecord } from '../../domain/job.js';
import { statsOf, type ClaimedCopy, type CopyLedger, type CopyStats } from '../copies.js';
import { leaseToken } from '../lifecycle.js';
import type { Row } from '../rows.js';
import { nowMs as nowSql, PgPart, toJob } from './part.js';

const CLEAR_LEASE = 'storage_lease_until_ms = NULL, storage_lease_token = NULL';

/**
 * The shared store's CopyLedger: each operation one statement. A claim picks the free rows with SKIP LOCKED
 * and marks them held in the same statement, so replicas claiming at once never share a video.
 */
export class PgCopies extends PgPart implements CopyLedger {
  private query(text: string, values?: unknown[]): Promise<Row[]> {
    return this.q(this.pool, text, values);
  }

  async schedule(id: string, expiresAt: number, nowMs: number): Promise<JobRecord | undefined> {
    const [updated] = await this.query(
      `UPDATE jobs SET storage_state = 'pending', expires_at = $2, storage_next_at_ms = ${nowSql(3)}, storage_attempts = 0
       WHERE id = $1 AND status = 'completed' AND storage_state IS NULL AND deleted_at IS NULL RETURNING *`,
      [id, expiresAt, this.at(nowMs)],
    );
    const row = updated ?? (await this.query('SELECT * FROM jobs WHERE id = $1', [id]))[0];
    return row ? toJob(row) : undefined;
  }

  private async claim(due: string, limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]> {
    // One token for the batch: it tells this claim from any other, which is all a token is for.
    const token = leaseToken();
    const rows = await this.query(
      `UPDATE jobs j SET storage_lease_until_ms = ${nowSql(3)} + $2::bigint, storage_lease_token = $4
       FROM (SELECT seq FROM jobs WHERE ${due}
               AND (storage_lease_until_ms IS NULL OR storage_lease_until_ms <= ${nowSql(3)})
             LIMIT $1 FOR UPDATE SKIP LOCKED) free
       WHERE j.seq = free.seq RETURNING j.*`,
      [limit, leaseMs, this.at(nowMs), token],
    );
    return rows.map((r) => ({ job: toJob(r), token }));
  }

  claimCopies(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]> {
    return this.claim(
      `storage_state = 'pending' AND storage_next_at_ms <= ${nowSql(3)} AND deleted_at IS NULL
         AND (expires_at IS NULL OR expires_at * 1000 > ${nowSql(3)})`,
      limit,
      leaseMs,
      nowMs,
    );
  }

  claimRemovals(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]> {
    return this.claim(
      `storage_state IN ('pending', 'stored', 'failed') AND (deleted_at IS NOT NULL OR expires_at * 1000 <= ${nowSql(3)})`,
      limit,
      leaseMs,
      nowMs,
    );
  }

  async recordStored(id: string, token: string, copy: { bytes: number; contentType: string }): Promise<boolean> {
    const rows = await this.query(
      `UPDATE jobs SET storage_state = 'stored', storage_bytes = $3, storage_type = $4, storage_error = NULL, storage_next_at_ms = NULL, ${CLEAR_LEASE}
       WHERE id = $1 AND storage_lease_token = $2 RETURNING 1`,
      [id, token, copy.bytes, copy.contentType],
    );
    return rows.length === 1;
  }

  async recordFailure(id: string, token: string, error: string, retryAtMs: number | null): Promise<boolean> {
    const rows = await this.query(
      `UPDATE jobs SET storage_attempts = storage_attempts + 1, storage_error = $3, storage_next_at_ms = $4::bigint,
         storage_state = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE storage_state END, ${CLEAR_LEASE}
       WHERE id = $1 AND storage_lease_token = $2 RETURNING 1`,
      [id, token, error, retryAtMs],
    );
    return rows.length === 1;
  }

  async release(id: string, token: string): Promise<void> {
    await this.query(`UPDATE jobs SET ${CLEAR_LEASE} WHERE id = $1 AND storage_lease_token = $2`, [id, token]);
  }

  async recordRemoved(id: string, token: string): Promise<boolean> {
    const rows = await this.query(`UPDATE jobs SET storage_state = 'removed', ${CLEAR_LEASE} WHERE id = $1 AND storage_lease_token = $2 RETURNING 1`, [id, token]);
    return rows.length === 1;
  }

  async stats(): Promise<CopyStats> {
    const rows = await this.query(
      `SELECT storage_state AS state, count(*) AS n, coalesce(sum(storage_bytes), 0)::bigint AS bytes FROM jobs
       WHERE storage_state IN ('pending', 'stored', 'failed') GROUP BY storage_state`,
    );
    return statsOf(rows as Array<{ state: string; n: number; bytes: number }>);
  }
}
