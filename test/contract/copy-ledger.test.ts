import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres/store.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { Principal, Store } from '../../src/store/types.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';
import { newJob } from '../support/store.js';

/**
 * The stored-results ledger (src/store/copies.ts), written once against the interface and run on both
 * stores: scheduling once, claims that two holders never share, retries, removals and the totals.
 */
const stores: Array<{ name: string; available: boolean; open: () => Promise<{ store: Store; dispose(): Promise<void> }> }> = [
  {
    name: 'sqlite (real file)',
    available: true,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gw-ledger-'));
      const store = SqliteStore.inDataDir(dir);
      return { store, dispose: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres (real server)',
    available: postgresUrl !== null,
    open: async () => {
      const db = await freshDatabase();
      return { store: await PostgresStore.open({ url: db.url, clock: 'caller' }), dispose: db.drop };
    },
  },
];

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const LEASE = 60_000;
const p: Principal = { teamId: 't1', keyId: 'k1', teamPolicy: {}, keyPolicy: {} };
const completed = { status: 'completed' as const, progress: 100, error: null };

for (const { name, available, open } of stores) describe.skipIf(!available)(`copy ledger: ${name}`, () => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeEach(async () => ({ store, dispose } = await open()));
  afterEach(async () => {
    await store.close();
    await dispose();
  });

  /** A job admitted, accepted upstream and, unless told otherwise, completed at NOW. */
  async function job(done = true) {
    const j = newJob(p);
    await store.admitJob(p, j, NOW);
    await store.activateJob(j.id, `up_${j.id}`, 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'default');
    if (done) await store.updateJob(j.id, completed, NOW);
    return j.id;
  }

  it('schedules a completed video once, with its expiry; never a running one', async () => {
    const id = await job();
    const scheduled = await store.copies.schedule(id, 1_000, NOW);
    expect(scheduled).toMatchObject({ expiresAt: 1_000, storage: { state: 'pending', attempts: 0, bytes: null } });
    expect((await store.copies.schedule(id, 2_000, NOW))?.expiresAt).toBe(1_000);
    expect((await store.getJob('t1', id))?.expiresAt).toBe(1_000);
    const running = await job(false);
    expect((await store.copies.schedule(running, 1_000, NOW))?.storage).toBeNull();
  });

  it('never hands one copy to two claimants while leased; a lost lease records nothing', async () => {
    const id = await job();
    const expiresAt = NOW / 1000 + 86_400;
    await store.copies.schedule(id, expiresAt, NOW);
    const [first] = await store.copies.claimCopies(5, LEASE, NOW);
    expect(first?.job.id).toBe(id);
    expect(await store.copies.claimCopies(5, LEASE, NOW + 1)).toEqual([]);
    // The lease ran out: another replica takes it over, and the first holder's outcome no longer counts.
    const [second] = await store.copies.claimCopies(5, LEASE, NOW + LEASE + 1);
    expect(second?.job.id).toBe(id);
    expect(await store.copies.recordStored(id, first!.token, { bytes: 10, contentType: 'video/mp4' }, NOW)).toBe(false);
    expect(await store.copies.recordStored(id, second!.token, { bytes: 10, contentType: 'video/mp4' }, NOW)).toBe(true);
    expect((await store.getJob('t1', id))?.storage).toMatchObject({ state: 'stored', bytes: 10, contentType: 'video/mp4' });
    expect(await store.copies.stats()).toEqual({ stored: 1, storedBytes: 10, pending: 0, failed: 0 });
  });

  it('retries a failed copy when due, gives up when told to, and never copies an expired or deleted video', async () => {
    const id = await job();
    await store.copies.schedule(id, NOW / 1000 + 86_400, NOW);
    const [c] = await store.copies.claimCopies(5, LEASE, NOW);
    expect(await store.copies.recordFailure(id, c!.token, 'bucket missing', NOW + 5_000)).toBe(true);
    expect(await store.copies.claimCopies(5, LEASE, NOW + 4_999)).toEqual([]);
    const [again] = await store.copies.claimCopies(5, LEASE, NOW + 5_000);
    expect(again?.job.storage).toMatchObject({ state: 'pending', attempts: 1, error: 'bucket missing' });
    await store.copies.recordFailure(id, again!.token, 'gone upstream', null);
    expect((await store.getJob('t1', id))?.storage).toMatchObject({ state: 'failed', attempts: 2 });
    expect(await store.copies.claimCopies(5, LEASE, NOW + 10 ** 9)).toEqual([]);

    const expired = await job();
    await store.copies.schedule(expired, NOW / 1000 + 10, NOW);
    expect(await store.copies.claimCopies(5, LEASE, NOW + 10_000)).toEqual([]);
    const deleted = await job();
    await store.copies.schedule(deleted, NOW / 1000 + 86_400, NOW);
    await store.deleteJob('t1', deleted, NOW, 'settle');
    expect(await store.copies.claimCopies(5, LEASE, NOW + 10_000)).toEqual([]);
  });

  it('hands the sweeper the copies of expired and deleted videos, once each, and records them removed', async () => {
    const live = await job();
    const expired = await job();
    const deleted = await job();
    for (const id of [live, expired, deleted]) {
      await store.copies.schedule(id, id === expired ? NOW / 1000 + 60 : NOW / 1000 + 86_400, NOW);
      const [c] = await store.copies.claimCopies(1, LEASE, NOW);
      await store.copies.recordStored(id, c!.token, { bytes: 100, contentType: 'video/mp4' }, NOW);
    }
    await store.deleteJob('t1', deleted, NOW, 'settle');
    const claimed = await store.copies.claimRemovals(10, LEASE, NOW + 61_000);
    expect(claimed.map((c) => c.job.id).sort()).toEqual([deleted, expired].sort());
    expect(await store.copies.claimRemovals(10, LEASE, NOW + 61_001)).toEqual([]);
    for (const c of claimed) expect(await store.copies.recordRemoved(c.job.id, c.token)).toBe(true);
    expect((await store.getJob('t1', expired))?.storage?.state).toBe('removed');
    expect(await store.copies.claimRemovals(10, LEASE, NOW + 10 ** 9)).toHaveLength(1);
    expect(await store.copies.stats()).toEqual({ stored: 1, storedBytes: 100, pending: 0, failed: 0 });
  });
});

describe.skipIf(postgresUrl === null)('copy ledger: migrate-sqlite', () => {
  it("carries each job's expiry and copy state into PostgreSQL, without the claims", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-ledger-'));
    const db = await freshDatabase();
    const source = SqliteStore.inDataDir(dir);
    const j = newJob(p);
    await source.admitJob(p, j, NOW);
    await source.activateJob(j.id, 'up', 'fp', completed, NOW, 'default');
    const expiresAt = NOW / 1000 + 86_400;
    await source.copies.schedule(j.id, expiresAt, NOW);
    const [c] = await source.copies.claimCopies(1, LEASE, NOW);
    await source.copies.recordFailure(j.id, c!.token, 'later', NOW + 1_000);
    const target = await PostgresStore.open({ url: db.url, clock: 'caller' });
    try {
      await target.importAll(source.exportAll());
      expect((await target.getJob('t1', j.id))).toMatchObject({
        expiresAt,
        storage: { state: 'pending', attempts: 1, error: 'later', nextAttemptAtMs: NOW + 1_000 },
      });
      expect(await target.copies.claimCopies(1, LEASE, NOW + 1_000)).toHaveLength(1);
    } finally {
      await Promise.all([source.close(), target.close()]);
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
