import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { flaky, type FlakyStore } from '../support/flaky-store.js';
import { CLIENT_KEY, UPSTREAM_KEY, auth, postJson, startHarness } from '../support/harness.js';

/**
 * SIGTERM while the upstream holds a create: the gateway process of its own (as `npm start` runs it), a
 * simulator that keeps the create's answer back, and a client that must get an answer, never a reset (the
 * SDKs retry a dropped POST and would start a second paid job).
 */
let sim: UpstreamSimulator;
let upstreamUrl: string;
let dataDir: string;
const children: ChildGateway[] = [];

beforeEach(async () => {
  sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 0 });
  upstreamUrl = await sim.listen();
  dataDir = mkdtempSync(join(tmpdir(), 'gw-shutdown-'));
});
afterEach(async () => {
  for (const c of children.splice(0)) if (c.child.exitCode === null) await c.stop('SIGKILL');
  await sim.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function gateway(shutdownMs: number): Promise<ChildGateway> {
  const child = await spawnGateway({
    UPSTREAM_BASE_URL: upstreamUrl,
    UPSTREAM_API_KEY: UPSTREAM_KEY,
    GATEWAY_API_KEYS: CLIENT_KEY,
    DATA_DIR: dataDir,
    SHUTDOWN_TIMEOUT_MS: String(shutdownMs),
    RECONCILE_INTERVAL_MS: '0',
    STATUS_CACHE_MS: '0',
  });
  children.push(child);
  return child;
}

/** The create's answer, or how its connection failed. */
const createOn = (url: string) =>
  postJson(`${url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'a fox' }).then(
    ({ res, body }) => ({ status: res.status, shouldRetry: res.headers.get('x-should-retry'), body }),
    (err: Error) => ({ status: 0, shouldRetry: null, body: { failure: String(err.cause ?? err) } }),
  );

describe('SIGTERM with a create still waiting on the upstream', () => {
  it('answers it (503 shutting_down, x-should-retry: false) before closing, and exits within SHUTDOWN_TIMEOUT_MS', async () => {
    const child = await gateway(4_000);
    // The upstream answers nothing for far longer than the drain (and than UPSTREAM_TIMEOUT_MS would allow).
    sim.stallMs = 120_000;
    const answer = createOn(child.url);
    await expect.poll(() => sim.creates().length, { timeout: 10_000, interval: 20 }).toBe(1);
    const started = performance.now();
    const exit = child.stop('SIGTERM');
    const got = await answer;
    expect(got).toMatchObject({ status: 503, shouldRetry: 'false', body: { error: { type: 'server_error', code: 'shutting_down', param: null } } });
    expect(got.body.error.message).toMatch(/may still have started the video/);
    expect(await exit).toBe(0);
    // The whole drain, the upstream call cut at its end included, within the deadline (and some start-up slack).
    expect(performance.now() - started).toBeLessThan(4_000 + 1_500);
    // Cut off unanswered: refunded, and reported as a create whose outcome is unknown.
    expect(child.output()).toMatch(/"msg":"upstream create outcome unknown; reservation refunded"/);
  }, 60_000);

  it('records a job the upstream accepts after the client was answered, before the cut: it is there after a restart', async () => {
    // 8 s: creates are answered at 5.6 s, upstream calls cut at 7.2 s; the upstream accepts at about 6.4 s.
    const child = await gateway(8_000);
    sim.slowAnswersMs = 6_400;
    // Still queued in the create's answer: only a poll with the recorded task id can find it completed.
    sim.completeAfterMs = 2_000;
    const answer = createOn(child.url);
    await expect.poll(() => sim.creates().length, { timeout: 10_000, interval: 20 }).toBe(1);
    const exit = child.stop('SIGTERM');
    expect(await answer).toMatchObject({ status: 503, shouldRetry: 'false', body: { error: { code: 'shutting_down' } } });
    expect(await exit).toBe(0);
    expect(sim.tasks.size).toBe(1);

    sim.slowAnswersMs = 0;
    const again = await gateway(8_000);
    const list = (await (await fetch(`${again.url}/v1/videos`, { headers: auth() })).json()) as { data: Array<{ id: string; status: string }> };
    expect(list.data).toHaveLength(1);
    const video = (await (await fetch(`${again.url}/v1/videos/${list.data[0]!.id}`, { headers: auth() })).json()) as { status: string };
    // Polled with the task id recorded during the drain: the upstream's job, not a lost one.
    expect(video.status).toBe('completed');
    expect(sim.requests.at(-1)!.path).toBe(`/v1/videos/${[...sim.tasks.keys()][0]}`);
    expect(await again.stop('SIGTERM')).toBe(0);
  }, 60_000);
});

describe('a create admitted only after the drain answered the creates in flight', () => {
  it('is not sent upstream: refunded, and a 503 the SDKs may retry elsewhere', async () => {
    let store!: FlakyStore;
    const h = await startHarness({ upstream: { sim, url: upstreamUrl }, wrapStore: (s) => (store = flaky(s)).store });
    let admit!: () => void;
    const admitted = new Promise<void>((resolve) => (admit = resolve));
    store.before('admitJob', () => admitted);
    const answer = createOn(h.url);
    await expect.poll(() => store.calls('admitJob'), { interval: 10 }).toBe(1);
    // 5 s: creates in flight are answered at 3.5 s, connections cut at 4.5 s; this one is admitted at 3.9 s.
    const drained = h.gw.shutdown(5_000);
    await new Promise((r) => setTimeout(r, 3_900));
    admit();
    const got = await answer;
    expect(got).toMatchObject({ status: 503, shouldRetry: null, body: { error: { code: 'shutting_down' } } });
    expect(got.body.error.message).toMatch(/nothing was sent upstream/);
    await drained;
    expect(sim.creates()).toHaveLength(0);
    const after = SqliteStore.inDataDir(h.dataDir);
    expect(await after.usage('default', Date.now(), 1)).toMatchObject({ activeJobs: 0, day: { video_seconds: 0, video_seconds_reserved: 0 } });
    await after.close();
    await h.close();
  }, 30_000);
});
