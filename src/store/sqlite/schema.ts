import type Database from 'better-sqlite3';

/** The embedded store's tables, created where missing whenever a data file is opened. */
export const SCHEMA = `
CREATE TABLE IF NOT EXISTS teams (
  id TEXT PRIMARY KEY, name TEXT, quota TEXT NOT NULL, created_at INTEGER NOT NULL, deleted_at INTEGER);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, prefix TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
  quota TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER);
CREATE INDEX IF NOT EXISTS api_keys_team ON api_keys(team_id);
CREATE TABLE IF NOT EXISTS jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, team_id TEXT NOT NULL, key_id TEXT NOT NULL,
  upstream_id TEXT, upstream_key_fp TEXT, upstream_name TEXT, media_url TEXT, source_video_id TEXT, derivation TEXT, model TEXT NOT NULL, prompt TEXT NOT NULL, seconds INTEGER NOT NULL,
  resolution INTEGER NOT NULL, aspect_ratio TEXT NOT NULL,
  status TEXT NOT NULL, progress INTEGER NOT NULL, error TEXT, created_at INTEGER NOT NULL, completed_at INTEGER,
  updated_at_ms INTEGER NOT NULL, charge TEXT NOT NULL, charge_day TEXT NOT NULL, charge_month TEXT NOT NULL,
  deleted_at INTEGER, next_check_at INTEGER NOT NULL DEFAULT 0, status_checks INTEGER NOT NULL DEFAULT 0, claimed_until INTEGER);
CREATE INDEX IF NOT EXISTS jobs_team ON jobs(team_id, seq);
CREATE INDEX IF NOT EXISTS jobs_team_charge ON jobs(team_id, charge);
CREATE INDEX IF NOT EXISTS jobs_key_charge ON jobs(key_id, charge);
CREATE INDEX IF NOT EXISTS jobs_reserved ON jobs(charge, updated_at_ms);
CREATE TABLE IF NOT EXISTS counters (
  scope TEXT NOT NULL, bucket TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,
  seconds_reserved INTEGER NOT NULL DEFAULT 0, seconds_settled INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, bucket)) WITHOUT ROWID;
-- The money columns of jobs, counters and webhook_deliveries are added by addSpendColumns (spend.ts).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  team_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, enabled INTEGER NOT NULL, secret TEXT NOT NULL,
  previous_secrets TEXT NOT NULL DEFAULT '[]', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, event_id TEXT NOT NULL UNIQUE, team_id TEXT NOT NULL,
  video_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, created_at INTEGER NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, last_status INTEGER, last_error TEXT, last_latency_ms INTEGER,
  last_attempt_at_ms INTEGER, next_attempt_at_ms INTEGER, delivered_at_ms INTEGER, lease_until_ms INTEGER, lease_token TEXT);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at_ms);
CREATE INDEX IF NOT EXISTS webhook_deliveries_team ON webhook_deliveries(team_id, seq);
`;

/**
 * Stores made before team ids were tombstoned removed a deleted team's row: add the column, and tombstone
 * the ids that keys still name but no team row holds (the only way such an id came about was a delete).
 */
const TOMBSTONE_TEAMS = `
ALTER TABLE teams ADD COLUMN deleted_at INTEGER;
INSERT OR IGNORE INTO teams (id, name, quota, created_at, deleted_at)
  SELECT DISTINCT team_id, NULL, '{}', 0, 0 FROM api_keys WHERE team_id NOT IN (SELECT id FROM teams);
`;

const KEEP_EVERY_PREVIOUS_SECRET = `
ALTER TABLE webhook_endpoints ADD COLUMN previous_secrets TEXT NOT NULL DEFAULT '[]';
UPDATE webhook_endpoints SET previous_secrets = json_array(json_object('secret', previous_secret, 'expires_at_ms', previous_secret_expires_at_ms))
  WHERE previous_secret IS NOT NULL AND previous_secret_expires_at_ms IS NOT NULL;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret;
ALTER TABLE webhook_endpoints DROP COLUMN previous_secret_expires_at_ms;
`;

const TRACKING_COLUMNS = `
ALTER TABLE jobs ADD COLUMN next_check_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN status_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN claimed_until INTEGER;
`;

/**
 * Brings data files of earlier builds up to date, in one write transaction so that a CLI and a gateway
 * opening the same file at once do not both try. Besides TOMBSTONE_TEAMS: `jobs.reference_count NOT NULL`,
 * which nothing reads and new inserts do not fill, is dropped.
 */
export function upgradeEarlierSchema(db: Database.Database): void {
  const columns = (table: string) => (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name);
  db.transaction(() => {
    if (!columns('teams').includes('deleted_at')) db.exec(TOMBSTONE_TEAMS);
    if (columns('jobs').includes('reference_count')) db.exec('ALTER TABLE jobs DROP COLUMN reference_count');
    // Before several upstreams: a job's upstream was the only one (a null name means the first configured).
    if (!columns('jobs').includes('upstream_name')) db.exec('ALTER TABLE jobs ADD COLUMN upstream_name TEXT; ALTER TABLE jobs ADD COLUMN media_url TEXT');
    // Before derived videos (§9): every job was made from a prompt.
    if (!columns('jobs').includes('source_video_id')) db.exec('ALTER TABLE jobs ADD COLUMN source_video_id TEXT; ALTER TABLE jobs ADD COLUMN derivation TEXT');
    // Before every rotated secret kept its own expiry: only the last one was kept.
    if (!columns('webhook_endpoints').includes('previous_secrets')) db.exec(KEEP_EVERY_PREVIOUS_SECRET);
    // Before each job had its own next check (§11): every active job is due at once.
    if (!columns('jobs').includes('next_check_at')) db.exec(TRACKING_COLUMNS);
    db.exec('CREATE INDEX IF NOT EXISTS jobs_due ON jobs(charge, next_check_at)');
  }).immediate();
}
