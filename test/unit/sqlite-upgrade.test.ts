import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
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
