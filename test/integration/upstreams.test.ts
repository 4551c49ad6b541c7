import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startGateway, type Gateway } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { fingerprint } from '../../src/upstream/client.js';
import { ADMIN_TOKEN, CLIENT_KEY, TestClock, admin, auth, capturingSink, postJson } from '../support/harness.js';

/**
 * Three upstreams at once (§8): two new-api resellers, A (weight 3) and B (weight 1) at priority 0, and xAI
 * (X) at priority 1. A serves grok-video-3 alone; the preview model is A's, with X behind it; grok-imagine-video
 * is spread over A and B.
 */
const KEYS = { A: ['a-key-one-0123456789abcdef', 'a-key-two-0123456789abcdef'], B: ['b-key-one-0123456789abcdef'], X: ['xai-key-one-0123456789abcdef'] };
const PREVIEW = 'grok-imagine-video-1.5-preview';
const sims = {
  A: new UpstreamSimulator({ apiKeys: KEYS.A, completeAfterMs: 0, videoBytes: 10_000 }),
  B: new UpstreamSimulator({ apiKeys: KEYS.B, completeAfterMs: 0, videoBytes: 10_000 }),
  X: new UpstreamSimulator({ apiKeys: KEYS.X, completeAfterMs: 0, videoBytes: 10_000, kind: 'xai' }),
};
type Id = keyof typeof sims;
const urls = {} as Record<Id, string>;
const clock = new TestClock();
let dataDir: string;
let gw: Gateway;
let logs: string[];

function configFile(weights: Record<'A' | 'B', number>) {
  const path = join(dataDir, `upstreams-${weights.A}-${weights.B}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      upstreams: [
        { id: 'A', kind: 'newapi', base_url: urls.A, keys: { env: 'A_KEYS' }, models: ['grok-imagine-video', 'grok-video-3', PREVIEW], priority: 0, weight: weights.A },
        { id: 'B', kind: 'newapi', base_url: `${urls.B}/v1`, keys: { env: 'B_KEYS' }, models: ['grok-imagine-video'], priority: 0, weight: weights.B },
        { id: 'X', kind: 'xai', base_url: urls.X, keys: { env: 'X_KEYS' }, models: ['grok-imagine-video', PREVIEW], priority: 1, media_hosts: [new URL(urls.X).host] },
      ],
    }),
  );
  return path;
}

async function start(weights = { A: 3, B: 1 }) {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    CONFIG_FILE: configFile(weights),
    A_KEYS: KEYS.A.join(','),
    B_KEYS: KEYS.B.join(', '),
    X_KEYS: KEYS.X.join(','),
    GATEWAY_API_KEYS: CLIENT_KEY,
    ADMIN_TOKEN,
    RECONCILE_INTERVAL_MS: '0',
    STATUS_CACHE_MS: '0',
    UPSTREAM_BREAKER_FAILURES: '3',
    UPSTREAM_BREAKER_COOLDOWN_MS: '60000',
    UPSTREAM_KEY_COOLDOWN_MS: '60000',
    LOG_LEVEL: 'info',
    // Routing is counted call by call here: no background copies of completed videos (§12) among them.
    STORAGE_URL: 'none',
  });
  logs = [];
  const { sink } = capturingSink(logs);
  gw = await startGateway({ config, logger: createLogger(config.logLevel, sink), clock });
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gw-upstreams-'));
  for (const id of Object.keys(sims) as Id[]) urls[id] = await sims[id].listen();
  await start();
});
afterAll(async () => {
  await gw.shutdown(1000);
  await Promise.all(Object.values(sims).map((s) => s.close()));
  rmSync(dataDir, { recursive: true, force: true });
});

const counts = () => ({ A: sims.A.tasks.size, B: sims.B.tasks.size, X: sims.X.tasks.size });
const started = (before: Record<Id, number>) => {
  const now = counts();
  return { A: now.A - before.A, B: now.B - before.B, X: now.X - before.X };
};
const create = (model: string) => postJson(`${gw.url}/v1/videos`, { model, prompt: 'a lighthouse' });
const upstreamsView = async () => (await admin(gw.url, 'GET', '/upstreams')).body as Array<{ id: string; state: string; keys: Array<{ fingerprint: string; state: string; cooling_until: number | null }>; active_jobs: number; recent: { requests: number; errors: number; p50_ms: number | null } }>;
const view = async (id: Id) => (await upstreamsView()).find((u) => u.id === id)!;
const lastCreateKey = (id: Id) => sims[id].creates().at(-1)!.headers.authorization;

describe('routing', () => {
  it.each<[string, Id]>([
    ['grok-video-3', 'A'],
    [PREVIEW, 'A'],
  ])('%s goes to the upstream serving it at the lowest priority (%s)', async (model, to) => {
    const before = counts();
    const { res } = await create(model);
    expect(res.status).toBe(200);
    expect(started(before)).toEqual({ A: 0, B: 0, X: 0, [to]: 1 });
  });

  it('spreads creates by weight among equal priorities (A:B = 3:1, each share within ±5 points), the lower priority untouched', async () => {
    const before = counts();
    for (let i = 0; i < 80; i++) expect((await create('grok-imagine-video')).res.status).toBe(200);
    const n = started(before);
    expect(n.X).toBe(0);
    expect(n.A + n.B).toBe(80);
    expect(Math.abs(n.A / 80 - 0.75)).toBeLessThanOrEqual(0.05);
  });

  it('rotates over an upstream’s keys', async () => {
    await create('grok-video-3');
    const first = lastCreateKey('A');
    await create('grok-video-3');
    expect(lastCreateKey('A')).not.toBe(first);
  });

  it('the request log names the upstream; the admin view shows key fingerprints only', async () => {
    sims.A.completeAfterMs = 600_000;
    await create('grok-video-3');
    sims.A.completeAfterMs = 0;
    const line = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.method === 'POST').at(-1);
    expect(line.upstream).toBe('A');
    const res = await fetch(`${gw.url}/admin/upstreams`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await res.text();
    for (const k of Object.values(KEYS).flat()) expect(text).not.toContain(k);
    const body = JSON.parse(text);
    expect(body.map((u: { id: string }) => u.id)).toEqual(['A', 'B', 'X']);
    expect(body[0]).toMatchObject({ kind: 'newapi', models: ['grok-imagine-video', 'grok-video-3', 'grok-imagine-video-1.5'], state: 'closed', keys: KEYS.A.map((k) => ({ fingerprint: fingerprint(k), state: 'ready', cooling_until: null })) });
    expect(body[0].active_jobs).toBe(1);
    expect(body[0].recent.requests).toBeGreaterThan(0);
    expect(typeof body[0].recent.p50_ms).toBe('number');
    expect(body[2]).toMatchObject({ id: 'X', kind: 'xai', active_jobs: 0 });
  });
});

describe('failover', () => {
  const keyRefusals: Array<[string, Parameters<UpstreamSimulator['failNextCreate']>[0]]> = [
    ['401', { status: 401, body: '{"error":{"message":"invalid token"}}' }],
    ['403', { status: 403, body: '{}' }],
    ['429', { status: 429, body: '{"error":{"message":"channel rate limited at gpu-pool-7.internal"}}', headers: { 'retry-after': '30' } }],
  ];

  it.each(keyRefusals)("on %s from one of A's keys the create goes to A's other key, not to X", async (_n, fail) => {
    sims.A.failNextCreate(fail);
    const before = counts();
    const { res } = await create(PREVIEW);
    expect(res.status).toBe(200);
    expect(started(before)).toEqual({ A: 1, B: 0, X: 0 });
    const [refused, served] = sims.A.creates().slice(-2).map((r) => r.headers.authorization);
    expect(new Set([refused, served])).toEqual(new Set(KEYS.A.map((k) => `Bearer ${k}`)));
    clock.advance(61_000);
  });

  it.each<[string, () => void | Promise<void>]>([
    ...keyRefusals.map(([n, fail]): [string, () => void] => [`${n} from both keys`, () => [0, 1].forEach(() => sims.A.failNextCreate(fail))]),
    // The upstream's own refusal: its other key is not tried.
    ['503', () => sims.A.failNextCreate({ status: 503, body: 'down' })],
  ])('on %s of A the create goes to X: one success, exactly one job started', async (_n, arrange) => {
    await arrange();
    const received = sims.A.received;
    const before = counts();
    const { res, body } = await create(PREVIEW);
    expect(res.status).toBe(200);
    expect(started(before)).toEqual({ A: 0, B: 0, X: 1 });
    // Sticks to X from then on.
    const polled = await (await fetch(`${gw.url}/v1/videos/${body.id}`, { headers: auth() })).json();
    expect(polled).toMatchObject({ id: body.id, status: 'completed' });
    expect(sims.X.requests.at(-1)!.path).toBe(`/v1/videos/${[...sims.X.tasks.keys()].at(-1)}`);
    expect(sims.A.received - received).toBe(_n === '503' ? 1 : 2);
    clock.advance(61_000);
  });

  it('on a refused connection the create goes to X', async () => {
    const port = new URL(urls.A).port;
    await sims.A.close();
    try {
      const before = counts();
      const { res } = await create(PREVIEW);
      expect(res.status).toBe(200);
      expect(started(before)).toEqual({ A: 0, B: 0, X: 1 });
    } finally {
      await sims.A.listen(Number(port));
    }
    // A success closes the count of consecutive faults again.
    expect((await create('grok-video-3')).res.status).toBe(200);
  });

  it.each<[string, Parameters<UpstreamSimulator['failNextCreate']>[0], number]>([
    ['a reset after the body was sent', { status: 0, destroy: true }, 502],
    ['a 500', { status: 500, body: '{"error":{"message":"boom at gpu-pool-7.internal"}}' }, 502],
    ['a garbled answer', { status: 200, body: '<html>' }, 502],
  ])('never on an uncertain outcome: %s', async (_n, fail, status) => {
    sims.A.failNextCreate(fail);
    const before = counts();
    const { res, body } = await create(PREVIEW);
    expect(res.status).toBe(status);
    expect(res.headers.get('x-should-retry')).toBe('false');
    expect(JSON.stringify(body)).not.toContain('gpu-pool');
    expect(started(before)).toEqual({ A: 0, B: 0, X: 0 });
    expect((await create('grok-video-3')).res.status).toBe(200);
  });

  it('a key refused with 401 cools down: the other key takes its creates until the cool-down ends', async () => {
    sims.A.failNextCreate({ status: 401, body: '{}' });
    await create(PREVIEW);
    // The refused key's create, then the other key's.
    const refused = sims.A.creates().at(-2)!.headers.authorization!.slice('Bearer '.length);
    const other = KEYS.A.find((k) => k !== refused)!;
    const a = await view('A');
    expect(a.keys.find((k) => k.fingerprint === fingerprint(refused))).toMatchObject({ state: 'cooling', cooling_until: expect.any(Number) });
    expect(a.keys.find((k) => k.fingerprint === fingerprint(other))).toMatchObject({ state: 'ready', cooling_until: null });
    for (let i = 0; i < 4; i++) {
      await create('grok-video-3');
      expect(lastCreateKey('A')).toBe(`Bearer ${other}`);
    }
    clock.advance(61_000);
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 2; i++) {
      await create('grok-video-3');
      seen.add(lastCreateKey('A'));
    }
    expect(seen.size).toBe(2);
    expect((await view('A')).keys.every((k) => k.state === 'ready')).toBe(true);
  });

  it('a 429 cools its key for retry-after', async () => {
    sims.A.failNextCreate({ status: 429, body: '{}', headers: { 'retry-after': '20' } });
    await create(PREVIEW);
    const cooling = (await view('A')).keys.find((k) => k.state === 'cooling')!;
    expect(cooling.cooling_until! - clock.now()).toBeGreaterThan(15_000);
    expect(cooling.cooling_until! - clock.now()).toBeLessThanOrEqual(20_000);
    clock.advance(21_000);
    expect((await view('A')).keys.every((k) => k.state === 'ready')).toBe(true);
  });
});

describe('breaker', () => {
  it('opens after consecutive 5xx, keeps creates away, and closes after a successful probe', async () => {
    for (let i = 0; i < 3; i++) {
      sims.A.failNextCreate({ status: 503, body: 'down' });
      expect((await create(PREVIEW)).res.status).toBe(200);
    }
    expect((await view('A')).state).toBe('open');
    const received = sims.A.received;
    const before = counts();
    expect((await create(PREVIEW)).res.status).toBe(200);
    expect(started(before)).toEqual({ A: 0, B: 0, X: 1 });
    // A model only A serves: refused at once, with when to come back.
    const only = await create('grok-video-3');
    expect(only.res.status).toBe(503);
    expect(only.body.error.code).toBe('upstream_unavailable');
    expect(Number(only.res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(sims.A.received).toBe(received);

    clock.advance(61_000);
    expect((await view('A')).state).toBe('half_open');
    const probe = counts();
    expect((await create(PREVIEW)).res.status).toBe(200);
    expect(started(probe)).toEqual({ A: 1, B: 0, X: 0 });
    expect((await view('A')).state).toBe('closed');
  });
});

describe('stickiness', () => {
  it('every later call goes to the upstream and key that created the job, across a restart with other weights', async () => {
    // One job on each of A's keys, one on B, one on X, all still running.
    sims.A.completeAfterMs = sims.B.completeAfterMs = sims.X.completeAfterMs = 600_000;
    const onA = [(await create('grok-video-3')).body.id, (await create('grok-video-3')).body.id] as string[];
    const aTasks = [...sims.A.tasks.keys()].slice(-2);
    const aKeys = sims.A.creates().slice(-2).map((r) => r.headers.authorization);
    let onB: string | undefined;
    for (let i = 0; i < 8 && !onB; i++) {
      const b = counts().B;
      const { body } = await create('grok-imagine-video');
      if (counts().B > b) onB = body.id;
    }
    sims.A.failNextCreate({ status: 503, body: 'down' });
    const onX = (await create(PREVIEW)).body.id as string;

    await gw.shutdown(1000);
    await start({ A: 1, B: 9 });
    for (const sim of Object.values(sims)) for (const t of sim.tasks.values()) sim.settle(t.id, 'completed');

    for (const [i, id] of onA.entries()) {
      expect(((await (await fetch(`${gw.url}/v1/videos/${id}`, { headers: auth() })).json()) as any).status).toBe('completed');
      const poll = sims.A.requests.at(-1)!;
      expect(poll.path).toBe(`/v1/videos/${aTasks[i]}`);
      expect(poll.headers.authorization).toBe(aKeys[i]);
    }
    const bBefore = sims.B.received;
    expect(((await (await fetch(`${gw.url}/v1/videos/${onB}`, { headers: auth() })).json()) as any).status).toBe('completed');
    expect(sims.B.received).toBe(bBefore + 1);
    expect(((await (await fetch(`${gw.url}/v1/videos/${onX}`, { headers: auth() })).json()) as any).status).toBe('completed');
    const content = await fetch(`${gw.url}/v1/videos/${onX}/content`, { headers: { ...auth(), range: 'bytes=0-99' } });
    expect(content.status).toBe(206);
    expect((await content.arrayBuffer()).byteLength).toBe(100);
    const del = await fetch(`${gw.url}/v1/videos/${onB}`, { method: 'DELETE', headers: auth() });
    expect(del.status).toBe(200);
    expect(sims.B.requests.at(-1)!.method).toBe('DELETE');
  });
});
