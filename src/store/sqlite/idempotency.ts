import type Database from 'better-sqlite3';
import { judgeClaim, KEY_WITH_JOB, toIdempotencyRow } from '../idempotency.js';
import type { Row } from '../rows.js';
import type { IdempotencyClaim, IdempotencyClaimRequest, IdempotentAnswer } from '../types.js';

/** Created with the store; `IF NOT EXISTS`, so data files of earlier builds gain the table as they open. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS idempotency_keys (
  team_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, job_id TEXT NOT NULL,
  holder TEXT, lease_until_ms INTEGER, answer TEXT, created_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,
  PRIMARY KEY (team_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys(expires_at_ms);
`;

function prepare(db: Database.Database) {
  return {
    read: db.prepare(`${KEY_WITH_JOB} WHERE k.team_id = ? AND k.key = ?`),
    fresh: db.prepare(
      `INSERT OR REPLACE INTO idempotency_keys (team_id, key, fingerprint, job_id, holder, lease_until_ms, answer, created_at_ms, expires_at_ms)
       VALUES (@teamId, @key, @fingerprint, @jobId, @holder, @leaseUntilMs, NULL, @nowMs, @expiresAtMs)`,
    ),
    takeOver: db.prepare('UPDATE idempotency_keys SET holder = ?, lease_until_ms = ? WHERE team_id = ? AND key = ?'),
    renew: db.prepare('UPDATE idempotency_keys SET lease_until_ms = ? WHERE team_id = ? AND key = ? AND holder = ? AND answer IS NULL'),
    answer: db.prepare(
      'UPDATE idempotency_keys SET answer = ?, holder = NULL, lease_until_ms = NULL WHERE team_id = ? AND key = ? AND holder = ? AND answer IS NULL',
    ),
    release: db.prepare('DELETE FROM idempotency_keys WHERE team_id = ? AND key = ? AND holder = ? AND answer IS NULL'),
    sweep: db.prepare('DELETE FROM idempotency_keys WHERE (team_id, key) IN (SELECT team_id, key FROM idempotency_keys WHERE expires_at_ms <= ? LIMIT ?)'),
  };
}

/** The embedded store's `Idempotency-Key` table (see Store.claimIdempotencyKey); each claim is one immediate transaction. */
export class SqliteIdempotency {
  private readonly s: ReturnType<typeof prepare>;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    this.s = prepare(db);
  }

  claim(req: IdempotencyClaimRequest, nowMs: number): IdempotencyClaim {
    return this.db
      .transaction(() => {
        const row = this.s.read.get(req.teamId, req.key) as Row | undefined;
        const { write, claim } = judgeClaim(row && toIdempotencyRow(row, (v) => JSON.parse(v as string)), req, nowMs);
        if (write === 'fresh') this.s.fresh.run({ ...req, leaseUntilMs: nowMs + req.leaseMs, nowMs, expiresAtMs: nowMs + req.ttlMs });
        if (write === 'takeover') this.s.takeOver.run(req.holder, nowMs + req.leaseMs, req.teamId, req.key);
        return claim;
      })
      .immediate();
  }

  renew(teamId: string, key: string, holder: string, leaseMs: number, nowMs: number): boolean {
    return this.s.renew.run(nowMs + leaseMs, teamId, key, holder).changes === 1;
  }

  answer(teamId: string, key: string, holder: string, answer: IdempotentAnswer): boolean {
    return this.s.answer.run(JSON.stringify(answer), teamId, key, holder).changes === 1;
  }

  release(teamId: string, key: string, holder: string): void {
    this.s.release.run(teamId, key, holder);
  }

  sweep(nowMs: number, limit: number): number {
    return this.s.sweep.run(nowMs, limit).changes;
  }
}
