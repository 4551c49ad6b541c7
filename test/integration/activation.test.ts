import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ACTIVATION_RETRY_DELAYS_MS } from '../../src/videos/activation.js';
import { flaky, type FlakyStore } from '../support/flaky-store.js';
import { TestClock, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { freshDatabaseBehindProxy, postgresUrl } from '../support/postgres.js';

/**
 * The upstream accepted a create, then the store would not record it (a database blip): the job runs and is
 * billed upstream all the same, so the gateway must record it, never refund it, and never invite a retry.
 */
const ATTEMPTS_WHILE_WAITING = ACTIVATION_RETRY_DELAYS_MS.length + 1;
const createBody = { model: 'grok-video-3', prompt: 'a fox', seconds: 4 };
const usage = async (url: string, team: string) => (await admin(url, 'GET', `/teams/${team}/usage`)).body;
const listed = async (url: string, key: string) =>
  ((await (await fetch(`${url}/v1/videos?limit=100`, { headers: auth(key) })).json()) as { data: Array<{ id: string; status: string }> }).data;

describe('a store blip after the upstream accepted a create (embedded store, its activateJob failing)', () => {
  const clock = new TestClock();
  let h: Harness;
  let blip: FlakyStore;
  beforeAll(async () => {
    h = await startHarness({ clock, wrapStore: (s) => (blip = flaky(s)).store });
  });
  afterAll(() => h.close());

  it('a blip shorter than the retries: the client gets its Video, recorded with the upstream task id', async () => {
    const { key } = await teamWithKey(h.url, 'blip-short');
    const before = blip.calls('activateJob');
    blip.failNext('activateJob', 2);
    const { res, body } = await postJson(`${h.url}/v1/videos`, createBody, key);
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(blip.calls('activateJob') - before).toBe(3);
    const job = await h.gw.store.getJob('blip-short', body.id);
    expect(job?.upstreamId).toBe([...h.sim.tasks.keys()].at(-1));
    expect(h.logs.join('')).toMatch(new RegExp(`"upstreamId":"${job!.upstreamId}".*"attempt":2.*could not record yet`));
  });

  it('a longer one: 503 with x-should-retry: false, the tracker leaves the job alone, the background records it, and it is billed once', async () => {
    const { key } = await teamWithKey(h.url, 'blip-long');
    blip.failNext('activateJob', ATTEMPTS_WHILE_WAITING);
    const tasksBefore = h.sim.tasks.size;
    const { res, body } = await postJson(`${h.url}/v1/videos`, createBody, key);
    expect(res.status).toBe(503);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(body.error).toMatchObject({ type: 'server_error', code: 'store_unavailable' });
    expect(h.sim.tasks.size).toBe(tasksBefore + 1);
    const [pending] = await listed(h.url, key);
    expect(pending).toBeDefined();

    // Long past the grace after which a create with no upstream id counts as dead: this replica knows better.
    clock.advance(3_600_000);
    await h.gw.tracker.pass({ all: true });
    expect(await h.gw.store.getJob('blip-long', pending!.id)).toMatchObject({ charge: 'reserved', upstreamId: null });

    await expect.poll(async () => (await h.gw.store.getJob('blip-long', pending!.id))?.upstreamId, { timeout: 15_000, interval: 100 }).toBe([...h.sim.tasks.keys()].at(-1));
    const video = (await (await fetch(`${h.url}/v1/videos/${pending!.id}`, { headers: auth(key) })).json()) as { status: string };
    expect(video.status).toBe('completed');
    // Read on the day it was admitted to (the clock was moved on).
    const job = await h.gw.store.getJob('blip-long', pending!.id);
    expect(job?.charge).toBe('settled');
    expect((await h.gw.store.usage('blip-long', job!.createdAt * 1000, 1)).day).toMatchObject({ video_seconds: 4, video_seconds_reserved: 0 });
    expect(h.sim.creates().length).toBe(tasksBefore + 1);
  }, 30_000);

  it('with an Idempotency-Key: the key keeps that 503, but once the background records the job a repeat answers its video', async () => {
    const { key } = await teamWithKey(h.url, 'blip-keyed');
    blip.failNext('activateJob', ATTEMPTS_WHILE_WAITING);
    const send = () =>
      fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json', 'idempotency-key': 'keyed-blip' }, body: JSON.stringify(createBody) });
    const first = await send();
    expect(first.status).toBe(503);
    expect(first.headers.get('x-should-retry')).toBe('false');
    const [pending] = await listed(h.url, key);
    await expect.poll(async () => (await h.gw.store.getJob('blip-keyed', pending!.id))?.upstreamId, { timeout: 15_000, interval: 100 }).toBeTruthy();

    const tasks = h.sim.tasks.size;
    const again = await send();
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as { id: string }).id).toBe(pending!.id);
    expect(h.sim.tasks.size).toBe(tasks);
  }, 30_000);
});

describe.skipIf(postgresUrl === null)('a store blip after the upstream accepted a create (PostgreSQL, its connection cut)', () => {
  let db: Awaited<ReturnType<typeof freshDatabaseBehindProxy>>;
  let h: Harness;
  beforeAll(async () => {
    db = await freshDatabaseBehindProxy();
    h = await startHarness({ env: { DATABASE_URL: db.url, DATABASE_CONNECT_TIMEOUT_MS: '1000' } });
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });
  afterEach(() => db.proxy.restore());

  it('the database goes away while the upstream holds the create and is back within the retries: 200, recorded, billed once', async () => {
    const { key } = await teamWithKey(h.url, 'pg-blip');
    h.sim.slowAnswersMs = 1_500;
    try {
      const answer = postJson(`${h.url}/v1/videos`, createBody, key);
      await expect.poll(() => h.sim.tasks.size, { timeout: 10_000, interval: 10 }).toBe(1);
      await db.proxy.refuse();
      // The upstream answers at 1.5 s; the retries while the client waits reach past 3 s.
      await new Promise((r) => setTimeout(r, 2_300));
      await db.proxy.restore();
      const { res, body } = await answer;
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect((await h.gw.store.getJob('pg-blip', body.id))?.upstreamId).toBe([...h.sim.tasks.keys()][0]);
      expect(h.logs.join('')).toMatch(/could not record yet; retrying/);
    } finally {
      h.sim.slowAnswersMs = 0;
    }
    const video = (await (await fetch(`${h.url}/v1/videos/${(await listed(h.url, key))[0]!.id}`, { headers: auth(key) })).json()) as { status: string };
    expect(video.status).toBe('completed');
    expect((await usage(h.url, 'pg-blip')).day).toMatchObject({ video_seconds: 4, video_seconds_reserved: 0 });
  }, 30_000);
});
