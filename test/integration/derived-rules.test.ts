import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

/**
 * Derived videos (§9) against the rules of §4: whose source may be used, what is reserved, and that every
 * failure refunds as a create's does. Upstream jobs run until a test settles them.
 */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ sim: { completeAfterMs: 3_600_000 } });
});
afterAll(() => h.close());

const usage = async (team: string) => (await admin(h.url, 'GET', `/teams/${team}/usage`)).body;
const newestTask = () => [...h.sim.tasks.keys()].at(-1)!;

/** A completed grok-video-3 source of the key's team (its slot freed, its seconds settled). */
async function completedSource(key: string, seconds = 6): Promise<string> {
  const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'source', seconds }, key);
  expect(res.status).toBe(200);
  h.sim.settle(newestTask(), 'completed');
  const v = (await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth(key) })).json()) as any;
  expect(v.status).toBe('completed');
  return body.id as string;
}

const OPS = [
  { op: 'remix', call: (id: string, key: string) => postJson(`${h.url}/v1/videos/${id}/remix`, { prompt: 'again' }, key) },
  { op: 'extension', call: (id: string, key: string) => postJson(`${h.url}/v1/videos/extensions`, { prompt: 'more', seconds: 4, video: { id } }, key) },
  { op: 'edit', call: (id: string, key: string) => postJson(`${h.url}/v1/videos/edits`, { prompt: 'other', video: { id } }, key) },
] as const;
const remix = OPS[0].call;
const extend = OPS[1].call;

describe('the source must be a completed video of the caller’s team, checked before any upstream call', () => {
  it.each(OPS)("$op: another team's id answers exactly as an unknown id; a deleted one is gone", async ({ call }) => {
    const { key: a } = await teamWithKey(h.url, `owner-${Math.random().toString(36).slice(2, 8)}`);
    const { key: b } = await teamWithKey(h.url, `other-${Math.random().toString(36).slice(2, 8)}`);
    const id = await completedSource(a);
    const unknown = 'video_00000000000000000000000000000000';
    const before = h.sim.derives().length;
    const theirs = await call(id, b);
    const missing = await call(unknown, b);
    expect(theirs.res.status).toBe(404);
    expect(missing.res.status).toBe(404);
    expect({ ...theirs.body.error, message: theirs.body.error.message.replace(id, 'ID') }).toEqual({ ...missing.body.error, message: missing.body.error.message.replace(unknown, 'ID') });
    expect(theirs.body.error).toMatchObject({ code: 'video_not_found', param: 'video' });

    expect((await fetch(`${h.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth(a) })).status).toBe(200);
    const deleted = await call(id, a);
    expect(deleted.res.status).toBe(404);
    expect(deleted.body.error.code).toBe('video_not_found');
    expect(h.sim.derives().length).toBe(before);
  });

  it.each(OPS)('$op: a source not yet completed, or failed, is 400 naming video', async ({ call }) => {
    const team = `state-${Math.random().toString(36).slice(2, 8)}`;
    const { key } = await teamWithKey(h.url, team);
    const running = (await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'running' }, key)).body.id as string;
    const failed = (await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'failing' }, key)).body.id as string;
    h.sim.settle(newestTask(), 'failed');
    const before = h.sim.derives().length;
    for (const [id, status] of [[running, 'queued'], [failed, 'failed']] as const) {
      const r = await call(id, key);
      expect(r.res.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'video_not_ready', param: 'video' });
      expect(r.body.error.message).toContain(status);
    }
    expect(h.sim.derives().length).toBe(before);
    // Nothing reserved beyond the running source.
    expect((await usage(team)).active_jobs).toBe(1);
  });
});

describe('admission and money (§4)', () => {
  it('an extension reserves its own seconds, a remix or an edit the source’s, and they settle on completion', async () => {
    const team = `money-${Math.random().toString(36).slice(2, 8)}`;
    const { key } = await teamWithKey(h.url, team);
    const id = await completedSource(key, 6);
    expect((await usage(team)).day.video_seconds).toBe(6);
    expect((await extend(id, key)).res.status).toBe(200);
    expect((await usage(team)).day).toMatchObject({ video_seconds: 10, video_seconds_reserved: 4 });
    expect((await remix(id, key)).res.status).toBe(200);
    expect((await usage(team)).day).toMatchObject({ video_seconds: 16, video_seconds_reserved: 10 });
    expect((await usage(team)).active_jobs).toBe(2);
  });

  it('the daily budget and max_seconds_per_video apply: an extension beyond them is refused, with nothing sent', async () => {
    const team = `budget-${Math.random().toString(36).slice(2, 8)}`;
    const { key } = await teamWithKey(h.url, team, { video_seconds_per_day: 9, max_seconds_per_video: 8 });
    const id = await completedSource(key, 6);
    const before = h.sim.derives().length;
    expect((await extend(id, key)).body.error.code).toBe('insufficient_quota');
    const long = await postJson(`${h.url}/v1/videos/extensions`, { prompt: 'more', seconds: 9, video: { id } }, key);
    expect(long.res.status).toBe(400);
    expect(long.body.error.param).toBe('seconds');
    expect(h.sim.derives().length).toBe(before);
    expect((await usage(team)).day.video_seconds).toBe(6);
  });

  it('concurrent remixes of one source against max_concurrent_jobs admit exactly the limit', async () => {
    const team = `conc-${Math.random().toString(36).slice(2, 8)}`;
    const { key } = await teamWithKey(h.url, team, { max_concurrent_jobs: 3 });
    const id = await completedSource(key);
    const before = h.sim.derives().length;
    const results = await Promise.all(Array.from({ length: 20 }, () => remix(id, key)));
    const statuses = results.map((r) => r.res.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(17);
    expect(new Set(results.filter((r) => r.res.status === 429).map((r) => r.body.error.code))).toEqual(new Set(['concurrency_limit_exceeded']));
    expect(h.sim.derives().length - before).toBe(3);
    expect((await usage(team)).active_jobs).toBe(3);
  });

  it.each([
    ['the upstream refuses it', { status: 400, body: JSON.stringify({ error: { message: 'prompt rejected', type: 'new_api_error', param: 'prompt', code: 'invalid_request' } }) }, 400, null],
    ['the upstream is unavailable (503: it started nothing)', { status: 503, body: '{"error":{"message":"busy"}}' }, 502, null],
    ['the upstream rate-limits it (429: it started nothing)', { status: 429, body: '{"error":{"message":"slow down"}}' }, 503, null],
    ['the connection drops (outcome unknown)', { status: 0, destroy: true }, 502, 'false'],
    ['the upstream answers garbage (outcome unknown)', { status: 200, body: 'not json' }, 502, 'false'],
  ] as const)('a derived create is refunded when %s, as a create is', async (_name, failure, status, shouldRetry) => {
    const team = `refund-${Math.random().toString(36).slice(2, 8)}`;
    const { key } = await teamWithKey(h.url, team);
    const id = await completedSource(key, 6);
    const settled = await usage(team);
    for (const { call } of OPS.slice(0, 2)) {
      h.sim.failNextCreate(failure);
      const r = await call(id, key);
      expect(r.res.status).toBe(status);
      // Absent where the SDKs may retry (nothing was started), `false` where a retry could start a second job.
      expect(r.res.headers.get('x-should-retry')).toBe(shouldRetry);
    }
    const u = await usage(team);
    expect(u.day.video_seconds).toBe(settled.day.video_seconds);
    expect(u.day.video_seconds_reserved).toBe(0);
    expect(u.active_jobs).toBe(0);
    // The failed attempts are not the team's videos.
    const list = (await (await fetch(`${h.url}/v1/videos?limit=100`, { headers: auth(key) })).json()) as any;
    expect(list.data.map((v: { id: string }) => v.id)).toEqual([id]);
  });

  it('a derived video that fails upstream is refunded, and its slot freed', async () => {
    const team = `fails-${Math.random().toString(36).slice(2, 8)}`;
    const { key } = await teamWithKey(h.url, team, { max_concurrent_jobs: 1 });
    const id = await completedSource(key, 6);
    const r = await extend(id, key);
    expect(r.res.status).toBe(200);
    expect((await extend(id, key)).res.status).toBe(429);
    h.sim.settle(newestTask(), 'failed');
    const v = (await (await fetch(`${h.url}/v1/videos/${r.body.id}`, { headers: auth(key) })).json()) as any;
    expect(v.status).toBe('failed');
    const u = await usage(team);
    expect(u.day).toMatchObject({ video_seconds: 6, video_seconds_reserved: 0 });
    expect(u.active_jobs).toBe(0);
    expect((await extend(id, key)).res.status).toBe(200);
  });
});
