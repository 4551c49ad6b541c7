import OpenAI6, { toFile as toFile6 } from 'openai';
import OpenAI7, { toFile as toFile7 } from 'openai7';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { videoByte } from '../../src/simulator/server.js';
import { CLIENT_KEY, startHarness, type Harness } from '../support/harness.js';
import { PNG_1x1 } from '../support/images.js';
import { parseMultipart } from '../support/multipart.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ sim: { videoBytes: 300_000, completeAfterMs: 40 } });
});
afterAll(() => h.close());

const sdks = [
  { name: 'openai@6.27 (JSON without a file)', make: (url: string) => new OpenAI6({ apiKey: CLIENT_KEY, baseURL: `${url}/v1`, maxRetries: 0 }), toFile: toFile6 },
  { name: 'openai@7 (always multipart)', make: (url: string) => new OpenAI7({ apiKey: CLIENT_KEY, baseURL: `${url}/v1`, maxRetries: 0 }), toFile: toFile7 },
] as const;

const models = [
  { model: 'grok-imagine-video', size: '1280x720' as const, seconds: '8' as const, dialect: 'json', tier: '720P', ratio: '16:9', objectSize: '1280x720' },
  { model: 'grok-video-3', size: '720x1280' as const, seconds: '8' as const, dialect: 'multipart', tier: '720P', ratio: '9:16', objectSize: '720x1280' },
  { model: 'grok-video-1.5', size: '1792x1024' as const, seconds: '12' as const, dialect: 'multipart', tier: '1080P', ratio: '16:9', objectSize: '1920x1080' },
  { model: 'grok-imagine-video-1.5', size: '1792x1024' as const, seconds: '8' as const, dialect: 'json', tier: '1080P', ratio: '16:9', objectSize: '1920x1080' },
] as const;

describe.each(sdks)('$name', ({ make, toFile }) => {
  describe.each(models)('$model', (m) => {
    it.each([false, true])('creates (reference image: %s), polls to completed, downloads, lists and deletes', async (withImage) => {
      const client = make(h.url);
      const before = h.sim.creates().length;
      const video = await client.videos.create({
        model: m.model,
        prompt: 'a lighthouse at dawn',
        seconds: m.seconds,
        size: m.size,
        ...(withImage ? { input_reference: await toFile(PNG_1x1, 'ref.png', { type: 'image/png' }) } : {}),
      });
      expect(video.id).toMatch(/^video_[0-9a-f]{32}$/);
      expect(video.object).toBe('video');
      expect(['queued', 'in_progress']).toContain(video.status);
      expect(video.size).toBe(m.objectSize);
      expect(video.seconds).toBe(m.seconds);

      const sent = h.sim.creates().slice(before);
      expect(sent).toHaveLength(1);
      const req = sent[0]!;
      if (m.dialect === 'json') {
        expect(req.headers['content-type']).toBe('application/json');
        const body = JSON.parse(req.body.toString());
        expect(body).toMatchObject({ model: m.model, seconds: m.seconds, resolution: m.tier, aspect_ratio: m.ratio });
        expect(body.input_reference).toBeUndefined();
        if (withImage) expect(body.image).toBe(`data:image/png;base64,${PNG_1x1.toString('base64')}`);
        else expect(body.image).toBeUndefined();
      } else {
        expect(req.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
        const { fields, files } = await parseMultipart(req.headers, req.body);
        expect(Object.fromEntries(fields)).toEqual({ model: m.model, prompt: 'a lighthouse at dawn', seconds: m.seconds, size: m.tier, aspect_ratio: m.ratio });
        expect(files.map((f) => f.name)).toEqual(withImage ? ['input_reference'] : []);
        if (withImage) {
          expect(files[0]!.mime).toBe('image/png');
          expect(files[0]!.bytes.equals(PNG_1x1)).toBe(true);
        }
      }
      expect(req.headers.authorization).toBe('Bearer sk-upstream-secret-0123456789abcdef');

      let current = video;
      for (let i = 0; i < 50 && current.status !== 'completed'; i++) {
        await new Promise((r) => setTimeout(r, 10));
        current = await client.videos.retrieve(video.id);
      }
      expect(current.status).toBe('completed');
      expect(current.progress).toBe(100);
      expect(current.completed_at).toBeGreaterThan(0);
      expect(current.error).toBeNull();

      const content = await client.videos.downloadContent(video.id);
      const bytes = Buffer.from(await content.arrayBuffer());
      expect(bytes.length).toBe(300_000);
      expect(bytes[12_345]).toBe(videoByte(12_345));

      const list = await client.videos.list({ limit: 100 });
      expect(list.data.map((v) => v.id)).toContain(video.id);

      const deleted = await client.videos.delete(video.id);
      expect(deleted).toMatchObject({ id: video.id, object: 'video.deleted', deleted: true });
      await expect(client.videos.retrieve(video.id)).rejects.toMatchObject({ status: 404 });
    });
  });

  it('surfaces a gateway validation error as BadRequestError with its param', async () => {
    const client = make(h.url);
    const err = await client.videos.create({ model: 'grok-video-3', prompt: 'x', size: '1280x720', seconds: '4', input_reference: 'nope' as never }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400 });
    expect((err as { param?: string }).param).toMatch(/input_reference/);
  });

  it('lists models', async () => {
    const client = make(h.url);
    const models = await client.models.list();
    expect(models.data.map((x) => x.id)).toEqual(expect.arrayContaining(['grok-imagine-video', 'grok-video-3', 'sora-2']));
  });
});
