import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/admin/cli.js';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { fingerprint } from '../../src/upstream/client.js';
import { spawnCli } from '../support/cli.js';
import { UPSTREAM_KEY, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * `grok-gateway migrate-sqlite`: a gateway on the embedded store is filled through its API, stopped, its store
 * copied into PostgreSQL by the CLI (in its own process, as an operator runs it), and a gateway on the shared
 * store takes over: the same keys, videos, usage, tombstones and revocations, webhook endpoint, secrets and
 * outbox, nothing re-issued, nothing doubled, no event lost or sent twice.
 */
const PASSWORD = 'pg-migrate-secret-0123';

describe.skipIf(postgresUrl === null)('migrate-sqlite: from the embedded store to PostgreSQL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  /** The URL as an operator would give it; the throwaway cluster trusts loopback, so the password is only bait. */
  let dbUrl: string;
  let dataDir: string;
  let sim: UpstreamSimulator;
  let upstream: { sim: UpstreamSimulator; url: string };
  let b: Harness;
  const receiver = new WebhookReceiver();

  /** What the SQLite gateway showed before it stopped, to hold the PostgreSQL one to. */
  const before = {} as {
    acmeKey: string;
    revokedKey: string;
    goneKey: string;
    ids: { completed: string; failed: string; running: string };
    list: string[];
    keys: unknown;
    usage: Record<string, unknown>;
    content: Buffer;
    /** The endpoint's first secret, and the one that replaced it (the first still signs for a day). */
    secrets: { original: string; rotated: string };
    endpoint: unknown;
    /** Newest first: the deleted video's event (pending), the failed video's (failed), the completed video's (delivered). */
    deliveries: any[];
    received: number;
  };
  let firstRun: any;
  let priced: Record<string, string>;

  const poll = (h: Harness, key: string, id: string) => fetch(`${h.url}/v1/videos/${id}`, { headers: auth(key) });
  const deliveriesOf = async (url: string) => (await admin(url, 'GET', '/teams/acme/webhook/deliveries?limit=100')).body.data as any[];
  const usageOf = async (url: string) => {
    const { requests_this_minute: _minute, ...rest } = (await admin(url, 'GET', '/teams/acme/usage?days=3')).body;
    return rest as Record<string, unknown>;
  };

  beforeAll(async () => {
    db = await freshDatabase();
    const u = new URL(db.url);
    u.password = PASSWORD;
    dbUrl = u.toString();
    dataDir = mkdtempSync(join(tmpdir(), 'gw-migrate-'));
    // A price for the reseller's model, so that every job carries money to copy (§10): $0.10 a second.
    const configFile = join(dataDir, 'prices.json');
    writeFileSync(configFile, JSON.stringify({ prices: { 'grok-video-3': { perSecond: 0.1 } } }));
    priced = { CONFIG_FILE: configFile };
    // One upstream for both gateways: it holds the tasks behind the migrated jobs, as a real provider would.
    sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 3_600_000 });
    upstream = { sim, url: await sim.listen() };

    await receiver.listen();
    // The worker runs only when the test says (a poll interval of 0), so that an event can be left pending.
    const a = await startHarness({ dataDir, upstream, env: { ...priced, WEBHOOK_ALLOWED_HOSTS: receiver.hostPort, WEBHOOK_POLL_INTERVAL_MS: '0' } });
    try {
      const acme = await teamWithKey(a.url, 'acme', { requests_per_minute: 1000, max_concurrent_jobs: 10 });
      const hook = `${receiver.url}/acme`;
      const original = (await admin(a.url, 'PUT', '/teams/acme/webhook', { url: hook })).body.secret as string;
      const revoked = (await admin(a.url, 'POST', '/teams/acme/keys', { name: 'old' })).body;
      const gone = await teamWithKey(a.url, 'gone');
      Object.assign(before, { acmeKey: acme.key, revokedKey: revoked.key, goneKey: gone.key });

      const create = async (key: string, seconds: number) => {
        const r = await postJson(`${a.url}/v1/videos`, { model: 'grok-video-3', prompt: 'a fox', seconds }, key);
        expect(r.res.status, JSON.stringify(r.body)).toBe(200);
        return { id: r.body.id as string, task: [...sim.tasks.values()].at(-1)! };
      };
      const completed = await create(acme.key, 4);
      const failed = await create(acme.key, 5);
      const running = await create(acme.key, 6);
      const deleted = await create(acme.key, 3);
      // Webhook history of each kind: delivered, failed (the endpoint was disabled when its turn came), pending.
      sim.settle(completed.task.id, 'completed');
      expect((await poll(a, acme.key, completed.id)).status).toBe(200);
      expect(await a.gw.webhooks.runOnce()).toBe(1);
      sim.settle(failed.task.id, 'failed');
      expect((await poll(a, acme.key, failed.id)).status).toBe(200);
      await admin(a.url, 'PUT', '/teams/acme/webhook', { url: hook, enabled: false });
      expect(await a.gw.webhooks.runOnce()).toBe(1);
      await admin(a.url, 'PUT', '/teams/acme/webhook', { url: hook, enabled: true });
      const rotated = (await admin(a.url, 'POST', '/teams/acme/webhook/rotate-secret')).body.secret as string;
      sim.settle(deleted.task.id, 'completed');
      expect((await poll(a, acme.key, deleted.id)).status).toBe(200);
      expect((await fetch(`${a.url}/v1/videos/${deleted.id}`, { method: 'DELETE', headers: auth(acme.key) })).status).toBe(200);
      Object.assign(before, {
        secrets: { original, rotated },
        endpoint: (await admin(a.url, 'GET', '/teams/acme/webhook')).body,
        deliveries: await deliveriesOf(a.url),
        received: receiver.received.length,
      });
      expect(before.deliveries.map((d) => [d.video_id, d.status])).toEqual([
        [deleted.id, 'pending'],
        [failed.id, 'failed'],
        [completed.id, 'delivered'],
      ]);
      expect(before.received).toBe(1);
      // The pending event as a worker that died mid-send left it: leased for an hour. The lease is not copied.
      expect(await a.gw.store.claimDeliveries(10, 3_600_000, Date.now())).toHaveLength(1);
      // A create the upstream refused: its record stays, hidden and refunded.
      sim.failNextCreate({ status: 500 });
      expect((await postJson(`${a.url}/v1/videos`, { model: 'grok-video-3', prompt: 'x', seconds: 2 }, acme.key)).res.status).toBeGreaterThanOrEqual(500);
      await create(gone.key, 7);
      expect((await admin(a.url, 'DELETE', `/keys/${revoked.id}`)).res.status).toBe(200);
      expect((await admin(a.url, 'DELETE', '/teams/gone')).res.status).toBe(200);

      before.ids = { completed: completed.id, failed: failed.id, running: running.id };
      before.list = ((await (await fetch(`${a.url}/v1/videos?limit=100`, { headers: auth(acme.key) })).json()) as any).data.map((v: any) => v.id);
      const content = await fetch(`${a.url}/v1/videos/${completed.id}/content`, { headers: auth(acme.key) });
      expect(content.status).toBe(200);
      before.content = Buffer.from(await content.arrayBuffer());
      before.keys = (await admin(a.url, 'GET', '/teams/acme/keys')).body;
      // Last, so that every request above is in it (a usage read writes the counts still held in memory).
      before.usage = await usageOf(a.url);
    } finally {
      await a.close();
    }

    firstRun = await spawnCli(['migrate-sqlite', '--from', dataDir, '--to', dbUrl, '--json']);
    b = await startHarness({ env: { ...priced, DATABASE_URL: dbUrl, WEBHOOK_ALLOWED_HOSTS: receiver.hostPort, WEBHOOK_POLL_INTERVAL_MS: '25' }, upstream });
  });

  afterAll(async () => {
    await b?.close();
    await sim?.close();
    await receiver.close();
    await db?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('copies every team, key, job, counter, webhook endpoint and delivery in one run and says what it copied', () => {
    expect(firstRun.stderr).toBe('');
    expect(firstRun.code).toBe(EXIT.ok.code);
    const report = JSON.parse(firstRun.stdout);
    expect(report).toMatchObject({ object: 'sqlite_migration', from: join(dataDir, 'gateway.db'), to: expect.not.stringContaining(PASSWORD) });
    const byTable = Object.fromEntries(report.tables.map((t: any) => [t.table, t]));
    expect(byTable).toMatchObject({
      teams: { copied: 2, existing: 0 },
      keys: { copied: 3, existing: 0 },
      // completed, failed, running, deleted, the refused create, and the deleted team's video
      jobs: { copied: 6, existing: 0 },
      'usage counters': { existing: 0 },
      'webhook endpoints': { copied: 1, existing: 0 },
      'webhook deliveries': { copied: 3, existing: 0 },
    });
    expect(byTable['usage counters'].copied).toBeGreaterThan(0);
  });

  it('the PostgreSQL gateway shows the same usage, keys and videos, and the same key works', async () => {
    expect(b.gw.store.kind).toBe('postgres');
    // Each job keeps its placement: the upstream that created it and the key (by fingerprint).
    expect(await b.gw.store.getJob('acme', before.ids.running)).toMatchObject({ upstreamName: 'default', upstreamKeyFp: fingerprint(UPSTREAM_KEY) });
    expect(await usageOf(b.url)).toEqual(before.usage);
    expect(before.usage).toMatchObject({ day: { video_seconds: 4 + 6 + 3, video_seconds_reserved: 6, usd: 1.3, usd_reserved: 0.6 }, active_jobs: 1 });
    // Each job keeps its money: the completed one's cost, the running one's estimate.
    expect(await b.gw.store.getJob('acme', before.ids.completed)).toMatchObject({ estimateMicros: 400_000, costMicros: 400_000, costSource: 'price' });
    expect(await b.gw.store.getJob('acme', before.ids.running)).toMatchObject({ estimateMicros: 600_000, costMicros: null });
    expect((await admin(b.url, 'GET', '/teams/acme/keys')).body).toEqual(before.keys);

    const list = ((await (await fetch(`${b.url}/v1/videos?limit=100`, { headers: auth(before.acmeKey) })).json()) as any).data;
    expect(list.map((v: any) => v.id)).toEqual(before.list);
    expect(Object.fromEntries(list.map((v: any) => [v.id, v.status]))).toEqual({
      [before.ids.completed]: 'completed',
      [before.ids.failed]: 'failed',
      [before.ids.running]: 'queued',
    });
    const content = await fetch(`${b.url}/v1/videos/${before.ids.completed}/content`, { headers: auth(before.acmeKey) });
    expect(content.status).toBe(200);
    expect(Buffer.from(await content.arrayBuffer()).equals(before.content)).toBe(true);
    // The running job is still followed upstream, and settles on the new store.
    sim.settle([...sim.tasks.values()].find((t) => t.seconds === '6')!.id, 'completed');
    expect(await (await poll(b, before.acmeKey, before.ids.running)).json()).toMatchObject({ status: 'completed' });
    expect((await usageOf(b.url)).day).toMatchObject({ video_seconds: 13, video_seconds_reserved: 0, usd: 1.3, usd_reserved: 0 });
  });

  it("the PostgreSQL gateway keeps the team's webhook: its endpoint, its history, its pending event sent once, the same secrets signing", async () => {
    const shown = await admin(b.url, 'GET', '/teams/acme/webhook');
    expect(shown.body).toEqual(before.endpoint);
    expect(shown.body).not.toHaveProperty('secret');
    // The pending event (sent by the PostgreSQL gateway's worker) and the running video's, which ended there.
    await receiver.waitFor(before.received + 2);
    await new Promise((r) => setTimeout(r, 500));
    const sent = receiver.received.slice(before.received);
    expect(sent).toHaveLength(2);
    const [pending, failed, delivered] = before.deliveries;
    const after = await deliveriesOf(b.url);
    expect(after.map((d) => [d.video_id, d.status, d.attempts])).toEqual([
      [before.ids.running, 'delivered', 1],
      [pending.video_id, 'delivered', 1],
      [failed.video_id, 'failed', 1],
      [delivered.video_id, 'delivered', 1],
    ]);
    expect(after.slice(2)).toEqual([failed, delivered]);
    expect(after[1]).toMatchObject({ id: pending.id, event_id: pending.event_id, last_status: 204 });
    expect(new Set(sent.map((r) => r.headers['webhook-id']))).toEqual(new Set([pending.event_id, after[0].event_id]));
    // Receivers need no change: the secret they were given verifies, and so does the one it was rotated to.
    const sdk = new OpenAI({ apiKey: 'unused' });
    for (const r of sent) {
      for (const secret of [before.secrets.original, before.secrets.rotated]) {
        expect(await sdk.webhooks.unwrap(r.body, r.headers as Record<string, string>, secret)).toMatchObject({ id: r.headers['webhook-id'] });
      }
    }
    expect(JSON.stringify(b.logs)).not.toContain(before.secrets.original.slice(6));
  });

  it('a revoked key stays revoked, and a deleted team stays deleted with its id retired', async () => {
    for (const key of [before.revokedKey, before.goneKey]) {
      expect((await poll(b, key, before.ids.completed)).status).toBe(401);
    }
    const again = await admin(b.url, 'POST', '/teams', { id: 'gone' });
    expect(again.res.status).toBe(409);
    expect(again.body.error.code).toBe('team_id_deleted');
    expect((await admin(b.url, 'GET', '/teams')).body.data.map((t: any) => t.id)).toEqual(['acme']);
  });

  it('run again, it copies nothing and doubles nothing', async () => {
    const usage = await usageOf(b.url);
    const second = await spawnCli(['migrate-sqlite', '--from', dataDir, '--json'], { DATABASE_URL: dbUrl });
    expect(second.code, second.stderr).toBe(EXIT.ok.code);
    const first = JSON.parse(firstRun.stdout).tables as Array<{ table: string; copied: number }>;
    expect(JSON.parse(second.stdout).tables).toEqual(first.map((t) => ({ table: t.table, copied: 0, existing: t.copied })));
    expect(await usageOf(b.url)).toEqual(usage);
    const list = ((await (await fetch(`${b.url}/v1/videos?limit=100`, { headers: auth(before.acmeKey) })).json()) as any).data;
    expect(list.map((v: any) => v.id)).toEqual(before.list);
    // No event comes back to life: had one been copied again, the gateway's worker would send it.
    const deliveries = await deliveriesOf(b.url);
    const received = receiver.received.length;
    const humanRun = await spawnCli(['migrate-sqlite', '--from', dataDir], { DATABASE_URL: dbUrl });
    expect(humanRun.code, humanRun.stderr).toBe(EXIT.ok.code);
    expect(humanRun.stdout).toMatch(/^ +webhook endpoints +0 +1$/m);
    expect(humanRun.stdout).toMatch(/^ +webhook deliveries +0 +3$/m);
    await new Promise((r) => setTimeout(r, 500));
    expect(await deliveriesOf(b.url)).toEqual(deliveries);
    expect(receiver.received.length).toBe(received);
  });

  it('refuses what it cannot do, with the CLI exit statuses and nothing copied', async () => {
    const missing = await spawnCli(['migrate-sqlite', '--from', join(dataDir, 'nowhere'), '--to', dbUrl]);
    expect(missing.code).toBe(EXIT.unavailable.code);
    expect(missing.stderr).toContain('no embedded store at');
    const noTarget = await spawnCli(['migrate-sqlite', '--from', dataDir]);
    expect(noTarget.code).toBe(EXIT.usage.code);
    const wrongScheme = await spawnCli(['migrate-sqlite', '--from', dataDir, '--to', `mysql://u:${PASSWORD}@h/db`]);
    expect(wrongScheme.code).toBe(EXIT.usage.code);
    const viaUrl = await spawnCli(['migrate-sqlite', '--from', dataDir, '--to', dbUrl, '--url', 'http://127.0.0.1:1']);
    expect(viaUrl.code).toBe(EXIT.usage.code);
    const closed = new URL(dbUrl);
    closed.port = '1';
    const unreachable = await spawnCli(['migrate-sqlite', '--from', dataDir, '--to', closed.toString(), '--json'], { DATABASE_CONNECT_TIMEOUT_MS: '2000' });
    expect(unreachable.code).toBe(EXIT.unavailable.code);
    expect(JSON.parse(unreachable.stderr).error.code).toBe('store_unavailable');
    for (const r of [missing, noTarget, wrongScheme, viaUrl, unreachable]) expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });
});
