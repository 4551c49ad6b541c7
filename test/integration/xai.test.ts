import OpenAI6, { toFile as toFile6 } from 'openai';
import OpenAI7, { toFile as toFile7 } from 'openai7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoByte } from '../../src/simulator/server.js';
import { ModelCatalog } from '../../src/domain/models.js';
import { CLIENT_KEY, UPSTREAM_KEY, auth, postJson, startHarness, type Harness } from '../support/harness.js';
import { JPEG_BYTES, PNG_1x1, dataUri } from '../support/images.js';

/** `UPSTREAM_KIND=xai`: the official Node SDKs, unmodified, through the gateway to a simulator speaking xAI's API. */
const VIDEO_BYTES = 250_000;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ sim: { kind: 'xai', videoBytes: VIDEO_BYTES, completeAfterMs: 400 } });
});
afterAll(() => h.close());

const sdks = [
  { name: 'openai@6.27', make: (url: string) => new OpenAI6({ apiKey: CLIENT_KEY, baseURL: `${url}/v1`, maxRetries: 0 }), toFile: toFile6 },
  { name: 'openai@7', make: (url: string) => new OpenAI7({ apiKey: CLIENT_KEY, baseURL: `${url}/v1`, maxRetries: 0 }), toFile: toFile7 },
] as const;

const lastCreate = () => {
  const req = h.sim.creates().at(-1)!;
  expect(req.path).toBe('/v1/videos/generations');
  expect(req.headers['content-type']).toBe('application/json');
  expect(req.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
  return JSON.parse(req.body.toString()) as Record<string, unknown>;
};

const mediaRequests = () => h.sim.requests.filter((r) => r.path.startsWith('/media/'));

async function untilCompleted(client: { videos: { retrieve(id: string): Promise<{ status: string }> } }, id: string) {
  let v = await client.videos.retrieve(id);
  for (let i = 0; i < 200 && v.status !== 'completed'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    v = await client.videos.retrieve(id);
  }
  return v;
}

describe.each(sdks)('$name against an xai upstream', ({ make, toFile }) => {
  it.each([false, true])('creates (one reference: %s), polls, downloads with Range, lists and deletes', async (withImage) => {
    const client = make(h.url);
    const video = await client.videos.create({
      model: 'grok-imagine-video',
      prompt: 'a lighthouse at dawn',
      seconds: '8',
      size: '720x1280',
      ...(withImage ? { input_reference: await toFile(PNG_1x1, 'ref.png', { type: 'image/png' }) } : {}),
    });
    expect(video).toMatchObject({ object: 'video', status: 'queued', size: '720x1280', seconds: '8' });
    const body = lastCreate();
    expect(body).toEqual({
      model: 'grok-imagine-video',
      prompt: 'a lighthouse at dawn',
      duration: 8,
      aspect_ratio: '9:16',
      resolution: '720p',
      ...(withImage ? { image: { url: dataUri(PNG_1x1) } } : {}),
    });

    // Early on xAI answers with the request id alone (the first eighth of a task's time): still queued.
    const task = [...h.sim.tasks.values()].at(-1)!;
    task.completeAfterMs = 600_000;
    expect((await client.videos.retrieve(video.id)).status).toBe('queued');
    h.sim.settle(task.id, 'completed');
    const done = await untilCompleted(client, video.id);
    expect(done).toMatchObject({ status: 'completed', progress: 100, error: null });

    const mediaBefore = mediaRequests().length;
    const whole = Buffer.from(await (await client.videos.downloadContent(video.id)).arrayBuffer());
    expect(whole.length).toBe(VIDEO_BYTES);
    expect(whole[54_321]).toBe(videoByte(54_321));
    const ranged = await fetch(`${h.url}/v1/videos/${video.id}/content`, { headers: { ...auth(), range: 'bytes=1000-1999' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 1000-1999/${VIDEO_BYTES}`);
    const part = Buffer.from(await ranged.arrayBuffer());
    expect(part.length).toBe(1000);
    expect(part[0]).toBe(videoByte(1000));
    // Fetched from the media host, with no key.
    const media = mediaRequests().slice(mediaBefore);
    expect(media).toHaveLength(2);
    for (const m of media) expect(m.headers.authorization).toBeUndefined();

    const list = await client.videos.list({ limit: 100 });
    expect(list.data.map((v) => v.id)).toContain(video.id);
    // The media URL is the gateway's secret: no client answer carries it.
    expect(JSON.stringify([done, list.data])).not.toMatch(/\/media\/|exp=|sig=/);

    const before = h.sim.received;
    expect(await client.videos.delete(video.id)).toMatchObject({ id: video.id, deleted: true });
    // xAI has no delete: the record goes, nothing is sent upstream.
    expect(h.sim.received).toBe(before);
    await expect(client.videos.retrieve(video.id)).rejects.toMatchObject({ status: 404 });
  });

  it('creates grok-imagine-video-1.5 at 1080p (and under its preview name), which completes', async () => {
    const client = make(h.url);
    for (const model of ['grok-imagine-video-1.5', 'grok-imagine-video-1.5-preview']) {
      const video = await client.videos.create({ model, prompt: 'a lighthouse at dawn', seconds: '8', size: '1792x1024' });
      expect(video).toMatchObject({ size: '1920x1080', seconds: '8' });
      expect(lastCreate()).toMatchObject({ model: 'grok-imagine-video-1.5', resolution: '1080p', duration: 8, aspect_ratio: '16:9' });
      expect(await untilCompleted(client, video.id)).toMatchObject({ status: 'completed', cost: { usd: 2, source: 'upstream' } });
    }
    // 1080p only where the model has it: grok-imagine-video's nearest tier is 720p.
    await client.videos.create({ model: 'grok-imagine-video', prompt: 'x', seconds: '4', size: '1792x1024' });
    expect(lastCreate()).toMatchObject({ resolution: '720p' });
  });
});

describe('xai specifics', () => {
  it('lists only the models an xai upstream serves, in /v1/models and in the OpenAPI document', async () => {
    const imagine = new ModelCatalog().idsOfKind('xai');
    expect(imagine).toEqual(['grok-imagine-video', 'grok-imagine-video-1.5']);
    const listed = ((await (await fetch(`${h.url}/v1/models`, { headers: auth() })).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
    expect(listed).toEqual([...imagine, 'grok-imagine-video-1.5-preview']);
    const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as any;
    expect(doc.components.schemas.CreateVideoRequest.properties.model.anyOf[0].enum).toEqual(listed);
  });

  it('several references go as reference_images', async () => {
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', seconds: 10, images: [dataUri(PNG_1x1), dataUri(JPEG_BYTES, 'image/jpeg')] });
    expect(res.status).toBe(200);
    expect(body.status).toBe('queued');
    expect(lastCreate().reference_images).toEqual([{ url: dataUri(PNG_1x1) }, { url: dataUri(JPEG_BYTES, 'image/jpeg') }]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['16 seconds', { seconds: 16 }, 'seconds'],
    ['several references past 10 seconds', { seconds: 12, images: [dataUri(PNG_1x1), dataUri(PNG_1x1)] }, 'seconds'],
    ['8 references', { seconds: 5, images: Array.from({ length: 8 }, () => dataUri(PNG_1x1)) }, 'images'],
    ['an aspect ratio xAI lacks', { aspect_ratio: '20:9' }, 'aspect_ratio'],
    ['1080p on a model without it', { resolution: '1080p' }, 'resolution'],
  ])('%s → 400 naming the param, no upstream call', async (_n, fields, param) => {
    const before = h.sim.creates().length;
    const { res, body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x', ...fields });
    expect(res.status).toBe(400);
    expect(body.error.param).toBe(param);
    expect(h.sim.creates().length).toBe(before);
  });

  it('an expired media URL is a 410 in the OpenAI shape, not a 502', async () => {
    h.sim.mediaUrlTtlMs = 0;
    try {
      const { body: v } = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x' });
      const client = sdks[0].make(h.url);
      expect((await untilCompleted(client, v.id)).status).toBe('completed');
      await new Promise((r) => setTimeout(r, 5));
      const res = await fetch(`${h.url}/v1/videos/${v.id}/content`, { headers: auth() });
      expect(res.status).toBe(410);
      expect(((await res.json()) as any).error).toMatchObject({ code: 'video_expired', type: 'invalid_request_error' });
    } finally {
      h.sim.mediaUrlTtlMs = 60 * 60 * 1000;
    }
  });

  it('content is fetched only from the configured media hosts', async () => {
    const other = await startHarness({ sim: { kind: 'xai', completeAfterMs: 0 }, env: { UPSTREAM_MEDIA_HOSTS: 'vidgen.x.ai' } });
    try {
      const { body: v } = await postJson(`${other.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x' });
      expect((await (await fetch(`${other.url}/v1/videos/${v.id}`, { headers: auth() })).json()) as any).toMatchObject({ status: 'completed' });
      const res = await fetch(`${other.url}/v1/videos/${v.id}/content`, { headers: auth() });
      expect(res.status).toBe(502);
      const text = await res.text();
      expect(text).not.toContain('127.0.0.1');
      expect(other.sim.requests.filter((r) => r.path.startsWith('/media/'))).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('an upstream 422 passes its reason on, redacted; a 429 does not', async () => {
    h.sim.failNextCreate({ status: 422, body: JSON.stringify({ code: 'invalid-argument', error: 'prompt rejected by policy at gpu-pool-7.internal' }) });
    const rejected = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x' });
    expect(rejected.res.status).toBe(400);
    expect(rejected.body.error.message).toMatch(/prompt rejected by policy/);
    expect(rejected.body.error.message).not.toContain('gpu-pool-7');
    h.sim.failNextCreate({ status: 429, body: JSON.stringify({ code: 'rate', error: 'channel rate limited at gpu-pool-7.internal' }), headers: { 'retry-after': '3' } });
    const limited = await postJson(`${h.url}/v1/videos`, { model: 'grok-imagine-video', prompt: 'x' });
    expect(limited.res.status).toBe(503);
    expect(limited.body.error.code).toBe('upstream_rate_limited');
    expect(JSON.stringify(limited.body)).not.toMatch(/channel|gpu-pool/);
  });
});
