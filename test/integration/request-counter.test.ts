import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { RequestCounter } from '../../src/quota/request-counter.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import type { Principal } from '../../src/store/types.js';
import { flaky, type FlakyStore } from '../support/flaky-store.js';
import { TestClock } from '../support/harness.js';

/** Requests of keys without a per-minute limit are counted in memory and written in batches (a real SQLite file). */
const principal: Principal = { teamId: 'unlimited', keyId: 'k1', teamPolicy: {}, keyPolicy: {} };
let dir: string;
let real: SqliteStore;
let store: FlakyStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gw-counts-'));
  real = SqliteStore.inDataDir(dir);
  store = flaky(real);
});
afterEach(async () => {
  await real.close();
  rmSync(dir, { recursive: true, force: true });
});

it('a batch the store refuses is kept and written with the next one, beside the requests made meanwhile', async () => {
  const clock = new TestClock();
  const counter = new RequestCounter(store.store, clock, createLogger('silent'));
  for (let i = 0; i < 3; i++) counter.add(principal);
  store.failNext('countRequests', 1);
  await expect(counter.flush()).rejects.toThrow(/blip/);
  for (let i = 0; i < 2; i++) counter.add(principal);
  await counter.flush();
  const usage = await real.usage('unlimited', clock.now(), 1);
  expect(usage).toMatchObject({ requestsThisMinute: 5, day: { requests: 5 }, month: { requests: 5 } });
  // Written once: nothing is left to write twice.
  await counter.flush();
  expect((await real.usage('unlimited', clock.now(), 1)).day.requests).toBe(5);
});
