import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { freshDatabaseBehindProxy, postgresUrl } from '../support/postgres.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/**
 * The real gateway with DATABASE_URL set: two gateways (replicas) on one PostgreSQL database, reached
 * through a proxy this test can cut to make the database disappear and come back.
 */
const PASSWORD = 'pg-secret-password-0123';

describe('DATABASE_URL', () => {
  it.each([
    ['postgres://u:pw-secret-1@db:5432/gw', true],
    ['postgresql://db/gw?sslmode=require', true],
    ['', undefined],
    ['mysql://u:pw-secret-1@db/gw', false],
    ['db:5432 pw-secret-1', false],
  ])('%s → accepted: %s', (url, accepted) => {
    if (accepted === false) {
      expect(() => loadConfig({ DATABASE_URL: url })).toThrow(ConfigError);
      expect(() => loadConfig({ DATABASE_URL: url })).toThrow(/^(?![\s\S]*pw-secret-1)[\s\S]*postgres:\/\//);
    } else {
      expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(accepted ? url : undefined);
    }
  });
});

describe.skipIf(postgresUrl === null)('gateway on PostgreSQL (DATABASE_URL)', () => {
  let db: Awaited<ReturnType<typeof freshDatabaseBehindProxy>>;
  let proxy: TcpProxy;
  let a: Harness;
  let b: Harness;
  beforeAll(async () => {
    db = await freshDatabaseBehindProxy();
    proxy = db.proxy;
    const via = new URL(db.url);
    // The throwaway cluster trusts loopback, so any password works; it is here to prove it is never logged.
    via.password = PASSWORD;
    const env = { DATABASE_URL: via.toString() };
    a = await startHarness({ env });
    b = await startHarness({ env });
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await db?.drop();
  });

  it('creates, polls, lists and deletes through either replica, for its team only', async () => {
    expect(a.gw.store.kind).toBe('postgres');
    const acme = await teamWithKey(a.url, 'acme', { max_concurrent_jobs: 3 });
    const other = await teamWithKey(b.url, 'other');
    const created = await postJson(`${a.url}/v1/videos`, { model: 'grok-video-3', prompt: 'a fox', seconds: 4 }, acme.key);
    expect(created.res.status).toBe(200);
    const id = created.body.id as string;

    let video: any;
    for (let i = 0; i < 50; i++) {
      video = await (await fetch(`${b.url}/v1/videos/${id}`, { headers: auth(acme.key) })).json();
      if (video.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(video).toMatchObject({ id, status: 'completed', seconds: '4' });
    expect((await fetch(`${a.url}/v1/videos/${id}`, { headers: auth(other.key) })).status).toBe(404);

    const list = (await (await fetch(`${b.url}/v1/videos?limit=5`, { headers: auth(acme.key) })).json()) as any;
    expect(list.data.map((v: { id: string }) => v.id)).toEqual([id]);
    const usage = await admin(b.url, 'GET', '/teams/acme/usage');
    expect(usage.body).toMatchObject({ day: { video_seconds: 4, video_seconds_reserved: 0 }, active_jobs: 0 });

    const deleted = await fetch(`${b.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth(acme.key) });
    expect(await deleted.json()).toMatchObject({ id, deleted: true });
    expect((await fetch(`${b.url}/v1/videos/${id}`, { headers: auth(acme.key) })).status).toBe(404);
    // Replica a still holds its own copy of the record for up to RECORD_CACHE_MS (src/videos/jobs.ts); its
    // list comes from the shared store and no longer has the video.
    expect(((await (await fetch(`${a.url}/v1/videos`, { headers: auth(acme.key) })).json()) as any).data).toEqual([]);
  });

  it('answers 503 store_unavailable with retry-after while the database is gone, and recovers by itself', async () => {
    await proxy.refuse();
    try {
      const started = Date.now();
      const create = await postJson(`${a.url}/v1/videos`, { model: 'grok-video-3', prompt: 'x', seconds: 4 });
      expect(create.res.status).toBe(503);
      expect(create.body.error).toMatchObject({ type: 'server_error', code: 'store_unavailable' });
      expect(Number(create.res.headers.get('retry-after'))).toBeGreaterThan(0);
      const list = await fetch(`${b.url}/v1/videos`, { headers: auth() });
      expect(list.status).toBe(503);
      expect((await fetch(`${a.url}/readyz`)).status).toBe(503);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await proxy.restore();
    }
    // Readiness is probed at most every READINESS_PROBE_INTERVAL_MS (src/http/readiness.ts).
    let ready = 0;
    for (let i = 0; i < 40 && ready !== 200; i++) {
      ready = (await fetch(`${a.url}/readyz`)).status;
      if (ready !== 200) await new Promise((r) => setTimeout(r, 250));
    }
    expect(ready).toBe(200);
    const again = await postJson(`${a.url}/v1/videos`, { model: 'grok-video-3', prompt: 'x', seconds: 4 });
    expect(again.res.status).toBe(200);
    expect(a.logs.join('')).toContain('store unavailable');
    expect([...a.logs, ...b.logs].join('')).not.toContain(PASSWORD);
  });
});
