import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config.js';
import type { UpstreamSimulator } from '../../src/simulator/server.js';
import { MAX_SENDS_PER_TEAM } from '../../src/webhooks/worker.js';
import { admin, ADMIN_TOKEN, auth, postJson, startHarness, teamWithKey, TestClock, type Harness } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';
import { WebhookReceiver, type Received } from '../support/webhook-receiver.js';

/**
 * Tracking jobs nobody polls (contract §11): a fleet of jobs that the simulator finishes by time, as real
 * upstreams do, webhooks on and no client polling; every end must be noticed and its event sent within
 * 5 s (p95), 15 s at most, at a few status calls per job (counted on the simulator).
 */
const JOBS = 200;
const TEAMS = 4;
const FINISH_MS = 3_000;
const LAG_P95_MS = 5_000;
const LAG_MAX_MS = 15_000;
const CALLS_PER_JOB = 5;

const eventOf = (r: Received) => JSON.parse(r.body) as { id: string; type: string; data: { id: string } };
const quantile = (xs: readonly number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** Runs `fn` over `items`, `width` at a time; `worker` says which of the `width` runs it. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T, worker: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async (_, worker) => {
      while (next < items.length) await fn(items[next++]!, worker);
    }),
  );
}

/**
 * Creates JOBS videos over the gateways in turn, spread over TEAMS teams with an endpoint each, and waits for
 * every event; returns each event's lag behind its upstream task's end, and the status calls of each task.
 */
async function runFleet(gateways: readonly Harness[], sim: UpstreamSimulator, receiver: WebhookReceiver, prefix: string) {
  const keys: string[] = [];
  for (let t = 0; t < TEAMS; t++) {
    const team = `${prefix}-${t}`;
    keys.push((await teamWithKey(gateways[0]!.url, team)).key);
    expect((await admin(gateways[0]!.url, 'PUT', `/teams/${team}/webhook`, { url: `${receiver.url}/${team}` })).res.status).toBe(200);
  }
  const from = receiver.received.length;
  const videos = new Map<string, { team: string; gateway: Harness }>();
  // Each of the 8 runs keeps to one team's key and one gateway: two creates in flight per key, as a key may have four.
  await inParallel(Array.from({ length: JOBS }, (_, i) => i), 8, async (i, worker) => {
    const gateway = gateways[worker % gateways.length]!;
    const { res, body } = await postJson(`${gateway.url}/v1/videos`, { model: 'grok-imagine-video', prompt: `fleet ${i}`, seconds: '4' }, keys[worker % TEAMS]);
    expect(res.status, JSON.stringify(body)).toBe(200);
    videos.set(body.id as string, { team: `${prefix}-${worker % TEAMS}`, gateway });
  });
  await receiver.waitFor(from + JOBS, 60_000);
  // Time for a duplicate to show up, were one sent.
  await new Promise((r) => setTimeout(r, 500));
  const events = receiver.received.slice(from);
  const lags: number[] = [];
  const calls: number[] = [];
  for (const r of events) {
    const video = videos.get(eventOf(r).data.id)!;
    const job = await video.gateway.gw.store.getJob(video.team, eventOf(r).data.id);
    const task = sim.tasks.get(job!.upstreamId!)!;
    lags.push(r.at - (task.createdAtMs + task.completeAfterMs));
    calls.push(task.statusCalls ?? 0);
  }
  return { events, videos, lags, calls };
}

function expectPrompt(run: Awaited<ReturnType<typeof runFleet>>): void {
  const { events, videos, lags, calls } = run;
  // Every video's event, once.
  expect(events).toHaveLength(JOBS);
  expect(new Set(events.map((r) => r.headers['webhook-id'])).size).toBe(JOBS);
  expect(new Set(events.map((r) => eventOf(r).data.id))).toEqual(new Set(videos.keys()));
  expect(events.every((r) => eventOf(r).type === 'video.completed')).toBe(true);
  const summary = { lagP50: quantile(lags, 0.5), lagP95: quantile(lags, 0.95), lagMax: Math.max(...lags), callsMean: calls.reduce((a, b) => a + b, 0) / calls.length, callsMax: Math.max(...calls) };
  expect(summary.lagP95, JSON.stringify(summary)).toBeLessThanOrEqual(LAG_P95_MS);
  expect(summary.lagMax, JSON.stringify(summary)).toBeLessThanOrEqual(LAG_MAX_MS);
  expect(summary.callsMax, JSON.stringify(summary)).toBeLessThanOrEqual(CALLS_PER_JOB);
}

const trackingEnv = (receiver: WebhookReceiver) => ({
  // The tracker at its defaults (the harness turns it off for the other suites).
  RECONCILE_INTERVAL_MS: String(DEFAULTS.reconcileIntervalMs),
  WEBHOOK_ALLOWED_HOSTS: receiver.hostPort,
});

describe('jobs nobody polls, on SQLite: every end noticed and sent within the bound (issue 21)', () => {
  const receiver = new WebhookReceiver();
  let h: Harness;
  beforeAll(async () => {
    await receiver.listen();
    h = await startHarness({ sim: { completeAfterMs: FINISH_MS }, env: trackingEnv(receiver) });
  });
  afterAll(async () => {
    await h?.close();
    await receiver.close();
  });

  it(`${JOBS} jobs over ${TEAMS} teams; the admin view shows the ends it noticed and an empty backlog`, { timeout: 90_000 }, async () => {
    const run = await runFleet([h], h.sim, receiver, 'fleet');
    expectPrompt(run);
    const { res, body } = await admin(h.url, 'GET', '/tracking');
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ object: 'tracking', due_jobs: 0, overdue_seconds: 0, recent_ends: { jobs: JOBS } });
    const recent = body.recent_ends as { notice_lag_seconds: { p50: number; p95: number; max: number }; status_checks_per_job: number };
    // An upper bound of the lag to the notice (the upstream's end time is in whole seconds), the event comes after.
    expect(recent.notice_lag_seconds.p95 * 1000).toBeLessThanOrEqual(quantile(run.lags, 0.95) + 1_000);
    expect(recent.status_checks_per_job).toBeCloseTo(run.calls.reduce((a, b) => a + b, 0) / JOBS, 1);
  });
});

describe.skipIf(postgresUrl === null)('jobs nobody polls, on two replicas sharing PostgreSQL: every end noticed and sent once, within the bound (issue 21)', () => {
  const receiver = new WebhookReceiver();
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let a: Harness;
  let b: Harness;
  beforeAll(async () => {
    db = await freshDatabase();
    await receiver.listen();
    const env = { DATABASE_URL: db.url, ...trackingEnv(receiver) };
    a = await startHarness({ sim: { completeAfterMs: FINISH_MS }, env });
    b = await startHarness({ upstream: { sim: a.sim, url: a.upstreamUrl }, env });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await receiver.close();
    await db?.drop();
  });

  it(`${JOBS} jobs over ${TEAMS} teams, created through both`, { timeout: 90_000 }, async () => {
    expectPrompt(await runFleet([a, b], a.sim, receiver, 'pg-fleet'));
  });
});

describe("webhook delivery is fair across teams: one team's hanging endpoint never delays another's events (issue 21)", () => {
  const hanging = new WebhookReceiver();
  const healthy = new WebhookReceiver();
  let h: Harness;
  beforeAll(async () => {
    await hanging.listen();
    await healthy.listen();
    hanging.answer = { kind: 'hang' };
    h = await startHarness({
      // Jobs end at once upstream; the tracker runs on demand here, so the test says when each end is seen.
      sim: { completeAfterMs: 0 },
      env: { WEBHOOK_ALLOWED_HOSTS: `${hanging.hostPort},${healthy.hostPort}`, WEBHOOK_TIMEOUT_MS: '10000' },
    });
  });
  afterAll(async () => {
    await h?.close();
    await hanging.close();
    await healthy.close();
  });

  const createMany = async (key: string, n: number) =>
    inParallel(Array.from({ length: n }, (_, i) => i), 4, async (i) => {
      expect((await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: `fair ${i}`, seconds: '4' }, key)).res.status).toBe(200);
    });
  /** Sweeps until the tracker finds nothing left to check: every end is noticed, every event queued. */
  const noticeAll = async () => {
    while ((await h.gw.tracker.pass({ all: true })) > 0);
  };

  it('hundreds of events pending for a hanging endpoint; the other team’s arrive within a second or two', { timeout: 60_000 }, async () => {
    const slow = await teamWithKey(h.url, 'fair-slow');
    const prompt = await teamWithKey(h.url, 'fair-prompt');
    await admin(h.url, 'PUT', '/teams/fair-slow/webhook', { url: `${hanging.url}/slow` });
    await admin(h.url, 'PUT', '/teams/fair-prompt/webhook', { url: `${healthy.url}/prompt` });

    await createMany(slow.key, 300);
    await noticeAll();
    // The hanging endpoint holds its team's share of sends, no more...
    await hanging.waitFor(MAX_SENDS_PER_TEAM);
    await new Promise((r) => setTimeout(r, 300));
    expect(hanging.received).toHaveLength(MAX_SENDS_PER_TEAM);

    // ...and the other team's events go out at once, hundreds of events queued before them or not.
    await createMany(prompt.key, 10);
    const noticed = Date.now();
    await noticeAll();
    await healthy.waitFor(10, 5_000);
    expect(Math.max(...healthy.received.map((r) => r.at)) - noticed).toBeLessThan(2_000);
    expect(hanging.received).toHaveLength(MAX_SENDS_PER_TEAM);
  });
});

describe('client polls and the tracker (issue 21)', () => {
  const clock = new TestClock();
  let h: Harness;
  beforeAll(async () => {
    // Jobs stay in progress; the tracker runs on demand; three status calls a second to the upstream.
    h = await startHarness({ clock, sim: { completeAfterMs: 3_600_000 }, env: { UPSTREAM_STATUS_RPS: '3' } });
  });
  afterAll(() => h?.close());

  const create = async () => (await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: '4' })).body.id as string;
  const poll = async (id: string) => (await fetch(`${h.url}/v1/videos/${id}`, { headers: auth() })).json() as Promise<{ status: string }>;
  /** The next checks are written a few milliseconds after the calls. */
  const written = () => new Promise((r) => setTimeout(r, 100));

  it('a poll that checks a job moves its next check: the tracker leaves the job be until then', async () => {
    const id = await create();
    clock.advance(60_000);
    await poll(id);
    await written();
    expect(await h.gw.tracker.pass()).toBe(0);
    clock.advance(60_000);
    expect(await h.gw.tracker.pass()).toBe(1);
    expect((await h.gw.store.getJob('default', id))?.statusChecks).toBe(2);
  });

  it("polls share the upstream's status calls with the tracker: past the budget, a poll answers what is known", async () => {
    const id = await create();
    const task = [...h.sim.tasks.values()].at(-1)!;
    await new Promise((r) => setTimeout(r, 1_100));
    const before = task.statusCalls ?? 0;
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await poll(id));
    expect(answers.every((a) => a.status === 'queued' || a.status === 'in_progress')).toBe(true);
    const made = (task.statusCalls ?? 0) - before;
    expect(made).toBeGreaterThanOrEqual(3);
    expect(made).toBeLessThanOrEqual(4);
    const metrics = await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    expect(Number(/^gateway_upstream_status_budget_exhausted_total\{upstream="default"\} (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(8 - made);
  });
});

describe('jobs that clients poll never hold up the ones nobody polls (issue 21)', () => {
  const receiver = new WebhookReceiver();
  let h: Harness;
  beforeAll(async () => {
    await receiver.listen();
    h = await startHarness({ sim: { completeAfterMs: FINISH_MS }, env: { ...trackingEnv(receiver), STATUS_CACHE_MS: String(DEFAULTS.statusCacheMs) } });
  });
  afterAll(async () => {
    await h?.close();
    await receiver.close();
  });

  it('60 jobs polled all along, whose status does not change; the one nobody polls is noticed within the bound', { timeout: 60_000 }, async () => {
    const { key } = await teamWithKey(h.url, 'watched');
    const polled: string[] = [];
    for (let i = 0; i < 60; i++) {
      polled.push((await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: `polled ${i}`, seconds: '4' }, key)).body.id);
      [...h.sim.tasks.values()].at(-1)!.completeAfterMs = 3_600_000;
    }
    // Each polled about twice a second, so that its status, cached for a second, is mostly fresh.
    let polling = true;
    const polls = (async () => {
      while (polling) {
        await inParallel(polled, 8, async (id) => void (await fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) })));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    try {
      const { key: quietKey } = await teamWithKey(h.url, 'quiet');
      await admin(h.url, 'PUT', '/teams/quiet/webhook', { url: `${receiver.url}/quiet` });
      await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'nobody polls me', seconds: '4' }, quietKey);
      const task = [...h.sim.tasks.values()].at(-1)!;
      await receiver.waitFor(1, 20_000);
      expect(receiver.received[0]!.at - (task.createdAtMs + task.completeAfterMs)).toBeLessThanOrEqual(LAG_P95_MS);
    } finally {
      polling = false;
      await polls;
    }
  });
});
