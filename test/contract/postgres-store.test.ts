import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { LISTEN_HEARTBEAT_MS } from '../../src/store/postgres/listen.js';
import { StoreUnavailableError, type Principal, type Store, type StoreChange } from '../../src/store/types.js';
import type { Charge, JobRecord } from '../../src/domain/job.js';
import type { QuotaPolicy } from '../../src/domain/quota-policy.js';
import { freshDatabase, freshDatabaseBehindProxy, postgresUrl } from '../support/postgres.js';
import { newJob } from '../support/store.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/**
 * What only a shared store has to prove: two replicas (two PostgresStore instances, two pools) on one
 * database, admitting and settling concurrently, on the database's clock as the gateway runs it.
 */
const queued = { status: 'queued', progress: 0, error: null } as const;

/** Resolves once `ok()` holds, polling every 20 ms; fails after `ms`. */
async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const isReset = (c: StoreChange) => c.kind === 'reset';

/** Starts a burst only when it cannot straddle a minute (or day) boundary of the database's clock. */
async function awayFromMinuteEdge(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const { rows } = await client.query<{ s: number }>('SELECT extract(second FROM clock_timestamp())::float8 AS s');
  await client.end();
  const s = rows[0]!.s;
  if (s > 52) await new Promise((r) => setTimeout(r, (60 - s) * 1000 + 200));
}

describe.skipIf(postgresUrl === null)('postgres store: several replicas on one database', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let replicas: PostgresStore[];
  beforeEach(async () => {
    db = await freshDatabase();
    replicas = await Promise.all([PostgresStore.open({ url: db.url }), PostgresStore.open({ url: db.url })]);
  });
  afterEach(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await db.drop();
  });

  /**
   * As the gateway admits a create: counted against the per-minute limits on arrival (only where one
   * applies; otherwise counted in memory, which these bursts leave out), then given a slot and its seconds.
   */
  const create = async (store: Store, p: Principal, seconds: number) => {
    const limited = p.keyPolicy.requests_per_minute !== undefined || p.teamPolicy.requests_per_minute !== undefined;
    const arrival = limited ? await store.admitRequest(p, 0) : { ok: true };
    return arrival.ok ? store.admitJob(p, newJob(p, seconds), 0) : arrival;
  };

  const bursts: Array<{ name: string; team: QuotaPolicy; key?: QuotaPolicy; jobs: boolean; admitted: number; seconds?: number; requests?: number }> = [
    { name: 'max_concurrent_jobs 5', team: { max_concurrent_jobs: 5 }, jobs: true, admitted: 5 },
    { name: 'requests_per_minute 20 (creates)', team: { requests_per_minute: 20 }, jobs: true, admitted: 20, requests: 20 },
    { name: 'requests_per_minute 20 on the key (polls)', team: {}, key: { requests_per_minute: 20 }, jobs: false, admitted: 20, requests: 20 },
    { name: 'video_seconds_per_day 23 (5 s jobs)', team: { video_seconds_per_day: 23 }, jobs: true, admitted: 4, seconds: 5 },
    { name: 'video_seconds_per_month 31 on the key (6 s jobs)', team: {}, key: { video_seconds_per_month: 31 }, jobs: true, admitted: 5, seconds: 6 },
    {
      name: 'all at once: 5 concurrent, 20 a minute, 23 s a day',
      team: { max_concurrent_jobs: 5, requests_per_minute: 20, video_seconds_per_day: 23 },
      jobs: true,
      admitted: 4,
      seconds: 5,
      requests: 20,
    },
  ];

  it.each(bursts)('50 parallel admissions over two replicas never over-admit: $name', async ({ team, key, jobs, admitted, seconds = 5, requests = 0 }) => {
    await awayFromMinuteEdge(db.url);
    const p: Principal = { teamId: 'burst', keyId: 'burst-key', teamPolicy: team, keyPolicy: key ?? {} };
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => {
        const store = replicas[i % 2]!;
        return jobs ? create(store, p, seconds) : store.admitRequest(p, 0);
      }),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(admitted);
    const u = await replicas[0]!.usage('burst', 0, 1);
    expect(u.requestsThisMinute).toBe(requests);
    expect(u.activeJobs).toBe(jobs ? admitted : 0);
    expect(u.day.video_seconds).toBe(jobs ? admitted * seconds : 0);
  });

  it('a request its key refuses takes nothing of its team: two keys, 50 parallel admissions over two replicas', async () => {
    await awayFromMinuteEdge(db.url);
    const team: QuotaPolicy = { requests_per_minute: 20 };
    const tight: Principal = { teamId: 'shared', keyId: 'tight-key', teamPolicy: team, keyPolicy: { requests_per_minute: 5 } };
    const loose: Principal = { teamId: 'shared', keyId: 'loose-key', teamPolicy: team, keyPolicy: {} };
    // Each key's requests alternate between the replicas.
    const isTight = (i: number) => i % 4 < 2;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => replicas[i % 2]!.admitRequest(isTight(i) ? tight : loose, 0)));
    // Counted, the tight key's refusals (at least 20 of its 25) would eat the team's 20 and refuse the loose key.
    expect(results.filter((r, i) => r.ok && isTight(i)).length).toBeLessThanOrEqual(5);
    expect(results.filter((r) => r.ok)).toHaveLength(20);
    expect((await replicas[1]!.usage('shared', 0, 1)).requestsThisMinute).toBe(20);
  });

  it('settles or refunds each job exactly once while both replicas race terminal updates and deletes', async () => {
    const moved = { reserved: 0, settled: 0, refunded: 0 };
    const listen = (_team: string, charge: Charge, seconds: number) => (moved[charge] += seconds);
    await Promise.all(replicas.map((r) => r.close()));
    replicas = await Promise.all([PostgresStore.open({ url: db.url, onCharge: listen }), PostgresStore.open({ url: db.url, onCharge: listen })]);
    const p: Principal = { teamId: 'race', keyId: 'race-key', teamPolicy: {}, keyPolicy: {} };
    const jobs = Array.from({ length: 10 }, () => newJob(p, 5));
    for (const j of jobs) {
      expect((await replicas[0]!.admitJob(p, j, 0)).ok).toBe(true);
      await replicas[1]!.activateJob(j.id, `up-${j.id}`, 'fp', queued, 0, 'upstream-a');
    }
    await Promise.all(
      jobs.flatMap((j, n) =>
        Array.from({ length: 6 }, (_, i) => {
          const store = replicas[i % 2]!;
          if (n % 3 === 0 && i === 5) return store.deleteJob('race', j.id, 0, n % 2 === 0 ? 'settle' : 'refund');
          return i % 2 === 0
            ? store.updateJob(j.id, { status: 'completed', progress: 100, error: null }, 0)
            : store.updateJob(j.id, { status: 'failed', progress: 50, error: { code: 'x', message: 'y' } }, 0);
        }),
      ),
    );
    // Every job ended once; the budget holds exactly the seconds of the jobs that were charged.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ charge: string; n: string }>('SELECT charge, count(*) AS n FROM jobs GROUP BY charge');
    const { rows: negative } = await client.query('SELECT * FROM counters WHERE seconds_reserved < 0 OR seconds_settled < 0');
    await client.end();
    const settled = Number(rows.find((r) => r.charge === 'settled')?.n ?? 0);
    expect(rows.find((r) => r.charge === 'reserved')).toBeUndefined();
    expect(negative).toEqual([]);
    const u = await replicas[1]!.usage('race', 0, 1);
    expect(u.activeJobs).toBe(0);
    expect(u.day).toMatchObject({ video_seconds: settled * 5, video_seconds_reserved: 0 });
    // The metrics heard each move exactly once, however the replicas raced.
    expect(moved).toEqual({ reserved: 50, settled: settled * 5, refunded: 50 - settled * 5 });
  });

  it('counts on the database clock: the nowMs of the caller does not move a window', async () => {
    const p: Principal = { teamId: 'clock', keyId: 'clock-key', teamPolicy: { requests_per_minute: 1 }, keyPolicy: {} };
    await awayFromMinuteEdge(db.url);
    expect((await replicas[0]!.admitRequest(p, Date.UTC(2001, 0, 1))).ok).toBe(true);
    // A replica whose clock is a minute ahead gets no fresh window.
    expect((await replicas[1]!.admitRequest(p, Date.now() + 60_000)).ok).toBe(false);
    const j = newJob({ ...p, teamPolicy: {} }, 3);
    await replicas[0]!.admitJob({ ...p, teamPolicy: {} }, j, Date.UTC(2001, 0, 1));
    const stored = await replicas[1]!.getJob('clock', j.id);
    expect(stored?.chargeDay).toBe(new Date().toISOString().slice(0, 10));
    expect(Math.abs(stored!.createdAt * 1000 - Date.now())).toBeLessThan(60_000);
  });

  it("tells the other replica of a revocation within 1 s, and its own listeners at once, each exactly once", async () => {
    const [a, b] = replicas as [PostgresStore, PostgresStore];
    const heard: [StoreChange[], StoreChange[]] = [[], []];
    a.onChange((c) => heard[0].push(c));
    b.onChange((c) => heard[1].push(c));
    // Each listening connection says `reset` once it is up: from then on nothing is missed.
    await until(() => heard.every((h) => h.some(isReset)), 5_000, 'both listening');
    await a.createTeam({ id: 'notify', name: null, quota: {} }, 0);
    await a.createKey({ id: 'notify-key', teamId: 'notify', name: null, prefix: 'gvk_x', hash: 'hn', quota: {}, createdAt: 0, expiresAt: null });
    heard[0].length = heard[1].length = 0;

    const started = performance.now();
    await a.revokeKey('notify-key', 0);
    expect(heard[0]).toEqual([{ kind: 'key', keyId: 'notify-key' }]);
    await until(() => heard[1].length > 0, 1_000, 'the other replica told');
    expect(performance.now() - started).toBeLessThan(1_000);
    await b.updateTeam('notify', { quota: { requests_per_minute: 1 } });
    await until(() => heard[0].length > 1, 1_000, 'the first replica told');
    // Time for any echo of a replica's own notification to arrive: none is told twice.
    await new Promise((r) => setTimeout(r, 300));
    expect(heard[0]).toEqual([{ kind: 'key', keyId: 'notify-key' }, { kind: 'team', teamId: 'notify' }]);
    expect(heard[1]).toEqual([{ kind: 'key', keyId: 'notify-key' }, { kind: 'team', teamId: 'notify' }]);
  });

  it("claims the tracker's worklist across replicas: parallel claims are disjoint, a lease that runs out frees its jobs", async () => {
    const [a, b] = replicas as [PostgresStore, PostgresStore];
    const p: Principal = { teamId: 'claims', keyId: 'claims-key', teamPolicy: {}, keyPolicy: {} };
    const jobs = Array.from({ length: 24 }, () => newJob(p, 1));
    for (const j of jobs) {
      await a.admitJob(p, j, 0);
      await b.activateJob(j.id, `up-${j.id}`, 'fp', queued, 0, 'upstream-a');
    }
    const due = { horizonMs: 0, pendingGraceMs: 60_000 };
    const claims = await Promise.all(Array.from({ length: 8 }, (_, i) => replicas[i % 2]!.claimDueJobs(4, 60_000, 0, due)));
    const claimed = claims.flat().map((j) => j.id);
    expect(new Set(claimed).size).toBe(claimed.length);
    expect(claimed.sort()).toEqual(jobs.map((j) => j.id).sort());

    // Each ends its own claims by recording the next checks (due at once again).
    const again = (js: readonly JobRecord[]) => js.map((j) => ({ id: j.id, inMs: 0, checks: 1 }));
    await Promise.all([a.scheduleChecks(again(claims[0]!), 0), b.scheduleChecks(again(claims[1]!), 0)]);
    // A short lease, on the database's clock: b gets nothing while it lasts, everything once it has run out.
    const held = await a.claimDueJobs(100, 400, 0, due);
    expect(held).toHaveLength(8);
    expect(await b.claimDueJobs(100, 60_000, 0, due)).toEqual([]);
    await new Promise((r) => setTimeout(r, 600));
    const taken = await b.claimDueJobs(100, 60_000, 0, due);
    expect(taken.map((j) => j.id).sort()).toEqual(held.map((j) => j.id).sort());
    // a, late, records what it no longer holds: b's claims stand.
    await a.scheduleChecks(again(held), 0);
    expect(await a.claimDueJobs(100, 60_000, 0, due)).toEqual([]);
  });

  it("records two replicas' batches of next checks at once, whatever their order, without a deadlock", async () => {
    const [a, b] = replicas as [PostgresStore, PostgresStore];
    const p: Principal = { teamId: 'batches', keyId: 'batches-key', teamPolicy: {}, keyPolicy: {} };
    const jobs = Array.from({ length: 200 }, () => newJob(p, 1));
    for (const j of jobs) {
      await a.admitJob(p, j, 0);
      await a.activateJob(j.id, `up-${j.id}`, 'fp', queued, 0, 'upstream-a');
    }
    // One job in both batches is enough for two row-by-row lockers in opposite orders to wait on each other
    // (a lapsed lease, a poll on one replica while the other checks): each batch must lock in one order.
    const batch = jobs.map((j) => ({ id: j.id, inMs: 1_000, checks: 1, seen: { status: 'in_progress' as const, progress: 10 } }));
    const reversed = [...batch].reverse();
    for (let round = 0; round < 10; round++) await Promise.all([a.scheduleChecks(batch, 0), b.scheduleChecks(reversed, 0)]);
    expect((await a.getJob('batches', jobs[0]!.id))?.statusChecks).toBe(20);
  });

  it('migrates once when replicas start together, and again is a no-op', async () => {
    const fresh = await freshDatabase();
    try {
      const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open({ url: fresh.url })));
      expect(await stores[0]!.migrate()).toBe(MIGRATIONS.length);
      const client = new pg.Client({ connectionString: fresh.url });
      await client.connect();
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      await client.end();
      expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      await Promise.all(stores.map((s) => s.close()));
    } finally {
      await fresh.drop();
    }
  });
});

describe.skipIf(postgresUrl === null)('postgres store: upgrading a database of an earlier version', () => {
  it("keeps an endpoint's previous secret, with its expiry, when every replaced secret gets one of its own", async () => {
    const fresh = await freshDatabase();
    const client = new pg.Client({ connectionString: fresh.url });
    await client.connect();
    try {
      const before = MIGRATIONS.findIndex((step) => step.includes('previous_secrets'));
      await migrateTo(client, before);
      await client.query(
        `INSERT INTO webhook_endpoints (team_id, url, events, enabled, secret, previous_secret, previous_secret_expires_at_ms, created_at)
         VALUES ('rotated', 'https://hooks.example.com/', '["video.completed"]', true, 'whsec_new', 'whsec_old', 4102444800000, 1),
                ('never', 'https://hooks.example.com/', '["video.completed"]', true, 'whsec_only', NULL, NULL, 1)`,
      );
      const store = await PostgresStore.open({ url: fresh.url });
      try {
        expect(await store.getWebhook('rotated')).toMatchObject({ secret: 'whsec_new', previousSecrets: [{ secret: 'whsec_old', expiresAtMs: 4102444800000 }] });
        expect(await store.getWebhook('never')).toMatchObject({ secret: 'whsec_only', previousSecrets: [] });
      } finally {
        await store.close();
      }
    } finally {
      await client.end();
      await fresh.drop();
    }
  });
});

/** The schema as it stood after the first `n` steps. */
async function migrateTo(client: pg.Client, n: number): Promise<void> {
  await migrate(client, MIGRATIONS.slice(0, n));
}

describe.skipIf(postgresUrl === null)('postgres store: the database unreachable', () => {
  const BOUND_MS = 8_000;
  const timeouts = { connectTimeoutMs: 1_000, statementTimeoutMs: 1_000 };
  let db: Awaited<ReturnType<typeof freshDatabaseBehindProxy>>;
  let proxy: TcpProxy;
  let store: Store;
  beforeAll(async () => {
    db = await freshDatabaseBehindProxy();
    proxy = db.proxy;
    store = await PostgresStore.open({ url: db.url, ...timeouts });
  });
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  const p: Principal = { teamId: 'down', keyId: 'down-key', teamPolicy: { requests_per_minute: 100 }, keyPolicy: {} };
  const calls: Array<[string, (s: Store) => Promise<unknown>]> = [
    ['admitRequest', (s) => s.admitRequest(p, 0)],
    ['admitJob', (s) => s.admitJob(p, newJob(p, 5), 0)],
    ['getJob', (s) => s.getJob('down', 'video_x')],
    ['findKeyByHash', (s) => s.findKeyByHash('h')],
    ['usage', (s) => s.usage('down', 0, 1)],
  ];

  async function failsWithinBound(call: (s: Store) => Promise<unknown>) {
    const started = Date.now();
    const err = await call(store).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(BOUND_MS);
  }

  it.each(calls)('%s fails fast with store_unavailable when the server refuses connections, and recovers', async (_, call) => {
    await call(store);
    await proxy.refuse();
    try {
      await failsWithinBound(call);
      expect(await store.ping()).toBe(false);
    } finally {
      await proxy.restore();
    }
    expect(await store.ping()).toBe(true);
    await call(store);
  });

  it('fails within the bound, not after TCP gives up, when the link goes silent', async () => {
    expect(await store.ping()).toBe(true);
    proxy.blackhole();
    try {
      await failsWithinBound((s) => s.admitJob(p, newJob(p, 5), 0));
      await failsWithinBound((s) => s.getJob('down', 'video_x'));
      expect(await store.ping()).toBe(false);
    } finally {
      await proxy.restore();
    }
    expect(await store.ping()).toBe(true);
  });

  it('tells its listeners to drop everything when its listening connection is lost and again once it is back', async () => {
    const heard: StoreChange[] = [];
    const unsubscribe = store.onChange((c) => heard.push(c));
    const direct = await PostgresStore.open({ url: db.directUrl });
    try {
      await until(() => heard.some(isReset), 5_000, 'listening');
      for (const cut of ['refuse', 'blackhole'] as const) {
        heard.length = 0;
        if (cut === 'refuse') await proxy.refuse();
        else proxy.blackhole();
        try {
          // A refused link is noticed at once; a silent one by the heartbeat (LISTEN_HEARTBEAT_MS and a timeout).
          await until(() => heard.some(isReset), BOUND_MS + LISTEN_HEARTBEAT_MS, `a reset after ${cut}`);
        } finally {
          await proxy.restore();
        }
        heard.length = 0;
        await until(() => heard.some(isReset), BOUND_MS, `a reset on reconnecting after ${cut}`);
        // Listening again: a change made elsewhere is heard.
        await direct.createTeam({ id: `t-${cut}`, name: null, quota: {} }, 0);
        await direct.deleteTeam(`t-${cut}`, 0);
        await until(() => heard.some((c) => c.kind === 'team' && c.teamId === `t-${cut}`), 1_000, 'a change heard');
      }
    } finally {
      unsubscribe();
      await direct.close();
    }
  });

  it('refuses to start on a closed port within the bound, with store_unavailable', async () => {
    const closed = new TcpProxy({ host: '127.0.0.1', port: 1 });
    const addr = await closed.listen();
    await closed.close();
    const started = Date.now();
    const err = await PostgresStore.open({ url: `postgres://gateway:not-logged@${addr}/x`, ...timeouts }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(BOUND_MS);
  });
});
