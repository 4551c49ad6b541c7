import pg from 'pg';
import type { Charge, JobRecord, MoneyMove } from '../../domain/job.js';
import { buckets, type Scope } from '../../domain/quota-policy.js';
import type { ChangeFeed } from '../changes.js';
import { rowMappers, type Row } from '../rows.js';
import { chargeShift, type FinalCost } from '../spend.js';
import { StoreUnavailableError, type ChargeListener, type StoreChange } from '../types.js';

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

/** Now, in ms, on the server's clock. `clock_timestamp()` rather than `now()`: the latter is frozen at BEGIN. */
export const DB_NOW_MS = 'floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint';
/** `$n` is the caller's moment in `caller` mode and NULL in `database` mode. */
export const nowMs = (n: number) => `coalesce($${n}::bigint, ${DB_NOW_MS})`;

export const ignore = () => undefined;
type Queryable = pg.Pool | pg.PoolClient;

/**
 * Errors that mean "the database is not answering" as opposed to "this statement is wrong": no SQLSTATE at all
 * (refused, reset, timed out, terminated) or a class about connections, resources or the server going away.
 */
export function classify(err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const sqlState = err instanceof pg.DatabaseError && typeof code === 'string' ? code : undefined;
  if (sqlState && !/^(08|53|57|58)/.test(sqlState)) return err;
  return new StoreUnavailableError((err as Error)?.message ?? String(err), { cause: err });
}

/** Deadlocks and serialization failures: the transaction did nothing and may simply run again. */
const isRetryable = (err: unknown) => err instanceof pg.DatabaseError && (err.code === '40P01' || err.code === '40001');

/** jsonb and boolean columns arrive decoded. */
export const { toJob, toTeam, toKey, toEndpoint, toDelivery } = rowMappers({ json: (v) => v, bool: (v) => v as boolean });

export const scopeKey = (scope: Scope, id: string) => `${scope}:${id}`;
export const sec = (ms: number) => Math.floor(ms / 1000);

/** The NOTIFY channel of `Store.onChange`; each payload is a StoreChange and the id of the instance that made it. */
export const CHANGES_CHANNEL = 'grok_gateway_changes';

/** Additions to one counter row: requests, seconds, and micro-dollars (`usdReserved`, `usdSettled`). */
export type Bump = { scope: string; bucket: string; requests: number; reserved: number; settled: number; usdReserved: number; usdSettled: number };
/** A move of a job's seconds (and money) made inside a transaction, told to the ChargeListener once it commits. */
export type ChargeMove = [teamId: string, charge: Charge, seconds: number, money: MoneyMove];

/** What every part of one store shares: its pool and clock, who hears of charges and changes, and its name. */
export interface PgShared {
  readonly pool: pg.Pool;
  readonly clock: PostgresClock;
  readonly onCharge: ChargeListener | undefined;
  readonly changes: ChangeFeed;
  /** Names the store instance in its notifications (it has told its own listeners already) and in its claims. */
  readonly instance: string;
}

/**
 * What the parts of the PostgreSQL store (admission, jobs, teams and keys, webhooks, import) have in common:
 * connections, statements and transactions, change notifications, the clock, and the usage counters.
 */
export abstract class PgPart {
  protected readonly pool: pg.Pool;
  protected readonly clock: PostgresClock;
  protected readonly onCharge: ChargeListener | undefined;
  protected readonly changes: ChangeFeed;
  protected readonly instance: string;

  constructor(shared: PgShared) {
    this.pool = shared.pool;
    this.clock = shared.clock;
    this.onCharge = shared.onCharge;
    this.changes = shared.changes;
    this.instance = shared.instance;
  }

  protected async connect(): Promise<pg.PoolClient> {
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

  protected async q(c: Queryable, text: string, values?: unknown[]): Promise<Row[]> {
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
  protected async tx<T>(fn: (c: pg.PoolClient, moves: ChargeMove[], told: StoreChange[]) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.connect();
      const moves: ChargeMove[] = [];
      const told: StoreChange[] = [];
      try {
        await this.q(c, 'BEGIN');
        const out = await fn(c, moves, told);
        // A COMMIT whose answer is lost leaves the outcome unknown and surfaces as store_unavailable. For an
        // admission that errs on the safe side: a job counted but never created upstream has no upstream id,
        // and the tracker refunds such jobs after its grace period.
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
  protected async discard(c: pg.PoolClient, err: unknown, attempt: number): Promise<boolean> {
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
  protected async notify(c: pg.PoolClient, told: StoreChange[], change: StoreChange): Promise<void> {
    await this.q(c, 'SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, JSON.stringify({ ...change, from: this.instance })]);
    told.push(change);
  }

  /** The caller's moment in `caller` mode; NULL, which the SQL turns into the server's clock, otherwise. */
  protected at(nowMs: number): number | null {
    return this.clock === 'caller' ? nowMs : null;
  }

  /**
   * Adds to counters in one statement. Rows are merged per (scope, bucket) — ON CONFLICT may touch a row only
   * once per statement — and sorted, so that any two transactions lock counter rows in the same order.
   * Returns each row's request count after the addition.
   */
  protected async bump(c: Queryable, rows: readonly Bump[]): Promise<Row[]> {
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
  protected requestBumps(teamId: string, keyId: string, atMs: number, requests: number, seconds: number, micros = 0): Bump[] {
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
  protected async shift(c: Queryable, moves: ChargeMove[], job: JobRecord, reserved: number, settled: number, cost?: FinalCost): Promise<void> {
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
}
