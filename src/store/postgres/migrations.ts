import type pg from 'pg';

/**
 * The PostgreSQL schema as an ordered list of steps. A step, once released, is never edited: a change is a
 * new step at the end. Version n is the step at index n - 1.
 *
 * The tables mirror the embedded store's, so that copying an embedded store into PostgreSQL is a row copy.
 * `quota_scopes` is new: one row per team and per key that job admissions lock (see PostgresStore.admitJob).
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE teams (
    id text PRIMARY KEY, name text, quota jsonb NOT NULL, created_at bigint NOT NULL, deleted_at bigint);
  CREATE TABLE api_keys (
    id text PRIMARY KEY, team_id text NOT NULL, name text, prefix text NOT NULL, hash text NOT NULL UNIQUE,
    quota jsonb NOT NULL, created_at bigint NOT NULL, expires_at bigint, revoked_at bigint);
  CREATE INDEX api_keys_team ON api_keys (team_id);
  CREATE TABLE jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE, team_id text NOT NULL,
    key_id text NOT NULL, upstream_id text, upstream_key_fp text, model text NOT NULL, prompt text NOT NULL,
    seconds integer NOT NULL, resolution integer NOT NULL, aspect_ratio text NOT NULL, status text NOT NULL,
    progress integer NOT NULL, error jsonb, created_at bigint NOT NULL, completed_at bigint,
    updated_at_ms bigint NOT NULL, charge text NOT NULL CHECK (charge IN ('reserved', 'settled', 'refunded')),
    charge_day text NOT NULL, charge_month text NOT NULL, deleted_at bigint);
  CREATE INDEX jobs_team ON jobs (team_id, seq);
  CREATE INDEX jobs_team_charge ON jobs (team_id, charge);
  CREATE INDEX jobs_key_charge ON jobs (key_id, charge);
  CREATE INDEX jobs_reserved ON jobs (updated_at_ms) WHERE charge = 'reserved';
  CREATE TABLE counters (
    scope text NOT NULL, bucket text NOT NULL, requests bigint NOT NULL DEFAULT 0,
    seconds_reserved bigint NOT NULL DEFAULT 0, seconds_settled bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, bucket));
  CREATE TABLE quota_scopes (scope text PRIMARY KEY);
  `,
  // 2: the reconciler's claims on its worklist (PostgresStore.claimActiveJobs): which store instance holds
  // the job, and until when (ms on the database's clock).
  `
  ALTER TABLE jobs ADD COLUMN claimed_by text, ADD COLUMN claimed_until bigint;
  `,
  // 3: several upstreams (§8): which configured upstream placed a job (null: the first, for jobs from before),
  // and where the upstream keeps its finished video (xAI's media URL; never shown to a client).
  `
  ALTER TABLE jobs ADD COLUMN upstream_name text, ADD COLUMN media_url text;
  `,
  // 4: webhooks (§6): one endpoint per team, and the outbox of events with the state of their delivery.
  `
  CREATE TABLE webhook_endpoints (
    team_id text PRIMARY KEY, url text NOT NULL, events jsonb NOT NULL, enabled boolean NOT NULL, secret text NOT NULL,
    previous_secret text, previous_secret_expires_at_ms bigint, created_at bigint NOT NULL);
  CREATE TABLE webhook_deliveries (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE, event_id text NOT NULL UNIQUE,
    team_id text NOT NULL, video_id text NOT NULL UNIQUE, type text NOT NULL, created_at bigint NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')), attempts integer NOT NULL DEFAULT 0,
    last_status integer, last_error text, last_latency_ms integer, last_attempt_at_ms bigint, next_attempt_at_ms bigint,
    delivered_at_ms bigint, lease_until_ms bigint, lease_token text);
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at_ms) WHERE status = 'pending';
  CREATE INDEX webhook_deliveries_team ON webhook_deliveries (team_id, seq);
  `,
  // 5: derived videos (§9): the source video a remix, extension or edit was made from, and which of the three.
  `
  ALTER TABLE jobs ADD COLUMN source_video_id text, ADD COLUMN derivation text CHECK (derivation IN ('remix', 'extension', 'edit'));
  `,
  // 6: Idempotency-Key (§2), per team: the request that first used the key (its fingerprint), the video id its
  // job is admitted under, its holder's lease while in flight, and its answer once it has one (null: in flight).
  `
  CREATE TABLE idempotency_keys (
    team_id text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, job_id text NOT NULL, holder text,
    lease_until_ms bigint, answer jsonb, created_at_ms bigint NOT NULL, expires_at_ms bigint NOT NULL,
    PRIMARY KEY (team_id, key));
  CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_ms);
  `,
  // 7: every secret a rotation replaced keeps signing until its own expiry (§6), not only the last one:
  // [{secret, expires_at_ms}], newest first.
  `
  ALTER TABLE webhook_endpoints ADD COLUMN previous_secrets jsonb NOT NULL DEFAULT '[]';
  UPDATE webhook_endpoints
    SET previous_secrets = jsonb_build_array(jsonb_build_object('secret', previous_secret, 'expires_at_ms', previous_secret_expires_at_ms))
    WHERE previous_secret IS NOT NULL AND previous_secret_expires_at_ms IS NOT NULL;
  ALTER TABLE webhook_endpoints DROP COLUMN previous_secret, DROP COLUMN previous_secret_expires_at_ms;
  `,
  // 8: stored results (§12): when the content expires, and the state of the video's copy in the operator's
  // storage with the copier's and sweeper's claims on it (see domain/stored-copy.ts, store/copies.ts).
  `
  ALTER TABLE jobs ADD COLUMN expires_at bigint,
    ADD COLUMN storage_state text CHECK (storage_state IN ('pending', 'stored', 'failed', 'removed')),
    ADD COLUMN storage_bytes bigint, ADD COLUMN storage_type text, ADD COLUMN storage_attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN storage_next_at_ms bigint, ADD COLUMN storage_error text,
    ADD COLUMN storage_lease_until_ms bigint, ADD COLUMN storage_lease_token text;
  CREATE INDEX jobs_storage ON jobs (storage_state, storage_next_at_ms) WHERE storage_state IN ('pending', 'stored', 'failed');
  `,
  // 9: tracking at fleet scale (§11): each job's next status check (ms on the database's clock; 0: due at once,
  // which is what every job active before this step is), the status calls made for it, and the index of the
  // tracker's worklist. Claims stay in claimed_by and claimed_until (step 2).
  `
  ALTER TABLE jobs ADD COLUMN next_check_at bigint NOT NULL DEFAULT 0, ADD COLUMN status_checks integer NOT NULL DEFAULT 0;
  CREATE INDEX jobs_due ON jobs (next_check_at) WHERE charge = 'reserved';
  `,
  // 10: spend in money (§10): each job's estimate reserved at admission, its cost at the price of the upstream
  // that took it, its actual cost and where that came from; micro-dollars reserved and settled in the counters. Jobs from before have no cost: unknown, never $0. A
  // webhook delivery about no video (a budget.threshold alert) keeps its event's data.
  `
  ALTER TABLE jobs ADD COLUMN cost_estimate_micros bigint, ADD COLUMN cost_price_micros bigint, ADD COLUMN cost_micros bigint,
    ADD COLUMN cost_source text CHECK (cost_source IN ('upstream', 'price'));
  ALTER TABLE counters ADD COLUMN usd_reserved_micros bigint NOT NULL DEFAULT 0, ADD COLUMN usd_settled_micros bigint NOT NULL DEFAULT 0;
  ALTER TABLE webhook_deliveries ADD COLUMN data jsonb;
  `,
];

/** An arbitrary constant: the advisory lock every replica takes while it migrates. */
const MIGRATION_LOCK = 7_349_112_052;

/**
 * Brings the schema up to the last step. Replicas starting together serialize on a session advisory lock,
 * so each step runs once; each step and its version row commit together, so a crash mid-step leaves the
 * step unapplied rather than half-applied.
 */
export async function migrate(client: pg.ClientBase, steps: readonly string[] = MIGRATIONS): Promise<number> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > steps.length) {
      throw new Error(`the database schema is at version ${current}, newer than this gateway knows (${steps.length}): upgrade the gateway`);
    }
    for (let v = current + 1; v <= steps.length; v++) {
      await client.query('BEGIN');
      try {
        await client.query(steps[v - 1]!);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    }
    return steps.length;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
  }
}
