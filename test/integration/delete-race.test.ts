import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flaky, type FlakyStore } from '../support/flaky-store.js';
import { admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';

/**
 * A delete that reads a job still waiting for its create's answer, and whose own transaction comes after the
 * upstream accepted the create and the job was activated: the upstream runs and bills that job, so the delete
 * must settle its reservation, not refund it. The store's deleteJob is held back (and nothing else changed)
 * until the activation has landed, which puts the two in exactly that order.
 */
const stores = [
  { name: 'sqlite', available: true, env: async () => ({ env: {}, drop: async () => undefined }) },
  {
    name: 'postgres',
    available: postgresUrl !== null,
    env: async () => {
      const db = await freshDatabase();
      return { env: { DATABASE_URL: db.url }, drop: db.drop };
    },
  },
];

for (const { name, available, env } of stores) describe.skipIf(!available)(`delete racing the activation (${name})`, () => {
  let h: Harness;
  let store: FlakyStore;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const place = await env();
    drop = place.drop;
    h = await startHarness({ env: place.env, sim: { completeAfterMs: 3_600_000 }, wrapStore: (s) => (store = flaky(s)).store });
  });
  afterAll(async () => {
    await h?.close();
    await drop?.();
  });

  it('a create activated after the delete read it is settled, not refunded', async () => {
    const { key } = await teamWithKey(h.url, 'race');
    h.sim.slowAnswersMs = 400;
    const created = postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'a fox', seconds: 4 }, key);
    await expect.poll(() => h.sim.tasks.size, { timeout: 10_000, interval: 10 }).toBe(1);
    const list = (await (await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).json()) as { data: Array<{ id: string }> };
    const id = list.data[0]!.id;
    expect((await h.gw.store.getJob('race', id))?.upstreamId).toBeNull();
    store.before('deleteJob', async () => {
      await expect.poll(async () => (await h.gw.store.getJob('race', id))?.upstreamId ?? null, { timeout: 10_000, interval: 10 }).not.toBeNull();
    });

    const deleted = await fetch(`${h.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth(key) });
    expect(await deleted.json()).toEqual({ id, object: 'video.deleted', deleted: true });
    expect((await created).res.status).toBe(200);
    const usage = (await admin(h.url, 'GET', '/teams/race/usage')).body;
    expect(usage).toMatchObject({ active_jobs: 0, day: { video_seconds: 4, video_seconds_reserved: 0 } });
    expect(h.logs.join('')).not.toMatch(/job deleted with its outcome unknown/);
  });
});
