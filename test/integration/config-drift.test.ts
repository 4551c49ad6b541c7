import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { fingerprint } from '../../src/upstream/client.js';
import { ADMIN_TOKEN, admin, auth, capturingSink, postJson, teamWithKey } from '../support/harness.js';

/**
 * Jobs outlive the configuration that created them: a restart may come without the upstream key a job was
 * created with, or without its upstream altogether. Two upstreams, A (grok-video-3) and B; a data directory
 * kept across restarts with different CONFIG_FILEs.
 */
const KEYS = { old: 'a-key-old-0123456789abcdef', kept: 'a-key-kept-0123456789abcdef', b: 'b-key-0123456789abcdef' };
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const sims = {
  // Accepts both of A's keys, so that a poll with the other key reaches the task.
  A: new UpstreamSimulator({ apiKeys: [KEYS.old, KEYS.kept], completeAfterMs: 3_600_000 }),
  B: new UpstreamSimulator({ apiKeys: [KEYS.b], completeAfterMs: 0 }),
};
const urls = { A: '', B: '' };
let dataDir: string;
let gw: Gateway | undefined;
let logs: string[];

async function start(upstreams: ReadonlyArray<'A' | 'B'>, aKeys: string) {
  const file = join(dataDir, `upstreams-${upstreams.join('')}.json`);
  const spec = {
    A: { id: 'A', kind: 'newapi', base_url: urls.A, keys: { env: 'A_KEYS' }, models: ['grok-video-3'] },
    B: { id: 'B', kind: 'newapi', base_url: urls.B, keys: { env: 'B_KEYS' }, models: ['grok-imagine-video'] },
  };
  writeFileSync(file, JSON.stringify({ upstreams: upstreams.map((u) => spec[u]) }));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    CONFIG_FILE: file,
    A_KEYS: aKeys,
    B_KEYS: KEYS.b,
    ADMIN_TOKEN,
    METRICS_TOKEN,
    RECONCILE_INTERVAL_MS: '0',
    STATUS_CACHE_MS: '0',
    LOG_LEVEL: 'info',
  });
  logs = [];
  const { sink } = capturingSink(logs);
  gw = await startGateway({ config, logger: createLogger(config.logLevel, sink) });
  return gw.url;
}

beforeAll(async () => {
  urls.A = await sims.A.listen();
  urls.B = await sims.B.listen();
});
afterEach(async () => {
  await gw?.shutdown(1000);
  gw = undefined;
  rmSync(dataDir, { recursive: true, force: true });
});
afterAll(async () => {
  await Promise.all(Object.values(sims).map((s) => s.close()));
});

const poll = async (url: string, id: string, key: string) => {
  const res = await fetch(`${url}/v1/videos/${id}`, { headers: auth(key) });
  return { status: res.status, body: (await res.json()) as any };
};
const newestTask = (sim: UpstreamSimulator) => [...sim.tasks.keys()].at(-1)!;

describe("a job whose upstream key is no longer configured", () => {
  it("is polled with the upstream's first key, logged once (by fingerprint, never the key) and counted", async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-drift-'));
    let url = await start(['A', 'B'], KEYS.old);
    const { key } = await teamWithKey(url, 'drift-key');
    const { body } = await postJson(`${url}/v1/videos`, { model: 'grok-video-3', prompt: 'a fox', seconds: 4 }, key);
    expect(sims.A.creates().at(-1)!.headers.authorization).toBe(`Bearer ${KEYS.old}`);
    await gw!.shutdown(1000);

    url = await start(['A', 'B'], KEYS.kept);
    for (let i = 0; i < 3; i++) {
      expect((await poll(url, body.id, key)).body.status).toBe('queued');
      expect(sims.A.requests.at(-1)!.headers.authorization).toBe(`Bearer ${KEYS.kept}`);
    }
    sims.A.settle(newestTask(sims.A), 'completed');
    expect((await poll(url, body.id, key)).body.status).toBe('completed');

    const told = logs.filter((l) => l.includes('upstream key is no longer configured'));
    expect(told).toHaveLength(1);
    expect(JSON.parse(told[0]!)).toMatchObject({ videoId: body.id, upstream: 'A', keyFingerprint: fingerprint(KEYS.old) });
    expect(logs.join('')).not.toContain(KEYS.old);
    expect(logs.join('')).not.toContain(KEYS.kept);
    const metrics = await (await fetch(`${gw!.metricsUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(metrics).toMatch(/^gateway_upstream_key_missing_total\{upstream="A"\} 1$/m);
  });

  it("is not ended as lost when the upstream does not show it to the other key (another account's task)", async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-drift-'));
    let url = await start(['A', 'B'], KEYS.old);
    const { key } = await teamWithKey(url, 'drift-foreign');
    const { body } = await postJson(`${url}/v1/videos`, { model: 'grok-video-3', prompt: 'a fox', seconds: 4 }, key);
    await gw!.shutdown(1000);

    url = await start(['A', 'B'], KEYS.kept);
    // new-api answers another account's task as an unknown one: 400 task_not_exist.
    sims.A.tasks.delete(newestTask(sims.A));
    expect((await poll(url, body.id, key)).status).toBe(502);
    await gw!.tracker.pass({ all: true });
    expect(await gw!.store.getJob('drift-foreign', body.id)).toMatchObject({ status: 'queued', charge: 'reserved' });
  });
});

describe('a video whose upstream is no longer configured', () => {
  it('can still be deleted: the deleted shape, then 404; a running one refunded, a completed one keeps its charge', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gw-drift-'));
    let url = await start(['A', 'B'], KEYS.old);
    const { key } = await teamWithKey(url, 'drift-upstream');
    const running = (await postJson(`${url}/v1/videos`, { model: 'grok-video-3', prompt: 'running', seconds: 4 }, key)).body.id as string;
    const done = (await postJson(`${url}/v1/videos`, { model: 'grok-video-3', prompt: 'done', seconds: 6 }, key)).body.id as string;
    sims.A.settle(newestTask(sims.A), 'completed');
    expect((await poll(url, done, key)).body.status).toBe('completed');
    await gw!.shutdown(1000);

    url = await start(['B'], KEYS.old);
    expect((await poll(url, running, key)).status).toBe(502);
    for (const id of [running, done]) {
      const res = await fetch(`${url}/v1/videos/${id}`, { method: 'DELETE', headers: auth(key) });
      expect({ status: res.status, body: await res.json() }).toEqual({ status: 200, body: { id, object: 'video.deleted', deleted: true } });
      expect((await poll(url, id, key)).status).toBe(404);
    }
    const usage = (await admin(url, 'GET', '/teams/drift-upstream/usage')).body;
    expect(usage).toMatchObject({ active_jobs: 0, day: { video_seconds: 6, video_seconds_reserved: 0 } });
  });
});
