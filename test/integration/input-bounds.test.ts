import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_ID_CHARS, MAX_SCALAR_CHARS } from '../../src/domain/text.js';
import { admin, auth, CLIENT_KEY, postJson, startHarness, type Harness } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';

/**
 * Every string a client sends that the gateway keeps, sends on or echoes is bounded and free of control
 * characters (src/domain/text.ts), on either store: a NUL is a 400 naming the parameter (PostgreSQL would
 * refuse it with a 500), an overlong value a 400 whose answer does not grow with it, and nothing is stored.
 */
const NUL = '\u0000';
/** Far below any value refused here: an error answer must not carry what it refuses. */
const SMALL_ANSWER_BYTES = 1024;

type Answer = { status: number; body: any; bytes: number };

async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { ...init, headers: { ...auth(), ...(init.body && typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) } });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), bytes: Buffer.byteLength(text) };
}

const stores: Array<[string, boolean]> = [
  ['SQLite', false],
  ['PostgreSQL', true],
];

describe.each(stores)('strings from clients on %s', (_name, onPostgres) => {
  let h: Harness;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    if (onPostgres && postgresUrl === null) return;
    const env: Record<string, string> = {};
    if (onPostgres) {
      const db = await freshDatabase();
      env.DATABASE_URL = db.url;
      drop = db.drop;
    }
    h = await startHarness({ env, sim: { completeAfterMs: 0 } });
  });
  afterAll(async () => {
    await h?.close();
    await drop?.();
  });
  const skip = onPostgres && postgresUrl === null;

  const expectRefused = (a: Answer, param: string, status = 400) => {
    expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(status);
    expect(a.body.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(a.bytes).toBeLessThan(SMALL_ANSWER_BYTES);
  };
  const listed = async () => ((await send(`${h.url}/v1/videos?limit=100`)).body.data as unknown[]).length;

  it.skipIf(skip)('a NUL in a video id, a cursor or a derived video source is a 400 naming it', async () => {
    expectRefused(await send(`${h.url}/v1/videos/%00`), 'video_id');
    expectRefused(await send(`${h.url}/v1/videos/video_%00x`, { method: 'DELETE' }), 'video_id');
    expectRefused(await send(`${h.url}/v1/videos/%00/content`), 'video_id');
    expectRefused(await send(`${h.url}/v1/videos/%00/remix`, { method: 'POST', body: JSON.stringify({ prompt: 'p' }) }), 'video_id');
    expectRefused(await send(`${h.url}/v1/videos?after=%00`), 'after');
    const extension = { prompt: 'more', seconds: 4, video: { id: `video_${NUL}` } };
    expectRefused(await send(`${h.url}/v1/videos/extensions`, { method: 'POST', body: JSON.stringify(extension) }), 'video.id');
    expectRefused(await send(`${h.url}/v1/videos/edits`, { method: 'POST', body: JSON.stringify({ prompt: 'p', video: { id: NUL } }) }), 'video.id');
    expectRefused(await send(`${h.url}/v1/videos/edits`, { method: 'POST', body: form({ prompt: 'p', 'video[id]': `a${NUL}b` }) }), 'video.id');
    // An id that is well formed and unknown is still the contract's 404.
    expect((await send(`${h.url}/v1/videos/video_unknown`)).status).toBe(404);
  });

  it.skipIf(skip)('a NUL or another control character in a create is a 400 naming the field, and nothing is stored', async () => {
    const before = await listed();
    for (const [field, value] of [
      ['prompt', `a fox${NUL}`],
      ['prompt', 'a fox\u001b[2J'],
      ['model', `grok-video-3${NUL}`],
      ['aspect_ratio', `16:9${NUL}`],
      ['size', `720P${NUL}`],
      ['seconds', `4${NUL}`],
    ] as const) {
      expectRefused((await postJsonAnswer(`${h.url}/v1/videos`, { prompt: 'a fox', [field]: value })), field);
    }
    // Tabs and line breaks are ordinary in a prompt.
    const multiline = await postJson(`${h.url}/v1/videos`, { prompt: 'a fox\n\tin the snow\r\n' });
    expect(multiline.res.status).toBe(200);
    expect(await listed()).toBe(before + 1);
  });

  it.skipIf(skip)('overlong values are refused with a small answer naming them, never stored or echoed whole', async () => {
    const before = await listed();
    const huge = `1.${'0'.repeat(2 * 1024 * 1024)}:1`;
    expectRefused(await postJsonAnswer(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'a fox', aspect_ratio: huge }), 'aspect_ratio');
    const multipart = form({ model: 'grok-imagine-video', prompt: 'a fox', aspect_ratio: `1.${'0'.repeat(60_000)}:1` });
    expectRefused(await send(`${h.url}/v1/videos`, { method: 'POST', body: multipart }), 'aspect_ratio');
    for (const field of ['size', 'resolution', 'seconds', 'duration']) {
      expectRefused(await postJsonAnswer(`${h.url}/v1/videos`, { prompt: 'a fox', [field]: '7'.repeat(MAX_SCALAR_CHARS + 1) }), field);
    }
    expectRefused(await postJsonAnswer(`${h.url}/v1/videos`, { prompt: 'a fox', model: 'm'.repeat(100_000) }), 'model');
    expectRefused(await postJsonAnswer(`${h.url}/v1/videos`, { prompt: 'p'.repeat(4097) }), 'prompt');
    const unknown = await postJsonAnswer(`${h.url}/v1/videos`, { prompt: 'a fox', ['k'.repeat(100_000)]: 1 });
    expect(unknown).toMatchObject({ status: 400, body: { error: { code: 'unknown_parameter' } } });
    expect(unknown.bytes).toBeLessThan(SMALL_ANSWER_BYTES);
    const nested = await postJsonAnswer(`${h.url}/v1/videos/edits`, { prompt: 'p', video: { id: 'video_x', ['k'.repeat(100_000)]: 1 } });
    expect(nested).toMatchObject({ status: 400, body: { error: { code: 'unknown_parameter' } } });
    expect(nested.bytes).toBeLessThan(SMALL_ANSWER_BYTES);
    expectRefused(await send(`${h.url}/v1/videos/${'v'.repeat(MAX_ID_CHARS + 1)}`), 'video_id');
    expectRefused(await send(`${h.url}/v1/videos?after=${'v'.repeat(MAX_ID_CHARS + 1)}`), 'after');
    const wrongType = await send(`${h.url}/v1/videos`, { method: 'POST', headers: { 'content-type': `text/${'x'.repeat(4000)}` }, body: 'x' });
    expect(wrongType.status).toBe(415);
    expect(wrongType.bytes).toBeLessThan(SMALL_ANSWER_BYTES);
    const unknownRoute = await send(`${h.url}/no/such/${'p'.repeat(8000)}`);
    expect(unknownRoute).toMatchObject({ status: 404, body: { error: { code: 'unknown_route' } } });
    expect(unknownRoute.bytes).toBeLessThan(SMALL_ANSWER_BYTES);
    expect(await listed()).toBe(before);
  });

  it.skipIf(skip)("an upstream task id the store could not keep is a garbled answer (502, not retried), never a 500", async () => {
    for (const id of [`task${NUL}x`, 't'.repeat(10_000)]) {
      h.sim.failNextCreate({ status: 200, body: JSON.stringify({ id, status: 'queued', progress: 0 }), headers: { 'content-type': 'application/json' } });
      const res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a fox' }) });
      const body = (await res.json()) as any;
      expect(res.status, JSON.stringify(body).slice(0, 300)).toBe(502);
      expect(body.error.code).toBe('upstream_error');
      expect(res.headers.get('x-should-retry')).toBe('false');
    }
  });

  it.skipIf(skip)('the admin API: team ids and names, key ids and names, webhook urls and delivery ids', async () => {
    const refused = async (method: string, path: string, param: string, body?: unknown) => expectRefused(asAnswer(await admin(h.url, method, path, body)), param);
    await refused('POST', '/teams', 'id', { id: `t${NUL}` });
    await refused('POST', '/teams', 'name', { id: 'named', name: `n${NUL}` });
    await refused('POST', '/teams', 'name', { id: 'named', name: 'n'.repeat(201) });
    await refused('POST', '/teams', 'quota.models.0', { id: 'named', quota: { models: [NUL] } });
    await refused('GET', '/teams/%00', 'team');
    await refused('PATCH', '/teams/%00', 'team', { name: 'x' });
    await refused('DELETE', '/teams/%00', 'team');
    await refused('GET', '/teams/%00/usage', 'team');
    await refused('GET', '/teams/%00/keys', 'team');
    await refused('POST', '/teams/%00/keys', 'team', {});
    await refused('DELETE', '/keys/%00', 'id');
    await refused('DELETE', `/keys/${'k'.repeat(MAX_ID_CHARS + 1)}`, 'id');
    await refused('GET', '/teams/%00/webhook', 'team');
    await refused('POST', '/teams/%00/webhook/deliveries/whd_1/replay', 'team');
    await refused('POST', '/teams/acme/webhook/deliveries/%00/replay', 'id');

    expect((await admin(h.url, 'POST', '/teams', { id: 'acme', name: 'Acme' })).res.status).toBe(201);
    await refused('PATCH', '/teams/acme', 'name', { name: 'evil\u001b]0;title\u0007' });
    await refused('POST', '/teams/acme/keys', 'name', { name: `k${NUL}` });
    await refused('PUT', '/teams/acme/webhook', 'url', { url: `https://example.com/${NUL}` });
    await refused('PUT', '/teams/acme/webhook', 'url', { url: `https://example.com/${'p'.repeat(3000)}` });
    expect((await admin(h.url, 'GET', '/teams/acme')).body).toMatchObject({ id: 'acme', name: 'Acme' });
    expect((await admin(h.url, 'GET', '/teams/acme/keys')).body.data).toEqual([]);
  });
});

function form(fields: Record<string, string>): FormData {
  const f = new FormData();
  for (const [name, value] of Object.entries(fields)) f.append(name, value);
  return f;
}

async function postJsonAnswer(url: string, body: unknown): Promise<Answer> {
  return send(url, { method: 'POST', body: JSON.stringify(body), headers: auth(CLIENT_KEY) });
}

function asAnswer(a: { res: Response; body: any }): Answer {
  return { status: a.res.status, body: a.body, bytes: Buffer.byteLength(JSON.stringify(a.body)) };
}
