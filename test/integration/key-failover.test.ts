import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { ADMIN_TOKEN, CLIENT_KEY, postJson } from '../support/harness.js';

/**
 * Failover between the keys of one upstream (§8, issue 19): P has two keys, the first rate-limited on every
 * create, the second healthy; Q, at the same priority and weight, answers every create 503. Its breaker is
 * set never to open, so that Q stays a candidate that refuses.
 */
const KEYS = { P: ['p-key-limited-0123456789abcdef', 'p-key-healthy-0123456789abcdef'], Q: ['q-key-one-0123456789abcdef'] };
const sims = {
  P: new UpstreamSimulator({ apiKeys: KEYS.P, completeAfterMs: 600_000 }),
  Q: new UpstreamSimulator({ apiKeys: KEYS.Q, completeAfterMs: 600_000 }),
};
let dataDir: string;
let gw: Gateway;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gw-key-failover-'));
  const upstreams = [
    { id: 'P', kind: 'newapi', base_url: await sims.P.listen(), keys: { env: 'P_KEYS' }, models: ['grok-imagine-video'], priority: 0 },
    { id: 'Q', kind: 'newapi', base_url: await sims.Q.listen(), keys: { env: 'Q_KEYS' }, models: ['grok-imagine-video'], priority: 0 },
  ];
  writeFileSync(join(dataDir, 'upstreams.json'), JSON.stringify({ upstreams }));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    CONFIG_FILE: join(dataDir, 'upstreams.json'),
    P_KEYS: KEYS.P.join(','),
    Q_KEYS: KEYS.Q.join(','),
    GATEWAY_API_KEYS: CLIENT_KEY,
    ADMIN_TOKEN,
    RECONCILE_INTERVAL_MS: '0',
    UPSTREAM_BREAKER_FAILURES: '1000',
    LOG_LEVEL: 'silent',
  });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  gw = await startGateway({ config, logger: createLogger(config.logLevel, sink) });
  sims.P.keyFailures.set(KEYS.P[0]!, { status: 429, body: '{"error":{"message":"rate limited"}}' });
  sims.Q.keyFailures.set(KEYS.Q[0]!, { status: 503, body: 'down' });
});
afterAll(async () => {
  await gw.shutdown(1000);
  await Promise.all(Object.values(sims).map((s) => s.close()));
  rmSync(dataDir, { recursive: true, force: true });
});

const burst = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => postJson(`${gw.url}/v1/videos`, { prompt: `prompt ${i}` })));
const keyOf = (r: { headers: { authorization?: string | undefined } }) => r.headers.authorization?.slice('Bearer '.length);

describe('failover between the keys of one upstream', () => {
  it("a rate-limited key never fails a create that the upstream's other key can serve: 10 concurrent creates, 10 videos", async () => {
    const answers = await burst(10);
    expect(answers.map((a) => a.res.status)).toEqual(Array(10).fill(200));
    // Every job on P's healthy key; the limited key was tried (and refused) along the way, Q refused all it got.
    expect(sims.P.tasks.size).toBe(10);
    const posts = sims.P.creates();
    expect(posts.some((r) => keyOf(r) === KEYS.P[0])).toBe(true);
    expect(posts.filter((r) => keyOf(r) === KEYS.P[1]).length).toBe(10);
    expect(sims.Q.tasks.size).toBe(0);
  });

  it('when every key of every candidate refuses, the client gets 503 with retry-after, never a 502', async () => {
    sims.P.keyFailures.set(KEYS.P[1]!, { status: 429, body: '{}', headers: { 'retry-after': '5' } });
    try {
      const answers = await burst(5);
      for (const { res, body } of answers) {
        expect(res.status).toBe(503);
        expect(['upstream_rate_limited', 'upstream_unavailable']).toContain(body.error.code);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        // No job can have started: the SDKs may retry.
        expect(res.headers.get('x-should-retry')).toBeNull();
      }
      expect(sims.P.tasks.size).toBe(10);
    } finally {
      sims.P.keyFailures.delete(KEYS.P[1]!);
    }
  });
});
