import type Database from 'better-sqlite3';
import { usageByModelSql } from '../spend.js';

/** Every statement of the embedded store, prepared once when it opens. */
export function prepareStatements(db: Database.Database) {
  return {
    counter: db.prepare('SELECT requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros FROM counters WHERE scope = ? AND bucket = ?'),
    bump: db.prepare(
      `INSERT INTO counters (scope, bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (scope, bucket) DO UPDATE SET requests = requests + excluded.requests,
         seconds_reserved = seconds_reserved + excluded.seconds_reserved, seconds_settled = seconds_settled + excluded.seconds_settled,
         usd_reserved_micros = usd_reserved_micros + excluded.usd_reserved_micros, usd_settled_micros = usd_settled_micros + excluded.usd_settled_micros`,
    ),
    activeTeam: db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE team_id = ? AND charge = 'reserved'"),
    activeKey: db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE key_id = ? AND charge = 'reserved'"),
    insertJob: db.prepare(
      `INSERT INTO jobs (id, team_id, key_id, model, prompt, seconds, resolution, aspect_ratio, source_video_id, derivation, status, progress,
         created_at, updated_at_ms, charge, charge_day, charge_month, cost_estimate_micros)
       VALUES (@id, @teamId, @keyId, @model, @prompt, @seconds, @resolution, @aspectRatio, @sourceVideoId, @derivation, 'queued', 0,
         @createdAt, @nowMs, 'reserved', @day, @month, @estimateMicros)`,
    ),
    jobById: db.prepare('SELECT * FROM jobs WHERE id = ?'),
    jobForTeam: db.prepare('SELECT * FROM jobs WHERE id = ? AND team_id = ? AND deleted_at IS NULL'),
    activate: db.prepare(
      'UPDATE jobs SET upstream_id = ?, upstream_key_fp = ?, upstream_name = ?, cost_price_micros = ?, status = ?, progress = ?, updated_at_ms = ? WHERE id = ?',
    ),
    markAbandoned: db.prepare("UPDATE jobs SET status = 'failed', error = ?, deleted_at = ?, updated_at_ms = ? WHERE id = ?"),
    revive: db.prepare("UPDATE jobs SET charge = 'reserved', error = NULL, deleted_at = NULL, cost_micros = NULL, cost_source = NULL WHERE id = ?"),
    setStatus: db.prepare('UPDATE jobs SET status = ?, progress = ?, error = ?, completed_at = ?, media_url = COALESCE(?, media_url), updated_at_ms = ? WHERE id = ?'),
    setCharge: db.prepare("UPDATE jobs SET charge = ? WHERE id = ? AND charge = 'reserved'"),
    setChargeFrom: db.prepare('UPDATE jobs SET charge = ? WHERE id = ? AND charge = ?'),
    setCost: db.prepare('UPDATE jobs SET cost_micros = ?, cost_source = ? WHERE id = ?'),
    markDeleted: db.prepare('UPDATE jobs SET deleted_at = ? WHERE id = ? AND team_id = ? AND deleted_at IS NULL'),
    seqOf: db.prepare('SELECT seq FROM jobs WHERE id = ? AND team_id = ?'),
    listDesc: db.prepare('SELECT * FROM jobs WHERE team_id = ? AND deleted_at IS NULL AND seq < ? ORDER BY seq DESC LIMIT ?'),
    listAsc: db.prepare('SELECT * FROM jobs WHERE team_id = ? AND deleted_at IS NULL AND seq > ? ORDER BY seq ASC LIMIT ?'),
    reserved: db.prepare("SELECT * FROM jobs WHERE charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT ?"),
    activeStats: db.prepare("SELECT team_id AS teamId, COUNT(*) AS jobs FROM jobs WHERE charge = 'reserved' GROUP BY team_id"),
    reservedOfTeam: db.prepare("SELECT * FROM jobs WHERE team_id = ? AND charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT ?"),
    insertTeam: db.prepare('INSERT OR IGNORE INTO teams (id, name, quota, created_at) VALUES (?, ?, ?, ?)'),
    team: db.prepare('SELECT * FROM teams WHERE id = ? AND deleted_at IS NULL'),
    teamDeletedAt: db.prepare('SELECT deleted_at FROM teams WHERE id = ?'),
    teams: db.prepare('SELECT * FROM teams WHERE deleted_at IS NULL ORDER BY created_at, id'),
    updateTeam: db.prepare('UPDATE teams SET name = ?, quota = ? WHERE id = ? AND deleted_at IS NULL'),
    deleteTeam: db.prepare('UPDATE teams SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL'),
    revokeTeamKeys: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE team_id = ? AND revoked_at IS NULL'),
    insertKey: db.prepare(
      `INSERT INTO api_keys (id, team_id, name, prefix, hash, quota, created_at, expires_at)
       VALUES (@id, @teamId, @name, @prefix, @hash, @quota, @createdAt, @expiresAt)`,
    ),
    keys: db.prepare('SELECT * FROM api_keys WHERE team_id = ? ORDER BY created_at, id'),
    key: db.prepare('SELECT * FROM api_keys WHERE id = ?'),
    revokeKey: db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),
    keyByHash: db.prepare('SELECT * FROM api_keys WHERE hash = ?'),
    daily: db.prepare(
      "SELECT bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros FROM counters WHERE scope = ? AND bucket >= ? AND bucket LIKE 'day:%' ORDER BY bucket",
    ),
    usageByModel: db.prepare(usageByModelSql({ teamId: '@teamId', day: '@day', month: '@month' })),
    pruneMinutes: db.prepare("DELETE FROM counters WHERE bucket LIKE 'min:%' AND bucket < ?"),
    enqueueEvent: db.prepare(
      `INSERT OR IGNORE INTO webhook_deliveries (id, event_id, team_id, video_id, type, created_at, status, next_attempt_at_ms)
       SELECT @id, @eventId, team_id, @videoId, @type, @createdAt, 'pending', @nowMs FROM webhook_endpoints
       WHERE team_id = @teamId AND enabled = 1 AND EXISTS (SELECT 1 FROM json_each(events) WHERE value = @type)`,
    ),
    endpoint: db.prepare('SELECT * FROM webhook_endpoints WHERE team_id = ?'),
    insertEndpoint: db.prepare(
      `INSERT OR IGNORE INTO webhook_endpoints (team_id, url, events, enabled, secret, created_at)
       VALUES (@teamId, @url, @events, @enabled, @secret, @createdAt)`,
    ),
    updateEndpoint: db.prepare('UPDATE webhook_endpoints SET url = @url, events = @events, enabled = @enabled WHERE team_id = @teamId'),
    deleteEndpoint: db.prepare('DELETE FROM webhook_endpoints WHERE team_id = ?'),
    rotateSecret: db.prepare('UPDATE webhook_endpoints SET previous_secrets = ?, secret = ? WHERE team_id = ?'),
    recordAttempt: db.prepare(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = @lastStatus, last_error = @lastError,
         last_latency_ms = @latencyMs, last_attempt_at_ms = @nowMs, status = @status, next_attempt_at_ms = @next,
         delivered_at_ms = coalesce(@deliveredAt, delivered_at_ms), lease_until_ms = NULL, lease_token = NULL
       WHERE id = @id AND lease_token = @token`,
    ),
    deliveries: db.prepare('SELECT * FROM webhook_deliveries WHERE team_id = ? ORDER BY seq DESC LIMIT ?'),
    replay: db.prepare(
      `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = ?, delivered_at_ms = NULL,
         lease_until_ms = NULL, lease_token = NULL WHERE id = ? AND team_id = ?`,
    ),
    delivery: db.prepare('SELECT * FROM webhook_deliveries WHERE id = ?'),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;
