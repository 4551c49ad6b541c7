import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM_MESSAGE_MAX_CHARS } from '../../src/observability/redact.js';
import { RECORDED_BODY_BYTES_MAX, RECORDED_REQUESTS_MAX, TASKS_MAX, UpstreamSimulator } from '../../src/simulator/server.js';
import { READINESS_PROBE_INTERVAL_MS } from '../../src/http/readiness.js';
import { CLIENT_KEY, UPSTREAM_KEY, auth, postJson, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ sim: { completeAfterMs: 60_000 } });
});
afterAll(() => h.close());

const lastTaskId = () => [...h.sim.tasks.keys()].at(-1)!;

/** What the upstream's internals look like when they leak into its free text. */
const LEAKY = `content policy violation: the prompt depicts a real person. debug: worker gpu-7.pool.internal:8443 ` + `key sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0 fetch https://storage.internal.example/bucket/out.mp4?sig=abc ` + `from 10.2.3.4 ${UPSTREAM_KEY}\n    at render (/srv/worker/dist/index.js:10:5)\n` + 'padding '.repeat(100_000);

function expectClean(message: string) {
  expect(message.length).toBeLessThanOrEqual(UPSTREAM_MESSAGE_MAX_CHARS + 100);
  expect(message).toContain('content policy violation: the prompt depicts a real person.');
  for (const leak of ['sk-live', 'internal', '10.2.3.4', 'https://', UPSTREAM_KEY, '/srv/worker', 'index.js']) expect(message).not.toContain(leak);
}

describe('upstream free text reaches clients bounded and redacted, by one rule for both paths', () => {
  it('a failed task: the reason is kept, the internals and keys are not, the length is bounded', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    h.sim.tasks.get(lastTaskId())!.failMessage = LEAKY;
    h.sim.settle(lastTaskId(), 'failed');
    const video = (await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() })).json()) as { status: string; error: { message: string } };
    expect(video.status).toBe('failed');
    expectClean(video.error.message);
  });

  it('an HTTP error from the upstream: the same rule', async () => {
    h.sim.failNextCreate({ status: 400, body: JSON.stringify({ error: { message: LEAKY } }) });
    const { res, body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    expect(res.status).toBe(400);
    expectClean(body.error.message);
  });

  it("its param too: passed on as a field name, dropped when it is anything else", async () => {
    h.sim.failNextCreate({ status: 400, body: JSON.stringify({ error: { message: 'too long', param: 'prompt' } }) });
    expect((await postJson(`${h.url}/v1/videos`, { prompt: 'x' })).body.error.param).toBe('prompt');
    for (const param of [LEAKY, `key ${UPSTREAM_KEY}`, 'worker gpu-7.pool.internal:8443']) {
      h.sim.failNextCreate({ status: 400, body: JSON.stringify({ error: { message: 'bad', param } }) });
      const { res, body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
      expect(res.status).toBe(400);
      expect(body.error.param).toBeNull();
    }
  });
});

describe('/readyz reaches the upstream at most once per interval', () => {
  it('50 concurrent and 50 sequential readiness checks share the probe', async () => {
    const probes = () => h.sim.requests.filter((r) => r.path === '/v1/models').length;
    const before = probes();
    const started = performance.now();
    const concurrent = await Promise.all(Array.from({ length: 50 }, () => fetch(`${h.url}/readyz`)));
    const sequential = [];
    for (let i = 0; i < 50; i++) sequential.push(await fetch(`${h.url}/readyz`));
    const elapsed = performance.now() - started;
    for (const res of [...concurrent, ...sequential]) {
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ready', upstream: 'ok' });
    }
    const sent = probes() - before;
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sent).toBeLessThanOrEqual(1 + Math.floor(elapsed / READINESS_PROBE_INTERVAL_MS));
  });
});

describe('video_url does not follow the Host header', () => {
  it('a forged Host gives the same relative video_url', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    h.sim.settle(lastTaskId(), 'completed');
    const video = await new Promise<{ video_url: string }>((resolve, reject) => {
      httpRequest(`${h.url}/v1/videos/${body.id}`, { headers: { ...auth(), host: 'attacker.example' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c)).on('end', () => resolve(JSON.parse(text))).on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    expect(video.video_url).toBe(`/v1/videos/${body.id}/content`);
  });
});

describe('downloads', () => {
  it('are never marked cacheable by shared caches, whatever the upstream says', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'x' });
    h.sim.settle(lastTaskId(), 'completed');
    const res = await fetch(`${h.url}/v1/videos/${body.id}/content`, { headers: { ...auth(), range: 'bytes=0-9' } });
    expect(res.status).toBe(206);
    await res.arrayBuffer();
    expect(res.headers.get('cache-control')).toBe('private');
  });
});

/**
 * Sends each message on one fresh connection, the next once an answer to the one before has arrived, and
 * reads every answer until the server closes the connection.
 */
function rawExchange(...messages: string[]): Promise<string> {
  const { port } = new URL(h.url);
  return new Promise((resolve, reject) => {
    const pending = [...messages];
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(pending.shift()!));
    let out = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      out += d;
      // Every answer here ends with its JSON body.
      if (pending.length > 0 && out.endsWith('}')) socket.write(pending.shift()!);
    });
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no close after: ${JSON.stringify(out)}`)));
  });
}

/** Splits a byte stream of HTTP/1.1 answers (each with a content-length) into status, headers and body. */
function parseAnswers(raw: string) {
  const answers: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let rest = raw;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    expect(end).toBeGreaterThan(0);
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    const length = Number(headers['content-length']);
    expect(Number.isInteger(length)).toBe(true);
    answers.push({ status: Number(statusLine!.split(' ')[1]), headers, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  return answers;
}

describe('requests the HTTP layer cannot handle still get the OpenAI error shape and a request id', () => {
  const ok = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
  it.each<[string, string, number]>([
    ['a backslash in the path', `GET /v1\\videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${CLIENT_KEY}\r\n\r\n`, 400],
    ['a Host with a space', 'GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
    ['a Host with a path', 'GET /healthz HTTP/1.1\r\nHost: evil.example/x\r\n\r\n', 400],
    ['no Host on HTTP/1.1', 'GET /healthz HTTP/1.1\r\n\r\n', 400],
    ['not HTTP at all', 'HELLO THERE\r\n\r\n', 400],
    ['a control character in a header', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: a\u0001b\r\n\r\n', 400],
    ['an absolute target that is no URL', 'GET http://a b/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400],
    ['headers beyond the limit', `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['an Expect other than 100-continue', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: teapot\r\n\r\n', 417],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
  ])('%s, alone and after a good request on the same connection', async (_name, bad, status) => {
    for (const messages of [[bad], [ok, bad]]) {
      const answers = parseAnswers(await rawExchange(...messages));
      if (messages.length > 1) expect(answers.shift()!.status).toBe(200);
      expect(answers).toHaveLength(1);
      const [answer] = answers;
      expect(answer!.status).toBe(status);
      expect(answer!.headers['content-type']).toBe('application/json');
      expect(answer!.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
      expect(answer!.headers.connection).toBe('close');
      const body = JSON.parse(answer!.body) as { error: Record<string, unknown> };
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error.type).toBe('invalid_request_error');
      expect(typeof body.error.message).toBe('string');
      expect(answer!.body).not.toContain(CLIENT_KEY);
    }
    expect(h.logs.join('')).not.toContain(CLIENT_KEY);
  });

  it('an HTTP/1.0 request without a Host is still served', async () => {
    const [answer] = parseAnswers(await rawExchange('GET /healthz HTTP/1.0\r\n\r\n'));
    expect(answer!.status).toBe(200);
  });
});

describe('the simulator (demo mode) keeps a bounded log', () => {
  let sim: UpstreamSimulator;
  let url: string;
  beforeAll(async () => {
    sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 0 });
    url = await sim.listen();
  });
  afterAll(() => sim.close());
  const bodyBytes = () => sim.requests.reduce((n, r) => n + r.body.length, 0);

  it('of the last requests, by count', async () => {
    const total = RECORDED_REQUESTS_MAX + 50;
    for (let i = 0; i < total; i++) {
      const res = await fetch(`${url}/v1/models?n=${i}`, { headers: { authorization: `Bearer ${UPSTREAM_KEY}`, 'x-n': String(i) } });
      await res.arrayBuffer();
    }
    expect(sim.received).toBe(total);
    expect(sim.requests).toHaveLength(RECORDED_REQUESTS_MAX);
    // The newest are the ones kept, in order.
    expect(sim.requests.at(-1)!.headers['x-n']).toBe(String(total - 1));
    expect(sim.requests[0]!.headers['x-n']).toBe(String(total - RECORDED_REQUESTS_MAX));
  });

  it('and by body bytes, keeping the newest request whatever its size', async () => {
    const big = Buffer.alloc(Math.ceil(RECORDED_BODY_BYTES_MAX / 3) + 1, 'a');
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${url}/v1/videos`, { method: 'POST', headers: { authorization: `Bearer ${UPSTREAM_KEY}`, 'content-type': 'application/json' }, body: big });
      expect(res.status).toBe(400);
      expect(bodyBytes()).toBeLessThanOrEqual(RECORDED_BODY_BYTES_MAX);
    }
    expect(sim.requests.at(-1)!.body.length).toBe(big.length);
    expect(sim.creates().length).toBe(2);
  });

  it('and of at most TASKS_MAX tasks, the oldest forgotten first', async () => {
    const oldest = 'task_oldest';
    sim.tasks.set(oldest, { id: oldest, model: 'grok-imagine-video', seconds: '6', size: '720P', createdAtMs: Date.now(), completeAfterMs: 0, outcome: 'completed', deleted: false });
    for (let i = 1; i < TASKS_MAX; i++) sim.tasks.set(`task_${i}`, { ...sim.tasks.get(oldest)!, id: `task_${i}` });
    const res = await fetch(`${url}/v1/videos`, {
      method: 'POST',
      headers: { authorization: `Bearer ${UPSTREAM_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'grok-imagine-video', prompt: 'x' }),
    });
    expect(res.status).toBe(200);
    expect(sim.tasks.size).toBe(TASKS_MAX);
    expect(sim.tasks.has(oldest)).toBe(false);
  });
});
