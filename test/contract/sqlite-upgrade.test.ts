import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/store.js';

let dir: string;
const NOW = Date.UTC(2026, 10, 26, 12);
const DAY = '2026-11-26';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('opens a data file of an earlier build (jobs.reference_count NOT NULL): old jobs read, new jobs admitted', async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-upgrade-'));
  const old = new Database(join(dir, 'gateway.db'));
  // The jobs table exactly as earlier builds created it.
  old.exec(`CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, team_id TEXT NOT NULL, key_id TEXT NOT NULL,
    upstream_id TEXT, upstream_key_fp TEXT, model TEXT NOT NULL, prompt TEXT NOT NULL, seconds INTEGER NOT NULL,
    resolution INTEGER NOT NULL, aspect_ratio TEXT NOT NULL, reference_count INTEGER NOT NULL,
    status TEXT NOT NULL, progress INTEGER NOT NULL, error TEXT, created_at INTEGER NOT NULL, completed_at INTEGER,
    updated_at_ms INTEGER NOT NULL, charge TEXT NOT NULL, charge_day TEXT NOT NULL, charge_month TEXT NOT NULL,
    deleted_at INTEGER)`);
  old.exec(`INSERT INTO jobs (id, team_id, key_id, model, prompt, seconds, resolution, aspect_ratio, reference_count, status, progress,
    created_at, updated_at_ms, charge, charge_day, charge_month)
    VALUES ('video_old', 't1', 'k1', 'grok-video-3', 'kept', 5, 720, '16:9', 2, 'completed', 100, 1, 1000, 'settled', '2026-11-26', '2026-11')`);
  // Counters from before money was kept (§10): seconds only.
  old.exec(`CREATE TABLE counters (scope TEXT NOT NULL, bucket TEXT NOT NULL, requests INTEGER NOT NULL DEFAULT 0,
    seconds_reserved INTEGER NOT NULL DEFAULT 0, seconds_settled INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (scope, bucket)) WITHOUT ROWID`);
  old.exec(`INSERT INTO counters VALUES ('team:t1', 'day:${DAY}', 1, 0, 5)`);
  old.close();

  const store = SqliteStore.inDataDir(dir);
  try {
    // A job from before money was kept has no cost: unknown, not $0.
    expect(await store.getJob('t1', 'video_old')).toMatchObject({ id: 'video_old', prompt: 'kept', status: 'completed', estimateMicros: null, costMicros: null });
    const principal = { teamId: 't1', keyId: 'k1', teamPolicy: {}, keyPolicy: {} };
    const job = { id: 'video_new', teamId: 't1', keyId: 'k1', model: 'grok-video-3', prompt: 'x', seconds: 5, resolution: 720, aspectRatio: '16:9', estimateMicros: 250_000 };
    const admitted = await store.admitJob(principal, job, NOW);
    expect(admitted.ok).toBe(true);
    expect((await store.usage('t1', NOW, 1)).day).toMatchObject({ video_seconds: 10, video_seconds_reserved: 5, usd: 0.25, usd_reserved: 0.25, requests: 1 });
    expect(await store.getJob('t1', 'video_new')).toMatchObject({ id: 'video_new', status: 'queued' });
    // Columns of later builds are added: a derived video records its source.
    const derived = { id: 'video_remix', teamId: 't1', keyId: 'k1', model: 'grok-video-3', prompt: 'y', seconds: 5, resolution: 720, aspectRatio: '16:9', sourceVideoId: 'video_old', derivation: 'remix' as const };
    expect((await store.admitJob(principal, derived, NOW)).ok).toBe(true);
    expect(await store.getJob('t1', 'video_remix')).toMatchObject({ sourceVideoId: 'video_old', derivation: 'remix' });
    expect(await store.getJob('t1', 'video_old')).toMatchObject({ sourceVideoId: null, derivation: null });
    // Stored results (§12): an old completed video has no copy yet, and can be scheduled for one.
    expect(await store.getJob('t1', 'video_old')).toMatchObject({ expiresAt: null, storage: null });
    expect(await store.copies.schedule('video_old', 86_400, Date.now())).toMatchObject({ expiresAt: 86_400, storage: { state: 'pending' } });
  } finally {
    await store.close();
  }
  // A second open finds nothing left to change.
  await SqliteStore.inDataDir(dir).close();
});

it('an embedded store from before team tombstones retires the ids of teams it deleted back then', async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-upgrade-'));
  const path = join(dir, 'gateway.db');
  // The earlier schema, where deleting a team removed its row and left its (revoked) keys and jobs.
  const old = new Database(path);
  old.exec(`
    CREATE TABLE teams (id TEXT PRIMARY KEY, name TEXT, quota TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE api_keys (id TEXT PRIMARY KEY, team_id TEXT NOT NULL, name TEXT, prefix TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
      quota TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER);
    INSERT INTO teams VALUES ('live', 'Live', '{}', 1);
    INSERT INTO api_keys VALUES ('key_a', 'live', NULL, 'gvk_a', 'ha', '{}', 1, NULL, NULL);
    INSERT INTO api_keys VALUES ('key_b', 'gone', NULL, 'gvk_b', 'hb', '{}', 1, NULL, 2);
  `);
  old.close();

  const store = new SqliteStore(path);
  try {
    expect(await store.createTeam({ id: 'gone', name: null, quota: {} }, Date.now())).toEqual({ ok: false, reason: 'deleted' });
    expect((await store.listTeams()).map((t) => t.id)).toEqual(['live']);
    expect((await store.findKeyByHash('ha'))?.team.name).toBe('Live');
    expect((await store.createTeam({ id: 'fresh', name: null, quota: {} }, Date.now())).ok).toBe(true);
  } finally {
    await store.close();
  }
  // Opening it again changes nothing more.
  const again = new SqliteStore(path);
  expect((await again.listTeams()).map((t) => t.id)).toEqual(['live', 'fresh']);
  await again.close();
});

it('an embedded store from before every replaced webhook secret was kept keeps its previous secret and expiry', async () => {
  dir = mkdtempSync(join(tmpdir(), 'gw-upgrade-'));
  const path = join(dir, 'gateway.db');
  const old = new Database(path);
  old.exec(`
    CREATE TABLE webhook_endpoints (
      team_id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, enabled INTEGER NOT NULL, secret TEXT NOT NULL,
      previous_secret TEXT, previous_secret_expires_at_ms INTEGER, created_at INTEGER NOT NULL);
    INSERT INTO webhook_endpoints VALUES ('rotated', 'https://hooks.example.com/', '["video.completed"]', 1, 'whsec_new', 'whsec_old', 4102444800000, 1);
    INSERT INTO webhook_endpoints VALUES ('never', 'https://hooks.example.com/', '["video.completed"]', 1, 'whsec_only', NULL, NULL, 1);
  `);
  old.close();

  const store = new SqliteStore(path);
  try {
    expect(await store.getWebhook('rotated')).toMatchObject({ secret: 'whsec_new', previousSecrets: [{ secret: 'whsec_old', expiresAtMs: 4102444800000 }] });
    expect(await store.getWebhook('never')).toMatchObject({ secret: 'whsec_only', previousSecrets: [] });
    const rotated = await store.rotateWebhookSecret('rotated', 'whsec_newer', 1000, 10, Date.now());
    expect(rotated.ok && rotated.endpoint.previousSecrets.map((p) => p.secret)).toEqual(['whsec_new', 'whsec_old']);
  } finally {
    await store.close();
  }
  await new SqliteStore(path).close();
});
