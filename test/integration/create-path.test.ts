import { request } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestClock, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';

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
    expect(create.answers).toEqual([{ status: 500, shouldRetry: 'false' }]);
    expect(h.sim.creates().length - create.before).toBe(1);
    expect(h.logs.join('')).toMatch(/"upstreamId":"task_[0-9a-f]+".*"msg":"upstream accepted a create the gateway could not record"/);
  });
});

describe('upload slots per key and per team (issue 16 item 7)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { MAX_CONCURRENT_CREATES: '3', MAX_CONCURRENT_CREATES_PER_KEY: '2', MAX_CONCURRENT_CREATES_PER_TEAM: '2' } });
  });
  afterAll(() => h.close());

  /** A create whose body trickles: headers and a first piece, then nothing until the test lets go. */
  function slowUpload(key: string) {
    const req = request(`${h.url}/v1/videos`, {
      method: 'POST',
      headers: { ...auth(key), 'content-type': 'application/json', 'content-length': String(1024 * 1024) },
    });
    req.on('error', () => undefined);
    const answer = new Promise<{ status: number; code: string | undefined }>((resolve) => {
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error?: { code: string } }).error?.code }));
      });
    });
    req.write('{"prompt":"x","pad":"');
    return { answer, abort: () => req.destroy() };
  }

  it("one key holding its upload slots neither takes every slot nor makes another team's create fail", async () => {
    const { key: hog } = await teamWithKey(h.url, 'hog');
    const hogTwo = (await admin(h.url, 'POST', '/teams/hog/keys', {})).body.key as string;
    const { key: other } = await teamWithKey(h.url, 'bystander');
    const uploads = Array.from({ length: 4 }, () => slowUpload(hog));
    try {
      const answered: Array<{ status: number; code: string | undefined }> = [];
      for (const u of uploads) void u.answer.then((a) => answered.push(a));
      // The key's bound is 2: two of the four are refused at once, two hold their slots.
      await waitFor(() => answered.length >= 2, 10_000, 'two uploads to be refused').catch(() => undefined);
      expect(answered).toEqual([
        { status: 429, code: 'too_many_concurrent_creates' },
        { status: 429, code: 'too_many_concurrent_creates' },
      ]);
      // The team's bound is 2 as well: its other key is refused, and names the team.
      const teamRefused = await postJson(`${h.url}/v1/videos`, { prompt: 'x' }, hogTwo);
      expect(teamRefused.res.status).toBe(429);
      expect(teamRefused.body.error.message).toMatch(/your team/);
      // Another team still finds a free slot.
      expect((await postJson(`${h.url}/v1/videos`, { prompt: 'x' }, other)).res.status).toBe(200);
    } finally {
      for (const u of uploads) u.abort();
    }
    // Slots are given back when the uploads end (the gateway notices the hang-ups in its own time).
    let status = 0;
    for (const deadline = Date.now() + 10_000; status !== 200 && Date.now() < deadline; ) {
      status = (await postJson(`${h.url}/v1/videos`, { prompt: 'x' }, hog)).res.status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe(200);
  });
});
