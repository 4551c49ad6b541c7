import OpenAI6 from 'openai';
import OpenAI7 from 'openai7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_TTL_MS } from '../../src/videos/idempotency.js';
import { admin, auth, CLIENT_KEY, startHarness, teamWithKey, TestClock, type Harness } from '../support/harness.js';
import { dataUri, PNG_1x1 } from '../support/images.js';
import { TcpProxy } from '../support/tcp-proxy.js';

/**
 * Idempotent creates (§2) on one gateway over real sockets: a repeat of a create with its Idempotency-Key
 * answers the first create's video and reaches the upstream never again. Jobs run upstream until a test
 * settles them. The cross-replica case (a replica killed mid-create) is in idempotency-replicas.test.ts.
 */
let h: Harness;
const clock = new TestClock();
beforeAll(async () => {
  h = await startHarness({ sim: { completeAfterMs: 3_600_000 }, clock });
});
afterAll(() => h.close());

const BODY = { model: 'grok-video-3', prompt: 'a heron lifting off', seconds: 4 };
let n = 0;
const newKey = () => `key-${++n}-${Math.random().toString(36).slice(2)}`;

async function post(path: string, body: unknown, key: string | undefined, apiKey = CLIENT_KEY) {
  const headers: Record<string, string> = { ...auth(apiKey), 'content-type': 'application/json', ...(key !== undefined ? { 'idempotency-key': key } : {}) };
  const res = await fetch(`${h.url}/v1${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { res, body: (await res.json()) as any };
}
const create = (key: string | undefined, body: unknown = BODY, apiKey = CLIENT_KEY) => post('/videos', body, key, apiKey);
const upstreamCreates = () => h.sim.creates().length;

describe('a repeat with the same key and the same request', () => {
  it('answers the first video, marked as replayed, and never reaches the upstream again', async () => {
    const key = newKey();
    const before = upstreamCreates();
    const first = await create(key);
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get('idempotent-replayed')).toBeNull();
    for (let i = 0; i < 3; i++) {
      const again = await create(key);
      expect(again.res.status).toBe(200);
      expect(again.res.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body).toMatchObject({ id: first.body.id, object: 'video', model: 'grok-video-3', seconds: '4', prompt: BODY.prompt });
    }
    expect(upstreamCreates() - before).toBe(1);
    // Its current state, not a copy of the first answer.
    h.sim.settle([...h.sim.tasks.keys()].at(-1)!, 'completed');
    expect((await create(key)).body).toMatchObject({ id: first.body.id, status: 'completed', progress: 100 });
  });

  it('after its video was deleted: 404 naming the key, and no second video', async () => {
    const key = newKey();
    const first = await create(key);
    expect((await fetch(`${h.url}/v1/videos/${first.body.id}`, { method: 'DELETE', headers: auth() })).status).toBe(200);
    const before = upstreamCreates();
    const again = await create(key);
    expect(again.res.status).toBe(404);
    expect(again.body.error).toMatchObject({ code: 'video_not_found', param: 'Idempotency-Key' });
    expect(upstreamCreates()).toBe(before);
  });

  it('is the same request however it is encoded: JSON or multipart (any boundary), keys in any order, "4" for 4, a data URI or a file part', async () => {
    const key = newKey();
    const before = upstreamCreates();
    const first = await create(key, { ...BODY, input_reference: dataUri(PNG_1x1) });
    expect(first.res.status).toBe(200);
    const form = new FormData();
    form.append('seconds', '4');
    form.append('input_reference', new Blob([PNG_1x1], { type: 'image/png' }), 'ref.png');
    form.append('prompt', BODY.prompt);
    form.append('model', BODY.model);
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'idempotency-key': key }, body: form });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).id).toBe(first.body.id);
    }
    expect(upstreamCreates() - before).toBe(1);
  });

  it('from another key of the same team gets the same video; the same key in another team is another key', async () => {
    const a1 = await teamWithKey(h.url, 'idem-team-a');
    const a2 = (await admin(h.url, 'POST', '/teams/idem-team-a/keys', { name: 'second' })).body.key as string;
    const b = await teamWithKey(h.url, 'idem-team-b');
    const key = newKey();
    const first = await create(key, BODY, a1.key);
    const sameTeam = await create(key, BODY, a2);
    const otherTeam = await create(key, BODY, b.key);
    expect(sameTeam.body.id).toBe(first.body.id);
    expect(otherTeam.res.status).toBe(200);
    expect(otherTeam.body.id).not.toBe(first.body.id);
    // Another team's video never answers a repeat, not even by its key.
    expect((await fetch(`${h.url}/v1/videos/${first.body.id}`, { headers: auth(b.key) })).status).toBe(404);
  });

  it('arriving while the first is still in flight waits for its answer: one upstream job, one video', async () => {
    const key = newKey();
    const before = upstreamCreates();
    h.sim.stallMs = 1_000;
    try {
      const [a, b] = await Promise.all([create(key), new Promise((r) => setTimeout(r, 150)).then(() => create(key))]);
      expect(a.res.status).toBe(200);
      expect(b.res.status).toBe(200);
      expect(b.body.id).toBe(a.body.id);
    } finally {
      h.sim.stallMs = 0;
    }
    expect(upstreamCreates() - before).toBe(1);
  });

  it('works for derived creates (remix, extension, edit) alike', async () => {
    const xai = await startHarness({ sim: { kind: 'xai', completeAfterMs: 3_600_000 } });
    try {
      const sourceOf = async (gw: Harness, model: string) => {
        const res = await fetch(`${gw.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ model, prompt: 'source', seconds: 4 }) });
        const id = ((await res.json()) as any).id as string;
        gw.sim.settle([...gw.sim.tasks.keys()].at(-1)!, 'completed');
        expect(((await (await fetch(`${gw.url}/v1/videos/${id}`, { headers: auth() })).json()) as any).status).toBe('completed');
        return id;
      };
      const newapiSource = await sourceOf(h, 'grok-video-3');
      const xaiSource = await sourceOf(xai, 'grok-imagine-video');
      const remixKey = newKey();
      const cases = [
        { gw: h, path: `/videos/${newapiSource}/remix`, body: { prompt: 'at night' }, key: remixKey },
        { gw: h, path: '/videos/extensions', body: { prompt: 'further', seconds: 4, video: { id: newapiSource } }, key: newKey() },
        { gw: xai, path: '/videos/edits', body: { prompt: 'in snow', video: { id: xaiSource } }, key: newKey() },
      ];
      for (const { gw, path, body, key } of cases) {
        const call = async () => {
          const res = await fetch(`${gw.url}/v1${path}`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json', 'idempotency-key': key }, body: JSON.stringify(body) });
          return { res, body: (await res.json()) as any };
        };
        const before = gw.sim.derives().length;
        const first = await call();
        expect(first.res.status, JSON.stringify(first.body)).toBe(200);
        expect((await call()).body.id).toBe(first.body.id);
        expect(gw.sim.derives().length - before, path).toBe(1);
      }
      // The key of a remix is a different request on another route.
      expect((await create(remixKey, { ...BODY, prompt: 'at night' })).res.status).toBe(409);
    } finally {
      await xai.close();
    }
  });
});

describe('the first request holds its key while it works', () => {
  it('renewing its lease, however long the upstream takes: a repeat waits for it rather than take it for dead', async () => {
    const short = await startHarness({ env: { IDEMPOTENCY_LEASE_MS: '300' }, sim: { completeAfterMs: 3_600_000 } });
    try {
      short.sim.stallMs = 1_500;
      const send = () =>
        fetch(`${short.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json', 'idempotency-key': 'slow' }, body: JSON.stringify(BODY) }).then(
          async (res) => ({ status: res.status, body: (await res.json()) as any }),
        );
      const [first, repeat] = await Promise.all([send(), new Promise((r) => setTimeout(r, 200)).then(send)]);
      expect(first.status).toBe(200);
      expect(repeat).toEqual({ status: 200, body: expect.objectContaining({ id: first.body.id }) });
      expect(short.sim.creates()).toHaveLength(1);
    } finally {
      await short.close();
    }
  });

  it('past its lease on this very replica (its renewals lost), it is still in progress here, never declared lost', async () => {
    const key = newKey();
    h.sim.stallMs = 1_000;
    const first = create(key);
    try {
      await new Promise((r) => setTimeout(r, 300));
      clock.advance(60_000);
      const repeat = await create(key);
      expect(repeat.res.status).toBe(409);
      expect(repeat.body.error.code).toBe('request_in_progress');
    } finally {
      h.sim.stallMs = 0;
    }
    const answered = await first;
    expect(answered.res.status).toBe(200);
    // That repeat took the key over; once its own lease has run out, the next one finds the video.
    clock.advance(60_000);
    expect((await create(key)).body.id).toBe(answered.body.id);
  });
});

describe('what a key refuses', () => {
  it('a different request with the same key: 409 idempotency_key_reused, not retried, nothing started', async () => {
    const key = newKey();
    await create(key);
    const before = upstreamCreates();
    for (const other of [{ ...BODY, prompt: 'a different heron' }, { ...BODY, seconds: 8 }, { ...BODY, model: 'grok-video-3-pro', seconds: 10 }]) {
      const { res, body } = await create(key, other);
      expect(res.status).toBe(409);
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'idempotency_key_reused', param: 'Idempotency-Key' });
      expect(res.headers.get('x-should-retry')).toBe('false');
    }
    expect(upstreamCreates()).toBe(before);
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['a control character', 'key\tone'],
    ['not ASCII', 'clé'],
  ])('a key that is %s: 400 naming Idempotency-Key, before the body is read', async (_name, key) => {
    const before = upstreamCreates();
    const res = await fetch(`${h.url}/v1/videos`, {
      method: 'POST',
      headers: [...Object.entries(auth()), ['content-type', 'application/json'], ['idempotency-key', Buffer.from(key, 'utf8').toString('latin1')]],
      body: JSON.stringify(BODY),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ code: 'invalid_idempotency_key', param: 'Idempotency-Key' });
    expect(upstreamCreates()).toBe(before);
  });

  it('255 printable characters, spaces and punctuation included, are a key', async () => {
    const key = `${' !"#~'.repeat(50)}abcde`.slice(0, 255).replace(/^ /, 'x');
    const first = await create(key);
    expect(first.res.status).toBe(200);
    expect((await create(key)).body.id).toBe(first.body.id);
  });
});

describe('answers that changed nothing are not kept: the same request may be sent again under its key', () => {
  it('invalid input', async () => {
    const key = newKey();
    const bad = await create(key, { ...BODY, seconds: 99 });
    expect(bad.res.status).toBe(400);
    // The corrected request is another request, and still welcome under the key.
    expect((await create(key)).res.status).toBe(200);
  });

  it('a quota refusal, once the quota allows it', async () => {
    const { key: apiKey } = await teamWithKey(h.url, 'idem-quota', { video_seconds_per_day: 4 });
    expect((await create(newKey(), BODY, apiKey)).res.status).toBe(200);
    const key = newKey();
    const refused = await create(key, BODY, apiKey);
    expect(refused.res.status).toBe(429);
    expect(refused.body.error.code).toBe('insufficient_quota');
    await admin(h.url, 'PATCH', '/teams/idem-quota', { quota: { video_seconds_per_day: 8 } });
    expect((await create(key, BODY, apiKey)).res.status).toBe(200);
  });

  it('an upstream that refused the create (refunded, no job): the repeat tries the upstream again', async () => {
    const key = newKey();
    const before = upstreamCreates();
    h.sim.failNextCreate({ status: 400, body: JSON.stringify({ error: { message: 'busy', type: 'new_api_error', param: null, code: 'x' } }) });
    expect((await create(key)).res.status).toBe(400);
    const again = await create(key);
    expect(again.res.status).toBe(200);
    expect(upstreamCreates() - before).toBe(2);
  });
});

describe('an answer after which the upstream may have the job is kept', () => {
  it('a dropped upstream connection: every repeat gets the same 502 with x-should-retry: false, and no second upstream call', async () => {
    const key = newKey();
    const before = upstreamCreates();
    h.sim.failNextCreate({ status: 0, destroy: true });
    const first = await create(key);
    expect(first.res.status).toBe(502);
    expect(first.res.headers.get('x-should-retry')).toBe('false');
    for (let i = 0; i < 2; i++) {
      const again = await create(key);
      expect(again.res.status).toBe(502);
      expect(again.body).toEqual(first.body);
      expect(again.res.headers.get('x-should-retry')).toBe('false');
    }
    expect(upstreamCreates() - before).toBe(1);
  });
});

describe.each([
  { name: 'openai@6', make: (url: string) => new OpenAI6({ apiKey: CLIENT_KEY, baseURL: url, maxRetries: 2 }) },
  { name: 'openai@7 (multipart, a new boundary on each attempt)', make: (url: string) => new OpenAI7({ apiKey: CLIENT_KEY, baseURL: url, maxRetries: 2 }) },
])('$name retrying a create whose answer was lost to a dropped connection', ({ make }) => {
  let proxy: TcpProxy;
  let client: OpenAI6 | OpenAI7;
  beforeAll(async () => {
    const target = new URL(h.url);
    proxy = new TcpProxy({ host: target.hostname, port: Number(target.port) });
    client = make(`http://${await proxy.listen()}/v1`);
  });
  afterAll(() => proxy.close());
  const videosOfTeam = async () => ((await (await fetch(`${h.url}/v1/videos?limit=100`, { headers: auth() })).json()) as any).data.map((v: { id: string }) => v.id);

  it('sends no key of its own: without one, its retry starts a second upstream job', async () => {
    const before = upstreamCreates();
    proxy.dropNextAnswers(1);
    await client.videos.create({ model: 'grok-video-3', prompt: 'no key', seconds: '4' });
    expect(upstreamCreates() - before).toBe(2);
  });

  it('with an Idempotency-Key on the request, its retry gets the first video: one upstream job', async () => {
    const before = upstreamCreates();
    const listed = await videosOfTeam();
    proxy.dropNextAnswers(1);
    const video = await client.videos.create({ model: 'grok-video-3', prompt: 'with a key', seconds: '4' }, { headers: { 'Idempotency-Key': newKey() } });
    expect(upstreamCreates() - before).toBe(1);
    expect(await videosOfTeam()).toEqual([video.id, ...listed]);
  });
});

describe('keys are kept 24 hours', () => {
  it('then swept by the tracker, and the key is new again', async () => {
    const key = newKey();
    const first = await create(key);
    clock.advance(IDEMPOTENCY_TTL_MS - 60_000);
    expect((await create(key, { ...BODY, prompt: 'another' })).res.status).toBe(409);
    clock.advance(60_000);
    await h.gw.tracker.pass();
    // Nothing left to sweep: the pass took the expired keys.
    expect(await h.gw.store.sweepIdempotencyKeys(clock.now(), 1000)).toBe(0);
    const reused = await create(key, { ...BODY, prompt: 'another' });
    expect(reused.res.status).toBe(200);
    expect(reused.body.id).not.toBe(first.body.id);
  });
});
