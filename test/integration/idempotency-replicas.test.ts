import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { IN_PROGRESS_WAIT_MS } from '../../src/videos/idempotency.js';
import { replicaEnv, spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { UPSTREAM_KEY, admin, auth, teamWithKey } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';

/**
 * Idempotency-Key across two gateway processes on one PostgreSQL database and one simulated upstream: a key
 * is honoured by whichever replica a repeat reaches, also when the replica that had the first request was
 * killed while the upstream held its create. Never more than one upstream job per key.
 */
const LEASE_MS = IN_PROGRESS_WAIT_MS + 1_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(postgresUrl === null)('Idempotency-Key on two gateway processes sharing PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let sql: pg.Client;
  let sim: UpstreamSimulator;
  const gateways: ChildGateway[] = [];
  const url = (i: number) => gateways[i]!.url;

  beforeAll(async () => {
    db = await freshDatabase();
    sql = new pg.Client({ connectionString: db.url });
    await sql.connect();
    sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 600_000 });
    const env = replicaEnv(db.url, await sim.listen(), { IDEMPOTENCY_LEASE_MS: String(LEASE_MS) });
    gateways.push(await spawnGateway(env));
    gateways.push(await spawnGateway(env));
  });
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop('SIGKILL')));
    await sql?.end();
    await sim?.close();
    await db?.drop();
  });

  const BODY = { model: 'grok-video-3', prompt: 'a kite over dunes', seconds: 4 };
  async function create(i: number, apiKey: string, key: string, body: unknown = BODY) {
    const res = await fetch(`${url(i)}/v1/videos`, {
      method: 'POST',
      headers: { ...auth(apiKey), 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(body),
    });
    return { res, body: (await res.json()) as any };
  }
  /** The key's row as a replica that died at some point of its request would have left it. */
  const leftBehind = (key: string, set: string) => sql.query(`UPDATE idempotency_keys SET answer = NULL, holder = 'dead', lease_until_ms = 0${set} WHERE key = $1`, [key]);

  it('a burst of one request under one key over both replicas: one upstream job, every answer its video', async () => {
    const { key: apiKey } = await teamWithKey(url(0), 'burst');
    const before = sim.creates().length;
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => create(i % 2, apiKey, 'burst-key')));
    expect(answers.map((a) => a.res.status)).toEqual(Array(16).fill(200));
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(sim.creates().length - before).toBe(1);
    const other = await create(1, apiKey, 'burst-key', { ...BODY, prompt: 'another kite' });
    expect(other.res.status).toBe(409);
    expect(other.body.error.code).toBe('idempotency_key_reused');
  });

  it('a replica that died after the upstream accepted the create: the repeat on the other finds its video', async () => {
    const { key: apiKey } = await teamWithKey(url(0), 'placed');
    const first = await create(0, apiKey, 'placed-key');
    await leftBehind('placed-key', '');
    const before = sim.creates().length;
    const repeat = await create(1, apiKey, 'placed-key');
    expect(repeat.res.status).toBe(200);
    expect(repeat.body.id).toBe(first.body.id);
    expect(repeat.res.headers.get('idempotent-replayed')).toBe('true');
    expect(sim.creates().length).toBe(before);
  });

  it('a replica that died before admitting the job: the repeat on the other makes it, once', async () => {
    const { key: apiKey } = await teamWithKey(url(0), 'absent');
    await create(0, apiKey, 'absent-key');
    const unborn = `video_${'0'.repeat(31)}1`;
    await leftBehind('absent-key', `, job_id = '${unborn}'`);
    const before = sim.creates().length;
    const repeats = [await create(1, apiKey, 'absent-key'), await create(0, apiKey, 'absent-key')];
    expect(repeats.map((r) => [r.res.status, r.body.id])).toEqual([[200, unborn], [200, unborn]]);
    expect(sim.creates().length - before).toBe(1);
  });

  it('the replica holding the create is SIGKILLed while the upstream holds it: the repeat never starts a second upstream job', async () => {
    const team = 'killed';
    const { key: apiKey } = await teamWithKey(url(1), team);
    const creates = sim.creates().length;
    const tasks = sim.tasks.size;
    sim.stallMs = 3_000;
    const lost = create(0, apiKey, 'killed-key').catch(() => 'connection lost');
    while (sim.creates().length === creates) await sleep(20);
    sim.stallMs = 0;
    await gateways[0]!.stop('SIGKILL');
    expect(await lost).toBe('connection lost');

    // The dead replica's lease still runs: the repeat waits for an answer that will not come, then says so.
    const waiting = await create(1, apiKey, 'killed-key');
    expect(waiting.res.status).toBe(409);
    expect(waiting.body.error).toMatchObject({ code: 'request_in_progress', param: 'Idempotency-Key' });
    expect(Number(waiting.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // Past the lease: the job was admitted but its upstream answer never recorded, so nobody knows whether the
    // upstream has it. The repeat says so, for good, and refunds it; it never sends the create again.
    const settled = await create(1, apiKey, 'killed-key');
    expect(settled.res.status).toBe(500);
    expect(settled.body.error.code).toBe('create_outcome_unknown');
    expect(settled.res.headers.get('x-should-retry')).toBe('false');
    while (sim.tasks.size === tasks) await sleep(50);
    const again = await create(1, apiKey, 'killed-key');
    expect([again.res.status, again.body]).toEqual([500, settled.body]);
    expect(sim.creates().length - creates).toBe(1);
    expect(sim.tasks.size - tasks).toBe(1);
    expect((await admin(url(1), 'GET', `/teams/${team}/usage`)).body).toMatchObject({ active_jobs: 0, day: { video_seconds: 0 } });
  });
});
