import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, CLIENT_KEY, TestClock, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

let h: Harness;
const clock = new TestClock();
beforeAll(async () => {
  h = await startHarness({ clock, env: { KEY_CACHE_MS: '60000' }, sim: { completeAfterMs: 600_000 } });
});
afterAll(() => h.close());

describe('admin API (contract §5)', () => {
  it('creates, lists, reads, patches and deletes teams', async () => {
    const created = await admin(h.url, 'POST', '/teams', { id: 'acme', name: 'Acme', quota: { requests_per_minute: 10 } });
    expect(created.res.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'acme', object: 'team', name: 'Acme', quota: { requests_per_minute: 10 } });
    expect((await admin(h.url, 'POST', '/teams', { id: 'acme' })).res.status).toBe(409);
    expect((await admin(h.url, 'GET', '/teams')).body.data.map((t: { id: string }) => t.id)).toContain('acme');
    expect((await admin(h.url, 'GET', '/teams/acme')).body.name).toBe('Acme');
    const patched = await admin(h.url, 'PATCH', '/teams/acme', { quota: { max_concurrent_jobs: 2 } });
    expect(patched.body.quota).toEqual({ max_concurrent_jobs: 2 });
    expect((await admin(h.url, 'DELETE', '/teams/acme')).body).toMatchObject({ id: 'acme', deleted: true });
    expect((await admin(h.url, 'GET', '/teams/acme')).res.status).toBe(404);
  });

  it("refuses to re-create a deleted team's id, so no new team inherits its videos, usage or slots", async () => {
    const { key } = await teamWithKey(h.url, 'reuse', { max_concurrent_jobs: 1 });
    const { body: video } = await postJson(`${h.url}/v1/videos`, { prompt: 'the old team prompt', seconds: 5 }, key);
    expect((await admin(h.url, 'DELETE', '/teams/reuse')).body.deleted).toBe(true);

    const again = await admin(h.url, 'POST', '/teams', { id: 'reuse' });
    expect(again.res.status).toBe(409);
    expect(again.res.headers.get('x-request-id')).toBeTruthy();
    expect(again.body.error).toMatchObject({ type: 'invalid_request_error', param: 'id', code: 'team_id_deleted' });
    expect(again.body.error.message).toMatch(/belonged to a deleted team/);
    // No way back in through the id: no key can be issued for it, and it is not listed.
    expect((await admin(h.url, 'POST', '/teams/reuse/keys', {})).res.status).toBe(404);
    expect((await admin(h.url, 'GET', '/teams')).body.data.map((t: { id: string }) => t.id)).not.toContain('reuse');
    expect((await fetch(`${h.url}/v1/videos/${video.id}`, { headers: auth(key) })).status).toBe(401);
    // A live team's id is still a plain conflict.
    await admin(h.url, 'POST', '/teams', { id: 'live' });
    expect((await admin(h.url, 'POST', '/teams', { id: 'live' })).body.error.code).toBe('team_exists');
  });

  it.each<[string, unknown, string]>([
    ['bad id', { id: 'no spaces allowed' }, 'id'],
    ['negative limit', { id: 'x1', quota: { requests_per_minute: -1 } }, 'quota.requests_per_minute'],
    ['unknown policy field', { id: 'x2', quota: { requests_per_hour: 5 } }, 'quota.requests_per_hour'],
    ['reserved id', { id: 'default' }, 'id'],
  ])('rejects a team with %s, naming the param', async (_n, body, param) => {
    const r = await admin(h.url, 'POST', '/teams', body);
    expect(r.res.status).toBe(400);
    expect(r.body.error.param).toBe(param);
  });

  it('refuses model allow-lists naming unknown models, and bodies that are not JSON', async () => {
    const bad = await admin(h.url, 'POST', '/teams', { id: 'typo-models', quota: { models: ['grok-vidoe-3'] } });
    expect(bad.res.status).toBe(400);
    expect(bad.body.error.param).toBe('quota.models');
    expect((await admin(h.url, 'POST', '/teams', { id: 'alias-models', quota: { models: ['sora-2'] } })).res.status).toBe(201);
    const form = await fetch(`${h.url}/admin/teams`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' }, body: '{"id":"formish"}' });
    expect(form.status).toBe(415);
  });

  it('refuses an admin body over 64 KiB with 413', async () => {
    const r = await admin(h.url, 'POST', '/teams', { id: 'big', name: 'x'.repeat(70 * 1024) });
    expect(r.res.status).toBe(413);
    expect(r.body.error.code).toBe('request_too_large');
  });

  it('issues a key once, lists it without the secret, and revokes it at once', async () => {
    await admin(h.url, 'POST', '/teams', { id: 'keys-team' });
    const issued = await admin(h.url, 'POST', '/teams/keys-team/keys', { name: 'ci' });
    expect(issued.res.status).toBe(201);
    const { id, key, prefix } = issued.body;
    expect(key).toMatch(/^gvk_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(key.slice(4), 'base64url').length * 8).toBeGreaterThanOrEqual(192);
    expect(key.startsWith(prefix)).toBe(true);
    expect(issued.body).toMatchObject({ team: 'keys-team', name: 'ci', object: 'api_key' });

    const listed = await admin(h.url, 'GET', '/teams/keys-team/keys');
    expect(JSON.stringify(listed.body)).not.toContain(key);
    expect(JSON.stringify(listed.body)).not.toMatch(/hash/);
    expect(listed.body.data[0]).toMatchObject({ id, prefix, revoked_at: null });

    expect((await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).status).toBe(200);
    expect((await admin(h.url, 'DELETE', `/admin/keys/${id}`.replace('/admin', ''))).body.revoked).toBe(true);
    // Cached for a minute (KEY_CACHE_MS), yet refused at once on the replica that revoked it.
    expect((await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).status).toBe(401);
  });

  it('refuses an expired key', async () => {
    await admin(h.url, 'POST', '/teams', { id: 'expiring' });
    const soon = Math.floor(clock.now() / 1000) + 60;
    const { key } = (await admin(h.url, 'POST', '/teams/expiring/keys', { expires_at: soon })).body;
    expect((await fetch(`${h.url}/v1/models`, { headers: auth(key) })).status).toBe(200);
    clock.advance(61_000);
    expect((await fetch(`${h.url}/v1/models`, { headers: auth(key) })).status).toBe(401);
    const past = await admin(h.url, 'POST', '/teams/expiring/keys', { expires_at: 1000 });
    expect(past.res.status).toBe(400);
    expect(past.body.error.param).toBe('expires_at');
  });

  it('separates admin and team credentials', async () => {
    const { key } = await teamWithKey(h.url, 'sep');
    expect((await admin(h.url, 'GET', '/teams', undefined, key)).res.status).toBe(403);
    expect((await admin(h.url, 'GET', '/teams', undefined, CLIENT_KEY)).res.status).toBe(403);
    expect((await admin(h.url, 'GET', '/teams', undefined, 'not-a-token')).res.status).toBe(401);
    expect((await fetch(`${h.url}/admin/teams`)).status).toBe(401);
    expect((await fetch(`${h.url}/v1/videos`, { headers: auth(ADMIN_TOKEN) })).status).toBe(401);
  });

  it('reports usage in the contract shape, with ?days and ?by=model, money beside seconds', async () => {
    const { key } = await teamWithKey(h.url, 'usage-team', { video_seconds_per_day: 100 });
    await postJson(`${h.url}/v1/videos`, { prompt: 'x', seconds: 7 }, key);
    const u = await admin(h.url, 'GET', '/teams/usage-team/usage?days=3');
    const today = new Date(clock.now()).toISOString().slice(0, 10);
    expect(u.body).toMatchObject({
      team: 'usage-team',
      // 7 s of grok-imagine-video at 720p, estimated at $0.07 a second.
      day: { start: today, video_seconds: 7, video_seconds_reserved: 7, usd: 0.49, usd_reserved: 0.49, requests: 1 },
      month: { start: today.slice(0, 7), video_seconds: 7, usd: 0.49, usd_reserved: 0.49, requests: 1 },
      active_jobs: 1,
      requests_this_minute: 1,
      quota: { video_seconds_per_day: 100 },
    });
    expect(u.body.daily).toHaveLength(3);
    expect(u.body.daily.at(-1)).toEqual({ date: today, video_seconds: 7, usd: 0.49, requests: 1 });
    expect(u.body.by_model).toBeUndefined();
    expect((await admin(h.url, 'GET', '/teams/usage-team/usage')).body.daily).toBeUndefined();
    const period = { video_seconds: 7, video_seconds_reserved: 7, usd: 0.49, usd_reserved: 0.49, jobs: 1 };
    expect((await admin(h.url, 'GET', '/teams/usage-team/usage?by=model')).body.by_model).toEqual([{ model: 'grok-imagine-video', day: period, month: period }]);
    expect((await admin(h.url, 'GET', '/teams/usage-team/usage?by=team')).res.status).toBe(400);
    expect((await admin(h.url, 'GET', '/teams/nope/usage')).res.status).toBe(404);
  });
});

describe('admin API disabled without ADMIN_TOKEN', () => {
  it('answers 503 with a clear message', async () => {
    const bare = await startHarness({ env: { ADMIN_TOKEN: '' } });
    try {
      const r = await admin(bare.url, 'GET', '/teams');
      expect(r.res.status).toBe(503);
      expect(r.body.error.message).toMatch(/ADMIN_TOKEN/);
    } finally {
      await bare.close();
    }
  });
});
