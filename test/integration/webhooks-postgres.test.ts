import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { spawnGateway, type ChildGateway } from '../support/child-gateway.js';
import { ADMIN_TOKEN, admin, auth, postJson, teamWithKey, UPSTREAM_KEY } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

/**
 * Replicas on one PostgreSQL, each its own process: one is killed (SIGKILL) while its deliveries are in
 * flight, and the others deliver every event, each exactly once between them.
 */
describe.skipIf(postgresUrl === null)('webhooks on PostgreSQL: a replica killed mid-delivery loses nothing', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  const sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 0 });
  const receiver = new WebhookReceiver();
  const replicas: ChildGateway[] = [];
  let env: Record<string, string>;
  beforeAll(async () => {
    db = await freshDatabase();
    await receiver.listen();
    env = {
      DATABASE_URL: db.url,
      UPSTREAM_BASE_URL: await sim.listen(),
      UPSTREAM_API_KEY: UPSTREAM_KEY,
      ADMIN_TOKEN,
      RECONCILE_INTERVAL_MS: '0',
      WEBHOOK_ALLOWED_HOSTS: receiver.hostPort,
      WEBHOOK_POLL_INTERVAL_MS: '50',
      // Leases last three times this: long enough for the test to kill the holder mid-send.
      WEBHOOK_TIMEOUT_MS: '3000',
    };
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await receiver.close();
    await sim.close();
    await db?.drop();
  });

  it('every event arrives after its sender dies, sent by one surviving replica', { timeout: 90_000 }, async () => {
    const doomed = await spawnGateway(env);
    replicas.push(doomed);
    const { key } = await teamWithKey(doomed.url, 'pg-hooks');
    expect((await admin(doomed.url, 'PUT', '/teams/pg-hooks/webhook', { url: `${receiver.url}/in` })).res.status).toBe(200);
    receiver.answer = { kind: 'hang' };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { body } = await postJson(`${doomed.url}/v1/videos`, { model: 'grok-imagine-video', prompt: `fox ${i}`, seconds: '4' }, key);
      ids.push(body.id);
    }
    for (const id of ids) expect(((await (await fetch(`${doomed.url}/v1/videos/${id}`, { headers: auth(key) })).json()) as { status: string }).status).toBe('completed');
    await receiver.waitFor(3);
    await doomed.stop('SIGKILL');
    const held = new Set(receiver.received.map((r) => r.headers['webhook-id']));
    expect(held.size).toBe(3);

    receiver.answer = { kind: 'status', status: 204 };
    const from = receiver.received.length;
    replicas.push(await spawnGateway(env), await spawnGateway(env));
    await receiver.waitFor(from + 3, 40_000);
    // A moment more, so that a double send by the two survivors would show.
    await new Promise((r) => setTimeout(r, 1000));
    const resent = receiver.received.slice(from).map((r) => r.headers['webhook-id']);
    expect(resent.sort()).toEqual([...held].sort());
    const list = (await admin(replicas[1]!.url, 'GET', '/teams/pg-hooks/webhook/deliveries')).body.data as any[];
    expect(list.map((d) => [d.video_id, d.status, d.last_status]).sort()).toEqual(ids.map((id) => [id, 'delivered', 204]).sort());
  });
});
