import { join } from 'node:path';
import { until as waitFor } from '../support/until.js';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, CreateMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectKey } from '../../src/storage/backend.js';
import { ABANDONED_RETRY_MS } from '../../src/storage/sweeper.js';
import { videoByte } from '../../src/simulator/server.js';
import { ADMIN_TOKEN, auth, CLIENT_KEY, postJson, startHarness, teamWithKey, TestClock, type Harness } from '../support/harness.js';
import { motoAvailable, motoServer, recordingProxy, startMoto, type Moto } from '../support/moto.js';
import { probePython, runPython } from '../support/python.js';
import { IN_CI } from '../support/setup/prerequisite.js';
import { PYTHON_SDKS } from '../support/setup/python.js';

/**
 * Stored results (§12) on the S3 backend, against a real S3-compatible server: moto in server mode, started
 * here from the venv the test setup makes, behind a loopback proxy that records what the storage host was
 * sent. Multipart uploads (the video is larger than one part), range reads, a copy failing then retried,
 * removals, and presigned redirects followed by both official SDKs.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VIDEO_BYTES = 9 * 1024 * 1024 + 7;
const BUCKET = 'gw-videos';
const PREFIX = 'stored';
const DAY_MS = 86_400_000;

const available = motoAvailable();
if (!available && !IN_CI) console.warn(`SKIPPED the S3 stored-results suite (${motoServer} is missing): the test setup creates it from test/python/requirements-moto.txt; check python3 and PyPI, then run npm test again.`);

const until = <T>(what: string, probe: () => T | Promise<T>, timeoutMs = 20_000) => waitFor(what, probe, timeoutMs, 50);

const polledToCompletion = (url: string, id: string, key?: string) =>
  until('completion', async () => {
    const v = (await (await fetch(`${url}/v1/videos/${id}`, { headers: auth(key) })).json()) as any;
    return v.status === 'completed' ? v : undefined;
  });

async function completedVideo(url: string, key?: string) {
  const { body } = await postJson(`${url}/v1/videos`, { model: 'grok-video-3', prompt: 'waves on a pier', seconds: 6 }, key);
  return polledToCompletion(url, body.id, key);
}

const checkBytes = (buf: Buffer, start = 0) => {
  for (const i of [0, 1, 250, 251, buf.length - 1].filter((i) => i < buf.length)) expect(buf[i]).toBe(videoByte(start + i));
};

describe.skipIf(!available && !IN_CI)('stored results on S3 (moto server)', () => {
  let moto: Moto;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let s3: S3Client;
  const head = (id: string) =>
    s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/${objectKey(id)}` })).then(
      (h) => h,
      () => undefined,
    );

  beforeAll(async () => {
    if (!available) throw new Error(`the S3 suite cannot run in CI: ${motoServer} is missing (the test setup creates it from test/python/requirements-moto.txt)`);
    // moto takes any credentials; the gateway reads them from the standard AWS environment, as in production.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test-access-key', AWS_SECRET_ACCESS_KEY: 'test-secret-key' });
    moto = await startMoto();
    proxy = await recordingProxy(moto.url);
    s3 = new S3Client({ region: 'us-east-1', endpoint: moto.url, forcePathStyle: true });
  }, 60_000);
  afterAll(async () => {
    s3?.destroy();
    await proxy?.close();
    await moto?.stop();
  });

  const env = () => ({
    STORAGE_URL: `s3://${BUCKET}/${PREFIX}`,
    S3_ENDPOINT: proxy.url,
    STORAGE_POLL_INTERVAL_MS: '50',
    STORAGE_SWEEP_INTERVAL_MS: '50',
    STORAGE_COPY_RETRY_MS: '100',
  });

  it('looks for unfinished uploads again soon when the first look failed (the bucket not there yet at start)', async () => {
    const bucket = 'gw-videos-late';
    // A day and an hour ahead of the wall clock: an upload begun now is old enough to abort, and the hourly look
    // after the one at start is still an hour away.
    const clock = new TestClock();
    clock.offsetMs = DAY_MS + 60 * 60_000;
    const h = await startHarness({ clock, env: { ...env(), STORAGE_URL: `s3://${bucket}/${PREFIX}` } });
    try {
      await until('the look at start to fail', () => h.logs.some((l) => l.includes('could not look for unfinished writes')));
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      const upload = (await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${PREFIX}/ab/video_ab9` }))).UploadId!;
      const open = async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? []).map((u) => u.UploadId);
      clock.advance(ABANDONED_RETRY_MS + 1000);
      await until('the abandoned upload to be aborted', async () => !(await open()).includes(upload));
    } finally {
      await h.close();
    }
  });

  describe('bytes through the gateway', () => {
    let h: Harness;
    const clock = new TestClock();
    beforeAll(async () => {
      h = await startHarness({ clock, sim: { completeAfterMs: 0, videoBytes: VIDEO_BYTES }, env: env() });
    });
    afterAll(() => h?.close());

    it('retries a copy while the bucket is missing, streaming from the upstream meanwhile, and uploads it (multipart) once it exists', async () => {
      const video = await completedVideo(h.url);
      await until('a failed attempt', async () => /gateway_storage_copies_total\{outcome="retrying"\} [1-9]/.test(await (await fetch(`${h.url}/metrics`, { headers: auth(ADMIN_TOKEN) })).text()));
      const meanwhile = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: { ...auth(), range: 'bytes=0-999' } });
      expect(meanwhile.status).toBe(206);
      checkBytes(Buffer.from(await meanwhile.arrayBuffer()));

      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      const object = await until('the uploaded object', () => head(video.id));
      expect(object.ContentLength).toBe(VIDEO_BYTES);
      expect(object.ContentType).toBe('video/mp4');
      // Larger than one part: lib-storage's multipart upload, its parts sent to the storage host.
      expect(proxy.seen.some((r) => r.method === 'PUT' && /[?&]partNumber=2\b/.test(r.url))).toBe(true);
    });

    it('serves whole downloads and ranges from the bucket, no longer asking the upstream', async () => {
      const video = await completedVideo(h.url);
      await until('the uploaded object', () => head(video.id));
      const asked = h.sim.requests.filter((r) => r.path.endsWith('/content')).length;

      const whole = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: auth() });
      expect(whole.status).toBe(200);
      expect(whole.headers.get('content-length')).toBe(String(VIDEO_BYTES));
      expect(whole.headers.get('cache-control')).toBe('private');
      const bytes = Buffer.from(await whole.arrayBuffer());
      expect(bytes.length).toBe(VIDEO_BYTES);
      checkBytes(bytes);

      const start = 8 * 1024 * 1024 - 5;
      const part = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: { ...auth(), range: `bytes=${start}-${start + 99}` } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes ${start}-${start + 99}/${VIDEO_BYTES}`);
      const slice = Buffer.from(await part.arrayBuffer());
      expect(slice.length).toBe(100);
      checkBytes(slice, start);

      const etag = whole.headers.get('etag')!;
      expect((await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: { ...auth(), 'if-none-match': etag } })).status).toBe(304);
      expect(h.sim.requests.filter((r) => r.path.endsWith('/content')).length).toBe(asked);
    });

    it('removes the object when the video is deleted, and when it expires (video_expired)', async () => {
      const deleted = await completedVideo(h.url);
      await until('the uploaded object', () => head(deleted.id));
      expect((await fetch(`${h.url}/v1/videos/${deleted.id}`, { method: 'DELETE', headers: auth() })).status).toBe(200);
      await until('the removal', async () => !(await head(deleted.id)));

      const key = await teamWithKey(h.url, 's3-one-day', { video_retention_days: 1 });
      const expiring = await completedVideo(h.url, key.key);
      await until('the uploaded object', () => head(expiring.id));
      clock.advance(DAY_MS + 1000);
      try {
        const res = await fetch(`${h.url}/v1/videos/${expiring.id}/content`, { headers: auth(key.key) });
        expect(res.status).toBe(404);
        expect(((await res.json()) as any).error.code).toBe('video_expired');
        await until('the removal', async () => !(await head(expiring.id)));
      } finally {
        clock.offsetMs = 0;
      }
    });

    it('aborts multipart uploads a crash left unfinished under its prefix once a day old, and no others', async () => {
      const begin = async (Key: string) => (await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key }))).UploadId!;
      const ours = await begin(`${PREFIX}/ab/video_ab1`);
      const notOurs = await begin('elsewhere/ab/video_ab1');
      const open = async () => ((await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }))).Uploads ?? []).map((u) => u.UploadId);
      // Begun now: a copy of this replica or another may be writing it, so the hourly look leaves it.
      expect(await open()).toEqual(expect.arrayContaining([ours, notOurs]));
      // Two days on: past a day's age and past the next hourly look, wherever the tests before left it.
      clock.advance(2 * DAY_MS);
      try {
        await until('the abandoned upload to be aborted', async () => !(await open()).includes(ours));
        expect(await open()).toContain(notOurs);
      } finally {
        clock.offsetMs = 0;
      }
    });
  });

  it("sends an xAI upstream a presigned URL of the stored source once xAI's own URL expired, and the edit is made", async () => {
    const h = await startHarness({ sim: { kind: 'xai', completeAfterMs: 0, videoBytes: 60_000, mediaUrlTtlMs: 400 }, env: env() });
    try {
      const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'a kite', seconds: 6 });
      await polledToCompletion(h.url, body.id);
      await until('the uploaded object', () => head(body.id));
      await new Promise((r) => setTimeout(r, 500));
      const edit = await postJson(`${h.url}/v1/videos/edits`, { prompt: 'the kite at dusk', video: { id: body.id } });
      expect(edit.res.status).toBe(200);
      const sent = new URL(JSON.parse(h.sim.derives().at(-1)!.body.toString('utf8')).video.url);
      expect(sent.origin).toBe(proxy.url);
      expect(sent.searchParams.get('X-Amz-Expires')).toBe('3600');
      await polledToCompletion(h.url, edit.body.id);
    } finally {
      await h.close();
    }
  });

  describe('CONTENT_REDIRECT=presigned', () => {
    let h: Harness;
    let video: { id: string };
    beforeAll(async () => {
      h = await startHarness({ sim: { completeAfterMs: 0, videoBytes: VIDEO_BYTES }, env: { ...env(), CONTENT_REDIRECT: 'presigned' } });
      video = await completedVideo(h.url);
      await until('the uploaded object', () => head(video.id));
      // The object exists a moment before the store records the copy as stored (static keys are team `default`).
      await until('the copy recorded', async () => (await h.gw.store.getJob('default', video.id))?.storage?.state === 'stored' || undefined);
    });
    afterAll(() => h?.close());

    /** Requests for the video object itself, by presigned URL, that reached the storage host since `from`. */
    const presignedGets = (from: number) => proxy.seen.slice(from).filter((r) => r.method === 'GET' && r.url.includes(objectKey(video.id)) && r.url.includes('X-Amz-Signature='));

    it('answers 302 to a short-lived presigned URL on the storage host', async () => {
      const res = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: auth(), redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(res.headers.get('cache-control')).toBe('private');
      const location = new URL(res.headers.get('location')!);
      expect(location.origin).toBe(proxy.url);
      expect(location.searchParams.get('X-Amz-Expires')).toBe('300');
      // The object itself, fetched with no credentials at all.
      const direct = await fetch(location);
      expect(direct.status).toBe(200);
      expect(Number(direct.headers.get('content-length'))).toBe(VIDEO_BYTES);
      await direct.arrayBuffer();
    });

    it('the Node openai SDK follows it and sends no gateway key to the storage host', async () => {
      const from = proxy.seen.length;
      const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: CLIENT_KEY, maxRetries: 0 });
      const res = await client.videos.downloadContent(video.id);
      const bytes = Buffer.from(await res.arrayBuffer());
      expect(bytes.length).toBe(VIDEO_BYTES);
      checkBytes(bytes);
      const gets = presignedGets(from);
      expect(gets.length).toBe(1);
      expect(gets[0]!.headers.authorization).toBeUndefined();
      expect(JSON.stringify(gets[0]!.headers)).not.toContain(CLIENT_KEY);
    });

    for (const sdk of PYTHON_SDKS) {
      const probe = probePython(sdk.python, ['-c', 'import openai; print(openai.__version__)'], 'cannot import openai');
      if (!probe.ok && !IN_CI) console.warn(`SKIPPED the presigned download with the Python SDK, ${sdk.line} (${probe.reason}).`);
      it.skipIf(!probe.ok && !IN_CI)(`the Python openai SDK (${probe.ok ? probe.version : sdk.line}) follows it and sends no gateway key to the storage host`, async () => {
        if (!probe.ok) throw new Error(`python SDK (${sdk.line}) cannot run in CI: ${probe.reason}`);
        const from = proxy.seen.length;
        const r = await runPython(sdk.python, [join(ROOT, 'test', 'python', 'stored_download.py'), h.url, CLIENT_KEY, video.id, String(VIDEO_BYTES)], { cwd: ROOT, timeoutMs: 60_000 });
        expect(r.output).toMatch(/downloaded \d+ bytes/);
        expect(r.code).toBe(0);
        const gets = presignedGets(from);
        expect(gets.length).toBe(1);
        expect(gets[0]!.headers.authorization).toBeUndefined();
        expect(JSON.stringify(gets[0]!.headers)).not.toContain(CLIENT_KEY);
      }, 90_000);
    }
  });
});
