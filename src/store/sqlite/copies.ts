import type Database from 'better-sqlite3';
import { statsOf, type ClaimedCopy, type CopyLedger, type CopyStats } from '../copies.js';
import { leaseToken } from '../lifecycle.js';
import type { Row } from '../rows.js';
import type { JobRecord } from '../../domain/job.js';

/** The jobs columns of stored results (see domain/stored-copy.ts), added in place to a data file of any earlier build. */
const COLUMNS: ReadonlyArray<[string, string]> = [
  ['expires_at', 'INTEGER'],
  ['storage_state', 'TEXT'],
  ['storage_bytes', 'INTEGER'],
  ['storage_type', 'TEXT'],
  ['storage_attempts', 'INTEGER NOT NULL DEFAULT 0'],
  ['storage_next_at_ms', 'INTEGER'],
  ['storage_error', 'TEXT'],
  ['storage_lease_until_ms', 'INTEGER'],
  ['storage_lease_token', 'TEXT'],
];

/** Idempotent; in one write transaction, so that a CLI and a gateway opening the same file at once do not both try. */
export function addCopyColumns(db: Database.Database): void {
  db.transaction(() => {
    const have = new Set((db.pragma('table_info(jobs)') as Array<{ name: string }>).map((c) => c.name));
    for (const [name, type] of COLUMNS) if (!have.has(name)) db.exec(`ALTER TABLE jobs ADD COLUMN ${name} ${type}`);
    db.exec('CREATE INDEX IF NOT EXISTS jobs_storage ON jobs(storage_state, storage_next_at_ms) WHERE storage_state IS NOT NULL');
  }).immediate();
}

const LEASE_FREE = '(storage_lease_until_ms IS NULL OR storage_lease_until_ms <= @now)';
const CLEAR_LEASE = 'storage_lease_until_ms = NULL, storage_lease_token = NULL';

/** The embedded store's CopyLedger: one process, so each claim is one immediate transaction. */
export class SqliteCopies implements CopyLedger {
  private readonly s;

  constructor(
    private readonly db: Database.Database,
    private readonly toJob: (r: Row) => JobRecord,
  ) {
    this.s = {
      schedule: db.prepare(
        `UPDATE jobs SET storage_state = 'pending', expires_at = @expiresAt, storage_next_at_ms = @now, storage_attempts = 0
         WHERE id = @id AND status = 'completed' AND storage_state IS NULL AND deleted_at IS NULL`,
      ),
      job: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      dueCopies: db.prepare(
        `SELECT * FROM jobs WHERE storage_state = 'pending' AND storage_next_at_ms <= @now AND deleted_at IS NULL
           AND (expires_at IS NULL OR expires_at * 1000 > @now) AND ${LEASE_FREE} ORDER BY storage_next_at_ms LIMIT @limit`,
      ),
      dueRemovals: db.prepare(
        `SELECT * FROM jobs WHERE storage_state IN ('pending', 'stored', 'failed') AND (deleted_at IS NOT NULL OR expires_at * 1000 <= @now)
           AND ${LEASE_FREE} LIMIT @limit`,
      ),
      lease: db.prepare('UPDATE jobs SET storage_lease_until_ms = @until, storage_lease_token = @token WHERE id = @id'),
      stored: db.prepare(
        `UPDATE jobs SET storage_state = 'stored', storage_bytes = @bytes, storage_type = @contentType, storage_error = NULL,
           storage_next_at_ms = NULL, ${CLEAR_LEASE} WHERE id = @id AND storage_lease_token = @token`,
      ),
      failed: db.prepare(
        `UPDATE jobs SET storage_attempts = storage_attempts + 1, storage_error = @error, storage_next_at_ms = @retryAt,
           storage_state = CASE WHEN @retryAt IS NULL THEN 'failed' ELSE storage_state END, ${CLEAR_LEASE}
         WHERE id = @id AND storage_lease_token = @token`,
      ),
      release: db.prepare(`UPDATE jobs SET ${CLEAR_LEASE} WHERE id = @id AND storage_lease_token = @token`),
      removed: db.prepare(`UPDATE jobs SET storage_state = 'removed', ${CLEAR_LEASE} WHERE id = @id AND storage_lease_token = @token`),
      stats: db.prepare(
        `SELECT storage_state AS state, COUNT(*) AS n, COALESCE(SUM(storage_bytes), 0) AS bytes FROM jobs
         WHERE storage_state IN ('pending', 'stored', 'failed') GROUP BY storage_state`,
      ),
    };
  }

  async schedule(id: string, expiresAt: number, nowMs: number): Promise<JobRecord | undefined> {
    this.s.schedule.run({ id, expiresAt, now: nowMs });
    const row = this.s.job.get(id) as Row | undefined;
    return row ? this.toJob(row) : undefined;
  }

  private claim(due: Database.Statement, limit: number, leaseMs: number, nowMs: number): ClaimedCopy[] {
    return this.db
      .transaction(() =>
        (due.all({ now: nowMs, limit }) as Row[]).map((r) => {
          const token = leaseToken();
          this.s.lease.run({ id: r.id, until: nowMs + leaseMs, token });
          return { job: this.toJob(r), token };
        }),
      )
      .immediate();
  }

  async claimCopies(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]> {
    return this.claim(this.s.dueCopies, limit, leaseMs, nowMs);
  }

  async claimRemovals(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]> {
    return this.claim(this.s.dueRemovals, limit, leaseMs, nowMs);
  }

  async recordStored(id: string, token: string, copy: { bytes: number; contentType: string }): Promise<boolean> {
    return this.s.stored.run({ id, token, ...copy }).changes === 1;
  }

  async recordFailure(id: string, token: string, error: string, retryAtMs: number | null): Promise<boolean> {
    return this.s.failed.run({ id, token, error, retryAt: retryAtMs }).changes === 1;
  }

  async release(id: string, token: string): Promise<void> {
    this.s.release.run({ id, token });
  }

  async recordRemoved(id: string, token: string): Promise<boolean> {
    return this.s.removed.run({ id, token }).changes === 1;
  }

  async stats(): Promise<CopyStats> {
    return statsOf(this.s.stats.all() as Array<{ state: string; n: number; bytes: number }>);
  }
}
