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

it('counts each minute apart, and a request made while a batch is being written goes into the next batch', async () => {
  const clock = new TestClock();
  // A second into a fresh minute, so that only the test moves the clock across a minute.
  clock.advance(60_000 - (clock.now() % 60_000) + 1_000);
  const counter = new RequestCounter(store.store, clock, createLogger('silent'));
  const other: Principal = { ...principal, keyId: 'k2' };
  for (let i = 0; i < 3; i++) counter.add(principal);
  counter.add(other);
  const writing = counter.flush();
  for (let i = 0; i < 2; i++) counter.add(principal);
  await writing;
  const firstMinute = clock.now();
  clock.advance(60_000);
  for (let i = 0; i < 4; i++) counter.add(principal);
  await counter.flush();
  expect((await real.usage('unlimited', firstMinute, 1)).requestsThisMinute).toBe(6);
  expect(await real.usage('unlimited', clock.now(), 1)).toMatchObject({ requestsThisMinute: 4, day: { requests: 10 } });
  // Nothing was counted twice or left behind.
  await counter.flush();
  expect((await real.usage('unlimited', clock.now(), 1)).day.requests).toBe(10);
});
