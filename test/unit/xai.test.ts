import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GarbledTaskError } from '../../src/upstream/dialects/task.js';
import { decodeXaiCreated, decodeXaiStatus, encodeXaiCreate } from '../../src/upstream/providers/xai.js';
import { upstreamErrorText } from '../../src/upstream/client.js';
import { ModelCatalog } from '../../src/domain/models.js';
import { normalizeVideoRequest } from '../../src/videos/normalize.js';
import { kindRefusal } from '../../src/domain/request.js';
import { JPEG_BYTES, PNG_1x1, dataUri } from '../support/images.js';

/** xAI's documented wire shapes (test/fixtures/xai), against the provider's encoder and decoders. */
const fixture = (name: string): unknown => JSON.parse(readFileSync(new URL(`../fixtures/xai/${name}.json`, import.meta.url), 'utf8'));
const catalog = new ModelCatalog();
const norm = (fields: Record<string, unknown>) => normalizeVideoRequest({ fields, files: [] }, catalog, { maxImageBytes: 1 << 20, maxReferenceImages: 8 });
const sent = (fields: Record<string, unknown>) => {
  const e = encodeXaiCreate(norm(fields), norm(fields).model.id);
  const b = Buffer.concat([...e.chunks]);
  expect(b.length).toBe(e.length);
  expect(e.contentType).toBe('application/json');
  return JSON.parse(b.toString()) as Record<string, unknown>;
};

describe('xai create body', () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['text to video, OpenAI size', { prompt: 'a city', seconds: '8', size: '1280x720' }, { model: 'grok-imagine-video', prompt: 'a city', duration: 8, aspect_ratio: '16:9', resolution: '720p' }],
    ['portrait 480', { prompt: 'x', seconds: 4, resolution: '480P', aspect_ratio: '9:16' }, { model: 'grok-imagine-video', prompt: 'x', duration: 4, aspect_ratio: '9:16', resolution: '480p' }],
    ['one reference → image (first frame)', { prompt: 'x', input_reference: dataUri(PNG_1x1) }, { model: 'grok-imagine-video', prompt: 'x', duration: 6, aspect_ratio: '16:9', resolution: '720p', image: { url: dataUri(PNG_1x1) } }],
    [
      'several → reference_images',
      { prompt: 'x', seconds: 10, images: [dataUri(PNG_1x1), dataUri(JPEG_BYTES, 'image/jpeg')] },
      { model: 'grok-imagine-video', prompt: 'x', duration: 10, aspect_ratio: '16:9', resolution: '720p', reference_images: [{ url: dataUri(PNG_1x1) }, { url: dataUri(JPEG_BYTES, 'image/jpeg') }] },
    ],
  ])('%s', (_n, fields, expected) => {
    expect(sent(fields)).toEqual(expected);
  });

  it('uses the name the upstream knows the model by', () => {
    const e = encodeXaiCreate(norm({ prompt: 'x' }), 'grok-imagine-video-renamed');
    expect(JSON.parse(Buffer.concat([...e.chunks]).toString()).model).toBe('grok-imagine-video-renamed');
  });
});

describe('xai rules from the model table, before any upstream call', () => {
  const refs = (n: number) => Array.from({ length: n }, () => dataUri(PNG_1x1));
  it.each<[string, Record<string, unknown>, string | null]>([
    ['15 seconds of text to video', { prompt: 'x', seconds: 15 }, null],
    ['one image at 15 seconds (image is a first frame, no cap)', { prompt: 'x', seconds: 15, image: dataUri(PNG_1x1) }, null],
    ['7 references at 10 seconds', { prompt: 'x', seconds: 10, images: refs(7) }, null],
    ['8 references', { prompt: 'x', seconds: 5, images: refs(8) }, 'images'],
    ['8 references as input_reference', { prompt: 'x', seconds: 5, input_reference: refs(8) }, 'input_reference'],
    ['2 references at 11 seconds', { prompt: 'x', seconds: 11, images: refs(2) }, 'seconds'],
    ['an aspect ratio xAI lacks (2:1)', { prompt: 'x', aspect_ratio: '2:1' }, 'aspect_ratio'],
    ['a custom aspect ratio', { prompt: 'x', aspect_ratio: '5:4' }, 'aspect_ratio'],
  ])('%s', (_n, fields, param) => {
    const refusal = kindRefusal(norm(fields), 'xai');
    expect(refusal?.param ?? null).toBe(param);
    if (param) expect(refusal?.status).toBe(400);
    // The resellers take all of these.
    expect(kindRefusal(norm(fields), 'newapi')).toBeUndefined();
  });

  it('more than 15 seconds is refused by the model table for every kind', () => {
    expect(() => norm({ prompt: 'x', seconds: 16 })).toThrow(expect.objectContaining({ param: 'seconds', status: 400 }));
  });

  it('a model no xai upstream knows is refused naming the model', () => {
    expect(kindRefusal(norm({ model: 'grok-video-3', prompt: 'x' }), 'xai')).toMatchObject({ status: 400, param: 'model' });
  });
});

describe('xai answers', () => {
  it('a create answers with its request id only', () => {
    expect(decodeXaiCreated(fixture('create-response'))).toEqual({ id: 'd97415a1-5796-b7ec-379f-4e6819e08fdf', status: 'queued', progress: 0, error: null });
    expect(() => decodeXaiCreated({ status: 'pending' })).toThrow(GarbledTaskError);
  });

  it.each<[string, Record<string, unknown>]>([
    ['status-early', { status: 'queued', progress: 0, error: null }],
    ['status-pending', { status: 'queued', progress: 0, error: null }],
    ['status-processing', { status: 'in_progress', progress: 42, error: null }],
    ['status-done', { status: 'completed', progress: 100, error: null, mediaUrl: 'https://vidgen.x.ai/xai-vidgen-bucket/xai-video-d97415a1-5796-b7ec-379f-4e6819e08fdf.mp4' }],
    ['status-expired', { status: 'failed', error: { code: 'expired', message: 'The video generation expired before it finished.' } }],
  ])('%s', (name, expected) => {
    expect(decodeXaiStatus('r1', fixture(name), [])).toMatchObject({ id: 'r1', ...expected });
  });

  it('a failed job says why, redacted', () => {
    const t = decodeXaiStatus('r1', fixture('status-failed'), []);
    expect(t).toMatchObject({ status: 'failed', error: { code: 'generation_failed' } });
    expect(t.error?.message).toMatch(/blocked by moderation/);
    expect(t.error?.message).not.toContain('gpu-pool-7.internal');
  });

  it.each([null, 'x', {}, { status: 'done', video: {} }, { status: 'done', video: { url: 'https://vidgen.x.ai/a\u0000.mp4' } }, { status: 'done', video: { url: `https://vidgen.x.ai/${'a'.repeat(9000)}` } }])(
    'garbled: %j',
    (body) => {
      expect(() => decodeXaiStatus('r1', body, [])).toThrow(GarbledTaskError);
    },
  );

  it('a request id the store could not keep is garbled', () => {
    for (const request_id of ['r\u0000', 'r\n1', 'r'.repeat(257)]) expect(() => decodeXaiCreated({ request_id })).toThrow(GarbledTaskError);
    expect(decodeXaiCreated({ request_id: 'r'.repeat(256) }).id).toHaveLength(256);
  });

  it('reads both error shapes xAI uses', () => {
    const raw = (name: string) => readFileSync(new URL(`../fixtures/xai/${name}.json`, import.meta.url), 'utf8');
    expect(upstreamErrorText(raw('error-flat')).message).toBe('Duration must be at most 10 seconds when reference_images are provided');
    expect(upstreamErrorText(raw('error-nested')).message).toMatch(/^Incorrect API key provided/);
  });
});
