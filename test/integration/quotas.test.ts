import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

let h: Harness;
const clock = new TestClock();
beforeAll(async () => {
  // Jobs stay in progress until a test settles them.
  h = await startHarness({ clock, sim: { completeAfterMs: 3_600_000 } });
});
afterAll(() => h.close());

const create = (key: string, body: Record<string, unknown> = {}) => postJson(`${h.url}/v1/videos`, { prompt: 'x', ...body }, key);
const usage = async (team: string) => (await admin(h.url, 'GET', `/teams/${team}/usage`)).body;
const upstreamIdOf = (videoCount: number) => [...h.sim.tasks.keys()].slice(-videoCount);

describe('atomic admission (contract §4)', () => {
  it('50 concurrent creates against max_concurrent_jobs: 5 admit exactly 5', async () => {
    const { key } = await teamWithKey(h.url, 'conc', { max_concurrent_jobs: 5 });
    const before = h.sim.creates().length;
    const results = await Promise.all(Array.from({ length: 50 }, () => create(key)));
    const statuses = results.map((r) => r.res.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(45);
    expect(new Set(results.filter((r) => r.res.status === 429).map((r) => r.body.error.code))).toEqual(new Set(['concurrency_limit_exceeded']));
    expect(h.sim.creates().length - before).toBe(5);
    const u = await usage('conc');
    expect(u.active_jobs).toBe(5);
    // Refused creates reserved no seconds; each was one request all the same.
    expect(u.day).toMatchObject({ video_seconds: 30, requests: 50 });
    expect(u.requests_this_minute).toBe(50);
  });

  it('a burst against a daily budget never overshoots it by a single second', async () => {
    const { key } = await teamWithKey(h.url, 'budget', { video_seconds_per_day: 20 });
    const results = await Promise.all(Array.from({ length: 30 }, () => create(key, { seconds: 3 })));
    expect(results.filter((r) => r.res.status === 200)).toHaveLength(6);
    const refused = results.filter((r) => r.res.status === 429);
    expect(refused).toHaveLength(24);
    expect(refused[0]!.body.error.code).toBe('insufficient_quota');
    expect(refused[0]!.body.error.type).toBe('insufficient_quota');
    expect(refused[0]!.res.headers.get('x-should-retry')).toBe('false');
    expect(refused[0]!.body.error.message).toMatch(/3 seconds requested, 2 of 20 left/);
    const u = await usage('budget');
    expect(u.day.video_seconds).toBe(18);
    expect(u.day.video_seconds).toBeLessThanOrEqual(20);
    // 2 seconds are left: a 2-second video fits exactly, a 1-second one after it does not.
    expect((await create(key, { seconds: 2 })).res.status).toBe(200);
    expect((await create(key, { seconds: 1 })).res.status).toBe(429);
    expect((await usage('budget')).day.video_seconds).toBe(20);
  });

  it('the monthly budget holds across days', async () => {
    const { key } = await teamWithKey(h.url, 'monthly', { video_seconds_per_month: 10 });
    expect((await create(key, { seconds: 6 })).res.status).toBe(200);
    expect((await create(key, { seconds: 5 })).body.error.code).toBe('insufficient_quota');
    expect((await usage('monthly')).month.video_seconds).toBe(6);
  });

  it('every create counts against the per-minute limit, whatever its outcome', async () => {
    const { key } = await teamWithKey(h.url, 'mixed', { requests_per_minute: 4, max_concurrent_jobs: 1 });
    expect((await create(key)).res.status).toBe(200);
    expect((await create(key)).body.error.code).toBe('concurrency_limit_exceeded');
    // Two requests counted so far: two more fit in the minute.
    for (let i = 0; i < 2; i++) expect((await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).status).toBe(200);
    const limited = await fetch(`${h.url}/v1/videos`, { headers: auth(key) });
    expect(limited.status).toBe(429);
    expect((await limited.json()) as unknown).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    clock.advance(60_000);
  });

  it('a create is counted before its body is read: invalid creates run into the per-minute limit', async () => {
    const { key } = await teamWithKey(h.url, 'rpm-invalid', { requests_per_minute: 10 }, { requests_per_minute: 1 });
    const before = h.sim.creates().length;
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await postJson(`${h.url}/v1/videos`, { prompt: 'x', seconds: 'eight' }, key));
    expect(results.map((r) => r.res.status)).toEqual([400, 429, 429, 429, 429]);
    expect(results[0]!.body.error.param).toBe('seconds');
    for (const r of results.slice(1)) {
      expect(r.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
      expect(Number(r.res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    }
    // A valid create is refused the same way, before reaching the upstream.
    expect((await create(key)).res.status).toBe(429);
    expect(h.sim.creates().length).toBe(before);
    expect((await usage('rpm-invalid')).requests_this_minute).toBe(1);
    clock.advance(60_000);
  });

  it('rate limits answer with retry-after headers; successes carry x-ratelimit-*', async () => {
    const { key } = await teamWithKey(h.url, 'rpm', { requests_per_minute: 3 });
    const ok = await fetch(`${h.url}/v1/videos`, { headers: auth(key) });
    expect(ok.headers.get('x-ratelimit-limit-requests')).toBe('3');
    expect(ok.headers.get('x-ratelimit-remaining-requests')).toBe('2');
    expect(ok.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+s$/);
    await fetch(`${h.url}/v1/videos`, { headers: auth(key) });
    const created = await create(key);
    expect(created.res.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    const refused = await fetch(`${h.url}/v1/videos`, { headers: auth(key) });
    expect(refused.status).toBe(429);
    const body = (await refused.json()) as { error: { code: string; type: string } };
    expect(body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'rate_limit_error' });
    const after = Number(refused.headers.get('retry-after'));
    const afterMs = Number(refused.headers.get('retry-after-ms'));
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(60);
    expect(afterMs).toBeGreaterThan(0);
    expect(afterMs).toBeLessThanOrEqual(60_000);
    // The next minute window admits again.
    clock.advance(60_000);
    expect((await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).status).toBe(200);
  });

  it('a key may carry a tighter policy than its team; both apply', async () => {
    const { key: tight } = await teamWithKey(h.url, 'layered', { max_concurrent_jobs: 3 }, { max_concurrent_jobs: 1 });
    const other = (await admin(h.url, 'POST', '/teams/layered/keys', {})).body.key as string;
    expect((await create(tight)).res.status).toBe(200);
    const refused = await create(tight);
    expect([refused.res.status, refused.body.error.code]).toEqual([429, 'concurrency_limit_exceeded']);
    expect(refused.body.error.message).toMatch(/this API key/);
    expect((await create(other)).res.status).toBe(200);
    expect((await create(other)).res.status).toBe(200);
    const teamRefused = await create(other);
    expect(teamRefused.res.status).toBe(429);
    expect(teamRefused.body.error.message).toMatch(/your team/);
  });

  it('model allow-lists give 403 and filter /v1/models; max_seconds_per_video gives 400', async () => {
    const { key } = await teamWithKey(h.url, 'limited', { models: ['grok-video-3'], max_seconds_per_video: 8 });
    const forbidden = await create(key, { model: 'grok-imagine-video' });
    expect(forbidden.res.status).toBe(403);
    expect(forbidden.body.error.param).toBe('model');
    const tooLong = await create(key, { model: 'grok-video-3', seconds: 10 });
    expect(tooLong.res.status).toBe(400);
    expect(tooLong.body.error).toMatchObject({ param: 'seconds', code: 'seconds_limit_exceeded' });
    expect((await create(key, { model: 'grok-video-3', seconds: 8 })).res.status).toBe(200);
    const models = (await (await fetch(`${h.url}/v1/models`, { headers: auth(key) })).json()) as { data: Array<{ id: string }> };
    // An alias of an allowed model is the same model under another name.
    expect(models.data.map((m) => m.id)).toEqual(['grok-video-3', 'sora-2']);
    // Three creates (refused or not) and the model list.
    expect((await usage('limited')).day.requests).toBe(4);
  });

  it('a policy change applies at once', async () => {
    const { key } = await teamWithKey(h.url, 'patched', {});
    expect((await create(key)).res.status).toBe(200);
    await admin(h.url, 'PATCH', '/teams/patched', { quota: { max_concurrent_jobs: 1 } });
    expect((await create(key)).res.status).toBe(429);
  });
});

describe('refunds and freed slots (contract §4)', () => {
  const fresh = async (id: string) => (await teamWithKey(h.url, id, { max_concurrent_jobs: 1, video_seconds_per_day: 100, usd_per_day: 100 })).key;
  /** Nothing held or charged, in seconds or in money (§10: the estimate is refunded exactly where the seconds are). */
  const expectClean = async (team: string) => {
    const u = await usage(team);
    expect(u.active_jobs).toBe(0);
    expect(u.day.video_seconds).toBe(0);
    expect(u.day.video_seconds_reserved).toBe(0);
    expect(u.day).toMatchObject({ usd: 0, usd_reserved: 0 });
    expect(u.month).toMatchObject({ usd: 0, usd_reserved: 0 });
  };

  it.each<[string, Parameters<Harness['sim']['failNextCreate']>[0], number, string]>([
    ['upstream 4xx', { status: 400, body: '{"error":{"message":"bad"}}' }, 400, 'upstream_rejected'],
    ['upstream 5xx', { status: 500, body: '{}' }, 502, 'upstream_error'],
    ['connection dropped', { status: 0, destroy: true }, 502, 'upstream_error'],
    ['garbled answer', { status: 200, body: 'not json' }, 502, 'upstream_error'],
  ])('%s: seconds refunded and the slot freed', async (name, fail, status, code) => {
    const team = `refund-${name.replace(/\W+/g, '-')}`;
    const key = await fresh(team);
    h.sim.failNextCreate(fail);
    const refused = await create(key, { seconds: 5 });
    expect([refused.res.status, refused.body.error.code]).toEqual([status, code]);
    await expectClean(team);
    expect((await create(key, { seconds: 5 })).res.status).toBe(200);
  });

  it.each(['failed', 'cancelled'] as const)('a job that ends %s is refunded once, however often it is polled', async (outcome) => {
    const team = `ended-${outcome}`;
    const key = await fresh(team);
    const { body } = await create(key, { seconds: 5 });
    // grok-imagine-video at 720p: $0.07 a second.
    expect((await usage(team)).day).toMatchObject({ video_seconds_reserved: 5, usd_reserved: 0.35 });
    h.sim.settle(upstreamIdOf(1)[0]!, outcome);
    for (let i = 0; i < 3; i++) {
      const v = (await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth(key) })).json()) as { status: string };
      expect(v.status).toBe('failed');
    }
    await h.gw.tracker.pass({ all: true });
    await expectClean(team);
  });

  it('a completed job is settled: seconds stay counted, the slot is free', async () => {
    const key = await fresh('settled');
    const { body } = await create(key, { seconds: 5 });
    h.sim.settle(upstreamIdOf(1)[0]!, 'completed');
    await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth(key) });
    const u = await usage('settled');
    expect(u).toMatchObject({ active_jobs: 0, day: { video_seconds: 5, video_seconds_reserved: 0, usd: 0.35, usd_reserved: 0 } });
  });

  it('the tracker frees a slot when nobody polls', async () => {
    const key = await fresh('unpolled');
    await create(key, { seconds: 4 });
    expect((await create(key)).res.status).toBe(429);
    h.sim.settle(upstreamIdOf(1)[0]!, 'completed');
    await h.gw.tracker.pass({ all: true });
    expect((await usage('unpolled')).active_jobs).toBe(0);
    expect((await create(key)).res.status).toBe(200);
  });

  it('a create refused for concurrency first looks whether a held slot has finished upstream', async () => {
    const key = await fresh('finished-unpolled');
    await create(key, { seconds: 3 });
    h.sim.settle(upstreamIdOf(1)[0]!, 'completed');
    // Nobody polled and the tracker did not run: admission finds the finished job itself.
    expect((await create(key)).res.status).toBe(200);
    expect((await usage('finished-unpolled')).day.video_seconds).toBe(9);
    // A slot held by a job still running is still refused.
    expect((await create(key)).body.error.code).toBe('concurrency_limit_exceeded');
  });

  it('the tracker moves past jobs whose check fails', async () => {
    const key = await fresh('unreachable-jobs');
    const { body } = await create(key, { seconds: 2 });
    const before = (await h.gw.store.getJob('unreachable-jobs', body.id))!.updatedAtMs;
    // The upstream fails on the task: every refresh fails.
    h.sim.tasks.get(upstreamIdOf(1)[0]!)!.statusFailure = 500;
    clock.advance(5);
    await h.gw.tracker.pass({ all: true });
    expect((await h.gw.store.getJob('unreachable-jobs', body.id))!.updatedAtMs).toBeGreaterThan(before);
  });

  describe("a job the upstream no longer knows (its status answers new-api's 400 task_not_exist, or 404) is failed and refunded", () => {
    const expectLost = async (key: string, id: string) => {
      const polled = await fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) });
      expect(polled.status).toBe(200);
      expect(await polled.json()).toMatchObject({ id, status: 'failed', error: { code: 'upstream_lost', message: expect.stringContaining('no longer knows') } });
    };

    it.each(['task_not_exist', 'not_found'] as const)('when a client polls it (%s): the poll answers the failed video, and the slot is free', async (answer) => {
      const team = `lost-polled-${answer}`;
      const key = await fresh(team);
      const { body } = await create(key, { seconds: 4 });
      expect((await create(key)).body.error.code).toBe('concurrency_limit_exceeded');
      // The simulator restarted and forgot its tasks.
      h.sim.unknownTask = answer;
      h.sim.tasks.delete(upstreamIdOf(1)[0]!);
      try {
        await expectLost(key, body.id);
      } finally {
        h.sim.unknownTask = 'task_not_exist';
      }
      await expectClean(team);
      expect((await create(key)).res.status).toBe(200);
    });

    it('when the tracker checks it', async () => {
      const key = await fresh('lost-unpolled');
      const { body } = await create(key, { seconds: 4 });
      h.sim.tasks.delete(upstreamIdOf(1)[0]!);
      await h.gw.tracker.pass({ all: true });
      await expectClean('lost-unpolled');
      await expectLost(key, body.id);
      expect((await create(key)).res.status).toBe(200);
    });

    it.each([503, 400, 422])('a failing status call (%i) is not a loss, nor the client\'s invalid request: 502, and the job stays running', async (status) => {
      const team = `lost-not-${status}`;
      const key = await fresh(team);
      const { body } = await create(key, { seconds: 4 });
      h.sim.tasks.get(upstreamIdOf(1)[0]!)!.statusFailure = status;
      const polled = await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth(key) });
      expect(polled.status).toBe(502);
      const { error } = (await polled.json()) as { error: { type: string; code: string; message: string; param: string | null } };
      expect(error).toMatchObject({ type: 'upstream_error', code: 'upstream_error', param: null });
      // The upstream's words go to the log only.
      expect(error.message).not.toMatch(/simulated/);
      expect(h.logs.join('')).toMatch(/"op":"status","upstreamSaid":"simulated status failure"/);
      await h.gw.tracker.pass({ all: true });
      expect((await usage(team)).active_jobs).toBe(1);
    });
  });

  it('the tracker fails and refunds a job older than MAX_JOB_AGE_MS', async () => {
    const key = await fresh('abandoned');
    const { body } = await create(key, { seconds: 4 });
    clock.advance(7 * 3600_000);
    await h.gw.tracker.pass({ all: true });
    await expectClean('abandoned');
    const v = (await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth(key) })).json()) as { status: string; error: { code: string } };
    expect(v).toMatchObject({ status: 'failed', error: { code: 'expired' } });
  });
});

describe('tenancy (contract §2)', () => {
  it("another team's video is indistinguishable from an unknown one on every route", async () => {
    const { key: a } = await teamWithKey(h.url, 'tenant-a');
    const { key: b } = await teamWithKey(h.url, 'tenant-b');
    const { body } = await create(a);
    h.sim.settle(upstreamIdOf(1)[0]!, 'completed');
    const id = body.id as string;
    const unknown = 'video_00000000000000000000000000000000';
    for (const [method, path] of [['GET', ''], ['GET', '/content'], ['DELETE', '']] as const) {
      const theirs = await fetch(`${h.url}/v1/videos/${id}${path}`, { method, headers: auth(b) });
      const missing = await fetch(`${h.url}/v1/videos/${unknown}${path}`, { method, headers: auth(b) });
      expect(theirs.status).toBe(404);
      expect(missing.status).toBe(404);
      const [t, m] = (await Promise.all([theirs.json(), missing.json()])) as Array<{ error: Record<string, string> }>;
      expect({ ...t!.error, message: t!.error.message!.replace(id, 'ID') }).toEqual({ ...m!.error, message: m!.error.message!.replace(unknown, 'ID') });
    }
    const list = (await (await fetch(`${h.url}/v1/videos?limit=100`, { headers: auth(b) })).json()) as { data: Array<{ id: string }> };
    expect(list.data.map((v) => v.id)).not.toContain(id);
    expect((await fetch(`${h.url}/v1/videos?after=${id}`, { headers: auth(b) }).then((r) => r.json()) as { data: unknown[] }).data).toEqual([]);
    // The owner still has it.
    expect((await fetch(`${h.url}/v1/videos/${id}`, { headers: auth(a) })).status).toBe(200);
  });
});

describe('what the OpenAI SDK sees', () => {
  it('a rate limit is a RateLimitError, and insufficient_quota is not retried', async () => {
    const { key } = await teamWithKey(h.url, 'sdk-quota', { video_seconds_per_day: 4 });
    const client = new OpenAI({ apiKey: key, baseURL: `${h.url}/v1`, maxRetries: 3 });
    await client.videos.create({ model: 'grok-imagine-video', prompt: 'x', seconds: '4' });
    const before = (await usage('sdk-quota')).day.requests;
    const err = await client.videos.create({ model: 'grok-imagine-video', prompt: 'x', seconds: '4' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).code).toBe('insufficient_quota');
    const logged = h.logs.join('').split('\n').filter((l) => l.includes('"teamId":"sdk-quota"') && l.includes('"status":429'));
    expect(logged).toHaveLength(1);
    // One request: the refusal was not retried.
    expect((await usage('sdk-quota')).day.requests).toBe(before + 1);
  });
});
