import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { buckets, evaluateJob, evaluateRequest, rateInfo, type Admission, type QuotaPolicy, type Scope, type UsageSnapshot } from '../../domain/quota-policy.js';
import { isTerminal } from '../../domain/job.js';
import { microsToUsd } from '../../domain/money.js';
import { eventTypeFor, newDeliveryId, newEventId } from '../../domain/webhook-event.js';
import { ChangeFeed } from '../changes.js';
import { ABANDONED, chargeMove, heldOnDelete, isAbandoned, isDeletedPending } from '../lifecycle.js';
import { rowMappers, toStoredSecrets, type Row } from '../rows.js';
import { admissionMove, chargeShift, NO_COST, settledCost, toModelUsage, usageByModelSql, type FinalCost } from '../spend.js';
import { SqliteIdempotency } from './idempotency.js';
import { SqliteQueues } from './queues.js';
import { SCHEMA, upgradeEarlierSchema } from './schema.js';
import { addSpendColumns, enqueueBudgetAlert } from './spend.js';
import { prepareStatements, type Statements } from './statements.js';
import type { CopyLedger } from '../copies.js';
import { addCopyColumns, SqliteCopies } from './copies.js';
import type {
  ApiKeyRecord,
  AttemptResult,
  BudgetAlert,
  ChangeListener,
  ChargeListener,
  CheckSchedule,
  ClaimedDelivery,
  CreateTeamResult,
  DeliveryShares,
  DueJobsOptions,
  IdempotencyClaim,
  IdempotencyClaimRequest,
  IdempotentAnswer,
  ReservationOnDelete,
  ListOptions,
  ModelUsage,
  NewJob,
  PeriodUsage,
  Principal,
  RequestCount,
  SecretRotation,
  Store,
  StoreRecord,
  TaskUpdate,
  Team,
  TeamUsage,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointInput,
} from '../types.js';
import type { DueChecks, JobRecord } from '../../domain/job.js';

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
  private readonly s: Statements;
  /** One process writes this file (a CLI beside it changes it unheard): its changes are told in-process only. */
  private readonly changes = new ChangeFeed();
  private readonly idempotency: SqliteIdempotency;
  readonly copies: CopyLedger;
  private readonly queues: SqliteQueues;

  /** `onCharge` hears of each move of video-seconds from inside the (synchronous) transaction that makes it. */
  constructor(path: string, private readonly onCharge?: ChargeListener) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    upgradeEarlierSchema(this.db);
    addCopyColumns(this.db);
    addSpendColumns(this.db);
    this.s = prepareStatements(this.db);
    this.idempotency = new SqliteIdempotency(this.db);
    this.copies = new SqliteCopies(this.db, toJob);
    this.queues = new SqliteQueues(this.db);
  }

  /**
   * The store holds webhook secrets and key hashes: a DATA_DIR it creates is its owner's alone, and so is the
   * database file (SQLite gives its -wal and -shm files the database's mode). A directory that exists keeps
   * the mode its operator gave it.
   */
  static inDataDir(dataDir: string, onCharge?: ChargeListener): SqliteStore {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const file = join(dataDir, 'gateway.db');
    // Made (or narrowed, when an earlier version left them wider) before SQLite opens the database.
    closeSync(openSync(file, 'a', 0o600));
    for (const path of [file, `${file}-wal`, `${file}-shm`]) {
      try {
        chmodSync(path, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return new SqliteStore(file, onCharge);
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
        // Activated meanwhile (the tracker read its worklist before the upstream answered): not abandoned.
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

  async deleteJob(teamId: string, id: string, nowMs: number, held: ReservationOnDelete): Promise<boolean> {
    const deleted = this.db
      .transaction(() => {
        const row = this.s.jobForTeam.get(id, teamId) as Row | undefined;
        if (!row) return false;
        const job = toJob(row);
        if (job.charge === 'reserved') this.settle(job, heldOnDelete(held, job) === 'settle');
        return this.s.markDeleted.run(nowMs, id, teamId).changes === 1;
      })
      .immediate();
    if (deleted) this.changes.emit({ kind: 'job', jobId: id, deleted: true });
    return deleted;
  }

  async activeJobs(limit: number): Promise<JobRecord[]> {
    return (this.s.reserved.all(limit) as Row[]).map(toJob);
  }

  async claimDueJobs(limit: number, leaseMs: number, nowMs: number, opts: DueJobsOptions): Promise<JobRecord[]> {
    return this.queues.claimDueJobs(limit, leaseMs, nowMs, opts).map(toJob);
  }

  async scheduleChecks(items: readonly CheckSchedule[], nowMs: number): Promise<void> {
    this.queues.scheduleChecks(items, nowMs);
  }

  async dueChecks(nowMs: number): Promise<DueChecks> {
    return this.queues.dueChecks(nowMs);
  }

  async nextCheckInMs(nowMs: number): Promise<number | null> {
    return this.queues.nextCheckInMs(nowMs);
  }

  async activeJobsOfTeam(teamId: string, limit: number): Promise<JobRecord[]> {
    return (this.s.reservedOfTeam.all(teamId, limit) as Row[]).map(toJob);
  }

  async activeJobStats(): Promise<Array<{ teamId: string; jobs: number }>> {
    return this.s.activeStats.all() as Array<{ teamId: string; jobs: number }>;
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

  async rotateWebhookSecret(teamId: string, secret: string, overlapMs: number, maxPrevious: number, nowMs: number): Promise<SecretRotation> {
    return this.db
      .transaction((): SecretRotation => {
        const row = this.s.endpoint.get(teamId) as Row | undefined;
        const endpoint = row ? toEndpoint(row) : undefined;
        const signing = endpoint?.previousSecrets.filter((p) => p.expiresAtMs > nowMs) ?? [];
        if (!endpoint || signing.length >= maxPrevious) return { ok: false, endpoint };
        const previous = [{ secret: endpoint.secret, expiresAtMs: nowMs + overlapMs }, ...signing];
        this.s.rotateSecret.run(json(toStoredSecrets(previous)), secret, teamId);
        return { ok: true, endpoint: toEndpoint(this.s.endpoint.get(teamId) as Row) };
      })
      .immediate();
  }

  async claimDeliveries(limit: number, leaseMs: number, nowMs: number, shares?: DeliveryShares): Promise<ClaimedDelivery[]> {
    return this.queues.claimDeliveries(limit, leaseMs, nowMs, shares).map((r) => ({ ...toDelivery(r), leaseToken: r.leaseToken }));
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

  async claimIdempotencyKey(request: IdempotencyClaimRequest, nowMs: number): Promise<IdempotencyClaim> {
    return this.idempotency.claim(request, nowMs);
  }

  async renewIdempotencyKey(teamId: string, key: string, holder: string, leaseMs: number, nowMs: number): Promise<boolean> {
    return this.idempotency.renew(teamId, key, holder, leaseMs, nowMs);
  }

  async answerIdempotencyKey(teamId: string, key: string, holder: string, answer: IdempotentAnswer): Promise<boolean> {
    return this.idempotency.answer(teamId, key, holder, answer);
  }

  async releaseIdempotencyKey(teamId: string, key: string, holder: string): Promise<void> {
    this.idempotency.release(teamId, key, holder);
  }

  async sweepIdempotencyKeys(nowMs: number, limit: number): Promise<number> {
    return this.idempotency.sweep(nowMs, limit);
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
