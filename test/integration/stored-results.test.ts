import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { until as waitFor } from '../support/until.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { objectKey } from '../../src/storage/backend.js';
import { ABANDONED_AFTER_MS } from '../../src/storage/sweeper.js';
import { videoByte } from '../../src/simulator/server.js';
import { ADMIN_TOKEN, admin, auth, postJson, startHarness, teamWithKey, TestClock, type Harness } from '../support/harness.js';

/**
 * Stored results (§12) on the file backend: a real temporary directory, the built-in upstream simulator,
 * the gateway as it runs. Every expectation is read from the directory, the HTTP answers and the upstream's
 * own record of what it was asked.
 */
const VIDEO_BYTES = 300_007;
const DAY_MS = 86_400_000;

const expected = (start = 0, end = VIDEO_BYTES - 1) => Buffer.from(Array.from({ length: end - start + 1 }, (_, i) => videoByte(start + i)));

const until = <T>(what: string, probe: () => T | Promise<T>, timeoutMs = 10_000) => waitFor(what, probe, timeoutMs, 20);

/** Polls a video to completion, as a client would. */
const polledToCompletion = (url: string, id: string, key?: string) =>
  until('completion', async () => {
    const v = (await (await fetch(`${url}/v1/videos/${id}`, { headers: auth(key) })).json()) as any;
    return v.status === 'completed' ? v : undefined;
  });

async function completedVideo(url: string, key?: string) {
  const { res, body } = await postJson(`${url}/v1/videos`, { model: 'grok-video-3', prompt: 'a lighthouse at dusk', seconds: 6 }, key);
  expect(res.status).toBe(200);
  return polledToCompletion(url, body.id, key);
}

const contentRequests = (h: Harness, upstreamId?: string) => h.sim.requests.filter((r) => r.method === 'GET' && /\/content$/.test(r.path) && (!upstreamId || r.path.includes(upstreamId))).length;

describe('stored results on a directory (STORAGE_URL=file://…)', () => {
  let h: Harness;
  let dir: string;
  const clock = new TestClock();
  const fileOf = (id: string) => join(dir, objectKey(id));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-videos-'));
    h = await startHarness({
      clock,
      sim: { completeAfterMs: 0, videoBytes: VIDEO_BYTES },
      env: { STORAGE_URL: `file://${dir}`, STORAGE_POLL_INTERVAL_MS: '50', STORAGE_SWEEP_INTERVAL_MS: '50', STORAGE_COPY_RETRY_MS: '100' },
    });
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    clock.offsetMs = 0;
  });

  it('copies a completed video once, then serves it from the directory without asking the upstream', async () => {
    const video = await completedVideo(h.url);
    expect(video.expires_at).toBe(video.completed_at + 7 * 86_400);
    await until('the stored file', () => existsSync(fileOf(video.id)));
    expect(readFileSync(fileOf(video.id)).equals(expected())).toBe(true);
    const upstreamBefore = contentRequests(h);
    expect(upstreamBefore).toBe(1);

    const res = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: auth() });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('video/mp4');
    expect(res.headers.get('content-length')).toBe(String(VIDEO_BYTES));
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('cache-control')).toBe('private');
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(Buffer.from(await res.arrayBuffer()).equals(expected())).toBe(true);
    // Neither the download nor any later poll copied it again or fetched it upstream.
    await fetch(`${h.url}/v1/videos/${video.id}`, { headers: auth() });
    expect(contentRequests(h)).toBe(upstreamBefore);
  });

  it('answers ranges, conditional requests and unsatisfiable ranges from the stored copy', async () => {
    const video = await completedVideo(h.url);
    await until('the stored file', () => existsSync(fileOf(video.id)));
    const get = (headers: Record<string, string>) => fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: { ...auth(), ...headers } });

    const part = await get({ range: 'bytes=1000-1999' });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${VIDEO_BYTES}`);
    expect(part.headers.get('content-length')).toBe('1000');
    expect(Buffer.from(await part.arrayBuffer()).equals(expected(1000, 1999))).toBe(true);

    const tail = await get({ range: 'bytes=-7' });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(expected(VIDEO_BYTES - 7))).toBe(true);

    const open = await get({ range: `bytes=${VIDEO_BYTES - 10}-` });
    expect(open.headers.get('content-range')).toBe(`bytes ${VIDEO_BYTES - 10}-${VIDEO_BYTES - 1}/${VIDEO_BYTES}`);
    expect((await open.arrayBuffer()).byteLength).toBe(10);

    const past = await get({ range: `bytes=${VIDEO_BYTES}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${VIDEO_BYTES}`);
    expect(((await past.json()) as any).error.code).toBe('range_not_satisfiable');

    const etag = part.headers.get('etag')!;
    const cached = await get({ 'if-none-match': etag });
    expect(cached.status).toBe(304);
    expect(cached.headers.get('etag')).toBe(etag);
    expect((await cached.arrayBuffer()).byteLength).toBe(0);

    // If-Range naming another version: the whole video, not the range of a copy the client does not have.
    const other = await get({ range: 'bytes=0-9', 'if-range': '"another-version"' });
    expect(other.status).toBe(200);
    expect((await other.arrayBuffer()).byteLength).toBe(VIDEO_BYTES);
    const same = await get({ range: 'bytes=0-9', 'if-range': etag });
    expect(same.status).toBe(206);
    await same.arrayBuffer();
  });

  it('copies a video that only the tracker saw complete (no client polled it)', async () => {
    h.sim.completeAfterMs = 200;
    const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'nobody polls this', seconds: 6 }).finally(() => (h.sim.completeAfterMs = 0));
    expect(body.status).not.toBe('completed');
    await new Promise((r) => setTimeout(r, 250));
    await h.gw.tracker.pass({ all: true });
    await until('the stored file', () => existsSync(fileOf(body.id)));
    const video = (await (await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() })).json()) as any;
    expect(video.status).toBe('completed');
    expect(video.expires_at).toBe(video.completed_at + 7 * 86_400);
  });

  it("keeps a team's video for its video_retention_days, then answers video_expired, removes the copy and keeps the record", async () => {
    const key = await teamWithKey(h.url, 'retains-one-day', { video_retention_days: 1 });
    const video = await completedVideo(h.url, key.key);
    expect(video.expires_at).toBe(video.completed_at + 86_400);
    await until('the stored file', () => existsSync(fileOf(video.id)));

    clock.advance(DAY_MS + 1000);
    const res = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: auth(key.key) });
    expect(res.status).toBe(404);
    const err = (await res.json()) as any;
    expect(err.error.code).toBe('video_expired');
    expect(err.error.param).toBe('video_id');
    await until('the sweeper to remove the copy', () => !existsSync(fileOf(video.id)));

    const record = await fetch(`${h.url}/v1/videos/${video.id}`, { headers: auth(key.key) });
    expect(record.status).toBe(200);
    expect(((await record.json()) as any).status).toBe('completed');
    // The clock moved a day on: the usage is in yesterday's bucket, still counted.
    const usage = await admin(h.url, 'GET', '/teams/retains-one-day/usage?days=3');
    expect(usage.body.daily.reduce((sum: number, d: { video_seconds: number }) => sum + d.video_seconds, 0)).toBe(6);
  });

  it('removes the stored copy when the video is deleted', async () => {
    const video = await completedVideo(h.url);
    await until('the stored file', () => existsSync(fileOf(video.id)));
    const del = await fetch(`${h.url}/v1/videos/${video.id}`, { method: 'DELETE', headers: auth() });
    expect(del.status).toBe(200);
    await until('the copy to be removed', () => !existsSync(fileOf(video.id)));
  });

  it('retries a copy that failed (the file could not be put in place) and streams from the upstream meanwhile', async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'the place is taken', seconds: 6 });
    // A non-empty directory where the video's file must go: renaming the written copy into place fails until it is gone.
    mkdirSync(fileOf(body.id), { recursive: true });
    writeFileSync(join(fileOf(body.id), 'in-the-way'), '');
    await polledToCompletion(h.url, body.id);
    await until('a failed attempt', async () => /gateway_storage_copies_total\{outcome="retrying"\} [1-9]/.test(await (await fetch(`${h.url}/metrics`, { headers: auth(ADMIN_TOKEN) })).text()));
    const meanwhile = await fetch(`${h.url}/v1/videos/${body.id}/content`, { headers: auth() });
    expect(meanwhile.status).toBe(200);
    expect(Buffer.from(await meanwhile.arrayBuffer()).equals(expected())).toBe(true);
    const before = contentRequests(h, undefined);

    rmSync(fileOf(body.id), { recursive: true });
    await until('the retried copy', () => existsSync(fileOf(body.id)) && readFileSync(fileOf(body.id)).length === VIDEO_BYTES, 15_000);
    expect(readFileSync(fileOf(body.id)).equals(expected())).toBe(true);
    expect(contentRequests(h)).toBeGreaterThan(before);
  });

  it('counts copies and stored bytes on /metrics', async () => {
    const metrics = await (await fetch(`${h.url}/metrics`, { headers: auth(ADMIN_TOKEN) })).text();
    expect(metrics).toMatch(/gateway_storage_copies_total\{outcome="stored"\} [1-9]/);
    expect(metrics).toMatch(/gateway_storage_stored_videos [1-9]/);
    expect(metrics).toMatch(/gateway_storage_stored_bytes [1-9]\d*/);
    expect(metrics).toMatch(/gateway_content_downloads_total\{source="stored"\} [1-9]/);
  });
});

describe('stored results by default and turned off', () => {
  it('stores under DATA_DIR/videos when STORAGE_URL is unset', async () => {
    const h = await startHarness({ sim: { completeAfterMs: 0, videoBytes: 1000 }, env: { STORAGE_URL: '', STORAGE_POLL_INTERVAL_MS: '50' } });
    try {
      const video = await completedVideo(h.url);
      await until('the stored file', () => existsSync(join(h.dataDir, 'videos', objectKey(video.id))));
    } finally {
      await h.close();
    }
  });

  it('STORAGE_URL=none streams every download from the upstream and gives no expiry', async () => {
    const h = await startHarness({ sim: { completeAfterMs: 0, videoBytes: 1000 }, env: { STORAGE_URL: 'none' } });
    try {
      const video = await completedVideo(h.url);
      expect(video.expires_at).toBeNull();
      for (let i = 0; i < 2; i++) await (await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: auth() })).arrayBuffer();
      expect(contentRequests(h)).toBe(2);
      expect(existsSync(join(h.dataDir, 'videos'))).toBe(false);
    } finally {
      await h.close();
    }
  });
});

describe('derived videos of an xAI source whose upstream URL expired', () => {
  const XAI_BYTES = 40_000;
  for (const stored of [true, false]) {
    it(stored ? 'sends the stored copy (a data URI, from a directory) and the remix is made' : 'without a stored copy, xAI refuses the expired URL', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'gw-videos-'));
      const h = await startHarness({
        sim: { kind: 'xai', completeAfterMs: 0, videoBytes: XAI_BYTES, mediaUrlTtlMs: 400 },
        env: { STORAGE_URL: stored ? `file://${dir}` : 'none', STORAGE_POLL_INTERVAL_MS: '50' },
      });
      try {
        const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'a paper boat', seconds: 6 });
        await polledToCompletion(h.url, body.id);
        if (stored) await until('the stored file', () => existsSync(join(dir, objectKey(body.id))));
        await new Promise((r) => setTimeout(r, 500));

        const remix = await postJson(`${h.url}/v1/videos/${body.id}/remix`, { prompt: 'the boat sails at night' });
        const sent = JSON.parse(h.sim.derives().at(-1)!.body.toString('utf8'));
        if (!stored) {
          expect(sent.video.url.startsWith(h.upstreamUrl)).toBe(true);
          expect(remix.res.status).toBe(400);
          return;
        }
        expect(sent.video.url.startsWith('data:video/mp4;base64,')).toBe(true);
        expect(Buffer.from(sent.video.url.split(',')[1], 'base64').length).toBe(XAI_BYTES);
        expect(remix.res.status).toBe(200);
        expect((await polledToCompletion(h.url, remix.body.id)).remixed_from_video_id).toBe(body.id);
      } finally {
        await h.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('copies are bounded', () => {
  it('in number (STORAGE_COPY_CONCURRENCY) and bandwidth (STORAGE_COPY_BYTES_PER_SEC), and never on the request path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-videos-'));
    const bytes = 200_000;
    const h = await startHarness({
      sim: { completeAfterMs: 0, videoBytes: bytes },
      env: { STORAGE_URL: `file://${dir}`, STORAGE_POLL_INTERVAL_MS: '50', STORAGE_COPY_CONCURRENCY: '1', STORAGE_COPY_BYTES_PER_SEC: '400000' },
    });
    // Copies being written are the `.part` files in the directory: count them as the copies run.
    let most = 0;
    const partial = () => readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.part')).length;
    const sampler = setInterval(() => (most = Math.max(most, partial())), 5);
    try {
      const started = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        const id = (await completedVideo(h.url)).id;
        ids.push(id);
        // Completion only marks the copy: once the budget's burst is spent, the poll that saw it answers long
        // before its copy (queued behind the others, at 400 kB/s) exists.
        if (i >= 2) expect(existsSync(join(dir, objectKey(id)))).toBe(false);
      }
      await until('every copy', () => ids.every((id) => existsSync(join(dir, objectKey(id)))), 15_000);
      // 800 kB at 400 kB/s, of which one second's budget passes at once: at least one more second.
      expect(performance.now() - started).toBeGreaterThanOrEqual(900);
      expect(most).toBe(1);
    } finally {
      clearInterval(sampler);
      await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

it('removes the partial files a crash left behind once no live copy can own them, at start and hourly after', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-videos-'));
  const clock = new TestClock();
  mkdirSync(join(dir, 'ab'));
  const file = (name: string, ageMs: number) => {
    const path = join(dir, 'ab', name);
    writeFileSync(path, 'bytes');
    const at = new Date(Date.now() - ageMs);
    utimesSync(path, at, at);
    return path;
  };
  // A copy killed mid-write two days ago; one another replica sharing the directory is writing now; a stored
  // copy as old as the first (never touched: only partial files are).
  const crashed = file('video_ab1.0a1b2c3d4e5f.part', 2 * DAY_MS);
  const live = file('video_ab2.1a2b3c4d5e6f.part', 0);
  const stored = file('video_ab3', 2 * DAY_MS);
  const h = await startHarness({ clock, sim: { completeAfterMs: 0, videoBytes: 1000 }, env: { STORAGE_URL: `file://${dir}`, STORAGE_POLL_INTERVAL_MS: '50', STORAGE_SWEEP_INTERVAL_MS: '50' } });
  try {
    await until('the crashed copy to be removed at start', () => !existsSync(crashed));
    expect(existsSync(live)).toBe(true);
    expect(existsSync(stored)).toBe(true);

    const later = file('video_ab4.2a3b4c5d6e7f.part', ABANDONED_AFTER_MS + 60_000);
    clock.advance(60 * 60_000 + 1000);
    await until('the next hourly look to remove it', () => !existsSync(later));
    expect(existsSync(live)).toBe(true);
    expect(existsSync(stored)).toBe(true);
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('gives a copy up for good when the upstream no longer has the video (an expired xAI URL)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-videos-'));
  const h = await startHarness({ sim: { kind: 'xai', completeAfterMs: 0, videoBytes: 1000, mediaUrlTtlMs: 1 }, env: { STORAGE_URL: `file://${dir}`, STORAGE_POLL_INTERVAL_MS: '50', STORAGE_COPY_RETRY_MS: '50' } });
  try {
    const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'gone at once', seconds: 6 });
    await polledToCompletion(h.url, body.id);
    await until('the copy to be given up', async () => /gateway_storage_failed_copies 1\b/.test(await (await fetch(`${h.url}/metrics`, { headers: auth(ADMIN_TOKEN) })).text()));
    const metrics = await (await fetch(`${h.url}/metrics`, { headers: auth(ADMIN_TOKEN) })).text();
    expect(metrics).toMatch(/gateway_storage_copies_total\{outcome="failed"\} 1\b/);
    expect(metrics).not.toMatch(/gateway_storage_copies_total\{outcome="retrying"\}/);
    expect(existsSync(join(dir, objectKey(body.id)))).toBe(false);
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
