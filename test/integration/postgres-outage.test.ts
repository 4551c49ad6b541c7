import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { ADMIN_TOKEN, UPSTREAM_KEY, admin, auth, teamWithKey } from '../support/harness.js';
import { postgresUrl } from '../support/postgres.js';
import { postgresBinDir, startCluster, type Cluster } from '../support/pg-cluster.js';

/**
 * PostgreSQL stopped and started again under traffic: a cluster of this test's own (the run's shared one
 * must stay up for the other files), one gateway process, clients that never stop sending.
 */
const ANSWER_BOUND_MS = 10_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  readonly status: number;
  readonly code: string | null;
  readonly retryAfter: string | null;
  readonly ms: number;
}

describe.skipIf(postgresUrl === null)('PostgreSQL stopped and started again during traffic', () => {
  let cluster: Cluster | undefined;
  let sim: UpstreamSimulator;
  let gw: ChildGateway;
  beforeAll(async () => {
    cluster = await startCluster(await postgresBinDir());
    sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 300 });
    gw = await spawnGateway({
      DATABASE_URL: cluster.url,
      UPSTREAM_BASE_URL: await sim.listen(),
      UPSTREAM_API_KEY: UPSTREAM_KEY,
      ADMIN_TOKEN,
      DATABASE_CONNECT_TIMEOUT_MS: '1000',
      DATABASE_STATEMENT_TIMEOUT_MS: '1000',
      // Creates whose outcome the outage hid are abandoned (and refunded) after twice this.
      UPSTREAM_TIMEOUT_MS: '2000',
      RECONCILE_INTERVAL_MS: '200',
      STATUS_CACHE_MS: '0',
      LOG_LEVEL: 'info',
    });
  }, 120_000);
  afterAll(async () => {
    await gw?.stop('SIGKILL');
    await sim?.close();
    cluster?.stop();
  });

  it('answers 503 store_unavailable with retry-after within a bound, recovers without a restart, and leaves no quota drift', async () => {
    // Every request needs the store: its per-minute limit is counted there.
    const { key } = await teamWithKey(gw.url, 'outage', { requests_per_minute: 100_000 });
    const answers: Answer[] = [];
    const send = async (make: () => Promise<Response>) => {
      const started = performance.now();
      try {
        const res = await make();
        const body = (await res.json()) as { id?: string; error?: { code: string | null } };
        answers.push({ status: res.status, code: body.error?.code ?? null, retryAfter: res.headers.get('retry-after'), ms: performance.now() - started });
        return body;
      } catch (err) {
        answers.push({ status: 0, code: (err as Error).message, retryAfter: null, ms: performance.now() - started });
        return {};
      }
    };
    let running = true;
    const client = async () => {
      while (running) {
        const created = await send(() => fetch(`${gw.url}/v1/videos`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify({ model: 'grok-video-3', prompt: 'x', seconds: 4 }) }));
        if (created.id) await send(() => fetch(`${gw.url}/v1/videos/${created.id}`, { headers: auth(key) }));
        await sleep(20);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    const ok = () => answers.filter((a) => a.status === 200).length;

    await sleep(1_000);
    const before = ok();
    expect(before).toBeGreaterThan(0);
    cluster!.pause();
    // Down until readiness says so (it is probed at most every few seconds), and a little longer.
    let ready = 200;
    for (let i = 0; i < 40 && ready !== 503; i++) {
      ready = (await fetch(`${gw.url}/readyz`)).status;
      if (ready !== 503) await sleep(250);
    }
    expect(ready).toBe(503);
    const during = answers.length;
    await sleep(1_000);
    cluster!.resume();
    const outage = answers.slice(during);
    expect(outage.length).toBeGreaterThan(0);
    expect(outage.filter((a) => a.status === 200)).toEqual([]);

    // Back without a restart: creates and polls succeed again.
    const resumedAt = answers.length;
    for (let i = 0; i < 60 && answers.slice(resumedAt).filter((a) => a.status === 200).length < 10; i++) await sleep(250);
    expect(answers.slice(resumedAt).filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(10);
    running = false;
    await Promise.all(clients);

    // Every request was answered, within the bound, and every failure was the clean one (or, for a create the
    // upstream took while the store was gone, the one that says its outcome is unknown).
    expect(answers.filter((a) => a.ms > ANSWER_BOUND_MS)).toEqual([]);
    const failures = answers.filter((a) => a.status !== 200);
    expect(failures.filter((a) => a.code === 'store_unavailable').length).toBeGreaterThan(0);
    for (const f of failures) {
      if (f.code === 'store_unavailable') {
        expect(f.status).toBe(503);
        expect(Number(f.retryAfter)).toBeGreaterThan(0);
      } else {
        expect(f).toMatchObject({ status: 500, code: 'internal_error' });
      }
    }

    // No drift: once every job has ended (or been abandoned and refunded), the day's seconds are exactly those
    // of the completed jobs the team can see, and nothing stays reserved.
    // A create the upstream took while the store was gone is recorded by background retries that back off up to
    // ACTIVATION_BACKGROUND_MAX_MS (60 s): its slot is held until then, so wait past that.
    let usage: any;
    for (let i = 0; i < 300; i++) {
      usage = (await admin(gw.url, 'GET', '/teams/outage/usage')).body;
      if (usage.active_jobs === 0) break;
      await sleep(250);
    }
    expect(usage).toMatchObject({ active_jobs: 0, day: { video_seconds_reserved: 0 } });
    const seen: Array<{ status: string; seconds: string }> = [];
    for (let after: string | undefined; ; ) {
      const page = (await (await fetch(`${gw.url}/v1/videos?limit=100${after ? `&after=${after}` : ''}`, { headers: auth(key) })).json()) as any;
      seen.push(...page.data);
      if (!page.has_more) break;
      after = page.data.at(-1).id;
    }
    const completedSeconds = seen.filter((v) => v.status === 'completed').reduce((n, v) => n + Number(v.seconds), 0);
    expect(seen.length).toBeGreaterThan(before / 2);
    expect(usage.day.video_seconds).toBe(completedSeconds);
  }, 120_000);
});
