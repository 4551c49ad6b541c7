import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { Principal } from '../../src/store/types.js';
import { DueWriter } from '../../src/tracking/due-writer.js';
import { newJob } from '../support/store.js';

/**
 * Which checks of a running job the due writer holds back (a client polling an unchanged job every second),
 * and that the calls it held reach the store with the job's next write. Against a real SQLite file.
 */
const NOW = Date.UTC(2026, 11, 6, 12, 0, 0);
const p: Principal = { teamId: 't1', keyId: 'k1', teamPolicy: {}, keyPolicy: {} };
const running = { status: 'in_progress', progress: 40 } as const;

describe('due writer: checks of an unchanged running job', () => {
  let dir: string;
  let store: SqliteStore;
  let writer: DueWriter;
  let id: string;
  const clock = { t: NOW, now() {
    return this.t;
  } };

  beforeEach(async () => {
    clock.t = NOW;
    dir = mkdtempSync(join(tmpdir(), 'gw-due-'));
    store = SqliteStore.inDataDir(dir);
    writer = new DueWriter({ store, clock, logger: createLogger('silent') });
    const job = newJob(p);
    id = job.id;
    await store.admitJob(p, job, NOW);
    await store.activateJob(id, 'up-1', 'fp', { status: 'queued', progress: 0, error: null }, NOW, 'default');
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const written = async () => {
    await writer.flush();
    const job = await store.getJob('t1', id);
    return { checks: job!.statusChecks, progress: job!.progress, dueInMs: await store.nextCheckInMs(clock.now()) };
  };

  /** A check of the job, written: due at NOW + 10 s. */
  const checkedOnce = async () => {
    writer.put(id, NOW + 10_000, 1, running);
    await writer.flush();
  };

  it('a check that finds the job as written, its written due time between half the new wait and the new plan, writes nothing', async () => {
    await checkedOnce();
    expect(await written()).toEqual({ checks: 1, progress: 40, dueInMs: 10_000 });
    clock.t = NOW + 1_000;
    writer.put(id, NOW + 12_000, 1, running);
    clock.t = NOW + 2_000;
    writer.put(id, NOW + 14_000, 1, running);
    // Still due at NOW + 10 s: the tracker leaves it be until then, as the polls' plans ask at least.
    expect(await written()).toEqual({ checks: 1, progress: 40, dueInMs: 8_000 });
  });

  it('the calls held back ride with the next write: a change seen', async () => {
    await checkedOnce();
    clock.t = NOW + 1_000;
    writer.put(id, NOW + 12_000, 1, running);
    writer.put(id, NOW + 12_000, 1, { status: 'in_progress', progress: 41 });
    expect(await written()).toEqual({ checks: 3, progress: 41, dueInMs: 11_000 });
  });

  it('...the written due time coming nearer than half the new wait', async () => {
    await checkedOnce();
    clock.t = NOW + 2_000;
    writer.put(id, NOW + 14_000, 1, running);
    clock.t = NOW + 5_000;
    // 5 s left of the written wait, 10 s in the new plan: still held. 3 s left of 10 s: written.
    writer.put(id, NOW + 15_000, 1, running);
    expect((await written()).checks).toBe(1);
    clock.t = NOW + 7_000;
    writer.put(id, NOW + 17_000, 1, running);
    expect(await written()).toEqual({ checks: 4, progress: 40, dueInMs: 10_000 });
  });

  it('...a new plan sooner than the written due time', async () => {
    await checkedOnce();
    clock.t = NOW + 1_000;
    writer.put(id, NOW + 9_000, 1, running);
    expect(await written()).toEqual({ checks: 2, progress: 40, dueInMs: 8_000 });
  });

  it("...a tracker check's claim ending: the due time the held calls were measured against is written again", async () => {
    await checkedOnce();
    // Another replica wrote an earlier due time meanwhile; this one's tracker claims the job when due.
    await store.scheduleChecks([{ id, inMs: 3_000, checks: 1 }], NOW);
    clock.t = NOW + 3_000;
    expect((await store.claimDueJobs(10, 60_000, clock.now(), { horizonMs: 0, pendingGraceMs: 60_000 })).map((j) => j.id)).toEqual([id]);
    writer.put(id, NOW + 15_000, 1, running);
    writer.put(id, null, 0);
    expect(await written()).toEqual({ checks: 3, progress: 40, dueInMs: 7_000 });
    expect(await store.claimDueJobs(10, 60_000, clock.now(), { horizonMs: 0, pendingGraceMs: 60_000 })).toEqual([]);
  });

  it('...the end of the job', async () => {
    await checkedOnce();
    clock.t = NOW + 1_000;
    writer.put(id, NOW + 12_000, 1, running);
    writer.ended(id, 1);
    expect((await written()).checks).toBe(3);
  });

  it('a check with nothing written for the job before (its creation, another replica) writes', async () => {
    writer.put(id, NOW + 10_000, 0);
    clock.t = NOW + 1_000;
    writer.put(id, NOW + 12_000, 1, running);
    expect(await written()).toEqual({ checks: 1, progress: 40, dueInMs: 11_000 });
  });
});
