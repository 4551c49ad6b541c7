import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/store.js';

/** The embedded store's files hold webhook secrets and key hashes: nobody but their owner reads them. */
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe('the SQLite store on disk', () => {
  const dirs: string[] = [];
  const stores: SqliteStore[] = [];
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const scratch = () => {
    const d = mkdtempSync(join(tmpdir(), 'gw-files-'));
    dirs.push(d);
    return d;
  };

  it('a DATA_DIR it creates is 0700, the database and its write-ahead log 0600', async () => {
    const dataDir = join(scratch(), 'nested', 'data');
    const store = SqliteStore.inDataDir(dataDir);
    stores.push(store);
    await store.createTeam({ id: 'acme', name: null, quota: {} }, Date.now());
    expect(modeOf(dataDir).toString(8)).toBe('700');
    expect(modeOf(join(dataDir, 'gateway.db')).toString(8)).toBe('600');
    expect(modeOf(join(dataDir, 'gateway.db-wal')).toString(8)).toBe('600');
  });

  it('a DATA_DIR that exists keeps its mode; the database is still 0600', () => {
    const dataDir = join(scratch(), 'data');
    mkdirSync(dataDir, { mode: 0o750 });
    stores.push(SqliteStore.inDataDir(dataDir));
    expect(modeOf(dataDir).toString(8)).toBe('750');
    expect(modeOf(join(dataDir, 'gateway.db')).toString(8)).toBe('600');
  });
});
