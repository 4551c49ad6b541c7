import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { buckets, evaluateJob, evaluateRequest, rateInfo, type QuotaPolicy, type Scope, type UsageSnapshot } from '../quota/policy.js';
import { isTerminal } from '../videos/dialects/task.js';
import { eventTypeFor, newDeliveryId, newEventId } from '../webhooks/event.js';
import { ChangeFeed, LocalClaims } from './changes.js';
import { ABANDONED, isAbandoned, isDeletedPending, leaseToken } from './lifecycle.js';
import { microsToUsd } from '../videos/money.js';
import { rowMappers, type Row } from './rows.js';
import { addSpendColumns, enqueueBudgetAlert } from './spend-sqlite.js';
import { admissionMove, chargeShift, NO_COST, settledCost, toModelUsage, usageByModelSql, type FinalCost } from './spend.js';
import type {
  Admission,
  ApiKeyRecord,
  AttemptResult,
  BudgetAlert,
  ChangeListener,
  ChargeListener,
  ClaimedDelivery,
  CreateTeamResult,
  HeldReservation,
  JobRecord,
  ListOptions,
  ModelUsage,
  NewJob,
  PeriodUsage,
  Principal,
  RequestCount,
  Store,
  StoreRecord,
  TaskUpdate,
  Team,
  TeamUsage,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointInput,
} from './types.js';

const SCHEMA = `
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
  deleted_at INTEGER);
CREATE INDEX IF NOT EXISTS jobs_team ON jobs(team_id, seq);
CREATE INDEX IF NOT EXISTS jobs_team_charge ON jobs(team_id, charge);
CREATE INDEX IF NOT EXISTS jobs_key_charge ON jobs(key_id, charge);
CREATE INDEX IF NOT EXISTS jobs_reserved ON jobs(charge, updated_at_ms);
CREATE TABLE IF NOT EXISTS counters (
  scope TEXT NOT NULL, bucket TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,
  seconds_reserved INTEGER NOT NULL DEFAULT 0, seconds_settled INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (scope, bucket)) WITHOUT ROWID;
-- The money columns of jobs and counters are added by addSpendColumns (spend-sqlite.ts).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
  team_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, enabled INTEGER NOT NULL, secret TEXT NOT NULL,
  previous_secret TEXT, previous_secret_expires_at_ms INTEGER, created_at INTEGER NOT NULL);
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

/**
 * Brings data files of earlier builds up to date, in one write transaction so that a CLI and a gateway
 * opening the same file at once do not both try. Besides TOMBSTONE_TEAMS: `jobs.reference_count NOT NULL`,
 * which nothing reads and new inserts do not fill, is dropped.
 */
function upgradeEarlierSchema(db: Database.Database): void {
  const columns = (table: string) => (db.pragma(`table_info(${table})`) as Array<{ name: string }>).map((c) => c.name);
  db.transaction(() => {
    if (!columns('teams').includes('deleted_at')) db.exec(TOMBSTONE_TEAMS);
    if (columns('jobs').includes('reference_count')) db.exec('ALTER TABLE jobs DROP COLUMN reference_count');
    // Before several upstreams: a job's upstream was the only one (a null name means the first configured).
    if (!columns('jobs').includes('upstream_name')) db.exec('ALTER TABLE jobs ADD COLUMN upstream_name TEXT; ALTER TABLE jobs ADD COLUMN media_url TEXT');
    // Before derived videos (§9): every job was made from a prompt.
    if (!columns('jobs').includes('source_video_id')) db.exec('ALTER TABLE jobs ADD COLUMN source_video_id TEXT; ALTER TABLE jobs ADD COLUMN derivation TEXT');
  }).immediate();
}

const json = (v: unknown) => JSON.stringify(v);
const sec = (ms: number) => Math.floor(ms / 1000);

/** JSON columns are text and booleans 0/1. */
const { toJob, toTeam, toKey, toEndpoint, toDelivery } = rowMappers({ json: (v) => JSON.parse(v as string), bool: (v) => v === 1 });

const scopeKey = (scope: Scope, id: string) => `${scope}:${id}`;

/** A counter row's amounts. */
type CounterRow = { requests: number; seconds_reserved: number; seconds_settled: number; usd_reserved_micros: number; usd_settled_micros: number };

/** The embedded store: one SQLite file in WAL mode; each quota operation is one immediate transaction. */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly s: ReturnType<SqliteStore['prepare']>;
  /** One process writes this file (a CLI beside it changes it unheard): its changes are told in-process only. */
  private readonly changes = new ChangeFeed();
  private readonly claims = new LocalClaims();

  /** `onCharge` hears of each move of video-seconds from inside the (synchronous) transaction that makes it. */
  constructor(path: string, private readonly onCharge?: ChargeListener) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    upgradeEarlierSchema(this.db);
    addSpendColumns(this.db);
    this.s = this.prepare();
  }

  static inDataDir(dataDir: string, onCharge?: ChargeListener): SqliteStore {
    mkdirSync(dataDir, { recursive: true });
    return new SqliteStore(join(dataDir, 'gateway.db'), onCharge);
  }

  private prepare() {
    const db = this.db;
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
      touch: db.prepare('UPDATE jobs SET updated_at_ms = ? WHERE id = ?'),
      markDeleted: db.prepare('UPDATE jobs SET deleted_at = ? WHERE id = ? AND team_id = ? AND deleted_at IS NULL'),
      seqOf: db.prepare('SELECT seq FROM jobs WHERE id = ? AND team_id = ?'),
      listDesc: db.prepare('SELECT * FROM jobs WHERE team_id = ? AND deleted_at IS NULL AND seq < ? ORDER BY seq DESC LIMIT ?'),
      listAsc: db.prepare('SELECT * FROM jobs WHERE team_id = ? AND deleted_at IS NULL AND seq > ? ORDER BY seq ASC LIMIT ?'),
      reserved: db.prepare("SELECT * FROM jobs WHERE charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT ?"),
      activeStats: db.prepare("SELECT team_id AS teamId, COUNT(*) AS jobs, MIN(updated_at_ms) AS oldestRefreshMs FROM jobs WHERE charge = 'reserved' GROUP BY team_id"),
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
      rotateSecret: db.prepare(
        'UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at_ms = ?, secret = ? WHERE team_id = ?',
      ),
      dueDeliveries: db.prepare(
        `SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at_ms <= ?
           AND (lease_until_ms IS NULL OR lease_until_ms <= ?) ORDER BY next_attempt_at_ms LIMIT ?`,
      ),
      lease: db.prepare('UPDATE webhook_deliveries SET lease_until_ms = ?, lease_token = ? WHERE id = ?'),
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

  private counter(scope: string, bucket: string) {
    return (this.s.counter.get(scope, bucket) as CounterRow | undefined) ?? { requests: 0, seconds_reserved: 0, seconds_settled: 0, usd_reserved_micros: 0, usd_settled_micros: 0 };
  }

  private snapshot(scope: Scope, id: string, nowMs: number, withJobs: boolean): UsageSnapshot {
    const b = buckets(nowMs);
    const sk = scopeKey(scope, id);
    const day = this.counter(sk, `day:${b.day}`);
    const month = this.counter(sk, `month:${b.month}`);
    return {
      requestsThisMinute: this.counter(sk, `min:${b.minute}`).requests,
      activeJobs: withJobs ? ((scope === 'team' ? this.s.activeTeam : this.s.activeKey).get(id) as { n: number }).n : 0,
      daySeconds: day.seconds_reserved + day.seconds_settled,
      monthSeconds: month.seconds_reserved + month.seconds_settled,
      dayMicros: day.usd_reserved_micros + day.usd_settled_micros,
      monthMicros: month.usd_reserved_micros + month.usd_settled_micros,
    };
  }

  /**
   * Moves seconds between reserved and settled (or out, for a refund) in the buckets the job was charged to,
   * and its money with them: the estimate in or out of reserved, `cost` into settled.
   */
  private shift(job: JobRecord, reserved: number, settled: number, cost?: FinalCost) {
    const m = chargeShift(job, reserved, settled, cost);
    for (const sk of [scopeKey('team', job.teamId), scopeKey('key', job.keyId)]) {
      this.s.bump.run(sk, `day:${job.chargeDay}`, 0, reserved, settled, m.reservedMicros, m.settledMicros);
      this.s.bump.run(sk, `month:${job.chargeMonth}`, 0, reserved, settled, m.reservedMicros, m.settledMicros);
    }
    this.onCharge?.(job.teamId, m.charge, m.seconds, m.money);
  }

  private admit(principal: Principal, job: NewJob | null, nowMs: number): Admission {
    const scopes = [
      { scope: 'key' as const, id: principal.keyId, policy: principal.keyPolicy },
      { scope: 'team' as const, id: principal.teamId, policy: principal.teamPolicy },
    ].map((x) => ({ ...x, usage: this.snapshot(x.scope, x.id, nowMs, job !== null) }));
    if (!job) {
      const refusal = evaluateRequest(scopes, nowMs);
      if (refusal) return { ok: false, refusal };
      this.bump(principal.teamId, principal.keyId, nowMs, 1, 0, 0);
      return { ok: true, rate: rateInfo(scopes, nowMs) };
    }
    const refusal = evaluateJob(scopes, job);
    if (refusal) return { ok: false, refusal };
    this.bump(principal.teamId, principal.keyId, nowMs, 0, job.seconds, job.estimateMicros ?? 0);
    const b = buckets(nowMs);
    this.s.insertJob.run({
      ...job,
      sourceVideoId: job.sourceVideoId ?? null,
      derivation: job.derivation ?? null,
      estimateMicros: job.estimateMicros ?? null,
      createdAt: sec(nowMs),
      nowMs,
      day: b.day,
      month: b.month,
    });
    this.onCharge?.(job.teamId, 'reserved', job.seconds, admissionMove(job));
    return { ok: true, rate: null };
  }

  /** Counts requests (and reserves seconds and micro-dollars) in the minute, day and month buckets of both scopes. */
  private bump(teamId: string, keyId: string, nowMs: number, requests: number, seconds: number, micros: number) {
    const b = buckets(nowMs);
    for (const sk of [scopeKey('team', teamId), scopeKey('key', keyId)]) {
      if (requests) this.s.bump.run(sk, `min:${b.minute}`, requests, 0, 0, 0, 0);
      this.s.bump.run(sk, `day:${b.day}`, requests, seconds, 0, micros, 0);
      this.s.bump.run(sk, `month:${b.month}`, requests, seconds, 0, micros, 0);
    }
  }

  async countRequests(counts: readonly RequestCount[]): Promise<void> {
    if (counts.length === 0) return;
    this.db.transaction(() => {
      for (const c of counts) this.bump(c.teamId, c.keyId, c.atMs, c.count, 0, 0);
    })();
  }

  async admitRequest(principal: Principal, nowMs: number): Promise<Admission> {
    return this.db.transaction(() => this.admit(principal, null, nowMs)).immediate();
  }

  async admitJob(principal: Principal, job: NewJob, nowMs: number): Promise<Admission> {
    return this.db.transaction(() => this.admit(principal, job, nowMs)).immediate();
  }

  async activateJob(id: string, upstreamId: string, keyFp: string, task: TaskUpdate, nowMs: number, upstreamName: string, priceMicros: number | null = null): Promise<JobRecord> {
    this.db
      .transaction(() => {
        const row = this.s.jobById.get(id) as Row | undefined;
        if (!row) throw new Error(`job ${id} is not in the store`);
        const job = toJob(row);
        if (isAbandoned(job)) {
          // The upstream has the job after all: the team gets it and is charged for it, past a limit if need be,
          // in the buckets it was first admitted to.
          this.s.revive.run(id);
          this.shift(job, job.seconds, 0);
        } else if (isDeletedPending(job)) {
          // The team deleted it before the upstream answered; the upstream runs and bills it all the same, so it
          // is charged as a finished job would be, and stays deleted.
          this.s.setChargeFrom.run('settled', id, 'refunded');
          const cost = settledCost({ ...job, priceMicros }, undefined);
          this.s.setCost.run(cost.costMicros, cost.costSource, id);
          this.shift(job, 0, job.seconds, cost);
        }
        this.s.activate.run(upstreamId, keyFp, upstreamName, priceMicros, 'queued', 0, nowMs, id);
      })
      .immediate();
    const job = await this.updateJob(id, task, nowMs);
    if (!job) throw new Error(`job ${id} vanished while being activated`);
    return job;
  }

  async abandonJob(id: string, nowMs: number): Promise<void> {
    const abandoned = this.db
      .transaction(() => {
        const row = this.s.jobById.get(id) as Row | undefined;
        // Activated meanwhile (the reconciler read its worklist before the upstream answered): not abandoned.
        if (!row || row.upstream_id !== null) return false;
        const job = toJob(row);
        if (this.s.setCharge.run('refunded', id).changes !== 1) return false;
        this.s.setCost.run(NO_COST.costMicros, NO_COST.costSource, id);
        this.shift(job, -job.seconds, 0);
        this.s.markAbandoned.run(json(ABANDONED), nowMs, nowMs, id);
        return true;
      })
      .immediate();
    if (abandoned) this.changes.emit({ kind: 'job', jobId: id, deleted: false });
  }

  async updateJob(id: string, task: TaskUpdate, nowMs: number): Promise<JobRecord | undefined> {
    return this.db
      .transaction(() => {
        const row = this.s.jobById.get(id) as Row | undefined;
        if (!row) return undefined;
        const job = toJob(row);
        if (isTerminal(job.status)) return job;
        const terminal = isTerminal(task.status);
        this.s.setStatus.run(task.status, task.progress, task.error ? json(task.error) : null, terminal ? sec(nowMs) : null, task.mediaUrl ?? null, nowMs, id);
        if (terminal) {
          this.settle(job, task.status === 'completed', task.costMicros);
          // Not for a video its team deleted: the event would name a video the team can no longer see.
          if (row.deleted_at === null) this.enqueueEvent(job, task, nowMs);
        }
        return toJob(this.s.jobById.get(id) as Row);
      })
      .immediate();
  }

  /** Inside the transaction that makes the job terminal, which happens once per job; the unique video id backs that up. */
  private enqueueEvent(job: JobRecord, task: TaskUpdate, nowMs: number) {
    const type = eventTypeFor(task.status);
    if (!type) return;
    this.s.enqueueEvent.run({ id: newDeliveryId(), eventId: newEventId(), videoId: job.id, type, createdAt: sec(nowMs), nowMs, teamId: job.teamId });
  }

  /** Exactly once per job, guarded by the `charge = 'reserved'` condition; `upstreamMicros`: what the upstream charged. */
  private settle(job: JobRecord, charged: boolean, upstreamMicros?: number) {
    if (this.s.setCharge.run(charged ? 'settled' : 'refunded', job.id).changes !== 1) return;
    const cost = charged ? settledCost(job, upstreamMicros) : NO_COST;
    this.s.setCost.run(cost.costMicros, cost.costSource, job.id);
    this.shift(job, -job.seconds, charged ? job.seconds : 0, cost);
  }

  async getJob(teamId: string, id: string): Promise<JobRecord | undefined> {
    const row = this.s.jobForTeam.get(id, teamId) as Row | undefined;
    return row ? toJob(row) : undefined;
  }

  async listJobs(teamId: string, opts: ListOptions): Promise<{ jobs: JobRecord[]; hasMore: boolean }> {
    let cursor = opts.order === 'desc' ? Number.MAX_SAFE_INTEGER : 0;
    if (opts.after) {
      const row = this.s.seqOf.get(opts.after, teamId) as { seq: number } | undefined;
      if (!row) return { jobs: [], hasMore: false };
      cursor = row.seq;
    }
    const rows = (opts.order === 'desc' ? this.s.listDesc : this.s.listAsc).all(teamId, cursor, opts.limit + 1) as Row[];
    return { jobs: rows.slice(0, opts.limit).map(toJob), hasMore: rows.length > opts.limit };
  }

  async touchJob(id: string, nowMs: number): Promise<void> {
    this.s.touch.run(nowMs, id);
  }

  async deleteJob(teamId: string, id: string, nowMs: number, held: HeldReservation): Promise<boolean> {
    const deleted = this.db
      .transaction(() => {
        const row = this.s.jobForTeam.get(id, teamId) as Row | undefined;
        if (!row) return false;
        this.settle(toJob(row), held === 'settle');
        return this.s.markDeleted.run(nowMs, id, teamId).changes === 1;
      })
      .immediate();
    if (deleted) this.changes.emit({ kind: 'job', jobId: id, deleted: true });
    return deleted;
  }

  async activeJobs(limit: number): Promise<JobRecord[]> {
    return (this.s.reserved.all(limit) as Row[]).map(toJob);
  }

  async claimActiveJobs(limit: number, leaseMs: number, nowMs: number): Promise<JobRecord[]> {
    // At most `claims.size` of the rows read are held by a claim, so this many always holds `limit` free ones.
    const rows = this.s.reserved.all(limit + this.claims.size) as Row[];
    const free = rows.map(toJob).filter((j) => !this.claims.held(j.id, nowMs)).slice(0, limit);
    this.claims.take(free.map((j) => j.id), nowMs + leaseMs);
    return free;
  }

  async releaseJobs(ids: readonly string[]): Promise<void> {
    this.claims.release(ids);
  }

  async activeJobsOfTeam(teamId: string, limit: number): Promise<JobRecord[]> {
    return (this.s.reservedOfTeam.all(teamId, limit) as Row[]).map(toJob);
  }

  async activeJobStats(): Promise<Array<{ teamId: string; jobs: number; oldestRefreshMs: number }>> {
    return this.s.activeStats.all() as Array<{ teamId: string; jobs: number; oldestRefreshMs: number }>;
  }

  async createTeam(team: { id: string; name: string | null; quota: QuotaPolicy }, nowMs: number): Promise<CreateTeamResult> {
    if (this.s.insertTeam.run(team.id, team.name, json(team.quota), sec(nowMs)).changes === 1) return { ok: true, team: (await this.getTeam(team.id)) as Team };
    const existing = this.s.teamDeletedAt.get(team.id) as { deleted_at: number | null };
    return { ok: false, reason: existing.deleted_at === null ? 'exists' : 'deleted' };
  }

  async getTeam(id: string): Promise<Team | undefined> {
    const row = this.s.team.get(id) as Row | undefined;
    return row ? toTeam(row) : undefined;
  }

  async listTeams(): Promise<Team[]> {
    return (this.s.teams.all() as Row[]).map(toTeam);
  }

  async updateTeam(id: string, patch: { name?: string | null; quota?: QuotaPolicy }): Promise<Team | undefined> {
    const team = await this.getTeam(id);
    if (!team) return undefined;
    this.s.updateTeam.run(patch.name !== undefined ? patch.name : team.name, json(patch.quota ?? team.quota), id);
    this.changes.emit({ kind: 'team', teamId: id });
    return this.getTeam(id);
  }

  async deleteTeam(id: string, nowMs: number): Promise<boolean> {
    const deleted = this.db.transaction(() => {
      this.s.revokeTeamKeys.run(sec(nowMs), id);
      const tombstoned = this.s.deleteTeam.run(sec(nowMs), id).changes === 1;
      if (tombstoned) this.s.deleteEndpoint.run(id);
      return tombstoned;
    })();
    if (deleted) this.changes.emit({ kind: 'team', teamId: id });
    return deleted;
  }

  async createKey(key: Omit<ApiKeyRecord, 'revokedAt'> & { hash: string }): Promise<ApiKeyRecord> {
    this.s.insertKey.run({ ...key, quota: json(key.quota) });
    return toKey(this.s.key.get(key.id) as Row);
  }

  async listKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return (this.s.keys.all(teamId) as Row[]).map(toKey);
  }

  async revokeKey(id: string, nowMs: number): Promise<ApiKeyRecord | undefined> {
    this.s.revokeKey.run(sec(nowMs), id);
    const row = this.s.key.get(id) as Row | undefined;
    if (!row) return undefined;
    this.changes.emit({ kind: 'key', keyId: id });
    return toKey(row);
  }

  async findKeyByHash(hash: string): Promise<{ key: ApiKeyRecord; team: Team } | undefined> {
    const row = this.s.keyByHash.get(hash) as Row | undefined;
    if (!row) return undefined;
    const key = toKey(row);
    const team = await this.getTeam(key.teamId);
    return team ? { key, team } : undefined;
  }

  async usage(teamId: string, nowMs: number, days: number): Promise<TeamUsage> {
    const b = buckets(nowMs);
    const sk = scopeKey('team', teamId);
    const period = (start: string, bucket: string): PeriodUsage => {
      const c = this.counter(sk, bucket);
      return {
        start,
        video_seconds: c.seconds_reserved + c.seconds_settled,
        video_seconds_reserved: c.seconds_reserved,
        usd: microsToUsd(c.usd_reserved_micros + c.usd_settled_micros),
        usd_reserved: microsToUsd(c.usd_reserved_micros),
        requests: c.requests,
      };
    };
    const since = new Date(nowMs - (days - 1) * 86_400_000).toISOString().slice(0, 10);
    const byDay = new Map((this.s.daily.all(sk, `day:${since}`) as Array<CounterRow & { bucket: string }>).map((r) => [r.bucket.slice(4), r]));
    const daily = [];
    for (let i = days - 1; i >= 0; i--) {
      const date = new Date(nowMs - i * 86_400_000).toISOString().slice(0, 10);
      const r = byDay.get(date);
      daily.push({
        date,
        video_seconds: r ? r.seconds_reserved + r.seconds_settled : 0,
        usd: r ? microsToUsd(r.usd_reserved_micros + r.usd_settled_micros) : 0,
        requests: r?.requests ?? 0,
      });
    }
    this.s.pruneMinutes.run(`min:${new Date(nowMs - 3_600_000).toISOString().slice(0, 16)}`);
    return {
      day: period(b.day, `day:${b.day}`),
      month: period(b.month, `month:${b.month}`),
      activeJobs: (this.s.activeTeam.get(teamId) as { n: number }).n,
      requestsThisMinute: this.counter(sk, `min:${b.minute}`).requests,
      daily,
    };
  }

  async usageByModel(teamId: string, nowMs: number): Promise<ModelUsage[]> {
    const b = buckets(nowMs);
    return toModelUsage(this.s.usageByModel.all({ teamId, day: b.day, month: b.month }) as Row[]);
  }

  async putWebhook(teamId: string, input: WebhookEndpointInput, secret: string, nowMs: number): Promise<{ endpoint: WebhookEndpoint; created: boolean }> {
    return this.db
      .transaction(() => {
        const values = { teamId, url: input.url, events: json(input.events), enabled: input.enabled ? 1 : 0 };
        const created = this.s.insertEndpoint.run({ ...values, secret, createdAt: sec(nowMs) }).changes === 1;
        if (!created) this.s.updateEndpoint.run(values);
        return { endpoint: toEndpoint(this.s.endpoint.get(teamId) as Row), created };
      })
      .immediate();
  }

  async getWebhook(teamId: string): Promise<WebhookEndpoint | undefined> {
    const row = this.s.endpoint.get(teamId) as Row | undefined;
    return row ? toEndpoint(row) : undefined;
  }

  async deleteWebhook(teamId: string): Promise<boolean> {
    return this.s.deleteEndpoint.run(teamId).changes === 1;
  }

  async rotateWebhookSecret(teamId: string, secret: string, overlapMs: number, nowMs: number): Promise<WebhookEndpoint | undefined> {
    if (this.s.rotateSecret.run(nowMs + overlapMs, secret, teamId).changes !== 1) return undefined;
    return this.getWebhook(teamId);
  }

  async claimDeliveries(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedDelivery[]> {
    return this.db
      .transaction(() =>
        (this.s.dueDeliveries.all(nowMs, nowMs, limit) as Row[]).map((r) => {
          const token = leaseToken();
          this.s.lease.run(nowMs + leaseMs, token, r.id);
          return { ...toDelivery(r), leaseToken: token };
        }),
      )
      .immediate();
  }

  async recordAttempt(id: string, token: string, result: AttemptResult, nowMs: number): Promise<boolean> {
    const status = result.delivered ? 'delivered' : result.retryInMs === null ? 'failed' : 'pending';
    const changes = this.s.recordAttempt.run({
      id,
      token,
      status,
      lastStatus: result.status,
      lastError: result.error,
      latencyMs: Math.round(result.latencyMs),
      nowMs,
      next: status === 'pending' ? nowMs + (result.retryInMs ?? 0) : null,
      deliveredAt: result.delivered ? nowMs : null,
    }).changes;
    return changes === 1;
  }

  async listDeliveries(teamId: string, limit: number): Promise<WebhookDelivery[]> {
    return (this.s.deliveries.all(teamId, limit) as Row[]).map(toDelivery);
  }

  async replayDelivery(teamId: string, id: string, nowMs: number): Promise<WebhookDelivery | undefined> {
    if (this.s.replay.run(nowMs, id, teamId).changes !== 1) return undefined;
    return toDelivery(this.s.delivery.get(id) as Row);
  }

  async enqueueBudgetAlert(teamId: string, alert: BudgetAlert, nowMs: number): Promise<boolean> {
    return enqueueBudgetAlert(this.db, teamId, alert, nowMs);
  }

  /**
   * Every record, read in one transaction, so that a gateway writing meanwhile cannot make the export
   * inconsistent (a job without its counters' share, a key without its team).
   */
  async *exportAll(): AsyncGenerator<StoreRecord> {
    this.db.exec('BEGIN');
    try {
      for (const r of this.db.prepare('SELECT * FROM teams ORDER BY created_at, id').iterate() as Iterable<Row>) {
        yield { kind: 'team', team: toTeam(r), deletedAt: (r.deleted_at as number | null) ?? null };
      }
      for (const r of this.db.prepare('SELECT * FROM api_keys ORDER BY created_at, id').iterate() as Iterable<Row>) {
        yield { kind: 'key', key: toKey(r), hash: r.hash as string };
      }
      for (const r of this.db.prepare('SELECT * FROM jobs ORDER BY seq').iterate() as Iterable<Row>) {
        yield { kind: 'job', job: toJob(r), deletedAt: (r.deleted_at as number | null) ?? null };
      }
      const counters = this.db.prepare('SELECT * FROM counters ORDER BY scope, bucket');
      for (const r of counters.iterate() as Iterable<Row>) {
        const counter = {
          scope: r.scope as string,
          bucket: r.bucket as string,
          requests: r.requests as number,
          secondsReserved: r.seconds_reserved as number,
          secondsSettled: r.seconds_settled as number,
          usdReservedMicros: r.usd_reserved_micros as number,
          usdSettledMicros: r.usd_settled_micros as number,
        };
        yield { kind: 'counter', counter };
      }
      for (const r of this.db.prepare('SELECT * FROM webhook_endpoints ORDER BY created_at, team_id').iterate() as Iterable<Row>) {
        yield { kind: 'webhook_endpoint', endpoint: toEndpoint(r) };
      }
      for (const r of this.db.prepare('SELECT * FROM webhook_deliveries ORDER BY seq').iterate() as Iterable<Row>) {
        yield { kind: 'webhook_delivery', delivery: toDelivery(r) };
      }
    } finally {
      this.db.exec('COMMIT');
    }
  }

  onChange(listener: ChangeListener): () => void {
    return this.changes.subscribe(listener);
  }

  async ping(): Promise<boolean> {
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
