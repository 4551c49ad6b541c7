import OpenAI6 from 'openai';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import OpenAI7 from 'openai7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

/**
 * Spend in money (§10) through the whole gateway: the estimate reserved at admission, the actual cost the
 * xAI upstream reports settled at the end (or the price, where it reports none), budgets in dollars refused
 * with insufficient_quota that the SDKs do not retry, and models without a price refused to such budgets.
 */
const usage = async (h: Harness, team: string, query = '') => (await admin(h.url, 'GET', `/teams/${team}/usage${query}`)).body;
const latestTask = (h: Harness) => [...h.sim.tasks.values()].at(-1)!;

async function poll(h: Harness, key: string, id: string) {
  for (let i = 0; i < 200; i++) {
    const v = (await (await fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) })).json()) as any;
    if (v.status === 'completed' || v.status === 'failed') return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`video ${id} never ended`);
}

describe('an xai upstream, which reports what it charged', () => {
  let h: Harness;
  beforeAll(async () => {
    // Jobs run until a test ends them.
    h = await startHarness({ sim: { kind: 'xai', completeAfterMs: 3_600_000 } });
  });
  afterAll(() => h.close());

  it("reserves the estimate at admission and settles to the upstream's own figure, the difference logged", async () => {
    const { key } = await teamWithKey(h.url, 'xai-actual', { usd_per_day: 10 });
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: 8, size: '1280x720' }, key);
    expect(res.status).toBe(200);
    expect(body.cost).toBeUndefined();
    // 8 s at 720p, $0.07 a second.
    expect((await usage(h, 'xai-actual')).day).toMatchObject({ usd: 0.56, usd_reserved: 0.56 });
    // xAI charged less than the list price: 4 321 000 000 ticks.
    h.sim.costTicks = () => 4_321_000_000;
    h.sim.settle(latestTask(h).id, 'completed');
    const done = await poll(h, key, body.id);
    h.sim.costTicks = () => undefined;
    expect(done.cost).toEqual({ usd: 0.4321, source: 'upstream' });
    expect((await usage(h, 'xai-actual')).day).toMatchObject({ video_seconds: 8, usd: 0.4321, usd_reserved: 0 });
    const settled = h.logs.map((l) => JSON.parse(l)).find((l) => l.msg?.includes('settled') && l.videoId === body.id);
    expect(settled).toMatchObject({ teamId: 'xai-actual', estimateUsd: 0.56, actualUsd: 0.4321, differenceUsd: -0.1279, source: 'upstream' });
  });

  it('settles at the price where the upstream reports no cost, at 1080p on grok-imagine-video-1.5 too', async () => {
    const { key } = await teamWithKey(h.url, 'xai-price', { usd_per_month: 10 });
    h.sim.costTicks = () => undefined;
    const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video-1.5', prompt: 'x', seconds: 4, size: '1920x1080' }, key);
    expect(body).toMatchObject({ size: '1920x1080', resolution: '1080P' });
    expect(JSON.parse(h.sim.creates().at(-1)!.body.toString())).toMatchObject({ model: 'grok-imagine-video-1.5', resolution: '1080p', duration: 4 });
    h.sim.settle(latestTask(h).id, 'completed');
    expect((await poll(h, key, body.id)).cost).toEqual({ usd: 1, source: 'price' });
    expect((await usage(h, 'xai-price')).month).toMatchObject({ usd: 1, usd_reserved: 0 });
  });

  it('a job that fails upstream costs nothing, whatever the upstream would have charged', async () => {
    const { key } = await teamWithKey(h.url, 'xai-failed', { usd_per_day: 10 });
    h.sim.costTicks = () => 9_000_000_000;
    const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: 5 }, key);
    h.sim.settle(latestTask(h).id, 'failed');
    const v = await poll(h, key, body.id);
    expect(v.status).toBe('failed');
    expect(v.cost).toBeUndefined();
    expect((await usage(h, 'xai-failed')).day).toMatchObject({ usd: 0, usd_reserved: 0 });
    expect(await h.gw.store.getJob('xai-failed', body.id)).toMatchObject({ costMicros: 0 });
  });

  it('adds up to the micro-dollar between the videos, the usage (per team and per model) and /metrics', async () => {
    const { key } = await teamWithKey(h.url, 'adds-up', { usd_per_month: 50 });
    const ids: string[] = [];
    const run = async (body: Record<string, unknown>, outcome: 'completed' | 'failed', ticks: number | undefined) => {
      const { body: v } = await postJson(`${h.url}/v1/videos`, { prompt: 'x', ...body }, key);
      h.sim.costTicks = () => ticks;
      h.sim.settle(latestTask(h).id, outcome);
      ids.push((await poll(h, key, v.id)).id);
    };
    await run({ model: 'grok-imagine-video', seconds: 3, size: '854x480' }, 'completed', 1_234_567_891);
    await run({ model: 'grok-imagine-video-1.5', seconds: 5, size: '854x480' }, 'completed', undefined);
    await run({ model: 'grok-imagine-video-1.5', seconds: 7, size: '1280x720' }, 'completed', 9_876_543_210);
    await run({ model: 'grok-imagine-video', seconds: 9 }, 'failed', 5_000_000_000);
    h.sim.costTicks = () => undefined;
    const micros = (usd: number) => Math.round(usd * 1e6);
    const videos = await Promise.all(ids.map(async (id) => (await (await fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) })).json()) as any));
    const fromVideos = videos.reduce((sum, v) => sum + micros(v.cost?.usd ?? 0), 0);
    // 0.1234568 + 5 × 0.08 + 0.987654321, each to the micro-dollar; the failed one nothing.
    expect(fromVideos).toBe(123_457 + 400_000 + 987_654);
    const u = await usage(h, 'adds-up', '?by=model');
    expect(micros(u.month.usd)).toBe(fromVideos);
    expect(u.month.usd_reserved).toBe(0);
    expect(u.by_model.reduce((sum: number, m: any) => sum + micros(m.month.usd), 0)).toBe(fromVideos);
    expect(u.by_model.map((m: any) => [m.model, micros(m.month.usd), m.month.jobs])).toEqual([
      ['grok-imagine-video', 123_457, 1],
      ['grok-imagine-video-1.5', 1_387_654, 2],
    ]);
    const metrics = await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    const series = metrics.split('\n').filter((l) => l.startsWith('gateway_spend_usd_total{') && l.includes('team="adds-up"'));
    expect(series.every((l) => l.includes('upstream="default"'))).toBe(true);
    expect(series.reduce((sum, l) => sum + micros(Number(l.split(' ').at(-1))), 0)).toBe(fromVideos);
  });

  it('refuses a video its dollar budget cannot cover: 429 insufficient_quota, not retried, naming the budget, the amount used and the estimate', async () => {
    const { key } = await teamWithKey(h.url, 'xai-budget', { usd_per_day: 1 });
    const create = () => postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: 8 }, key);
    expect((await create()).res.status).toBe(200);
    const sent = h.sim.creates().length;
    const refused = await create();
    expect(refused.res.status).toBe(429);
    expect(refused.res.headers.get('x-should-retry')).toBe('false');
    expect(refused.body.error).toMatchObject({ type: 'insufficient_quota', code: 'insufficient_quota' });
    expect(refused.body.error.message).toMatch(/daily \(UTC\) spend budget of your team.*\$1\.00.*\$0\.56 is used or reserved.*estimated at \$0\.56/);
    expect(h.sim.creates().length).toBe(sent);
    expect((await usage(h, 'xai-budget')).day).toMatchObject({ usd: 0.56, usd_reserved: 0.56 });
  });

  it.each([
    ['openai@6', (key: string, url: string) => new OpenAI6({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 3 })],
    ['openai@7', (key: string, url: string) => new OpenAI7({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 3 })],
  ] as const)('%s sees the refusal as a RateLimitError and does not retry it', async (name, make) => {
    const team = `sdk-usd-${name.replace(/\W/g, '')}`;
    const { key } = await teamWithKey(h.url, team, { usd_per_day: 0.5 });
    const client = make(key, h.url);
    const err = (await client.videos.create({ model: 'grok-imagine-video', prompt: 'x', seconds: '8' }).catch((e: unknown) => e)) as any;
    expect(err?.status).toBe(429);
    expect(err?.code).toBe('insufficient_quota');
    expect(err.constructor.name).toBe('RateLimitError');
    // One request: the SDK took x-should-retry: false at its word.
    expect((await usage(h, team)).day.requests).toBe(1);
  });
});

describe('a reseller upstream, whose grok-video-* models have no published price', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ sim: { completeAfterMs: 0 } });
  });
  afterAll(() => h.close());

  it('refuses an unpriced model to a key or team with a dollar budget (403 price_unknown), and counts it as unknown elsewhere', async () => {
    const { key: budgeted } = await teamWithKey(h.url, 'unpriced-budget', {}, { usd_per_month: 100 });
    const sent = h.sim.creates().length;
    const refused = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'x', seconds: 4 }, budgeted);
    expect(refused.res.status).toBe(403);
    expect(refused.body.error).toMatchObject({ type: 'permission_error', code: 'price_unknown', param: 'model' });
    expect(refused.body.error.message).toMatch(/this API key/);
    expect(h.sim.creates().length).toBe(sent);
    // A priced model passes the same key.
    expect((await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: 4 }, budgeted)).res.status).toBe(200);

    const { key } = await teamWithKey(h.url, 'unpriced-free');
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'x', seconds: 4 }, key);
    expect(res.status).toBe(200);
    const done = await poll(h, key, body.id);
    // Unknown, never $0.
    expect(done.cost).toBeNull();
    const u = await usage(h, 'unpriced-free', '?by=model');
    expect(u.day).toMatchObject({ video_seconds: 4, usd: 0 });
    expect(u.by_model).toEqual([{ model: 'grok-video-3', day: expect.objectContaining({ video_seconds: 4, usd: 0, jobs: 1 }), month: expect.objectContaining({ jobs: 1 }) }]);
  });
});

describe('budget.threshold webhook events', () => {
  const receiver = new WebhookReceiver();
  let h: Harness;
  beforeAll(async () => {
    await receiver.listen();
    h = await startHarness({ sim: { kind: 'xai', completeAfterMs: 3_600_000 }, env: { WEBHOOK_ALLOWED_HOSTS: receiver.hostPort, WEBHOOK_POLL_INTERVAL_MS: '25' } });
  });
  afterAll(async () => {
    await h?.close();
    await receiver.close();
  });

  it('tell a subscribed team when a day budget reaches 80 % and 100 %, once per period and threshold, signed like every event', async () => {
    const { key } = await teamWithKey(h.url, 'alerted', { usd_per_day: 1, usd_per_month: 10 });
    const { secret } = (await admin(h.url, 'PUT', '/teams/alerted/webhook', { url: `${receiver.url}/alerts`, events: ['budget.threshold'] })).body;
    // A team whose endpoint keeps the default events hears nothing of its budget.
    const quiet = await teamWithKey(h.url, 'not-subscribed', { usd_per_day: 0.3 });
    expect((await admin(h.url, 'PUT', '/teams/not-subscribed/webhook', { url: `${receiver.url}/quiet` })).body.events).toEqual(['video.completed', 'video.failed']);

    const create = async (k: string, seconds: number) => {
      const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds }, k);
      expect(res.status).toBe(200);
      await h.gw.budgetAlerts.idle();
      return { id: body.id as string, task: latestTask(h).id };
    };
    const settle = async (job: { id: string; task: string }, ticks: number) => {
      h.sim.costTicks = () => ticks;
      h.sim.settle(job.task, 'completed');
      await poll(h, key, job.id);
      await h.gw.budgetAlerts.idle();
    };
    // $0.56 reserved: 56 %.
    const first = await create(key, 8);
    // $0.84: 80 % reached, by a reservation.
    const second = await create(key, 4);
    // 93 % of its budget.
    await create(quiet.key, 4);
    // The first settles above its estimate ($0.70): $0.98, still under 100 %.
    await settle(first, 7_000_000_000);
    // The second too ($0.30): $1.00, 100 % reached, by a settlement.
    await settle(second, 3_000_000_000);
    // Nothing fits any more, and nothing is told twice.
    expect((await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: 1 }, key)).res.status).toBe(429);
    await h.gw.budgetAlerts.idle();

    await receiver.waitFor(2);
    await new Promise((r) => setTimeout(r, 200));
    const events = receiver.received.map((r) => JSON.parse(r.body));
    expect(events).toHaveLength(2);
    const today = new Date().toISOString().slice(0, 10);
    expect(events.map((e) => [e.type, e.data])).toEqual([
      ['budget.threshold', { team: 'alerted', period: 'day', start: today, limit_usd: 1, used_usd: 0.84, percent: 80 }],
      ['budget.threshold', { team: 'alerted', period: 'day', start: today, limit_usd: 1, used_usd: 1, percent: 100 }],
    ]);
    const sdk = new OpenAI6({ apiKey: 'unused', webhookSecret: secret });
    for (const r of receiver.received) {
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]));
      expect(await sdk.webhooks.unwrap(r.body, headers)).toMatchObject({ type: 'budget.threshold' });
    }
    const listed = (await admin(h.url, 'GET', '/teams/alerted/webhook/deliveries')).body.data;
    expect(listed.map((d: any) => [d.type, d.video_id, d.status])).toEqual([
      ['budget.threshold', null, 'delivered'],
      ['budget.threshold', null, 'delivered'],
    ]);
  });
});
