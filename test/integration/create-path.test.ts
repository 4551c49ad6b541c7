import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, TestClock, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { bigPng, dataUri } from '../support/images.js';

/** Polls until `check` holds, or fails after `ms`: for states another process reaches in its own time. */
async function waitFor(check: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a create whose upstream answer comes late (issue 16 item 5)', () => {
  let h: Harness;
  const clock = new TestClock();
  /** How long the simulator holds the create's answer: the test's own steps take milliseconds. */
  const STALL_MS = 2_500;
  beforeAll(async () => {
    h = await startHarness({ clock, sim: { completeAfterMs: 3_600_000 } });
  });
  afterAll(() => h.close());

  /**
   * An OpenAI client that retries as the SDK does, and records every answer it got: the test can tell a
   * retried 500 from a single success.
   */
  function recordingClient(key: string) {
    const answers: Array<{ status: number; shouldRetry: string | null }> = [];
    const client = new OpenAI({
      apiKey: key,
      baseURL: `${h.url}/v1`,
      maxRetries: 2,
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        answers.push({ status: res.status, shouldRetry: res.headers.get('x-should-retry') });
        return res;
      },
    });
    return { client, answers };
  }

  /** Starts a create that the simulator holds, and resolves once the upstream has its body. */
  async function stalledCreate(key: string) {
    const { client, answers } = recordingClient(key);
    const before = h.sim.creates().length;
    h.sim.stallMs = STALL_MS;
    let done = false;
    const result = client.videos
      .create({ model: 'grok-imagine-video', prompt: 'slow upload', seconds: '4' })
      .then((v) => ({ video: v, error: undefined }), (error: unknown) => ({ video: undefined, error }))
      .finally(() => (done = true));
    await waitFor(() => h.sim.creates().length > before, 10_000, 'the upstream to receive the create');
    // Later requests (an SDK retry among them) are answered at once.
    h.sim.stallMs = 0;
    return { result, answers, before, isDone: () => done };
  }

  const usage = async (team: string) => (await admin(h.url, 'GET', `/teams/${team}/usage`)).body;
  const pendingJobId = (team: string) => {
    const db = new Database(join(h.dataDir, 'gateway.db'));
    try {
      return (db.prepare('SELECT id FROM jobs WHERE team_id = ? AND upstream_id IS NULL').get(team) as { id: string }).id;
    } finally {
      db.close();
    }
  };

  it('the tracker of the process still waiting for the answer leaves the create alone', async () => {
    const { key } = await teamWithKey(h.url, 'late-here', { video_seconds_per_day: 100 });
    const create = await stalledCreate(key);
    // Far past the pending grace (2 × UPSTREAM_TIMEOUT_MS): a create this old would be presumed dead.
    clock.advance(10 * 60_000);
    await h.gw.tracker.pass({ all: true });
    expect(create.isDone()).toBe(false);
    // Not abandoned meanwhile: the reservation is still held.
    expect(await usage('late-here')).toMatchObject({ active_jobs: 1, day: { video_seconds_reserved: 4 } });
    const { video, error } = await create.result;
    expect(error).toBeUndefined();
    expect(create.answers).toEqual([{ status: 200, shouldRetry: null }]);
    expect(h.sim.creates().length - create.before).toBe(1);
    expect((await fetch(`${h.url}/v1/videos/${video!.id}`, { headers: auth(key) })).status).toBe(200);
    expect(await usage('late-here')).toMatchObject({ active_jobs: 1, day: { video_seconds: 4, video_seconds_reserved: 4 } });
  });

  it("another replica's tracker may abandon it: the late acceptance brings it back, billed once", async () => {
    const { key } = await teamWithKey(h.url, 'late-elsewhere', { video_seconds_per_day: 100, max_concurrent_jobs: 1 });
    // A second gateway on the same store, as a replica would be: it knows nothing of this process's creates.
    const replica = await startHarness({ clock, dataDir: h.dataDir });
    try {
      const create = await stalledCreate(key);
      clock.advance(10 * 60_000);
      await replica.gw.tracker.pass({ all: true });
      expect(await usage('late-elsewhere')).toMatchObject({ active_jobs: 0, day: { video_seconds: 0 } });
      expect(create.isDone()).toBe(false);
      const { video, error } = await create.result;
      expect(error).toBeUndefined();
      expect(create.answers).toEqual([{ status: 200, shouldRetry: null }]);
      expect(h.sim.creates().length - create.before).toBe(1);
      const listed = (await (await fetch(`${h.url}/v1/videos`, { headers: auth(key) })).json()) as { data: Array<{ id: string }> };
      expect(listed.data.map((v) => v.id)).toEqual([video!.id]);
      expect(await usage('late-elsewhere')).toMatchObject({ active_jobs: 1, day: { video_seconds: 4, video_seconds_reserved: 4 } });
      // The slot is held again: the team's limit of one job applies to it.
      expect((await postJson(`${h.url}/v1/videos`, { prompt: 'x' }, key)).body.error.code).toBe('concurrency_limit_exceeded');
    } finally {
      await replica.close();
    }
  });

  it('a failure of the gateway after the upstream accepted answers x-should-retry: false, and the SDK does not retry', async () => {
    const { key } = await teamWithKey(h.url, 'late-lost', { video_seconds_per_day: 100 });
    const create = await stalledCreate(key);
    // The record goes while the upstream holds the create (as if purged by an operator): activation fails.
    const db = new Database(join(h.dataDir, 'gateway.db'));
    db.prepare('DELETE FROM jobs WHERE id = ?').run(pendingJobId('late-lost'));
    db.close();
    const { error } = await create.result;
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    // After the retries made while the client waits (the background ones go on, the task id in each log line).
    expect(create.answers).toEqual([{ status: 503, shouldRetry: 'false' }]);
    expect(h.sim.creates().length - create.before).toBe(1);
    expect(h.logs.join('')).toMatch(/"upstreamId":"task_[0-9a-f]+".*"msg":"upstream accepted a create the gateway could not record yet; retrying"/);
  });
});

/** A create whose body trickles: headers declaring `size` bytes and a first piece, then nothing until aborted. */
function slowUpload(url: string, key: string, size: number) {
  const req = request(`${url}/v1/videos`, {
    method: 'POST',
    headers: { ...auth(key), 'content-type': 'application/json', 'content-length': String(size) },
  });
  req.on('error', () => undefined);
  const answer = new Promise<{ status: number; code: string | undefined; retryAfter: string | undefined }>((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error?: { code: string } }).error?.code, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
  });
  let answered = false;
  void answer.then(() => (answered = true));
  req.write('{"prompt":"x","pad":"');
  return { answer, isAnswered: () => answered, abort: () => req.destroy() };
}

/** Waits until the gateway holds `bytes` of create bodies, as its metrics tell (the admin token will do there). */
async function bufferedReaches(url: string, bytes: number): Promise<void> {
  let held = -1;
  for (const deadline = Date.now() + 10_000; held !== bytes; await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > deadline) throw new Error(`the create buffer holds ${held} bytes, not ${bytes}`);
    const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    held = Number(/^gateway_create_buffer_bytes (\d+)$/m.exec(text)?.[1]);
  }
}

/** A create with a reference image of about `bytes` bytes: a body that is not small, sent whole at once. */
const imageCreate = (url: string, key: string, bytes: number) =>
  postJson(`${url}/v1/videos`, { prompt: 'x', seconds: '4', input_reference: dataUri(bigPng(bytes)) }, key);

describe('a burst of creates from one key is judged by the quota policy alone (issue 19)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ sim: { completeAfterMs: 3_600_000 } });
  });
  afterAll(() => h.close());

  it('100 concurrent small creates, a policy allowing 60: exactly 60 admitted, 40 refused insufficient_quota, nothing else', async () => {
    const { key } = await teamWithKey(h.url, 'batch', { video_seconds_per_day: 240 });
    const before = h.sim.creates().length;
    // An upstream takes a moment to accept a create: the burst's creates are in flight together.
    h.sim.stallMs = 300;
    const answers = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const { res, body } = await postJson(`${h.url}/v1/videos`, { prompt: `prompt ${i}`, seconds: '4' }, key);
        return `${res.status} ${body.error?.code ?? 'video'}`;
      }),
    ).finally(() => (h.sim.stallMs = 0));
    const counts: Record<string, number> = {};
    for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
    expect(counts).toEqual({ '200 video': 60, '429 insufficient_quota': 40 });
    expect(h.sim.creates().length - before).toBe(60);
  });
});

describe('the bytes of create bodies in flight, shared fairly between teams (contract §7)', () => {
  let h: Harness;
  beforeAll(async () => {
    // The defaults: a 256 MiB buffer, a quarter of it per team, two seconds of waiting for room.
    h = await startHarness();
  });
  afterAll(() => h.close());

  it("teams uploading slowly at their share neither delay another team's small create nor take the buffer; over its share a team gets 429", async () => {
    const MIB = 1024 * 1024;
    const uploads: Array<ReturnType<typeof slowUpload>> = [];
    const overShare: Array<ReturnType<typeof slowUpload>> = [];
    try {
      for (const team of ['slow-one', 'slow-two']) {
        const { key } = await teamWithKey(h.url, team);
        const second = (await admin(h.url, 'POST', `/teams/${team}/keys`, {})).body.key as string;
        // Eight uploads of 8 MiB from two keys: the team's 64 MiB share, held from their first byte.
        for (const k of [key, second]) for (let i = 0; i < 4; i++) uploads.push(slowUpload(h.url, k, 8 * MIB));
      }
      await bufferedReaches(h.url, 128 * MIB);
      // One more from each team finds its share full: it waits for room, then is refused as the team's doing.
      for (const team of ['slow-one', 'slow-two']) {
        const extra = (await admin(h.url, 'POST', `/teams/${team}/keys`, {})).body.key as string;
        overShare.push(slowUpload(h.url, extra, 1024));
      }
      for (const o of overShare) expect(await o.answer).toEqual({ status: 429, code: 'too_many_uploads', retryAfter: '1' });

      // Both teams hold their share now; another team's small create goes straight through, as does a larger one.
      const { key: other } = await teamWithKey(h.url, 'bystander');
      expect((await postJson(`${h.url}/v1/videos`, { prompt: 'x' }, other)).res.status).toBe(200);
      expect((await imageCreate(h.url, other, 512 * 1024)).res.status).toBe(200);
      expect(uploads.some((u) => u.isAnswered())).toBe(false);
    } finally {
      for (const u of [...uploads, ...overShare]) u.abort();
    }
    // The bytes are given back when the uploads end (the gateway notices the hang-ups in its own time).
    const slow = (await admin(h.url, 'POST', '/teams/slow-one/keys', {})).body.key as string;
    let status = 0;
    for (const deadline = Date.now() + 10_000; status !== 200 && Date.now() < deadline; ) {
      status = (await imageCreate(h.url, slow, 512 * 1024)).res.status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
  });
});

describe('a full create buffer (contract §7)', () => {
  let h: Harness;
  const KIB = 1024;
  beforeAll(async () => {
    // 4 MiB in all, 2 MiB per team; bodies over 64 KiB fill at most 3.5 MiB of it.
    h = await startHarness({
      sim: { completeAfterMs: 3_600_000 },
      env: { CREATE_BUFFER_BYTES: String(4096 * KIB), CREATE_BUFFER_TEAM_SHARE: '0.5', MAX_BODY_BYTES: String(2048 * KIB), CREATE_BUFFER_WAIT_MS: '1500' },
    });
  });
  afterAll(() => h.close());

  it('a create that finds no room waits for it: it gets it when an upload ends, or 503 server_busy with retry-after; small creates still pass', async () => {
    const { key: one } = await teamWithKey(h.url, 'full-one');
    const { key: two } = await teamWithKey(h.url, 'full-two');
    const { key: three } = await teamWithKey(h.url, 'full-three');
    const first = slowUpload(h.url, one, 2048 * KIB);
    const second = slowUpload(h.url, two, 1536 * KIB);
    try {
      await bufferedReaches(h.url, 3584 * KIB);
      const refused = await imageCreate(h.url, three, 200 * KIB);
      expect(refused.res.status).toBe(503);
      expect(refused.body.error.code).toBe('server_busy');
      expect(refused.res.headers.get('retry-after')).toBe('1');
      expect((await postJson(`${h.url}/v1/videos`, { prompt: 'small' }, three)).res.status).toBe(200);

      const waiting = imageCreate(h.url, three, 200 * KIB);
      // Well inside its wait: the create is waiting when the room frees.
      await new Promise((r) => setTimeout(r, 500));
      second.abort();
      expect((await waiting).res.status).toBe(200);
      expect(first.isAnswered()).toBe(false);
    } finally {
      first.abort();
      second.abort();
    }
  });

  it('bytes already sent upstream are not held while the upstream answer is awaited', async () => {
    const { key } = await teamWithKey(h.url, 'sent-then-waiting');
    const before = h.sim.creates().length;
    // Each body is about 1.6 MiB: two at once exceed the team's 2 MiB, unless the first's was given back when sent.
    h.sim.stallMs = 5_000;
    const firstCreate = imageCreate(h.url, key, 1200 * KIB);
    await waitFor(() => h.sim.creates().length > before, 10_000, 'the upstream to receive the first create');
    const secondCreate = imageCreate(h.url, key, 1200 * KIB);
    await waitFor(() => h.sim.creates().length > before + 1, 10_000, 'the upstream to receive the second create');
    h.sim.stallMs = 0;
    expect((await firstCreate).res.status).toBe(200);
    expect((await secondCreate).res.status).toBe(200);
  });
});
