import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DEFAULTS } from '../config.js';
import { buckets, evaluateJob, evaluateRequest, rateInfo, type QuotaPolicy, type Scope, type UsageSnapshot } from '../quota/policy.js';
import { isTerminal } from '../videos/dialects/task.js';
import { eventTypeFor, newDeliveryId, newEventId } from '../webhooks/event.js';
import { ChangeFeed } from './changes.js';
import { ABANDONED, isAbandoned, isDeletedPending } from './lifecycle.js';
import { PgListener } from './postgres-listen.js';
import { migrate } from './postgres-migrations.js';
import { rowMappers, type Row } from './rows.js';
import { enqueueBudgetAlert } from './spend-postgres.js';
import { admissionMove, chargeShift, NO_COST, settledCost, toModelUsage, usageByModelSql, type FinalCost } from './spend.js';
import { microsToUsd } from '../videos/money.js';
import {
  StoreUnavailableError,
  type Admission,
  type ApiKeyRecord,
  type AttemptResult,
  type BudgetAlert,
  type Charge,
  type ClaimedDelivery,
  type ChargeListener,
  type ChangeListener,
  type CreateTeamResult,
  type HeldReservation,
  type ImportSummary,
  type JobRecord,
  type ListOptions,
  type ModelUsage,
  type MoneyMove,
  type NewJob,
  type PeriodUsage,
  type Principal,
  type RequestCount,
  type Store,
  type StoreRecord,
  type StoreChange,
  type TaskUpdate,
  type Team,
  type TeamUsage,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEndpointInput,
} from './types.js';

/**
 * Where the store's moments come from.
 * - `database` (what the gateway uses): the PostgreSQL server's clock. Replicas' clocks drift apart; if each
 *   replica stamped its own time, the same instant could fall into minute 12:00 on one and 12:01 on another,
 *   and a burst split over both would get two windows' worth. One server clock gives every replica the same
 *   minute, day and month. The `nowMs` arguments of the Store interface are then ignored.
 * - `caller`: the `nowMs` arguments, exactly as the embedded store uses them. The store contract suite
 *   runs both stores this way, because it proves calendar rules (a job charged to the day it was admitted
 *   in, a minute window) at fixed instants; everything else — locking, counting, settling — is the same
 *   code in both modes, and the PostgreSQL-only tests run in `database` mode.
 */
export type PostgresClock = 'database' | 'caller';

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

/** Now, in ms, on the server's clock. `clock_timestamp()` rather than `now()`: the latter is frozen at BEGIN. */
const DB_NOW_MS = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint';
/** `$n` is the caller's moment in `caller` mode and NULL in `database` mode. */
const nowMs = (n: number) => `coalesce($${n}::bigint, ${DB_NOW_MS})`;

/** Where the database is, for messages: host, port and database name, never the credentials. */
export function safeDatabaseLabel(url: string): string {
  const u = new URL(url);
  return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
}

const ignore = () => undefined;
type Queryable = pg.Pool | pg.PoolClient;

/** bigint columns (ms timestamps, counts) as numbers: every value the store keeps is far below 2^53. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Errors that mean "the database is not answering" as opposed to "this statement is wrong": no SQLSTATE at all
 * (refused, reset, timed out, terminated) or a class about connections, resources or the server going away.
 */
function classify(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const sqlState = err instanceof pg.DatabaseError && typeof code === 'string' ? code : undefined;
  if (sqlState && !/^(08|53|57|58)/.test(sqlState)) return err;
  return new StoreUnavailableError((err as Error)?.message ?? String(err), { cause: err });
}

/** Deadlocks and serialization failures: the transaction did nothing and may simply run again. */
const isRetryable = (err: unknown) => err instanceof pg.DatabaseError && (err.code === '40P01' || err.code === '40001');

/** jsonb and boolean columns arrive decoded. */
const { toJob, toTeam, toKey, toEndpoint, toDelivery } = rowMappers({ json: (v) => v, bool: (v) => v as boolean });

const scopeKey = (scope: Scope, id: string) => `${scope}:${id}`;
const sec = (ms: number) => Math.floor(ms / 1000);

/** The NOTIFY channel of `Store.onChange`; each payload is a StoreChange and the id of the instance that made it. */
const CHANGES_CHANNEL = 'grok_gateway_changes';
const CHANGE_KINDS = new Set(['key', 'team', 'job']);

/** Additions to one counter row: requests, seconds, and micro-dollars (`usdReserved`, `usdSettled`). */
type Bump = { scope: string; bucket: string; requests: number; reserved: number; settled: number; usdReserved: number; usdSettled: number };
/** A request admission waiting for its team's turn (`PostgresStore.admitRequest`). */
type PendingRequest = { readonly principal: Principal; readonly nowArg: number; resolve(a: Admission): void; reject(err: unknown): void };
/** A move of a job's seconds (and money) made inside a transaction, told to the ChargeListener once it commits. */
type ChargeMove = [teamId: string, charge: Charge, seconds: number, money: MoneyMove];

/**
 * How each kind of exported record lands in its table: the columns written, and the record as a JSON object
 * keyed by column name, which `jsonb_populate_recordset` turns into rows of the table's own types.
 */
const IMPORTS: { readonly [K in StoreRecord['kind']]: { table: string; columns: string; row: (r: Extract<StoreRecord, { kind: K }>) => Row } } = {
  team: {
    table: 'teams',
    columns: 'id, name, quota, created_at, deleted_at',
    row: ({ team: t, deletedAt }) => ({ id: t.id, name: t.name, quota: t.quota, created_at: t.createdAt, deleted_at: deletedAt }),
  },
  key: {
    table: 'api_keys',
    columns: 'id, team_id, name, prefix, hash, quota, created_at, expires_at, revoked_at',
    row: ({ key: k, hash }) => ({
      id: k.id, team_id: k.teamId, name: k.name, prefix: k.prefix, hash, quota: k.quota,
      created_at: k.createdAt, expires_at: k.expiresAt, revoked_at: k.revokedAt,
    }),
  },
  job: {
    table: 'jobs',
    columns:
      'id, team_id, key_id, upstream_id, upstream_key_fp, upstream_name, media_url, source_video_id, derivation, model, prompt, seconds, resolution, aspect_ratio, ' +
      'status, progress, error, created_at, completed_at, updated_at_ms, charge, charge_day, charge_month, deleted_at, ' +
      'cost_estimate_micros, cost_price_micros, cost_micros, cost_source',
    row: ({ job: j, deletedAt }) => ({
      id: j.id, team_id: j.teamId, key_id: j.keyId, upstream_id: j.upstreamId, upstream_key_fp: j.upstreamKeyFp,
      upstream_name: j.upstreamName, media_url: j.mediaUrl, source_video_id: j.sourceVideoId, derivation: j.derivation, model: j.model,
      prompt: j.prompt, seconds: j.seconds, resolution: j.resolution, aspect_ratio: j.aspectRatio, status: j.status,
      progress: j.progress, error: j.error, created_at: j.createdAt, completed_at: j.completedAt, updated_at_ms: j.updatedAtMs,
      charge: j.charge, charge_day: j.chargeDay, charge_month: j.chargeMonth, deleted_at: deletedAt,
      cost_estimate_micros: j.estimateMicros, cost_price_micros: j.priceMicros, cost_micros: j.costMicros, cost_source: j.costSource,
    }),
  },
  counter: {
    table: 'counters',
    columns: 'scope, bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros',
    row: ({ counter: c }) => ({
      scope: c.scope, bucket: c.bucket, requests: c.requests, seconds_reserved: c.secondsReserved, seconds_settled: c.secondsSettled,
      usd_reserved_micros: c.usdReservedMicros, usd_settled_micros: c.usdSettledMicros,
    }),
  },
  webhook_endpoint: {
    table: 'webhook_endpoints',
    columns: 'team_id, url, events, enabled, secret, previous_secret, previous_secret_expires_at_ms, created_at',
    row: ({ endpoint: e }) => ({
      team_id: e.teamId, url: e.url, events: e.events, enabled: e.enabled, secret: e.secret, previous_secret: e.previousSecret,
      previous_secret_expires_at_ms: e.previousSecretExpiresAtMs, created_at: e.createdAt,
    }),
  },
  // lease_until_ms and lease_token are left out, so null: no worker holds a claim on a row just copied.
  webhook_delivery: {
    table: 'webhook_deliveries',
    columns:
      'id, event_id, team_id, video_id, type, created_at, status, attempts, last_status, last_error, last_latency_ms, ' +
      'last_attempt_at_ms, next_attempt_at_ms, delivered_at_ms, data',
    row: ({ delivery: d }) => ({
      id: d.id, event_id: d.eventId, team_id: d.teamId, video_id: d.videoId, type: d.type, created_at: d.createdAt, status: d.status,
      attempts: d.attempts, last_status: d.lastStatus, last_error: d.lastError, last_latency_ms: d.lastLatencyMs,
      last_attempt_at_ms: d.lastAttemptAtMs, next_attempt_at_ms: d.nextAttemptAtMs, delivered_at_ms: d.deliveredAtMs, data: d.data,
    }),
  },
};
const IMPORT_BATCH = 500;

/**
 * The shared store: several gateway replicas on one PostgreSQL database. Same tables and the same rules as
 * the embedded store; what SQLite gets from its single writer, this store gets from row locks.
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  /** Names this instance in its notifications (it has told its own listeners already) and in its claims. */
  private readonly instance = randomBytes(8).toString('hex');
  private readonly changes = new ChangeFeed();
  private listener: PgListener | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly clock: PostgresClock,
    private readonly onCharge: ChargeListener | undefined,
    private readonly listen: { readonly url: string; readonly timeoutMs: number },
  ) {}

  /** Connects, migrates the schema to the current version, and returns the store. */
  static async open(opts: PostgresStoreOptions): Promise<PostgresStore> {
    const statementTimeoutMs = opts.statementTimeoutMs ?? DEFAULTS.databaseStatementTimeoutMs;
    const pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? DEFAULTS.databasePoolSize,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? DEFAULTS.databaseConnectTimeoutMs,
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
    const store = new PostgresStore(pool, opts.clock ?? 'database', opts.onCharge, {
      url: opts.url,
      timeoutMs: opts.connectTimeoutMs ?? DEFAULTS.databaseConnectTimeoutMs,
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

  private async connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw classify(err);
    }
    // The pool listens for errors only on idle clients. A connection lost while checked out also fails the
    // statement in flight (or the next one), which is where it is handled; unheard, the event would crash us.
    if (!client.listeners('error').includes(ignore)) client.on('error', ignore);
    return client;
  }

  private async q(c: Queryable, text: string, values?: unknown[]): Promise<Row[]> {
    try {
      return (await c.query<Row>(text, values)).rows;
    } catch (err) {
      throw classify(err);
    }
  }

  /**
   * One READ COMMITTED transaction. Each statement sees everything committed before it began, which is what
   * the admission relies on: it reads the counters in a statement that starts only after its locks are held.
   */
  private async tx<T>(fn: (c: pg.PoolClient, moves: ChargeMove[], told: StoreChange[]) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.connect();
      const moves: ChargeMove[] = [];
      const told: StoreChange[] = [];
      try {
        await this.q(c, 'BEGIN');
        const out = await fn(c, moves, told);
        // A COMMIT whose answer is lost leaves the outcome unknown and surfaces as store_unavailable. For an
        // admission that errs on the safe side: a job counted but never created upstream has no upstream id,
        // and the reconciler refunds such jobs after its grace period.
        await this.q(c, 'COMMIT');
        c.release();
        // Told only once committed: a transaction rolled back (or run again) moved nothing.
        for (const [teamId, charge, seconds, money] of moves) this.onCharge?.(teamId, charge, seconds, money);
        for (const change of told) this.changes.emit(change);
        return out;
      } catch (err) {
        if (await this.discard(c, err, attempt)) continue;
        throw err;
      }
    }
  }

  /**
   * Ends a transaction that failed with `err` and gives its connection back; true if it may simply run again.
   * A connection that failed as unavailable is dropped (its session, and any transaction, die with it).
   */
  private async discard(c: pg.PoolClient, err: unknown, attempt: number): Promise<boolean> {
    if (err instanceof StoreUnavailableError) {
      c.release(true);
      return false;
    }
    await c.query('ROLLBACK').then(
      () => c.release(),
      () => c.release(true),
    );
    return isRetryable(err) && attempt < 3;
  }

  /**
   * Tells every replica of a change, as part of the transaction that makes it: PostgreSQL delivers the
   * notification when (and only if) the transaction commits. This instance's own listeners hear it from
   * `tx` after the commit, without waiting for the round trip.
   */
  private async notify(c: pg.PoolClient, told: StoreChange[], change: StoreChange): Promise<void> {
    await this.q(c, 'SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, JSON.stringify({ ...change, from: this.instance })]);
    told.push(change);
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

  /** The caller's moment in `caller` mode; NULL, which the SQL turns into the server's clock, otherwise. */
  private at(nowMs: number): number | null {
    return this.clock === 'caller' ? nowMs : null;
  }

  /**
   * Adds to counters in one statement. Rows are merged per (scope, bucket) — ON CONFLICT may touch a row only
   * once per statement — and sorted, so that any two transactions lock counter rows in the same order.
   * Returns each row's request count after the addition.
   */
  private async bump(c: Queryable, rows: readonly Bump[]): Promise<Row[]> {
    const merged = new Map<string, Bump>();
    for (const r of rows) {
      const id = `${r.scope}\0${r.bucket}`;
      const m = merged.get(id);
      if (m) {
        merged.set(id, {
          ...m,
          requests: m.requests + r.requests,
          reserved: m.reserved + r.reserved,
          settled: m.settled + r.settled,
          usdReserved: m.usdReserved + r.usdReserved,
          usdSettled: m.usdSettled + r.usdSettled,
        });
      }
      else merged.set(id, r);
    }
    const sorted = [...merged.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
    if (sorted.length === 0) return [];
    return this.q(
      c,
      `INSERT INTO counters AS c (scope, bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[])
       ON CONFLICT (scope, bucket) DO UPDATE SET requests = c.requests + excluded.requests,
         seconds_reserved = c.seconds_reserved + excluded.seconds_reserved, seconds_settled = c.seconds_settled + excluded.seconds_settled,
         usd_reserved_micros = c.usd_reserved_micros + excluded.usd_reserved_micros, usd_settled_micros = c.usd_settled_micros + excluded.usd_settled_micros
       RETURNING c.scope, c.bucket, c.requests`,
      [
        sorted.map((r) => r.scope),
        sorted.map((r) => r.bucket),
        sorted.map((r) => r.requests),
        sorted.map((r) => r.reserved),
        sorted.map((r) => r.settled),
        sorted.map((r) => r.usdReserved),
        sorted.map((r) => r.usdSettled),
      ],
    );
  }

  /** Counts requests (and reserves seconds and micro-dollars) in the minute, day and month buckets of both scopes. */
  private requestBumps(teamId: string, keyId: string, atMs: number, requests: number, seconds: number, micros = 0): Bump[] {
    const b = buckets(atMs);
    return [scopeKey('team', teamId), scopeKey('key', keyId)].flatMap((scope) => [
      ...(requests ? [{ scope, bucket: `min:${b.minute}`, requests, reserved: 0, settled: 0, usdReserved: 0, usdSettled: 0 }] : []),
      { scope, bucket: `day:${b.day}`, requests, reserved: seconds, settled: 0, usdReserved: micros, usdSettled: 0 },
      { scope, bucket: `month:${b.month}`, requests, reserved: seconds, settled: 0, usdReserved: micros, usdSettled: 0 },
    ]);
  }

  /**
   * Moves seconds between reserved and settled (or out, for a refund) in the buckets the job was charged to,
   * and its money with them: the estimate in or out of reserved, `cost` into settled.
   */
  private async shift(c: Queryable, moves: ChargeMove[], job: JobRecord, reserved: number, settled: number, cost?: FinalCost): Promise<void> {
    const m = chargeShift(job, reserved, settled, cost);
    moves.push([job.teamId, m.charge, m.seconds, m.money]);
    const add = { requests: 0, reserved, settled, usdReserved: m.reservedMicros, usdSettled: m.settledMicros };
    await this.bump(
      c,
      [scopeKey('team', job.teamId), scopeKey('key', job.keyId)].flatMap((scope) => [
        { scope, bucket: `day:${job.chargeDay}`, ...add },
        { scope, bucket: `month:${job.chargeMonth}`, ...add },
      ]),
    );
  }

  /** Per team, the request admissions waiting for the transaction in flight for that team (`admitRequest`). */
  private readonly admitting = new Map<string, PendingRequest[]>();

  /**
   * The admission of a request to a key with a per-minute limit: every such request, so the hot path. A
   * replica runs a team's admissions in turns, one transaction each turn for all that arrived while the
   * previous one ran (one alone when they do not overlap; they would wait on the same row lock anyway).
   * Three round trips per turn, and the counter rows locked for the last one only:
   * 1. `BEGIN` and the database's clock, sent as one query without parameters, which node-postgres sends in
   *    the simple protocol: both statements in one round trip. No lock is taken.
   * 2. One statement counts every request of the turn in the minute, day and month counters of its key and
   *    of the team, unconditionally, and returns the counts (`bump`: rows merged, in its sorted order, the
   *    same for every writer of counters, so no two can wait on each other in a cycle).
   * 3. The shared rule judges the requests one after the other, in arrival order, each on the counts as they
   *    were before the turn (returned minus the turn's own) plus the requests admitted before it. Admitted
   *    ones stay counted; refused ones are taken out again (one more statement, under the same locks), or,
   *    when all are refused, the transaction rolls back: a refused request is counted nowhere, in no scope,
   *    exactly as in the embedded store. Then COMMIT.
   * Why this is exact across replicas: INSERT … ON CONFLICT DO UPDATE locks each counter row it writes until
   * the transaction ends, and when it had to wait for that lock, it updates (and returns) the row as the
   * holder committed it (READ COMMITTED re-reads the locked row's latest version for the update, whatever
   * the statement's snapshot), or as it was if the holder rolled back. Every turn for a team, on any
   * replica, writes the team's minute row, so the turns form one serial order on that row lock, each judging
   * the counts all earlier turns committed; within a turn the requests are judged serially too. So no limit
   * admits more than it allows, and a refused count, taken out before the locks are released, is never seen
   * by anyone. The counts and the admissions commit together or not at all, so each admitted request is
   * counted exactly once (a COMMIT whose answer is lost surfaces as store_unavailable, as in `tx`).
   * The minute boundary: the clock is read before the lock is waited for, so a turn that waits across the
   * boundary counts in the minute it read. Each minute's row still holds exactly the admissions stamped in
   * that minute, at most the limit; only their commits can trail into the next minute by the lock wait
   * (bounded by the statement timeout), which a fixed window cannot tell from requests that came earlier.
   * No `quota_scopes` lock: the counter rows are the locks here, and they are held for one round trip
   * (two with a partial refusal), where `admitJob` holds its locks for four.
   */
  admitRequest(principal: Principal, nowArg: number): Promise<Admission> {
    return new Promise((resolve, reject) => {
      const pending = { principal, nowArg, resolve, reject };
      const waiting = this.admitting.get(principal.teamId);
      if (waiting) waiting.push(pending);
      else void this.admitInTurns(principal.teamId, [pending]);
    });
  }

  /** Runs a team's turns one after the other, each with all the admissions that arrived meanwhile. */
  private async admitInTurns(teamId: string, turn: PendingRequest[]): Promise<void> {
    while (turn.length > 0) {
      this.admitting.set(teamId, []);
      try {
        const out = await this.admitTurn(turn);
        turn.forEach((p, i) => p.resolve(out[i]!));
      } catch (err) {
        for (const p of turn) p.reject(err);
      }
      turn = this.admitting.get(teamId)!;
    }
    this.admitting.delete(teamId);
  }

  private async admitTurn(turn: readonly PendingRequest[]): Promise<Admission[]> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.connect();
      try {
        const [, clock] = await this.simple(c, `BEGIN; SELECT ${DB_NOW_MS} AS now_ms`);
        const at = (p: PendingRequest) => (this.clock === 'caller' ? p.nowArg : (clock!.rows[0]!.now_ms as number));
        const bumps = turn.flatMap((p) => this.requestBumps(p.principal.teamId, p.principal.keyId, at(p), 1, 0));
        const counts = new Map((await this.bump(c, bumps)).map((r) => [`${r.scope}\0${r.bucket}`, r.requests as number]));
        for (const b of bumps) counts.set(`${b.scope}\0${b.bucket}`, counts.get(`${b.scope}\0${b.bucket}`)! - b.requests);
        const refused: Bump[] = [];
        const out = turn.map((pending): Admission => {
          const p = pending.principal;
          const now = at(pending);
          const minute = `min:${buckets(now).minute}`;
          const rows = { key: `${scopeKey('key', p.keyId)}\0${minute}`, team: `${scopeKey('team', p.teamId)}\0${minute}` };
          const usage = (row: string): UsageSnapshot => ({ requestsThisMinute: counts.get(row)!, activeJobs: 0, daySeconds: 0, monthSeconds: 0, dayMicros: 0, monthMicros: 0 });
          const scopes = [
            { scope: 'key' as const, policy: p.keyPolicy, usage: usage(rows.key) },
            { scope: 'team' as const, policy: p.teamPolicy, usage: usage(rows.team) },
          ];
          const refusal = evaluateRequest(scopes, now);
          if (refusal) {
            refused.push(...this.requestBumps(p.teamId, p.keyId, now, -1, 0));
            return { ok: false, refusal };
          }
          for (const row of [rows.key, rows.team]) counts.set(row, counts.get(row)! + 1);
          return { ok: true, rate: rateInfo(scopes, now) };
        });
        const admitted = out.some((a) => a.ok);
        if (admitted && refused.length > 0) await this.bump(c, refused);
        await this.q(c, admitted ? 'COMMIT' : 'ROLLBACK');
        c.release();
        return out;
      } catch (err) {
        if (await this.discard(c, err, attempt)) continue;
        throw err;
      }
    }
  }

  /** Several statements in one round trip (the simple protocol: no parameters); one result each. */
  private async simple(c: pg.PoolClient, text: string): Promise<pg.QueryResult<Row>[]> {
    try {
      return (await c.query<Row>(text)) as unknown as pg.QueryResult<Row>[];
    } catch (err) {
      throw classify(err);
    }
  }

  /**
   * One admission of a job, one transaction:
   * 1. Lock the team's row, then the key's, in `quota_scopes` (always in that order, so two admissions can
   *    never wait on each other in a cycle). The rows are created by the same statement on first use: static
   *    keys, and principals whose team row is gone, have no `teams`/`api_keys` row to lock, yet must be
   *    counted like any other. The statement also reads the clock, after both locks are held.
   * 2. Read the counters and the active jobs of both scopes — a new statement, so it sees every admission
   *    committed before this one got its locks.
   * 3. Evaluate the shared rule, then reserve the seconds and record the job, and commit, which releases the
   *    locks.
   * Every replica admitting a job for this team queues on the same row lock and reads what the previous
   * holder committed, on one clock: the job admissions of a team are a single serial sequence however many
   * replicas there are, so no limit admits more than it allows and each admission is counted exactly once.
   * Seconds and slots freed concurrently by a settle or refund (which do not take these locks) can only make
   * the counts read here too high for an instant, never too low. The active jobs have no row to lock, hence
   * `quota_scopes` rather than the counter rows `admitRequest` locks; it also keeps the per-request
   * admissions of the team from waiting behind this transaction's reads (the counter rows are locked here
   * only from the reservation to the commit).
   */
  admitJob(principal: Principal, job: NewJob, nowArg: number): Promise<Admission> {
    return this.tx(async (c, moves) => {
      const team = scopeKey('team', principal.teamId);
      const key = scopeKey('key', principal.keyId);
      const locked = await this.q(
        c,
        `INSERT INTO quota_scopes AS s (scope) VALUES ($1), ($2)
         ON CONFLICT (scope) DO UPDATE SET scope = excluded.scope
         RETURNING ${nowMs(3)} AS now_ms`,
        [team, key, this.at(nowArg)],
      );
      const now = Math.max(...locked.map((r) => r.now_ms as number));
      const b = buckets(now);
      // The day, the month and the slots (the job's request was counted on arrival).
      const [read] = await this.q(
        c,
        `SELECT
           (SELECT coalesce(json_agg(json_build_array(scope, bucket, seconds_reserved + seconds_settled, usd_reserved_micros + usd_settled_micros)), '[]')
              FROM counters WHERE scope IN ($1, $2) AND bucket IN ($3, $4)) AS counters,
           (SELECT count(*) FROM jobs WHERE team_id = $5 AND charge = 'reserved') AS team_active,
           (SELECT count(*) FROM jobs WHERE key_id = $6 AND charge = 'reserved') AS key_active`,
        [team, key, `day:${b.day}`, `month:${b.month}`, principal.teamId, principal.keyId],
      );
      const used = new Map((read!.counters as Array<[string, string, number, number]>).map(([s, bk, secs, micros]) => [`${s}\0${bk}`, { secs, micros }]));
      const snapshot = (scope: string, activeJobs: number): UsageSnapshot => ({
        requestsThisMinute: 0,
        activeJobs,
        daySeconds: used.get(`${scope}\0day:${b.day}`)?.secs ?? 0,
        monthSeconds: used.get(`${scope}\0month:${b.month}`)?.secs ?? 0,
        dayMicros: used.get(`${scope}\0day:${b.day}`)?.micros ?? 0,
        monthMicros: used.get(`${scope}\0month:${b.month}`)?.micros ?? 0,
      });
      const scopes = [
        { scope: 'key' as const, policy: principal.keyPolicy, usage: snapshot(key, read!.key_active as number) },
        { scope: 'team' as const, policy: principal.teamPolicy, usage: snapshot(team, read!.team_active as number) },
      ];
      const refusal = evaluateJob(scopes, job);
      if (refusal) return { ok: false, refusal };
      await this.bump(c, this.requestBumps(principal.teamId, principal.keyId, now, 0, job.seconds, job.estimateMicros ?? 0));
      await this.q(
        c,
        `INSERT INTO jobs (id, team_id, key_id, model, prompt, seconds, resolution, aspect_ratio, status, progress,
           created_at, updated_at_ms, charge, charge_day, charge_month, source_video_id, derivation, cost_estimate_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', 0, $9, $10, 'reserved', $11, $12, $13, $14, $15)`,
        [
          job.id, job.teamId, job.keyId, job.model, job.prompt, job.seconds, job.resolution, job.aspectRatio, sec(now), now, b.day, b.month,
          job.sourceVideoId ?? null, job.derivation ?? null, job.estimateMicros ?? null,
        ],
      );
      moves.push([job.teamId, 'reserved', job.seconds, admissionMove(job)]);
      return { ok: true, rate: null };
    });
  }

  /** These counts carry the moment they were made (on the replica that made them); no limit depends on them. */
  async countRequests(counts: readonly RequestCount[]): Promise<void> {
    if (counts.length === 0) return;
    await this.bump(this.pool, counts.flatMap((x) => this.requestBumps(x.teamId, x.keyId, x.atMs, x.count, 0)));
  }

  /**
   * Writes a status under the job's row lock; a terminal one settles or refunds. Concurrent updates of one
   * job queue on that lock and the later ones find the job already terminal, so the reservation moves once.
   */
  private async apply(c: pg.PoolClient, moves: ChargeMove[], job: JobRecord, task: TaskUpdate, nowArg: number): Promise<JobRecord> {
    const terminal = isTerminal(task.status);
    const charge = terminal && job.charge === 'reserved' ? (task.status === 'completed' ? 'settled' : 'refunded') : job.charge;
    const cost: FinalCost | undefined = charge === job.charge ? undefined : charge === 'settled' ? settledCost(job, task.costMicros) : NO_COST;
    const [row] = await this.q(
      c,
      `UPDATE jobs SET status = $2, progress = $3, error = $4::jsonb, completed_at = CASE WHEN $5::boolean THEN ${nowMs(6)} / 1000 END,
         updated_at_ms = ${nowMs(6)}, charge = $7, media_url = COALESCE($8, media_url),
         cost_micros = CASE WHEN $9::boolean THEN $10 ELSE cost_micros END, cost_source = CASE WHEN $9::boolean THEN $11 ELSE cost_source END
       WHERE id = $1 RETURNING *`,
      [
        job.id, task.status, task.progress, task.error ? JSON.stringify(task.error) : null, terminal, this.at(nowArg), charge, task.mediaUrl ?? null,
        cost !== undefined, cost?.costMicros ?? null, cost?.costSource ?? null,
      ],
    );
    if (cost) await this.shift(c, moves, job, -job.seconds, charge === 'settled' ? job.seconds : 0, cost);
    const type = eventTypeFor(task.status);
    // In the transaction that makes the job terminal, once per job (callers hold its row lock and skip terminal
    // jobs; the unique video id backs that up). Not for a video its team deleted: it can no longer see it.
    if (type && row!.deleted_at === null) {
      await this.q(
        c,
        `INSERT INTO webhook_deliveries (id, event_id, team_id, video_id, type, created_at, status, next_attempt_at_ms)
         SELECT $1, $2, team_id, $3, $4, ${nowMs(6)} / 1000, 'pending', ${nowMs(6)} FROM webhook_endpoints
         WHERE team_id = $5 AND enabled AND events ? $4
         ON CONFLICT (video_id) DO NOTHING`,
        [newDeliveryId(), newEventId(), job.id, type, job.teamId, this.at(nowArg)],
      );
    }
    return toJob(row!);
  }

  private async lockJob(c: pg.PoolClient, id: string): Promise<JobRecord | undefined> {
    const [row] = await this.q(c, 'SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [id]);
    return row ? toJob(row) : undefined;
  }

  activateJob(id: string, upstreamId: string, keyFp: string, task: TaskUpdate, nowArg: number, upstreamName: string, priceMicros: number | null = null): Promise<JobRecord> {
    return this.tx(async (c, moves) => {
      const locked = await this.lockJob(c, id);
      if (!locked) throw new Error(`job ${id} is not in the store`);
      const job = { ...locked, priceMicros };
      const revive = isAbandoned(job);
      let charge = job.charge;
      let cost: FinalCost | null = revive ? { costMicros: null, costSource: null } : null;
      if (revive) {
        // The upstream has the job after all: the team gets it and is charged for it, past a limit if need be,
        // in the buckets it was first admitted to.
        charge = 'reserved';
        await this.shift(c, moves, job, job.seconds, 0);
      } else if (isDeletedPending(job)) {
        // The team deleted it before the upstream answered; the upstream runs and bills it all the same, so it
        // is charged as a finished job would be, and stays deleted.
        charge = 'settled';
        cost = settledCost(job, undefined);
        await this.shift(c, moves, job, 0, job.seconds, cost);
      }
      await this.q(
        c,
        `UPDATE jobs SET upstream_id = $2, upstream_key_fp = $3, upstream_name = $5, cost_price_micros = $6,
           deleted_at = CASE WHEN $4::boolean THEN NULL ELSE deleted_at END,
           cost_micros = CASE WHEN $7::boolean THEN $8 ELSE cost_micros END, cost_source = CASE WHEN $7::boolean THEN $9 ELSE cost_source END
         WHERE id = $1`,
        [id, upstreamId, keyFp, revive, upstreamName, priceMicros, cost !== null, cost?.costMicros ?? null, cost?.costSource ?? null],
      );
      // As in the embedded store: activation starts the job over as queued, then records the upstream's status.
      return this.apply(c, moves, { ...job, upstreamName, status: 'queued', charge, ...(cost ?? {}) }, task, nowArg);
    });
  }

  async abandonJob(id: string, nowArg: number): Promise<void> {
    await this.tx(async (c, moves, told) => {
      const job = await this.lockJob(c, id);
      // Activated meanwhile (the reconciler read its worklist before the upstream answered): not abandoned.
      if (!job || job.upstreamId !== null || job.charge !== 'reserved') return;
      await this.q(
        c,
        `UPDATE jobs SET charge = 'refunded', status = 'failed', error = $2::jsonb, deleted_at = ${nowMs(3)}, updated_at_ms = ${nowMs(3)},
           cost_micros = 0, cost_source = NULL WHERE id = $1`,
        [id, JSON.stringify(ABANDONED), this.at(nowArg)],
      );
      await this.shift(c, moves, job, -job.seconds, 0);
      await this.notify(c, told, { kind: 'job', jobId: id, deleted: false });
    });
  }

  updateJob(id: string, task: TaskUpdate, nowArg: number): Promise<JobRecord | undefined> {
    return this.tx(async (c, moves) => {
      const job = await this.lockJob(c, id);
      if (!job || isTerminal(job.status)) return job;
      return this.apply(c, moves, job, task, nowArg);
    });
  }

  async getJob(teamId: string, id: string): Promise<JobRecord | undefined> {
    const [row] = await this.q(this.pool, 'SELECT * FROM jobs WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL', [id, teamId]);
    return row ? toJob(row) : undefined;
  }

  async listJobs(teamId: string, opts: ListOptions): Promise<{ jobs: JobRecord[]; hasMore: boolean }> {
    let cursor = opts.order === 'desc' ? Number.MAX_SAFE_INTEGER : 0;
    if (opts.after) {
      const [row] = await this.q(this.pool, 'SELECT seq FROM jobs WHERE id = $1 AND team_id = $2', [opts.after, teamId]);
      if (!row) return { jobs: [], hasMore: false };
      cursor = row.seq as number;
    }
    const rows = await this.q(
      this.pool,
      opts.order === 'desc'
        ? 'SELECT * FROM jobs WHERE team_id = $1 AND deleted_at IS NULL AND seq < $2 ORDER BY seq DESC LIMIT $3'
        : 'SELECT * FROM jobs WHERE team_id = $1 AND deleted_at IS NULL AND seq > $2 ORDER BY seq ASC LIMIT $3',
      [teamId, cursor, opts.limit + 1],
    );
    return { jobs: rows.slice(0, opts.limit).map(toJob), hasMore: rows.length > opts.limit };
  }

  async touchJob(id: string, nowArg: number): Promise<void> {
    await this.q(this.pool, `UPDATE jobs SET updated_at_ms = ${nowMs(2)} WHERE id = $1`, [id, this.at(nowArg)]);
  }

  deleteJob(teamId: string, id: string, nowArg: number, held: HeldReservation): Promise<boolean> {
    return this.tx(async (c, moves, told) => {
      const [row] = await this.q(c, 'SELECT * FROM jobs WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE', [id, teamId]);
      if (!row) return false;
      const job = toJob(row);
      const charge = job.charge !== 'reserved' ? job.charge : held === 'settle' ? 'settled' : 'refunded';
      const cost = charge === job.charge ? undefined : charge === 'settled' ? settledCost(job, undefined) : NO_COST;
      await this.q(
        c,
        `UPDATE jobs SET deleted_at = ${nowMs(2)}, charge = $3,
           cost_micros = CASE WHEN $4::boolean THEN $5 ELSE cost_micros END, cost_source = CASE WHEN $4::boolean THEN $6 ELSE cost_source END
         WHERE id = $1`,
        [id, this.at(nowArg), charge, cost !== undefined, cost?.costMicros ?? null, cost?.costSource ?? null],
      );
      if (cost) await this.shift(c, moves, job, -job.seconds, charge === 'settled' ? job.seconds : 0, cost);
      await this.notify(c, told, { kind: 'job', jobId: id, deleted: true });
      return true;
    });
  }

  async activeJobs(limit: number): Promise<JobRecord[]> {
    return (await this.q(this.pool, "SELECT * FROM jobs WHERE charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT $1", [limit])).map(toJob);
  }

  /**
   * One statement: pick the free jobs and mark them held. SKIP LOCKED passes over rows another replica is
   * claiming at this instant; a row it claimed and committed meanwhile is re-checked against the newest
   * version (READ COMMITTED), finds itself held, and is left out. So two claims never share a job.
   */
  async claimActiveJobs(limit: number, leaseMs: number, nowArg: number): Promise<JobRecord[]> {
    const rows = await this.q(
      this.pool,
      `UPDATE jobs j SET claimed_by = $3, claimed_until = ${nowMs(4)} + $2::bigint
       FROM (SELECT seq FROM jobs WHERE charge = 'reserved' AND (claimed_until IS NULL OR claimed_until <= ${nowMs(4)})
             ORDER BY updated_at_ms ASC LIMIT $1 FOR UPDATE SKIP LOCKED) free
       WHERE j.seq = free.seq RETURNING j.*`,
      [limit, leaseMs, this.instance, this.at(nowArg)],
    );
    return rows.map(toJob).sort((a, b) => a.updatedAtMs - b.updatedAtMs);
  }

  async releaseJobs(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    // Only this instance's claims: one whose lease ran out may have been claimed by another replica since.
    await this.q(this.pool, 'UPDATE jobs SET claimed_by = NULL, claimed_until = NULL WHERE id = ANY($1::text[]) AND claimed_by = $2', [
      ids,
      this.instance,
    ]);
  }

  async activeJobsOfTeam(teamId: string, limit: number): Promise<JobRecord[]> {
    const rows = await this.q(this.pool, "SELECT * FROM jobs WHERE team_id = $1 AND charge = 'reserved' ORDER BY updated_at_ms ASC LIMIT $2", [teamId, limit]);
    return rows.map(toJob);
  }

  async activeJobStats(): Promise<Array<{ teamId: string; jobs: number; oldestRefreshMs: number }>> {
    const rows = await this.q(
      this.pool,
      `SELECT team_id AS "teamId", count(*) AS jobs, min(updated_at_ms) AS "oldestRefreshMs" FROM jobs WHERE charge = 'reserved' GROUP BY team_id`,
    );
    return rows as Array<{ teamId: string; jobs: number; oldestRefreshMs: number }>;
  }

  async createTeam(team: { id: string; name: string | null; quota: QuotaPolicy }, nowArg: number): Promise<CreateTeamResult> {
    const [row] = await this.q(
      this.pool,
      `INSERT INTO teams (id, name, quota, created_at) VALUES ($1, $2, $3::jsonb, ${nowMs(4)} / 1000) ON CONFLICT (id) DO NOTHING RETURNING *`,
      [team.id, team.name, JSON.stringify(team.quota), this.at(nowArg)],
    );
    if (row) return { ok: true, team: toTeam(row) };
    // Team rows are never removed (a delete tombstones them), so the row that refused this insert is still there.
    const [existing] = await this.q(this.pool, 'SELECT deleted_at FROM teams WHERE id = $1', [team.id]);
    return { ok: false, reason: existing?.deleted_at == null ? 'exists' : 'deleted' };
  }

  async getTeam(id: string): Promise<Team | undefined> {
    const [row] = await this.q(this.pool, 'SELECT * FROM teams WHERE id = $1 AND deleted_at IS NULL', [id]);
    return row ? toTeam(row) : undefined;
  }

  async listTeams(): Promise<Team[]> {
    return (await this.q(this.pool, 'SELECT * FROM teams WHERE deleted_at IS NULL ORDER BY created_at, id')).map(toTeam);
  }

  updateTeam(id: string, patch: { name?: string | null; quota?: QuotaPolicy }): Promise<Team | undefined> {
    return this.tx(async (c, _moves, told) => {
      const [row] = await this.q(
        c,
        `UPDATE teams SET name = CASE WHEN $2::boolean THEN $3 ELSE name END, quota = coalesce($4::jsonb, quota)
         WHERE id = $1 AND deleted_at IS NULL RETURNING *`,
        [id, patch.name !== undefined, patch.name ?? null, patch.quota ? JSON.stringify(patch.quota) : null],
      );
      if (!row) return undefined;
      await this.notify(c, told, { kind: 'team', teamId: id });
      return toTeam(row);
    });
  }

  deleteTeam(id: string, nowArg: number): Promise<boolean> {
    return this.tx(async (c, _moves, told) => {
      await this.q(c, `UPDATE api_keys SET revoked_at = ${nowMs(2)} / 1000 WHERE team_id = $1 AND revoked_at IS NULL`, [id, this.at(nowArg)]);
      const tombstoned = await this.q(c, `UPDATE teams SET deleted_at = ${nowMs(2)} / 1000 WHERE id = $1 AND deleted_at IS NULL RETURNING id`, [
        id,
        this.at(nowArg),
      ]);
      if (tombstoned.length !== 1) return false;
      await this.q(c, 'DELETE FROM webhook_endpoints WHERE team_id = $1', [id]);
      await this.notify(c, told, { kind: 'team', teamId: id });
      return true;
    });
  }

  async createKey(key: Omit<ApiKeyRecord, 'revokedAt'> & { hash: string }): Promise<ApiKeyRecord> {
    const [row] = await this.q(
      this.pool,
      `INSERT INTO api_keys (id, team_id, name, prefix, hash, quota, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) RETURNING *`,
      [key.id, key.teamId, key.name, key.prefix, key.hash, JSON.stringify(key.quota), key.createdAt, key.expiresAt],
    );
    return toKey(row!);
  }

  async listKeys(teamId: string): Promise<ApiKeyRecord[]> {
    return (await this.q(this.pool, 'SELECT * FROM api_keys WHERE team_id = $1 ORDER BY created_at, id', [teamId])).map(toKey);
  }

  revokeKey(id: string, nowArg: number): Promise<ApiKeyRecord | undefined> {
    return this.tx(async (c, _moves, told) => {
      const [row] = await this.q(c, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, ${nowMs(2)} / 1000) WHERE id = $1 RETURNING *`, [
        id,
        this.at(nowArg),
      ]);
      if (!row) return undefined;
      await this.notify(c, told, { kind: 'key', keyId: id });
      return toKey(row);
    });
  }

  async findKeyByHash(hash: string): Promise<{ key: ApiKeyRecord; team: Team } | undefined> {
    const [row] = await this.q(
      this.pool,
      `SELECT k.*, t.id AS t_id, t.name AS t_name, t.quota AS t_quota, t.created_at AS t_created_at
       FROM api_keys k JOIN teams t ON t.id = k.team_id AND t.deleted_at IS NULL WHERE k.hash = $1`,
      [hash],
    );
    if (!row) return undefined;
    return { key: toKey(row), team: toTeam({ id: row.t_id, name: row.t_name, quota: row.t_quota, created_at: row.t_created_at }) };
  }

  async usage(teamId: string, nowArg: number, days: number): Promise<TeamUsage> {
    const [clock] = await this.q(this.pool, `SELECT ${nowMs(1)} AS now_ms`, [this.at(nowArg)]);
    const now = clock!.now_ms as number;
    const b = buckets(now);
    const sk = scopeKey('team', teamId);
    const since = new Date(now - (days - 1) * 86_400_000).toISOString().slice(0, 10);
    const [rows, [active]] = await Promise.all([
      this.q(
        this.pool,
        `SELECT bucket, requests, seconds_reserved, seconds_settled, usd_reserved_micros, usd_settled_micros FROM counters
         WHERE scope = $1 AND (bucket IN ($2, $3) OR (bucket >= $4 AND bucket LIKE 'day:%'))`,
        [sk, `min:${b.minute}`, `month:${b.month}`, `day:${since}`],
      ),
      this.q(this.pool, "SELECT count(*) AS n FROM jobs WHERE team_id = $1 AND charge = 'reserved'", [teamId]),
      this.q(this.pool, "DELETE FROM counters WHERE bucket LIKE 'min:%' AND bucket < $1", [`min:${new Date(now - 3_600_000).toISOString().slice(0, 16)}`]),
    ]);
    type Amounts = { requests: number; seconds_reserved: number; seconds_settled: number; usd_reserved_micros: number; usd_settled_micros: number };
    const byBucket = new Map(rows.map((r) => [r.bucket as string, r as Amounts]));
    const period = (start: string, bucket: string): PeriodUsage => {
      const c = byBucket.get(bucket);
      return {
        start,
        video_seconds: c ? c.seconds_reserved + c.seconds_settled : 0,
        video_seconds_reserved: c?.seconds_reserved ?? 0,
        usd: c ? microsToUsd(c.usd_reserved_micros + c.usd_settled_micros) : 0,
        usd_reserved: microsToUsd(c?.usd_reserved_micros ?? 0),
        requests: c?.requests ?? 0,
      };
    };
    const daily = [];
    for (let i = days - 1; i >= 0; i--) {
      const date = new Date(now - i * 86_400_000).toISOString().slice(0, 10);
      const r = byBucket.get(`day:${date}`);
      daily.push({
        date,
        video_seconds: r ? r.seconds_reserved + r.seconds_settled : 0,
        usd: r ? microsToUsd(r.usd_reserved_micros + r.usd_settled_micros) : 0,
        requests: r?.requests ?? 0,
      });
    }
    return {
      day: period(b.day, `day:${b.day}`),
      month: period(b.month, `month:${b.month}`),
      activeJobs: active!.n as number,
      requestsThisMinute: byBucket.get(`min:${b.minute}`)?.requests ?? 0,
      daily,
    };
  }

  async usageByModel(teamId: string, nowArg: number): Promise<ModelUsage[]> {
    const [clock] = await this.q(this.pool, `SELECT ${nowMs(1)} AS now_ms`, [this.at(nowArg)]);
    const b = buckets(clock!.now_ms as number);
    return toModelUsage(await this.q(this.pool, usageByModelSql({ teamId: '$1', day: '$2', month: '$3' }), [teamId, b.day, b.month]));
  }

  async putWebhook(teamId: string, input: WebhookEndpointInput, secret: string, nowArg: number): Promise<{ endpoint: WebhookEndpoint; created: boolean }> {
    // xmax is 0 on a row this statement inserted, and the updater's transaction id on one it updated.
    const [row] = await this.q(
      this.pool,
      `INSERT INTO webhook_endpoints AS e (team_id, url, events, enabled, secret, created_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, ${nowMs(6)} / 1000)
       ON CONFLICT (team_id) DO UPDATE SET url = excluded.url, events = excluded.events, enabled = excluded.enabled
       RETURNING e.*, (xmax = 0) AS created`,
      [teamId, input.url, JSON.stringify(input.events), input.enabled, secret, this.at(nowArg)],
    );
    return { endpoint: toEndpoint(row!), created: row!.created as boolean };
  }

  async getWebhook(teamId: string): Promise<WebhookEndpoint | undefined> {
    const [row] = await this.q(this.pool, 'SELECT * FROM webhook_endpoints WHERE team_id = $1', [teamId]);
    return row ? toEndpoint(row) : undefined;
  }

  async deleteWebhook(teamId: string): Promise<boolean> {
    return (await this.q(this.pool, 'DELETE FROM webhook_endpoints WHERE team_id = $1 RETURNING team_id', [teamId])).length === 1;
  }

  async rotateWebhookSecret(teamId: string, secret: string, overlapMs: number, nowArg: number): Promise<WebhookEndpoint | undefined> {
    const [row] = await this.q(
      this.pool,
      `UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at_ms = ${nowMs(4)} + $3, secret = $2
       WHERE team_id = $1 RETURNING *`,
      [teamId, secret, overlapMs, this.at(nowArg)],
    );
    return row ? toEndpoint(row) : undefined;
  }

  /** The outbox as a queue: due rows locked with SKIP LOCKED, so concurrent claimers take disjoint sets. */
  async claimDeliveries(limit: number, leaseMs: number, nowArg: number): Promise<ClaimedDelivery[]> {
    const rows = await this.q(
      this.pool,
      `WITH due AS (
         SELECT id FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_at_ms <= ${nowMs(3)} AND (lease_until_ms IS NULL OR lease_until_ms <= ${nowMs(3)})
         ORDER BY next_attempt_at_ms LIMIT $1 FOR UPDATE SKIP LOCKED)
       UPDATE webhook_deliveries d SET lease_until_ms = ${nowMs(3)} + $2, lease_token = gen_random_uuid()::text
       FROM due WHERE d.id = due.id RETURNING d.*`,
      [limit, leaseMs, this.at(nowArg)],
    );
    return rows.map((r) => ({ ...toDelivery(r), leaseToken: r.lease_token as string }));
  }

  async recordAttempt(id: string, token: string, result: AttemptResult, nowArg: number): Promise<boolean> {
    const status = result.delivered ? 'delivered' : result.retryInMs === null ? 'failed' : 'pending';
    const rows = await this.q(
      this.pool,
      `UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $3, last_error = $4, last_latency_ms = $5,
         last_attempt_at_ms = ${nowMs(6)}, status = $7,
         next_attempt_at_ms = CASE WHEN $7 = 'pending' THEN ${nowMs(6)} + $8 END,
         delivered_at_ms = CASE WHEN $7 = 'delivered' THEN ${nowMs(6)} ELSE delivered_at_ms END,
         lease_until_ms = NULL, lease_token = NULL
       WHERE id = $1 AND lease_token = $2 RETURNING id`,
      [id, token, result.status, result.error, Math.round(result.latencyMs), this.at(nowArg), status, result.retryInMs ?? 0],
    );
    return rows.length === 1;
  }

  async listDeliveries(teamId: string, limit: number): Promise<WebhookDelivery[]> {
    return (await this.q(this.pool, 'SELECT * FROM webhook_deliveries WHERE team_id = $1 ORDER BY seq DESC LIMIT $2', [teamId, limit])).map(toDelivery);
  }

  async replayDelivery(teamId: string, id: string, nowArg: number): Promise<WebhookDelivery | undefined> {
    const [row] = await this.q(
      this.pool,
      `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_ms = ${nowMs(3)}, delivered_at_ms = NULL,
         lease_until_ms = NULL, lease_token = NULL WHERE id = $1 AND team_id = $2 RETURNING *`,
      [id, teamId, this.at(nowArg)],
    );
    return row ? toDelivery(row) : undefined;
  }

  async enqueueBudgetAlert(teamId: string, alert: BudgetAlert, nowArg: number): Promise<boolean> {
    try {
      return await enqueueBudgetAlert(this.pool, nowMs(6), teamId, alert, this.at(nowArg));
    } catch (err) {
      throw classify(err);
    }
  }

  /**
   * Adds another store's records (see `SqliteStore.exportAll`) in one transaction: all or nothing. A record
   * whose id (or key hash, counter bucket, team's webhook endpoint, or delivery's event or video) is already
   * here is left as it is and counted as existing, so importing the same export twice adds nothing the second
   * time. Jobs and webhook deliveries keep their order (new `seq` values in export order), so lists page as
   * before.
   */
  async importAll(records: AsyncIterable<StoreRecord>): Promise<ImportSummary> {
    const summary = Object.fromEntries(Object.keys(IMPORTS).map((kind) => [kind, { copied: 0, existing: 0 }])) as ImportSummary;
    const c = await this.connect();
    let batch: StoreRecord[] = [];
    const flush = async () => {
      const kind = batch[0]?.kind;
      if (!kind) return;
      const { table, columns, row } = IMPORTS[kind];
      const added = await this.q(
        c,
        `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb) WITH ORDINALITY AS x
         ORDER BY x.ordinality ON CONFLICT DO NOTHING RETURNING 1`,
        [JSON.stringify(batch.map((r) => (row as (r: StoreRecord) => Row)(r)))],
      );
      summary[kind].copied += added.length;
      summary[kind].existing += batch.length - added.length;
      batch = [];
    };
    try {
      await this.q(c, 'BEGIN');
      for await (const r of records) {
        if (batch.length >= IMPORT_BATCH || (batch.length > 0 && batch[0]!.kind !== r.kind)) await flush();
        batch.push(r);
      }
      await flush();
      await this.q(c, 'COMMIT');
      c.release();
      return summary;
    } catch (err) {
      if (err instanceof StoreUnavailableError) c.release(true);
      else await c.query('ROLLBACK').then(() => c.release(), () => c.release(true));
      throw err;
    }
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
