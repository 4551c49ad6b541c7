import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import OpenAI7 from 'openai7';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../src/admin/cli.js';
import { MAX_ATTEMPTS, RETRY_DELAYS_MS } from '../../src/webhooks/worker.js';
import { ADMIN_TOKEN, admin, auth, postJson, startHarness, TestClock, teamWithKey, type Harness } from '../support/harness.js';
import { PYTHON_SDKS } from '../support/setup/python.js';
import { WebhookReceiver, type Received } from '../support/webhook-receiver.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DAY_MS = 86_400_000;

async function createVideo(url: string, key: string): Promise<string> {
  const { res, body } = await postJson(`${url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'a fox', seconds: '4' }, key);
  if (res.status !== 200) throw new Error(`create: ${res.status} ${JSON.stringify(body)}`);
  return body.id as string;
}

const poll = async (url: string, key: string, id: string) => (await (await fetch(`${url}/v1/videos/${id}`, { headers: auth(key) })).json()) as { status: string };

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const deliveries = async (h: Harness, team: string) => (await admin(h.url, 'GET', `/teams/${team}/webhook/deliveries?limit=100`)).body.data as any[];
const eventOf = (r: Received) => JSON.parse(r.body) as { id: string; type: string; data: { id: string } };

/** The official Python SDK's unwrap, in each venv the test setup built; skipped where there is none. */
function pythonUnwrap(python: string, secret: string, events: Received[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [join(ROOT, 'test', 'python', 'webhook_unwrap.py')], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(JSON.stringify({ secret, events: events.map((e) => ({ body: e.body, headers: e.headers })) }));
  });
}

describe('webhooks: endpoints, signed events verified by the official SDKs, exactly one per video', () => {
  const receiver = new WebhookReceiver();
  const other = new WebhookReceiver();
  let h: Harness;
  beforeAll(async () => {
    await receiver.listen();
    await other.listen();
    h = await startHarness({
      sim: { completeAfterMs: 60_000 },
      env: { WEBHOOK_ALLOWED_HOSTS: `127.0.0.1:${new URL(receiver.url).port},127.0.0.1:${new URL(other.url).port}`, WEBHOOK_POLL_INTERVAL_MS: '25' },
    });
  });
  afterAll(async () => {
    await h?.close();
    await receiver.close();
    await other.close();
  });

  it('sets, shows, replaces, rotates and deletes an endpoint; the secret is shown only by the calls that make it', async () => {
    await teamWithKey(h.url, 'hooks-admin');
    const created = await admin(h.url, 'PUT', '/teams/hooks-admin/webhook', { url: `${receiver.url}/hook` });
    expect(created.res.status).toBe(200);
    expect(created.body).toMatchObject({ object: 'webhook_endpoint', team: 'hooks-admin', url: `${receiver.url}/hook`, events: ['video.completed', 'video.failed'], enabled: true });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(created.body.secret.slice(6), 'base64')).toHaveLength(32);
    const shown = await admin(h.url, 'GET', '/teams/hooks-admin/webhook');
    expect(shown.body).not.toHaveProperty('secret');
    const replaced = await admin(h.url, 'PUT', '/teams/hooks-admin/webhook', { url: `${receiver.url}/other`, events: ['video.failed'], enabled: false });
    expect(replaced.body).toMatchObject({ url: `${receiver.url}/other`, events: ['video.failed'], enabled: false });
    expect(replaced.body).not.toHaveProperty('secret');
    const rotated = await admin(h.url, 'POST', '/teams/hooks-admin/webhook/rotate-secret');
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(created.body.secret);
    expect(rotated.body.previous_secret_expires_at).toBeGreaterThan(Date.now() / 1000 + DAY_MS / 1000 - 60);
    expect(JSON.stringify(h.logs)).not.toContain(created.body.secret.slice(6));
    expect(JSON.stringify(h.logs)).not.toContain(rotated.body.secret.slice(6));
    expect((await admin(h.url, 'DELETE', '/teams/hooks-admin/webhook')).body).toEqual({ object: 'webhook_endpoint.deleted', team: 'hooks-admin', deleted: true });
    expect((await admin(h.url, 'GET', '/teams/hooks-admin/webhook')).body.error.code).toBe('webhook_not_found');
    expect((await admin(h.url, 'POST', '/teams/hooks-admin/webhook/rotate-secret')).res.status).toBe(404);
    expect((await admin(h.url, 'PUT', '/teams/nobody/webhook', { url: `${receiver.url}/hook` })).body.error.code).toBe('team_not_found');
    const invalid = [
      [{ url: `${receiver.url}/hook`, events: ['video.created'] }, 'events.0'],
      [{ url: `${receiver.url}/hook`, events: [] }, 'events'],
      [{}, 'url'],
      [{ url: 'https://elsewhere.example.com/hook' }, 'url'],
      [{ url: `ftp://${receiver.hostPort}/hook` }, 'url'],
      [{ url: 'http://127.0.0.1:1/hook' }, 'url'],
    ] as const;
    for (const [body, param] of invalid) {
      const r = await admin(h.url, 'PUT', '/teams/hooks-admin/webhook', body);
      expect([r.res.status, r.body.error.param], JSON.stringify(body)).toEqual([400, param]);
    }
  });

  it("delivers each team's events to its own endpoint only, one per video however many clients poll it, verified by the Node and Python SDKs", async () => {
    const a = await teamWithKey(h.url, 'hooks-a');
    const b = await teamWithKey(h.url, 'hooks-b');
    const silent = await teamWithKey(h.url, 'hooks-silent');
    const { secret } = (await admin(h.url, 'PUT', '/teams/hooks-a/webhook', { url: `${receiver.url}/a` })).body;
    await admin(h.url, 'PUT', '/teams/hooks-b/webhook', { url: `${other.url}/b` });
    const before = receiver.received.length;

    const done = await createVideo(h.url, a.key);
    const broken = await createVideo(h.url, a.key);
    const theirs = await createVideo(h.url, b.key);
    const unhooked = await createVideo(h.url, silent.key);
    for (const [team, id, outcome] of [['hooks-a', done, 'completed'], ['hooks-a', broken, 'failed'], ['hooks-b', theirs, 'completed'], ['hooks-silent', unhooked, 'completed']] as const) {
      h.sim.settle((await h.gw.store.getJob(team, id))!.upstreamId!, outcome);
    }
    // Many clients poll each video at once, and the tracker runs meanwhile: one event per video all the same.
    await Promise.all([
      ...[done, broken].flatMap((id) => Array.from({ length: 8 }, () => poll(h.url, a.key, id))),
      poll(h.url, b.key, theirs),
      poll(h.url, silent.key, unhooked),
      h.gw.tracker.pass({ all: true }),
    ]);
    await h.gw.tracker.pass({ all: true });
    await receiver.waitFor(before + 2);
    await other.waitFor(1);
    await new Promise((r) => setTimeout(r, 300));
    const mine = receiver.received.slice(before);
    expect(mine).toHaveLength(2);
    expect(other.received).toHaveLength(1);

    const node6 = new OpenAI({ apiKey: 'unused' });
    const node7 = new OpenAI7({ apiKey: 'unused' });
    const events = [];
    for (const r of mine) {
      const headers = r.headers as Record<string, string>;
      expect(Object.keys(headers).filter((k) => k.startsWith('webhook-')).sort()).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);
      expect(headers).not.toHaveProperty('authorization');
      const event = (await node6.webhooks.unwrap(r.body, headers, secret)) as any;
      expect(await node7.webhooks.unwrap(r.body, headers, secret)).toEqual(event);
      await expect(node6.webhooks.unwrap(r.body.replace('video_', 'video_x'), headers, secret)).rejects.toThrow(/signature/);
      expect(headers['webhook-id']).toBe(event.id);
      expect(Object.keys(event)).toEqual(['id', 'object', 'created_at', 'type', 'data']);
      expect(event).toMatchObject({ object: 'event', data: { id: expect.stringMatching(/^video_/) } });
      expect(Math.abs(event.created_at - Date.now() / 1000)).toBeLessThan(60);
      events.push(event);
    }
    expect(events.map((e) => [e.data.id, e.type]).sort()).toEqual(
      [
        [done, 'video.completed'],
        [broken, 'video.failed'],
      ].sort(),
    );
    expect(eventOf(other.received[0]!)).toMatchObject({ type: 'video.completed', data: { id: theirs } });

    const list = await deliveries(h, 'hooks-a');
    expect(list).toHaveLength(2);
    expect(list[0]).toMatchObject({ object: 'webhook.delivery', status: 'delivered', attempts: 1, last_status: 204, next_attempt_at: null });
    expect(list[0].delivered_at).toBeGreaterThan(0);
    expect(await deliveries(h, 'hooks-silent')).toEqual([]);

    let pythons = 0;
    for (const sdk of PYTHON_SDKS) {
      if (!existsSync(sdk.python)) continue;
      pythons++;
      const r = await pythonUnwrap(sdk.python, secret, mine);
      expect(r.code, `${sdk.line}: ${r.out}`).toBe(0);
      expect(JSON.parse(r.out)).toEqual(events.map((e) => ({ id: e.id, type: e.type, video_id: e.data.id })));
    }
    if (pythons === 0) console.warn('SKIPPED the Python SDK half of the webhook check: no venv (see test/support/setup/python.ts)');

    const metrics = await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    expect(metrics).toMatch(/gateway_webhook_deliveries_total\{outcome="delivered"\} [3-9]/);
    for (const r of [...mine, ...other.received]) expect(h.logs.join('')).not.toContain(r.headers['webhook-signature']);
  });

  it('the CLI sets, shows, rotates, lists, replays and deletes, through the admin API and directly on the store alike', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-hooks-cli-'));
    try {
      for (const env of [{ GATEWAY_URL: h.url, ADMIN_TOKEN }, { DATA_DIR: dir, WEBHOOK_ALLOWED_HOSTS: receiver.hostPort }]) {
        const run = async (...args: string[]) => {
          const out: string[] = [];
          const err: string[] = [];
          const code = await runCli(args, { env, stdout: (x) => out.push(x), stderr: (x) => err.push(x) });
          return { code, out: out.join(''), err: err.join('') };
        };
        const team = `cli-hooks-${env.DATA_DIR ? 'direct' : 'http'}`;
        expect((await run('teams', 'create', team)).code).toBe(0);
        const set = await run('webhook', 'set', team, `${receiver.url}/cli`, '--events', 'video.failed', '--json');
        expect(JSON.parse(set.out)).toMatchObject({ team, url: `${receiver.url}/cli`, events: ['video.failed'], enabled: true, secret: expect.stringMatching(/^whsec_/) });
        const shown = await run('webhook', 'get', team);
        expect(shown.out).toMatch(/^events: +video\.failed$/m);
        expect(shown.out).not.toContain('whsec_');
        const disabled = await run('webhook', 'set', team, `${receiver.url}/cli`, '--disabled', '--json');
        expect(JSON.parse(disabled.out)).toMatchObject({ enabled: false, events: ['video.completed', 'video.failed'] });
        expect(JSON.parse(disabled.out)).not.toHaveProperty('secret');
        const rotated = await run('webhook', 'rotate-secret', team);
        expect(rotated.out).toMatch(/^secret: +whsec_/m);
        expect(rotated.err).toContain('only this once');
        expect(JSON.parse((await run('webhook', 'deliveries', team, '--limit', '5', '--json')).out)).toEqual({ object: 'list', data: [] });
        expect((await run('webhook', 'replay', team, 'whd_nope')).code).toBe(EXIT.notFound.code);
        expect((await run('webhook', 'set', team, 'https://10.0.0.1/x')).code).toBe(EXIT.usage.code);
        expect(JSON.parse((await run('webhook', 'delete', team, '--json')).out)).toEqual({ object: 'webhook_endpoint.deleted', team, deleted: true });
        expect((await run('webhook', 'get', team)).code).toBe(EXIT.notFound.code);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replays a delivery on demand, with the same event id', async () => {
    const [last] = await deliveries(h, 'hooks-a');
    const before = receiver.received.length;
    const replayed = await admin(h.url, 'POST', `/teams/hooks-a/webhook/deliveries/${last.id}/replay`);
    expect(replayed.body).toMatchObject({ id: last.id, event_id: last.event_id, status: 'pending', attempts: 0 });
    await receiver.waitFor(before + 1);
    expect(receiver.received[before]!.headers['webhook-id']).toBe(last.event_id);
    expect((await admin(h.url, 'POST', `/teams/hooks-b/webhook/deliveries/${last.id}/replay`)).res.status).toBe(404);
  });
});

describe('webhooks: retries, final failure, rotation (worker driven by the test, on a clock it moves)', () => {
  const receiver = new WebhookReceiver();
  const clock = new TestClock();
  let h: Harness;
  let key: string;
  let secret: string;
  beforeAll(async () => {
    await receiver.listen();
    h = await startHarness({
      clock,
      sim: { completeAfterMs: 0 },
      env: { WEBHOOK_ALLOWED_HOSTS: receiver.hostPort, WEBHOOK_POLL_INTERVAL_MS: '0', WEBHOOK_TIMEOUT_MS: '500' },
    });
    key = (await teamWithKey(h.url, 'retry')).key;
    secret = (await admin(h.url, 'PUT', '/teams/retry/webhook', { url: `${receiver.url}/r` })).body.secret;
  });
  afterAll(async () => {
    await h?.close();
    await receiver.close();
  });
  afterEach(() => {
    receiver.answer = { kind: 'status', status: 204 };
  });

  /** A video that ends now, so that one event is queued; returns its delivery. */
  async function queued(): Promise<any> {
    const id = await createVideo(h.url, key);
    await until('completion', async () => (await poll(h.url, key, id)).status === 'completed');
    return (await deliveries(h, 'retry')).find((d) => d.video_id === id);
  }

  /** Moves the clock past the longest jittered wait after `attempts` attempts, and runs one pass. */
  async function nextAttempt(attempts: number): Promise<void> {
    clock.advance(Math.ceil(RETRY_DELAYS_MS[attempts - 1]! * 1.2) + 1);
    expect(await h.gw.webhooks.runOnce()).toBe(1);
  }

  it('keeps the event id through a receiver that resets, fails, hangs, and then answers; waits in between; every attempt is recorded', async () => {
    const d = await queued();
    const before = receiver.received.length;
    receiver.answer = { kind: 'reset' };
    expect(await h.gw.webhooks.runOnce()).toBe(1);
    let [row] = await deliveries(h, 'retry');
    expect(row).toMatchObject({ id: d.id, status: 'pending', attempts: 1, last_status: null, last_error: expect.stringMatching(/network/) });
    // Not due before its wait (at least 80% of the first delay) is over.
    clock.advance(RETRY_DELAYS_MS[0]! * 0.8 - 1000);
    expect(await h.gw.webhooks.runOnce()).toBe(0);

    receiver.answer = { kind: 'status', status: 500 };
    await nextAttempt(1);
    [row] = await deliveries(h, 'retry');
    expect(row).toMatchObject({ attempts: 2, last_status: 500, last_error: 'HTTP 500' });

    receiver.answer = { kind: 'hang' };
    await nextAttempt(2);
    [row] = await deliveries(h, 'retry');
    expect(row).toMatchObject({ attempts: 3, last_status: null, last_error: 'timeout' });

    receiver.answer = { kind: 'status', status: 200 };
    await nextAttempt(3);
    [row] = await deliveries(h, 'retry');
    expect(row).toMatchObject({ status: 'delivered', attempts: 4, last_status: 200, last_error: null, next_attempt_at: null });

    const got = receiver.received.slice(before);
    expect(got).toHaveLength(4);
    expect(new Set(got.map((r) => r.headers['webhook-id']))).toEqual(new Set([d.event_id]));
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    // Each attempt is stamped and signed at its own time, on the gateway's clock.
    const stamps = got.map((r) => Number(r.headers['webhook-timestamp']));
    expect([...stamps].sort((x, y) => x - y)).toEqual(stamps);
    expect(new Set(stamps).size).toBe(4);
    const sdk = new OpenAI({ apiKey: 'unused' });
    for (const r of got) await sdk.webhooks.unwrap(r.body, r.headers as Record<string, string>, secret, 10 * DAY_MS);
  });

  it('marks a delivery failed after the last attempt, over more than a day, and counts it', async () => {
    const d = await queued();
    receiver.answer = { kind: 'status', status: 503 };
    const start = clock.now();
    expect(await h.gw.webhooks.runOnce()).toBe(1);
    for (let attempts = 1; attempts < MAX_ATTEMPTS; attempts++) await nextAttempt(attempts);
    const [row] = await deliveries(h, 'retry');
    expect(row).toMatchObject({ id: d.id, status: 'failed', attempts: MAX_ATTEMPTS, last_status: 503, next_attempt_at: null, delivered_at: null });
    expect(row.last_attempt_at * 1000 - start).toBeGreaterThan(DAY_MS);
    clock.advance(30 * DAY_MS);
    expect(await h.gw.webhooks.runOnce()).toBe(0);
    expect(await (await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text()).toMatch(/gateway_webhook_deliveries_total\{outcome="failed"\} 1\b/);
  });

  it('signs with both secrets for a day after a rotation, then with the new one only', async () => {
    const { secret: fresh } = (await admin(h.url, 'POST', '/teams/retry/webhook/rotate-secret')).body;
    const before = receiver.received.length;
    await queued();
    expect(await h.gw.webhooks.runOnce()).toBe(1);
    const during = receiver.received[before]!;
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    const sdk = new OpenAI({ apiKey: 'unused' });
    for (const s of [secret, fresh]) await sdk.webhooks.unwrap(during.body, during.headers as Record<string, string>, s, 10 * DAY_MS);

    clock.advance(DAY_MS + 1000);
    await queued();
    expect(await h.gw.webhooks.runOnce()).toBe(1);
    const after = receiver.received[before + 1]!;
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    await sdk.webhooks.unwrap(after.body, after.headers as Record<string, string>, fresh, 40 * DAY_MS);
    await expect(sdk.webhooks.unwrap(after.body, after.headers as Record<string, string>, secret, 40 * DAY_MS)).rejects.toThrow(/signature/);
    secret = fresh;
  });

  it('keeps each replaced secret signing for a day after its own rotation, however many rotations that day; refuses the 11th', async () => {
    const HOUR_MS = 3_600_000;
    const sdk = new OpenAI({ apiKey: 'unused' });
    const rotate = async () => (await admin(h.url, 'POST', '/teams/retry/webhook/rotate-secret')).body.secret as string;
    const delivered = async () => {
      const before = receiver.received.length;
      await queued();
      expect(await h.gw.webhooks.runOnce()).toBe(1);
      const r = receiver.received[before]!;
      const verifies = (s: string) =>
        sdk.webhooks.unwrap(r.body, r.headers as Record<string, string>, s, 40 * DAY_MS).then(() => true, () => false);
      return { signatures: String(r.headers['webhook-signature']).split(' ').length, verifies };
    };
    const first = secret;
    const second = await rotate();
    clock.advance(HOUR_MS);
    const third = await rotate();
    let sent = await delivered();
    expect(sent.signatures).toBe(3);
    for (const s of [first, second, third]) expect(await sent.verifies(s)).toBe(true);

    // A day after the first rotation: its secret stops, the second's goes on for the hour it was rotated later.
    clock.advance(DAY_MS - HOUR_MS + 1000);
    sent = await delivered();
    expect(sent.signatures).toBe(2);
    expect([await sent.verifies(first), await sent.verifies(second), await sent.verifies(third)]).toEqual([false, true, true]);
    clock.advance(HOUR_MS);
    sent = await delivered();
    expect(sent.signatures).toBe(1);
    expect(await sent.verifies(third)).toBe(true);

    // Ten replaced secrets signing at once is the most: the next rotation waits until the oldest stops.
    let current = third;
    for (let i = 0; i < 10; i++) current = await rotate();
    const refused = await admin(h.url, 'POST', '/teams/retry/webhook/rotate-secret');
    expect(refused.res.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_previous_secrets' });
    expect(Number(refused.res.headers.get('retry-after'))).toBeGreaterThan(DAY_MS / 1000 - 60);
    sent = await delivered();
    expect(sent.signatures).toBe(11);
    expect(await sent.verifies(current)).toBe(true);
    clock.advance(DAY_MS + 1000);
    secret = current;
  });

  it('follows no redirect (a 3xx is a failed attempt) and stops reading an oversized answer', async () => {
    const target = new WebhookReceiver();
    await target.listen();
    try {
      receiver.answer = { kind: 'redirect', location: `${target.url}/stolen` };
      await queued();
      expect(await h.gw.webhooks.runOnce()).toBe(1);
      let [row] = await deliveries(h, 'retry');
      expect(row).toMatchObject({ status: 'pending', last_status: 307 });
      expect(target.received).toEqual([]);

      receiver.answer = { kind: 'flood', bytes: 64 * 1024 * 1024 };
      await nextAttempt(1);
      [row] = await deliveries(h, 'retry');
      expect(row).toMatchObject({ status: 'delivered', last_status: 200 });
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.floods).toEqual([false]);
    } finally {
      await target.close();
    }
  });
});

describe('webhooks: where they may go (WEBHOOK_ALLOWED_HOSTS empty: public addresses only)', () => {
  const receiver = new WebhookReceiver();
  /** DNS as the test wants it: names resolve to private addresses, or change their answer (rebinding). */
  const dns = new Map<string, string[]>([
    ['localhost', ['127.0.0.1']],
    ['intranet.example', ['10.1.2.3']],
    ['metadata.example', ['169.254.169.254']],
    ['mixed.example', ['93.184.216.34', '192.168.1.1']],
    ['public.example', ['93.184.216.34']],
  ]);
  let h: Harness;
  let key: string;
  beforeAll(async () => {
    await receiver.listen();
    h = await startHarness({
      sim: { completeAfterMs: 0 },
      env: { WEBHOOK_POLL_INTERVAL_MS: '0', WEBHOOK_TIMEOUT_MS: '2000' },
      resolveHost: async (name) => {
        const addresses = dns.get(name);
        if (!addresses) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
        return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      },
    });
    key = (await teamWithKey(h.url, 'ssrf')).key;
  });
  afterAll(async () => {
    await h?.close();
    await receiver.close();
  });

  it.each([
    ['https://127.0.0.1/hook', /127\.0\.0\.1.*private, loopback or link-local/],
    ['https://10.0.0.5/hook', /10\.0\.0\.5/],
    ['https://169.254.169.254/latest/meta-data', /169\.254\.169\.254/],
    ['https://[::1]/hook', /::1/],
    ['https://[::ffff:127.0.0.1]/hook', /::ffff/],
    ['https://localhost/hook', /localhost resolves to 127\.0\.0\.1/],
    ['https://intranet.example/hook', /10\.1\.2\.3/],
    ['https://metadata.example/hook', /169\.254\.169\.254/],
    ['https://mixed.example/hook', /192\.168\.1\.1/],
    ['https://nowhere.example/hook', /does not resolve/],
    ['http://public.example/hook', /must be https/],
    ['https://user:pw@public.example/hook', /credentials/],
  ])('refuses %s when it is set', async (url, why) => {
    const r = await admin(h.url, 'PUT', '/teams/ssrf/webhook', { url });
    expect(r.res.status).toBe(400);
    expect(r.body.error).toMatchObject({ param: 'url', code: 'webhook_url_refused' });
    expect(r.body.error.message).toMatch(why);
  });

  it('checks the address again when it sends: a name that now resolves to loopback (DNS rebinding) is refused', async () => {
    const ok = await admin(h.url, 'PUT', '/teams/ssrf/webhook', { url: `https://public.example:${new URL(receiver.url).port}/hook` });
    expect(ok.res.status).toBe(200);
    dns.set('public.example', ['127.0.0.1']);
    const id = await createVideo(h.url, key);
    await until('completion', async () => (await poll(h.url, key, id)).status === 'completed');
    expect(await h.gw.webhooks.runOnce()).toBe(1);
    const [row] = await deliveries(h, 'ssrf');
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_status: null });
    expect(row.last_error).toMatch(/refused: public\.example resolves to 127\.0\.0\.1/);
    expect(receiver.received).toEqual([]);
  });
});
