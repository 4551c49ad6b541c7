import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { ADMIN_TOKEN, CLIENT_KEY, TestClock, UPSTREAM_KEY, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

/** A scrape as `name{label="v",…}` → value, labels in the order the gateway writes them. */
type Scrape = { text: string; values: Map<string, number> };

/** `token`: on the main listener, the admin token stands in for an unset METRICS_TOKEN; null sends none. */
async function scrape(url: string, token: string | null = ADMIN_TOKEN): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text, values };
}

const series = (name: string, labels: Record<string, string> = {}) =>
  Object.keys(labels).length ? `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : name;
const value = (s: Scrape, name: string, labels?: Record<string, string>) => s.values.get(series(name, labels)) ?? 0;

/** A clock a second into a fresh UTC minute, so that the per-minute window cannot roll over during a test. */
function minuteStartClock(): TestClock {
  const clock = new TestClock();
  clock.advance(60_000 - (Date.now() % 60_000) + 1_000);
  return clock;
}

describe('GET /metrics after known traffic (issue 14, item 2)', () => {
  let h: Harness;
  beforeAll(async () => {
    // Jobs stay in progress until the test settles them.
    h = await startHarness({ clock: minuteStartClock(), sim: { completeAfterMs: 3_600_000 } });
  });
  afterAll(() => h.close());

  it('moves every counter by exactly what was sent, and names no video, key or path', async () => {
    const { key, id: keyId } = await teamWithKey(h.url, 'metered', { requests_per_minute: 10 });
    const before = await scrape(h.url);
    const create = () => postJson(`${h.url}/v1/videos`, { prompt: 'a fox', seconds: 4 }, key);
    const poll = (id: string) => fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) });

    // 3 creates the upstream accepts, 1 whose answer never comes (reset mid-request): 4 requests, 16 s reserved.
    const videos = [];
    for (let i = 0; i < 3; i++) {
      const { res, body } = await create();
      expect(res.status).toBe(200);
      videos.push(body.id as string);
    }
    h.sim.failNextCreate({ status: 0, destroy: true });
    const uncertain = await create();
    expect(uncertain.res.status).toBe(502);
    const [a, b, c] = videos as [string, string, string];
    const [upA, upB] = [...h.sim.tasks.keys()].slice(-3) as [string, string, string];
    h.sim.settle(upA, 'completed');
    h.sim.settle(upB, 'failed');

    // 5 polls: a (settles 4 s), a again (terminal: no upstream call), b (refunds 4 s), c twice (running).
    for (const id of [a, a, b, c, c]) expect((await poll(id)).status).toBe(200);
    // 1 delete of the running c: one status call to learn its state, one upstream delete; it settles 4 s.
    expect((await fetch(`${h.url}/v1/videos/${c}`, { method: 'DELETE', headers: auth(key) })).status).toBe(200);
    // The 11th request of the minute is refused by the team's per-minute limit.
    const refused = await poll(a);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as any).error.code).toBe('rate_limit_exceeded');
    // A route nobody serves, and a wrong key on a real route (refused before the route's handler runs).
    expect((await fetch(`${h.url}/no/such/route/${a}`, { headers: auth(key) })).status).toBe(404);
    expect((await fetch(`${h.url}/v1/videos/${b}`, { headers: auth('gvk_not-a-key') })).status).toBe(401);

    const after = await scrape(h.url);
    const delta = (name: string, labels?: Record<string, string>) => value(after, name, labels) - value(before, name, labels);

    const http = (method: string, route: string, status: number) => delta('gateway_http_requests_total', { method, route, status: String(status) });
    expect(http('POST', '/v1/videos', 200)).toBe(3);
    expect(http('POST', '/v1/videos', 502)).toBe(1);
    expect(http('GET', '/v1/videos/:video_id', 200)).toBe(5);
    expect(http('GET', '/v1/videos/:video_id', 429)).toBe(1);
    expect(http('GET', '/v1/videos/:video_id', 401)).toBe(1);
    expect(http('DELETE', '/v1/videos/:video_id', 200)).toBe(1);
    expect(http('GET', 'unmatched', 404)).toBe(1);
    expect(delta('gateway_http_request_duration_seconds_count', { method: 'GET', route: '/v1/videos/:video_id' })).toBe(7);
    expect(delta('gateway_http_request_duration_seconds_bucket', { le: '+Inf', method: 'GET', route: '/v1/videos/:video_id' })).toBe(7);
    const httpTotal = [...after.values].filter(([k]) => k.startsWith('gateway_http_requests_total{') && !k.includes('route="/metrics"'));
    expect(httpTotal.reduce((n, [k, v]) => n + v - (before.values.get(k) ?? 0), 0)).toBe(13);

    const upstream = (operation: string, outcome: string) => delta('gateway_upstream_requests_total', { upstream: 'default', operation, outcome });
    expect(upstream('create', 'ok')).toBe(3);
    expect(upstream('create', 'network_error')).toBe(1);
    expect(upstream('status', 'ok')).toBe(5);
    expect(upstream('delete', 'ok')).toBe(1);
    expect(delta('gateway_upstream_request_duration_seconds_count', { upstream: 'default', operation: 'status', outcome: 'ok' })).toBe(5);
    const upstreamTotal = [...after.values].filter(([k]) => k.startsWith('gateway_upstream_requests_total{'));
    expect(upstreamTotal.reduce((n, [k, v]) => n + v - (before.values.get(k) ?? 0), 0)).toBe(10);

    expect(delta('gateway_quota_admissions_total', { kind: 'job' })).toBe(4);
    // Every request of the limited team is checked on arrival, creates included: 4 + 5 + 1 admitted, 1 refused.
    expect(delta('gateway_quota_admissions_total', { kind: 'request' })).toBe(10);
    expect(delta('gateway_quota_refusals_total', { limit: 'requests_per_minute', scope: 'team' })).toBe(1);

    expect(delta('gateway_video_seconds_reserved_total', { team: 'metered' })).toBe(16);
    expect(delta('gateway_video_seconds_settled_total', { team: 'metered' })).toBe(8);
    expect(delta('gateway_video_seconds_refunded_total', { team: 'metered' })).toBe(8);
    expect(delta('gateway_uncertain_creates_total')).toBe(1);

    for (const secret of [key, keyId, a, b, c, upA, upB, '/no/such/route', 'gvk_not-a-key', UPSTREAM_KEY, CLIENT_KEY, ADMIN_TOKEN]) {
      expect(after.text).not.toContain(secret);
    }
    // Process metrics come along (prom-client's defaults).
    expect(after.text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(after.text).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('counts each move of video-seconds once: a pending create deleted by its team, then accepted late', async () => {
    const { key } = await teamWithKey(h.url, 'late-metered');
    const before = await scrape(h.url);
    const sent = h.sim.creates().length;
    h.sim.stallMs = 1_500;
    const pending = postJson(`${h.url}/v1/videos`, { prompt: 'slow', seconds: 4 }, key);
    while (h.sim.creates().length === sent) await new Promise((r) => setTimeout(r, 10));
    h.sim.stallMs = 0;
    const list = (await (await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).json()) as any;
    // Deleted before the upstream named it: its outcome unknown, the reservation is refunded...
    expect((await fetch(`${h.url}/v1/videos/${list.data[0].id}`, { method: 'DELETE', headers: auth(key) })).status).toBe(200);
    // ...and once the upstream accepts it after all, charged as a finished job.
    await pending;
    const after = await scrape(h.url);
    const delta = (charge: string) => value(after, `gateway_video_seconds_${charge}_total`, { team: 'late-metered' }) - value(before, `gateway_video_seconds_${charge}_total`, { team: 'late-metered' });
    expect([delta('reserved'), delta('refunded'), delta('settled')]).toEqual([4, 4, 4]);
  });
});

describe('METRICS_PORT and METRICS_TOKEN', () => {
  const TOKEN = 'metrics-token-0123456789abcdef';
  const clock = minuteStartClock();
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ clock, env: { METRICS_PORT: '0', METRICS_TOKEN: TOKEN }, sim: { completeAfterMs: 3_600_000 } });
  });
  afterAll(() => h.close());

  it('serves /metrics on its own port only, and only with the token', async () => {
    expect(h.gw.metricsUrl).not.toBe(h.url);
    const onMain = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(onMain.status).toBe(404);
    expect(((await onMain.json()) as any).error.code).toBe('unknown_route');

    for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }, auth()]) {
      const res = await fetch(`${h.gw.metricsUrl}/metrics`, { headers });
      expect(res.status).toBe(401);
      expect(((await res.json()) as any).error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key', param: null });
    }
    const elsewhere = await fetch(`${h.gw.metricsUrl}/v1/videos`, { headers: auth() });
    expect(elsewhere.status).toBe(404);
    expect(((await elsewhere.json()) as any).error.code).toBe('unknown_route');
    await scrape(h.gw.metricsUrl, TOKEN);
  });

  it("reports active jobs per team, the tracker's backlog, and each end noticed: how late at most, after how many calls", async () => {
    const { res, body } = await postJson(`${h.url}/v1/videos`, { prompt: 'a fox', seconds: 4 });
    expect(res.status).toBe(200);
    // The first check is scheduled a few seconds out (written within milliseconds)...
    await new Promise((r) => setTimeout(r, 200));
    expect(value(await scrape(h.gw.metricsUrl, TOKEN), 'gateway_tracker_due_jobs')).toBe(0);
    // ...and two minutes pass without anyone (the tracker is off here) looking at the job.
    clock.advance(120_000);
    const s = await scrape(h.gw.metricsUrl, TOKEN);
    expect(value(s, 'gateway_active_jobs', { team: 'default' })).toBe(1);
    expect(value(s, 'gateway_tracker_due_jobs')).toBe(1);
    const overdue = value(s, 'gateway_tracker_overdue_seconds');
    expect(overdue).toBeGreaterThanOrEqual(100);
    expect(overdue).toBeLessThan(120);

    // A poll notices the end: its one status call, and how late at most (since the last look, two minutes ago).
    h.sim.settle([...h.sim.tasks.keys()].at(-1)!, 'completed');
    expect(((await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() })).json()) as any).status).toBe('completed');
    const ended = await scrape(h.gw.metricsUrl, TOKEN);
    expect(value(ended, 'gateway_job_status_checks_count') - value(s, 'gateway_job_status_checks_count')).toBe(1);
    expect(value(ended, 'gateway_job_status_checks_sum') - value(s, 'gateway_job_status_checks_sum')).toBe(1);
    expect(value(ended, 'gateway_job_end_notice_lag_seconds_count') - value(s, 'gateway_job_end_notice_lag_seconds_count')).toBe(1);
    expect(value(ended, 'gateway_job_end_notice_lag_seconds_bucket', { le: '60' })).toBe(value(s, 'gateway_job_end_notice_lag_seconds_bucket', { le: '60' }));
    expect(value(ended, 'gateway_job_end_notice_lag_seconds_bucket', { le: '300' }) - value(s, 'gateway_job_end_notice_lag_seconds_bucket', { le: '300' })).toBe(1);
  });
});

describe('who may read /metrics, which names every team and its usage', () => {
  const TOKEN = 'metrics-token-0123456789abcdef';
  const harnesses: Harness[] = [];
  const start = async (env: Record<string, string>) => {
    const h = await startHarness({ env });
    harnesses.push(h);
    return h;
  };
  afterAll(() => Promise.all(harnesses.map((h) => h.close())));
  const status = async (url: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${url}/metrics`, { headers });
    const body = res.status === 200 ? undefined : ((await res.json()) as any).error;
    return { status: res.status, code: body?.code as string | undefined };
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  it('on the main listener, without METRICS_TOKEN: the admin token only, never a team key or nothing', async () => {
    const h = await start({});
    expect(await status(h.url)).toEqual({ status: 401, code: 'invalid_api_key' });
    expect(await status(h.url, auth())).toEqual({ status: 401, code: 'invalid_api_key' });
    expect(await status(h.url, bearer(ADMIN_TOKEN))).toEqual({ status: 200, code: undefined });
  });

  it('on the main listener, with METRICS_TOKEN: that token only', async () => {
    const h = await start({ METRICS_TOKEN: TOKEN });
    expect(await status(h.url)).toEqual({ status: 401, code: 'invalid_api_key' });
    expect(await status(h.url, bearer(ADMIN_TOKEN))).toEqual({ status: 401, code: 'invalid_api_key' });
    expect(await status(h.url, bearer(TOKEN))).toEqual({ status: 200, code: undefined });
  });

  it('on the main listener, with neither token: not served (404 metrics_disabled, OpenAI-shaped)', async () => {
    const h = await start({ ADMIN_TOKEN: '' });
    expect(await status(h.url)).toEqual({ status: 404, code: 'metrics_disabled' });
    expect(await status(h.url, auth())).toEqual({ status: 404, code: 'metrics_disabled' });
  });

  it('on a METRICS_PORT listener of its own without METRICS_TOKEN: open, as Prometheus scrapes it; nothing on the main one', async () => {
    const h = await start({ METRICS_PORT: '0' });
    expect(await status(h.gw.metricsUrl)).toEqual({ status: 200, code: undefined });
    expect(await status(h.url, bearer(ADMIN_TOKEN))).toEqual({ status: 404, code: 'unknown_route' });
  });
});

describe('metrics configuration', () => {
  it.each([
    [{ METRICS_PORT: '8080', PORT: '8080' }, /METRICS_PORT must differ from PORT/],
    [{ METRICS_PORT: '70000' }, /METRICS_PORT/],
    [{ METRICS_TOKEN: 'short' }, /METRICS_TOKEN must be at least 16 characters/],
  ])('refuses %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('defaults to the main listener', () => {
    expect(loadConfig({}).metrics).toEqual({ token: undefined, port: undefined });
    expect(loadConfig({ METRICS_PORT: '9464', METRICS_TOKEN: ' ' }).metrics).toEqual({ token: undefined, port: 9464 });
  });
});
