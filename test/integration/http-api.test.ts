import { once } from 'node:events';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, CLIENT_KEY, UPSTREAM_KEY, auth, postJson, startHarness, type Harness } from '../support/harness.js';
import { ModelCatalog } from '../../src/domain/models.js';
import { DEMO_API_KEY } from '../../src/config.js';
import { JPEG_BYTES, PNG_1x1, bigPng, dataUri } from '../support/images.js';
import { parseMultipart } from '../support/multipart.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { MAX_BODY_BYTES: String(4 * 1024 * 1024), MAX_IMAGE_BYTES: String(1024 * 1024) }, sim: { completeAfterMs: 60_000 } });
});
afterAll(() => h.close());

const lastCreate = () => h.sim.creates().at(-1)!;
const multipartOf = async (req: { headers: Record<string, unknown>; body: Buffer }) => {
  const { fields, files } = await parseMultipart(req.headers, req.body);
  return { fields: Object.fromEntries(fields), files };
};

const seedExamples = {
  text: { prompt: 'A city street in the early morning, sunlight filtering through leaves, camera slowly moving forward', seconds: '8', aspect_ratio: '16:9', resolution: '720P' },
  single: { prompt: 'Have the person in the reference image turn around naturally', seconds: '6', aspect_ratio: '9:16', resolution: '720P', image: dataUri(PNG_1x1) },
  multi: { prompt: 'Reference the subject features from multiple images', seconds: '10', aspect_ratio: '16:9', resolution: '720P', images: [dataUri(PNG_1x1), dataUri(JPEG_BYTES, 'image/jpeg')] },
};
const refsOf = (ex: Record<string, unknown>) => [ex.image, ...((ex.images as string[] | undefined) ?? [])].filter(Boolean) as string[];

describe("the provider page's own examples, for both families (seed doc)", () => {
  it.each(Object.entries(seedExamples))('%s → grok-imagine-video gets the same JSON', async (_n, ex) => {
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', ...ex });
    expect(res.status).toBe(200);
    expect(body.status).toBe('queued');
    const sent = JSON.parse(lastCreate().body.toString());
    expect(sent).toEqual({ model: 'grok-imagine-video', ...ex });
  });

  it.each(Object.entries(seedExamples))('%s → grok-video-1.5 gets multipart with input_reference files', async (_n, ex) => {
    const { res } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-1.5', ...ex });
    expect(res.status).toBe(200);
    const { fields, files } = await multipartOf(lastCreate());
    expect(fields).toEqual({ model: 'grok-video-1.5', prompt: ex.prompt, seconds: ex.seconds, size: '720P', aspect_ratio: ex.aspect_ratio });
    const expected = refsOf(ex).map((u) => Buffer.from(u.split(',')[1]!, 'base64'));
    expect(files.map((f) => f.name)).toEqual(expected.map(() => 'input_reference'));
    files.forEach((f, i) => expect(f.bytes.equals(expected[i]!)).toBe(true));
  });

  it.each(Object.entries(seedExamples))('%s sent as multipart (input_reference files, size) → grok-imagine-video gets JSON', async (_n, ex) => {
    const form = new FormData();
    form.set('model', 'grok-imagine-video');
    form.set('prompt', ex.prompt);
    form.set('seconds', ex.seconds);
    form.set('size', ex.aspect_ratio === '9:16' ? '720x1280' : '1280x720');
    const refs = refsOf(ex).map((u) => Buffer.from(u.split(',')[1]!, 'base64'));
    refs.forEach((b, i) => form.append('input_reference', new Blob([b], { type: 'application/octet-stream' }), `r${i}.bin`));
    const res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
    expect(res.status).toBe(200);
    const sent = JSON.parse(lastCreate().body.toString());
    expect(sent).toMatchObject({ model: 'grok-imagine-video', seconds: ex.seconds, resolution: '720P', aspect_ratio: ex.aspect_ratio });
    const sentRefs = refsOf(sent).map((u) => Buffer.from(u.split(',')[1]!, 'base64'));
    expect(sentRefs).toEqual(refs);
  });

  it('accepts input_reference[] parts and input_reference[image_url] text fields (what SDKs send for lists and objects)', async () => {
    const form = new FormData();
    form.set('model', 'grok-video-3');
    form.set('prompt', 'x');
    form.append('input_reference[]', new Blob([PNG_1x1], { type: 'image/png' }), 'a.png');
    form.append('input_reference[]', new Blob([JPEG_BYTES], { type: 'image/jpeg' }), 'b.jpg');
    let res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
    expect(res.status).toBe(200);
    expect((await multipartOf(lastCreate())).files).toHaveLength(2);

    const form2 = new FormData();
    form2.set('model', 'grok-imagine-video');
    form2.set('prompt', 'x');
    form2.set('input_reference[image_url]', dataUri(PNG_1x1));
    res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form2 });
    expect(res.status).toBe(200);
    expect(JSON.parse(lastCreate().body.toString()).image).toBe(dataUri(PNG_1x1));
  });
});

describe('the model table', () => {
  // The strict simulator rejects the wrong dialect: each model must reach it in its own family's form.
  it.each(new ModelCatalog().names())('%s at its defaults → accepted by the upstream', async (name) => {
    const before = h.sim.creates().length;
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: name, prompt: 'x' });
    expect([res.status, body.status]).toEqual([200, 'queued']);
    expect(h.sim.creates().length).toBe(before + 1);
  });
});

describe('errors: OpenAI-shaped, with param, never reaching the upstream', () => {
  const expectError = async (res: Response, status: number, param?: string | null) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.headers.get('x-request-id')).toMatch(/\S+/);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    if (param !== undefined) expect(body.error.param).toBe(param);
    return body.error;
  };

  it.each<[string, () => Promise<Response>, number, string | null | undefined]>([
    ['no key', () => fetch(`${h.url}/v1/videos`), 401, null],
    ['wrong key', () => fetch(`${h.url}/v1/videos`, { headers: auth('nope') }), 401, null],
    ['the admin token on /v1', () => fetch(`${h.url}/v1/videos`, { headers: auth('admin-token-0123456789abcdef') }), 401, null],
    ['text/plain body', () => fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'text/plain' }, body: 'hi' }), 415, null],
    ['broken JSON', () => fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: '{"prompt":' }), 400, null],
    ['a JSON array', () => fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: '[1]' }), 400, null],
    ['JSON nested 40 deep', () => fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: `{"prompt":"x","a":${'['.repeat(40)}${']'.repeat(40)}}` }), 400, null],
    ['multipart without boundary', () => fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'multipart/form-data' }, body: 'x' }), 400, null],
    ['unknown model', () => postJson(`${h.url}/v1/videos`, { model: 'nope', prompt: 'x' }).then((r) => new Response(JSON.stringify(r.body), { status: r.res.status, headers: r.res.headers })), 400, 'model'],
    ['unknown video', () => fetch(`${h.url}/v1/videos/video_doesnotexist`, { headers: auth() }), 404, 'video_id'],
    ['unknown route', () => fetch(`${h.url}/v1/nothing`, { headers: auth() }), 404, null],
    ['bad list limit', () => fetch(`${h.url}/v1/videos?limit=1000`, { headers: auth() }), 400, 'limit'],
    ['bad variant', () => fetch(`${h.url}/v1/videos/video_x/content?variant=gif`, { headers: auth() }), 400, 'variant'],
  ])('%s → %i', async (_n, call, status, param) => {
    const before = h.sim.creates().length;
    await expectError(await call(), status, param);
    expect(h.sim.creates().length).toBe(before);
  });

  it.each([
    ['the admin token', ADMIN_TOKEN, /This is the admin token; \/v1 takes a team API key/],
    ['the demo key, on a gateway with an upstream', DEMO_API_KEY, /The demo key works only in demo mode/],
    ['an unknown key', 'gvk_nope', /^Incorrect or missing API key/],
  ])('%s on /v1 → 401 saying why', async (_n, key, message) => {
    const res = await fetch(`${h.url}/v1/videos`, { headers: auth(key) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
  });

  it('a declared body over MAX_BODY_BYTES → 413 before reading any of it, and the connection closed', async () => {
    // A raw socket that sends the head only: a server that read (any of) the body first would wait for it.
    const socket = connect(Number(new URL(h.url).port), '127.0.0.1');
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    const closed = once(socket, 'close').then(() => true);
    socket.write(`POST /v1/videos HTTP/1.1\r\nhost: gw\r\nauthorization: ${auth().authorization}\r\ncontent-type: application/json\r\ncontent-length: ${1024 ** 3}\r\n\r\n`);
    const ended = await Promise.race([closed, new Promise<false>((r) => setTimeout(() => r(false), 10_000))]);
    socket.destroy();
    // The whole answer arrived and the server closed the connection with not one body byte sent.
    expect(ended, 'the server neither answered nor closed without the body').toBe(true);
    const text = Buffer.concat(chunks).toString('utf8');
    const [head = '', body = ''] = text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
    expect(head).toMatch(/^connection: close$/im);
    expect(head).toMatch(/^x-request-id: \S+$/im);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'request_too_large', type: 'invalid_request_error', param: null } });
    expect(JSON.parse(body).error.message).toMatch(String(4 * 1024 * 1024));
  });

  it('a chunked body over MAX_BODY_BYTES → 413 while reading', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const stream = new ReadableStream({
      start(c) {
        for (let i = 0; i < big.length; i += 65536) c.enqueue(big.subarray(i, i + 65536));
        c.close();
      },
    });
    const res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    await expectError(res, 413);
  });

  it('a multipart image over MAX_IMAGE_BYTES → 413 naming input_reference', async () => {
    const form = new FormData();
    form.set('prompt', 'x');
    form.append('input_reference', new Blob([bigPng(1024 * 1024 + 10)]), 'big.png');
    const err = await expectError(await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form }), 413, 'input_reference');
    expect(err.message).toMatch(/1048576/);
  });

  it('more than 32 multipart parts → 400 too_many_parts, even when every part is a field that may repeat', async () => {
    // Known, repeatable fields: without the parts limit this body would be judged on its images instead.
    const form = new FormData();
    form.set('prompt', 'x');
    for (let i = 0; i < 40; i++) form.append('input_reference', new Blob([PNG_1x1], { type: 'image/png' }), `ref${i}.png`);
    const err = await expectError(await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form }), 400);
    expect(err.code).toBe('too_many_parts');
  });

  it('a text field over 64 KiB → 413 naming it', async () => {
    const form = new FormData();
    form.set('prompt', 'x'.repeat(70 * 1024));
    await expectError(await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form }), 413, 'prompt');
  });

  // Found by schemathesis: busboy reports a part without a name as `undefined`, which used to be a 500.
  it.each([
    ['a text part with an empty name', 'Content-Disposition: form-data; name=""\r\n\r\nnull'],
    ['a text part with no name', 'Content-Disposition: form-data\r\n\r\nx'],
    ['a file part with no name', 'Content-Disposition: form-data; filename="a.png"\r\nContent-Type: image/png\r\n\r\nx'],
  ])('%s → 400 invalid_multipart', async (_name, part) => {
    const body = `--XX\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi\r\n--XX\r\n${part}\r\n--XX--\r\n`;
    const res = await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: { ...auth(), 'content-type': 'multipart/form-data; boundary=XX' }, body });
    const err = await expectError(res, 400);
    expect(err.code).toBe('invalid_multipart');
  });

  it('a field given twice in multipart → 400 naming it', async () => {
    const form = new FormData();
    form.append('prompt', 'a');
    form.append('prompt', 'b');
    await expectError(await fetch(`${h.url}/v1/videos`, { method: 'POST', headers: auth(), body: form }), 400, 'prompt');
  });
});

describe('upstream failures map to gateway errors and never echo the upstream key', () => {
  const create = () => postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x' });

  it.each<[string, Parameters<Harness['sim']['failNextCreate']>[0], number, string, string | null]>([
    ['upstream 400 with param', { status: 400, body: JSON.stringify({ error: { message: 'prompt flagged', type: 'new_api_error', param: 'prompt', code: 'x' } }) }, 400, 'upstream_rejected', null],
    // The only key refused: no job started, so the contract's 503 with retry-after (§8), not a 502.
    ['upstream 401 (our key)', { status: 401, body: JSON.stringify({ error: { message: `invalid token ${UPSTREAM_KEY}` } }) }, 503, 'upstream_unavailable', null],
    ['upstream 429', { status: 429, body: '{}', headers: { 'retry-after': '7' } }, 503, 'upstream_rate_limited', null],
    ['upstream 500 echoing the key', { status: 500, body: JSON.stringify({ error: { message: `boom Bearer ${UPSTREAM_KEY}` } }) }, 502, 'upstream_error', 'false'],
    ['upstream 503', { status: 503, body: 'down' }, 503, 'upstream_unavailable', null],
    ['garbled 200', { status: 200, body: '<html>oops</html>' }, 502, 'upstream_error', 'false'],
    ['200 without an id', { status: 200, body: '{"status":"queued"}' }, 502, 'upstream_error', 'false'],
    ['200 larger than the 1 MiB cap', { status: 200, body: `{"id":"t","status":"queued","pad":"${'x'.repeat(2 * 1024 * 1024)}"}` }, 502, 'upstream_error', 'false'],
    ['400 with a 1.5 MiB error page: still a rejection', { status: 400, body: `<html>${'x'.repeat(1536 * 1024)}</html>` }, 400, 'upstream_rejected', null],
    ['connection dropped', { status: 0, destroy: true }, 502, 'upstream_error', 'false'],
  ])('%s', async (_n, fail, status, code, shouldRetry) => {
    h.sim.failNextCreate(fail);
    const { res, body } = await create();
    expect(res.status).toBe(status);
    expect(body.error.code).toBe(code);
    expect(res.headers.get('x-should-retry')).toBe(shouldRetry);
    expect(JSON.stringify(body)).not.toContain(UPSTREAM_KEY);
    if (code === 'upstream_rate_limited') expect(res.headers.get('retry-after')).toBe('7');
    if (status === 503) expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    if (_n.includes('param')) expect(body.error.message).toMatch(/prompt flagged/);
  });

  it('an upstream that never answers → 504 with x-should-retry: false', async () => {
    const slow = await startHarness({ env: { UPSTREAM_TIMEOUT_MS: '200' } });
    try {
      slow.sim.failNextCreate({ status: 200, body: '{}', delayMs: 1000 });
      const { res, body } = await postJson(`${slow.url}/v1/videos`, { prompt: 'x' });
      expect(res.status).toBe(504);
      expect(body.error.code).toBe('upstream_timeout');
      expect(res.headers.get('x-should-retry')).toBe('false');
    } finally {
      await slow.close();
    }
  });

  it('an unreachable upstream → 503, safe to retry', async () => {
    const down = await startHarness();
    await down.sim.close();
    try {
      const { res, body } = await postJson(`${down.url}/v1/videos`, { prompt: 'x' });
      expect(res.status).toBe(503);
      expect(body.error.code).toBe('upstream_unavailable');
      expect(res.headers.get('x-should-retry')).toBeNull();
    } finally {
      await down.gw.shutdown(500);
    }
  });
});

describe('video objects and headers', () => {
  it('never leaks upstream ids, statuses or headers', async () => {
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'x', size: '1280x720', seconds: 8 });
    const upstreamId = h.sim.tasks.size ? [...h.sim.tasks.keys()].at(-1)! : '';
    expect(JSON.stringify(body)).not.toContain(upstreamId);
    expect(res.headers.get('set-cookie')).toBeNull();
    expect(res.headers.get('server')).toBeNull();
    expect(body).toMatchObject({ object: 'video', status: 'queued', seconds: '8', size: '1280x720', completed_at: null, error: null, remixed_from_video_id: null });

    // The upstream reports `processing`: the client sees `in_progress`, and is told when to poll again.
    h.sim.tasks.get(upstreamId)!.createdAtMs = Date.now() - 30_000;
    const polled = await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() });
    const video = (await polled.json()) as Record<string, unknown>;
    expect(video.status).toBe('in_progress');
    expect(Number(polled.headers.get('openai-poll-after-ms'))).toBeGreaterThan(0);
    expect(polled.headers.get('via')).toBeNull();
  });

  it.each(['completed', 'failed', 'cancelled'] as const)('a running job is fetched on every poll; once %s, never again', async (outcome) => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    const upstreamId = [...h.sim.tasks.keys()].at(-1)!;
    const fetches = () => h.sim.requests.filter((r) => r.method === 'GET' && r.path === `/v1/videos/${upstreamId}`).length;
    const poll = async () => ((await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() })).json()) as { status: string }).status;
    expect([await poll(), await poll()]).toEqual(['queued', 'queued']);
    expect(fetches()).toBe(2);
    h.sim.settle(upstreamId, outcome);
    const final = outcome === 'completed' ? 'completed' : 'failed';
    expect([await poll(), await poll(), await poll()]).toEqual([final, final, final]);
    expect(fetches()).toBe(3);
  });

  it('reports a cancelled upstream job as failed with a reason', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    h.sim.settle([...h.sim.tasks.keys()].at(-1)!, 'cancelled');
    const video = (await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() })).json()) as { status: string; error: { code: string } };
    expect(video.status).toBe('failed');
    expect(video.error.code).toBe('cancelled');
  });

  it('sends only the allowed headers upstream', async () => {
    await fetch(`${h.url}/v1/videos`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json', cookie: 'a=b', 'x-forwarded-for': '1.2.3.4', 'x-request-id': 'client-req-1' },
      body: JSON.stringify({ prompt: 'x' }),
    });
    const sent = lastCreate().headers;
    expect(sent.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    expect(sent.cookie).toBeUndefined();
    expect(sent['x-forwarded-for']).toBeUndefined();
    expect(sent['x-request-id']).toBe('client-req-1');
    expect(sent['user-agent']).toMatch(/grok-video-gateway/);
    expect(sent['accept-encoding']).toBe('identity');
    expect(JSON.stringify(sent)).not.toContain(CLIENT_KEY);
  });

  it('passes a content-encoded video through with its content-encoding and the same bytes', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    h.sim.settle([...h.sim.tasks.keys()].at(-1)!, 'completed');
    h.sim.contentEncoding = 'gzip';
    try {
      // node:http, not fetch: fetch would try to gunzip the bytes.
      const { headers, bytes } = await new Promise<{ headers: IncomingHttpHeaders; bytes: Buffer }>((resolve, reject) => {
        httpGet(`${h.url}/v1/videos/${body.id}/content`, { headers: { ...auth(), range: 'bytes=0-99' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve({ headers: res.headers, bytes: Buffer.concat(chunks) })).on('error', reject);
        }).on('error', reject);
      });
      expect(headers['content-encoding']).toBe('gzip');
      expect(Number(headers['content-length'])).toBe(100);
      expect([...bytes]).toEqual(Array.from({ length: 100 }, (_, i) => i % 251));
    } finally {
      h.sim.contentEncoding = undefined;
    }
  });

  it('a status fetch in flight while the video is deleted does not bring it back', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    // Completed: a terminal record is answered from memory from then on, never fetched again.
    h.sim.settle([...h.sim.tasks.keys()].at(-1)!, 'completed');
    // The upstream has answered the poll (the task still exists) but the answer is slow on its way back.
    h.sim.slowAnswersMs = 400;
    const poll = fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() });
    await new Promise((r) => setTimeout(r, 100));
    h.sim.slowAnswersMs = 0;
    const del = await fetch(`${h.url}/v1/videos/${body.id}`, { method: 'DELETE', headers: auth() });
    expect(del.status).toBe(200);
    expect((await poll).status).toBe(200);
    const after = await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() });
    expect(after.status).toBe(404);
  });

  it('every kind of answer carries the request id, the client\'s own when it sent a valid one', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    h.sim.settle([...h.sim.tasks.keys()].at(-1)!, 'completed');
    const answers: Array<[string, string, RequestInit]> = [
      ['poll', `/v1/videos/${body.id}`, { headers: auth() }],
      ['list', '/v1/videos', { headers: auth() }],
      ['download', `/v1/videos/${body.id}/content`, { headers: { ...auth(), range: 'bytes=0-9' } }],
      ['401', '/v1/videos', {}],
      ['404 video', '/v1/videos/video_nope', { headers: auth() }],
      ['unknown route', '/v2/nothing', { headers: auth() }],
      ['admin', '/admin/teams', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }],
      ['health', '/healthz', {}],
    ];
    for (const [name, path, init] of answers) {
      const res = await fetch(`${h.url}${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), 'x-request-id': `mine-${name.replace(/\W/g, '')}` } });
      await res.arrayBuffer();
      expect(res.headers.get('x-request-id'), name).toBe(`mine-${name.replace(/\W/g, '')}`);
      const generated = await fetch(`${h.url}${path}`, init);
      await generated.arrayBuffer();
      expect(generated.headers.get('x-request-id'), name).toMatch(/^req_[0-9a-f]{32}$/);
    }
  });

  it('lists newest first with cursors, and asc on request', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await postJson(`${h.url}/v1/videos`, { prompt: `n${i}` })).body.id);
    const page1 = (await (await fetch(`${h.url}/v1/videos?limit=2`, { headers: auth() })).json()) as { data: Array<{ id: string }>; has_more: boolean; first_id: string; last_id: string };
    expect(page1.data.map((v) => v.id)).toEqual([ids[2], ids[1]]);
    expect(page1.has_more).toBe(true);
    expect(page1.last_id).toBe(ids[1]);
    const page2 = (await (await fetch(`${h.url}/v1/videos?limit=1&after=${page1.last_id}`, { headers: auth() })).json()) as { data: Array<{ id: string }> };
    expect(page2.data[0]!.id).toBe(ids[0]);
    const asc = (await (await fetch(`${h.url}/v1/videos?order=asc&limit=100`, { headers: auth() })).json()) as { data: Array<{ id: string }>; object: string };
    expect(asc.object).toBe('list');
    expect(asc.data.map((v) => v.id).slice(-3)).toEqual(ids);
  });
});

describe('health', () => {
  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ store: 'ok', upstream: 'ok' });
  });
});
