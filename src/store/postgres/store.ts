import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { DueChecks, JobRecord } from '../../domain/job.js';
import type { Admission, QuotaPolicy } from '../../domain/quota-policy.js';
import { ChangeFeed } from '../changes.js';
import type {
  ApiKeyRecord,
  AttemptResult,
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
  ImportSummary,
  ListOptions,
  NewJob,
  Principal,
  SecretRotation,
  ReservationOnDelete,
  RequestCount,
  Store,
  StoreChange,
  StoreRecord,
  TaskUpdate,
  Team,
  TeamUsage,
  ModelUsage,
  BudgetAlert,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEndpointInput,
} from '../types.js';
import type { CopyLedger } from '../copies.js';
import { PgAdmission } from './admission.js';
import { PgCopies } from './copies.js';
import { PgIdempotencyKeys } from './idempotency.js';
import { PgImport } from './import-all.js';
import { PgJobs } from './jobs.js';
import { PgQueues } from './queues.js';
import { PgListener } from './listen.js';
import { migrate } from './migrations.js';
import { CHANGES_CHANNEL, classify, ignore, PgPart, type PgShared, type PostgresClock } from './part.js';
import { PgTeams } from './teams.js';
import { PgWebhooks } from './webhooks.js';

export interface PostgresStoreOptions {
  readonly url: string;
  readonly clock?: PostgresClock;
  /** Waiting for a connection (a new one, or a free one from the pool) fails after this long. */
  readonly connectTimeoutMs?: number;
  /** The server cancels any statement running longer; the client gives up shortly after, for a dead link. */
  readonly statementTimeoutMs?: number;
  readonly poolSize?: number;
  /** Hears of each move of video-seconds once the transaction that made it has committed (the metrics). */
  readonly onCharge?: ChargeListener;
}

/** The pool's settings where the options give none; config.ts takes its DATABASE_* defaults from here. */
export const POSTGRES_DEFAULTS = { connectTimeoutMs: 3_000, statementTimeoutMs: 5_000, poolSize: 10 } as const;

/** Where the database is, for messages: host, port and database name, never the credentials. */
export function safeDatabaseLabel(url: string): string {
  const u = new URL(url);
  return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
}

/** bigint columns (ms timestamps, counts) as numbers: every value the store keeps is far below 2^53. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/** The changes a notification may carry; anything else heard is a reason to drop everything. */
const CHANGE_KINDS = new Set(['key', 'team', 'job']);

/**
 * The shared store: several gateway replicas on one PostgreSQL database. Same tables and the same rules as
 * the embedded store; what SQLite gets from its single writer, this store gets from row locks.
 */
export class PostgresStore extends PgPart implements Store {
  readonly kind = 'postgres';
  private readonly admission: PgAdmission;
  private readonly jobs: PgJobs;
  private readonly teams: PgTeams;
  private readonly webhooks: PgWebhooks;
  private readonly transfer: PgImport;
  private readonly idempotency: PgIdempotencyKeys;
  readonly copies: CopyLedger;
  private readonly queues: PgQueues;
  private listener: PgListener | undefined;

  private constructor(
    shared: PgShared,
    private readonly listen: { readonly url: string; readonly timeoutMs: number },
  ) {
    super(shared);
    this.admission = new PgAdmission(shared);
    this.jobs = new PgJobs(shared);
    this.teams = new PgTeams(shared);
    this.webhooks = new PgWebhooks(shared);
    this.transfer = new PgImport(shared);
    this.idempotency = new PgIdempotencyKeys(shared);
    this.copies = new PgCopies(shared);
    this.queues = new PgQueues(shared);
  }

  /** Connects, migrates the schema to the current version, and returns the store. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresStore> {
    const statementTimeoutMs = opts.statementTimeoutMs ?? POSTGRES_DEFAULTS.statementTimeoutMs;
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? POSTGRES_DEFAULTS.poolSize,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs,
      statement_timeout: statementTimeoutMs,
      // The server's timeout answers first and leaves the connection usable; this one catches a server that
      // cannot answer at all (a dead link), and the pool then discards the connection.
      query_timeout: statementTimeoutMs + 1_000,
      // A replica that dies inside a transaction must not hold a team's lock for longer than this.
      idle_in_transaction_session_timeout: statementTimeoutMs * 2,
      keepAlive: true,
      application_name: 'grok-video-gateway',
      types,
    });
    // An idle connection that breaks (server restart) is dropped by the pool, which opens a new one on the
    // next checkout; without a listener the event would crash the process.
    pool.on('error', ignore);
    const shared: PgShared = {
      pool,
      clock: opts.clock ?? 'database',
      onCharge: opts.onCharge,
      changes: new ChangeFeed(),
      instance: randomBytes(8).toString('hex'),
    };
    const store = new PostgresStore(shared, {
      url: opts.url,
      timeoutMs: opts.connectTimeoutMs ?? POSTGRES_DEFAULTS.connectTimeoutMs,
    });
    try {
      await store.migrate();
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return store;
  }

  /** Runs the migrations again; safe at any time and from any number of replicas at once. */
  async migrate(): Promise<number> {
    const client = await this.connect();
    try {
      const version = await migrate(client);
      client.release();
      return version;
    } catch (err) {
      client.release(true);
      throw classify(err);
    }
  }

  admitRequest(principal: Principal, nowArg: number): Promise<Admission> {
    return this.admission.admitRequest(principal, nowArg);
  }

  admitJob(principal: Principal, job: NewJob, nowArg: number): Promise<Admission> {
    return this.admission.admitJob(principal, job, nowArg);
  }

  countRequests(counts: readonly RequestCount[]): Promise<void> {
    return this.admission.countRequests(counts);
  }

  activateJob(id: string, upstreamId: string, keyFp: string, task: TaskUpdate, nowArg: number, upstreamName: string, priceMicros: number | null = null): Promise<JobRecord> {
    return this.jobs.activateJob(id, upstreamId, keyFp, task, nowArg, upstreamName, priceMicros);
  }

  abandonJob(id: string, nowArg: number): Promise<void> {
    return this.jobs.abandonJob(id, nowArg);
  }

  updateJob(id: string, task: TaskUpdate, nowArg: number): Promise<JobRecord | undefined> {
    return this.jobs.updateJob(id, task, nowArg);
  }

  getJob(teamId: string, id: string): Promise<JobRecord | undefined> {
    return this.jobs.getJob(teamId, id);
  }

  listJobs(teamId: string, opts: ListOptions): Promise<{ jobs: JobRecord[]; hasMore: boolean }> {
    return this.jobs.listJobs(teamId, opts);
  }

  deleteJob(teamId: string, id: string, nowArg: number, held: ReservationOnDelete): Promise<boolean> {
    return this.jobs.deleteJob(teamId, id, nowArg, held);
  }

  activeJobs(limit: number): Promise<JobRecord[]> {
    return this.jobs.activeJobs(limit);
  }

  claimDueJobs(limit: number, leaseMs: number, nowArg: number, opts: DueJobsOptions): Promise<JobRecord[]> {
    return this.queues.claimDueJobs(limit, leaseMs, nowArg, opts);
  }

  scheduleChecks(items: readonly CheckSchedule[], nowArg: number): Promise<void> {
    return this.queues.scheduleChecks(items, nowArg);
  }

  dueChecks(nowArg: number): Promise<DueChecks> {
    return this.queues.dueChecks(nowArg);
  }

  nextCheckInMs(nowArg: number): Promise<number | null> {
    return this.queues.nextCheckInMs(nowArg);
  }

  activeJobsOfTeam(teamId: string, limit: number): Promise<JobRecord[]> {
    return this.jobs.activeJobsOfTeam(teamId, limit);
  }

  activeJobStats(): Promise<Array<{ teamId: string; jobs: number }>> {
    return this.jobs.activeJobStats();
  }

  createTeam(team: { id: string; name: string | null; quota: QuotaPolicy }, nowArg: number): Promise<CreateTeamResult> {
    return this.teams.createTeam(team, nowArg);
  }

  getTeam(id: string): Promise<Team | undefined> {
    return this.teams.getTeam(id);
  }

  listTeams(): Promise<Team[]> {
    return this.teams.listTeams();
  }

  updateTeam(id: string, patch: { name?: string | null; quota?: QuotaPolicy }): Promise<Team | undefined> {
    return this.teams.updateTeam(id, patch);
  }

  deleteTeam(id: string, nowArg: number): Promise<boolean> {
    return this.teams.deleteTeam(id, nowArg);
  }

  createKey(key: Omit<ApiKeyRecord, 'revokedAt'> & { hash: string }): Promise<ApiKeyRecord> {
    return this.teams.createKey(key);
  }

  listKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return this.teams.listKeys(teamId);
  }

  revokeKey(id: string, nowArg: number): Promise<ApiKeyRecord | undefined> {
    return this.teams.revokeKey(id, nowArg);
  }

  findKeyByHash(hash: string): Promise<{ key: ApiKeyRecord; team: Team } | undefined> {
    return this.teams.findKeyByHash(hash);
  }

  usage(teamId: string, nowArg: number, days: number): Promise<TeamUsage> {
    return this.teams.usage(teamId, nowArg, days);
  }

  usageByModel(teamId: string, nowArg: number): Promise<ModelUsage[]> {
    return this.teams.usageByModel(teamId, nowArg);
  }

  putWebhook(teamId: string, input: WebhookEndpointInput, secret: string, nowArg: number): Promise<{ endpoint: WebhookEndpoint; created: boolean }> {
    return this.webhooks.putWebhook(teamId, input, secret, nowArg);
  }

  getWebhook(teamId: string): Promise<WebhookEndpoint | undefined> {
    return this.webhooks.getWebhook(teamId);
  }

  deleteWebhook(teamId: string): Promise<boolean> {
    return this.webhooks.deleteWebhook(teamId);
  }

  rotateWebhookSecret(teamId: string, secret: string, overlapMs: number, maxPrevious: number, nowArg: number): Promise<SecretRotation> {
    return this.webhooks.rotateWebhookSecret(teamId, secret, overlapMs, maxPrevious, nowArg);
  }

  claimDeliveries(limit: number, leaseMs: number, nowArg: number, shares?: DeliveryShares): Promise<ClaimedDelivery[]> {
    return this.queues.claimDeliveries(limit, leaseMs, nowArg, shares);
  }

  recordAttempt(id: string, token: string, result: AttemptResult, nowArg: number): Promise<boolean> {
    return this.webhooks.recordAttempt(id, token, result, nowArg);
  }

  listDeliveries(teamId: string, limit: number): Promise<WebhookDelivery[]> {
    return this.webhooks.listDeliveries(teamId, limit);
  }

  replayDelivery(teamId: string, id: string, nowArg: number): Promise<WebhookDelivery | undefined> {
    return this.webhooks.replayDelivery(teamId, id, nowArg);
  }

  enqueueBudgetAlert(teamId: string, alert: BudgetAlert, nowArg: number): Promise<boolean> {
    return this.webhooks.enqueueBudgetAlert(teamId, alert, nowArg);
  }

  claimIdempotencyKey(request: IdempotencyClaimRequest, nowArg: number): Promise<IdempotencyClaim> {
    return this.idempotency.claimIdempotencyKey(request, nowArg);
  }

  renewIdempotencyKey(teamId: string, key: string, holder: string, leaseMs: number, nowArg: number): Promise<boolean> {
    return this.idempotency.renewIdempotencyKey(teamId, key, holder, leaseMs, nowArg);
  }

  answerIdempotencyKey(teamId: string, key: string, holder: string, answer: IdempotentAnswer): Promise<boolean> {
    return this.idempotency.answerIdempotencyKey(teamId, key, holder, answer);
  }

  releaseIdempotencyKey(teamId: string, key: string, holder: string): Promise<void> {
    return this.idempotency.releaseIdempotencyKey(teamId, key, holder);
  }

  sweepIdempotencyKeys(nowArg: number, limit: number): Promise<number> {
    return this.idempotency.sweepIdempotencyKeys(nowArg, limit);
  }

  importAll(records: AsyncIterable<StoreRecord>): Promise<ImportSummary> {
    return this.transfer.importAll(records);
  }

  /** A notification from the channel: another instance's change, or (unreadable) a reason to drop everything. */
  private heard(payload: string): void {
    let change: (StoreChange & { from?: unknown }) | undefined;
    try {
      change = JSON.parse(payload) as StoreChange & { from?: unknown };
    } catch {
      change = undefined;
    }
    if (change?.from === this.instance) return;
    if (!change || !CHANGE_KINDS.has(change.kind)) return this.changes.emit({ kind: 'reset' });
    const { from: _from, ...rest } = change;
    this.changes.emit(rest as StoreChange);
  }

  /** The first listener opens the LISTEN connection; from then on it stays open until `close`. */
  onChange(listener: ChangeListener): () => void {
    const unsubscribe = this.changes.subscribe(listener);
    if (!this.listener) {
      this.listener = new PgListener({
        ...this.listen,
        channel: CHANGES_CHANNEL,
        onNotification: (payload) => this.heard(payload),
        onGap: () => this.changes.emit({ kind: 'reset' }),
      });
      this.listener.start();
    }
    return unsubscribe;
  }

  async ping(): Promise<boolean> {
    try {
      await this.q(this.pool, 'SELECT 1');
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.listener?.close();
    await this.pool.end();
  }
}
