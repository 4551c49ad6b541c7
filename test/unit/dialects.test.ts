import { describe, expect, it } from 'vitest';
import { encodeGrokVideo } from '../../src/upstream/dialects/grok-video.js';
import { encodeImagine } from '../../src/upstream/dialects/imagine.js';
import type { EncodedCreate } from '../../src/upstream/dialects/types.js';
import { decodeTask, GarbledTaskError } from '../../src/upstream/dialects/task.js';
import { ModelCatalog } from '../../src/domain/models.js';
import { normalizeVideoRequest } from '../../src/videos/normalize.js';
import { JPEG_BYTES, PNG_1x1, dataUri } from '../support/images.js';
import { parseMultipart } from '../support/multipart.js';

const catalog = new ModelCatalog();
const norm = (fields: Record<string, unknown>) => normalizeVideoRequest({ fields, files: [] }, catalog, { maxImageBytes: 1 << 20, maxReferenceImages: 8 });
const body = (e: EncodedCreate) => {
  const b = Buffer.concat([...e.chunks]);
  expect(b.length).toBe(e.length);
  return b;
};

describe('imagine encoder (JSON dialect)', () => {
  it.each<[string, Record<string, unknown>, Record<string, unknown>]>([
    ['text to video', { prompt: 'a city', seconds: 8, size: '1280x720' }, { model: 'grok-imagine-video', prompt: 'a city', seconds: '8', aspect_ratio: '16:9', resolution: '720P' }],
    ['480 tier, custom ratio, the preview alias', { model: 'grok-imagine-video-1.5-preview', prompt: 'x', resolution: '480', aspect_ratio: '5:4' }, { model: 'grok-imagine-video-1.5', seconds: '6', resolution: '480P', aspect_ratio: '5:4' }],
    ['1080 tier where the model has it', { model: 'grok-imagine-video-1.5', prompt: 'x', size: '1920x1080' }, { model: 'grok-imagine-video-1.5', resolution: '1080P', aspect_ratio: '16:9' }],
    ['one reference → image', { prompt: 'x', input_reference: dataUri(PNG_1x1) }, { image: dataUri(PNG_1x1) }],
    ['several references → images', { prompt: 'x', images: [dataUri(PNG_1x1), dataUri(JPEG_BYTES, 'image/jpeg')] }, { images: [dataUri(PNG_1x1), dataUri(JPEG_BYTES, 'image/jpeg')] }],
  ])('%s', (_n, fields, expected) => {
    const e = encodeImagine(norm(fields));
    expect(e.contentType).toBe('application/json');
    const sent = JSON.parse(body(e).toString());
    expect(sent).toMatchObject(expected);
    expect(sent.image !== undefined && sent.images !== undefined).toBe(false);
    expect(Object.keys(sent).every((k) => ['model', 'prompt', 'seconds', 'aspect_ratio', 'resolution', 'image', 'images'].includes(k))).toBe(true);
  });

  it('encodes a multi-megabyte image arriving in odd-sized chunks into exactly its base64', () => {
    const bytes = Buffer.concat([PNG_1x1, Buffer.from(Array.from({ length: 2_500_001 }, (_, i) => (i * 7) % 256))]);
    // Chunk sizes that leave 1 and 2 bytes over a multiple of 3, and one chunk shorter than a group.
    const cuts = [0, 65_537, 65_538, 131_074, 1_000_000, 1_000_001, bytes.length];
    const chunks = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end));
    const req = normalizeVideoRequest({ fields: { prompt: 'x' }, files: [{ field: 'input_reference', chunks }] }, catalog, { maxImageBytes: 8 << 20, maxReferenceImages: 8 });
    const sent = JSON.parse(body(encodeImagine(req)).toString());
    expect(sent.image).toBe(`data:image/png;base64,${bytes.toString('base64')}`);
  });

  it('forwards a multi-megabyte data URI exactly, across the slices it is copied in', () => {
    const uri = dataUri(Buffer.concat([PNG_1x1, Buffer.from(Array.from({ length: 2_500_002 }, (_, i) => (i * 11) % 256))]));
    const req = normalizeVideoRequest({ fields: { prompt: 'x', image: uri }, files: [] }, catalog, { maxImageBytes: 8 << 20, maxReferenceImages: 8 });
    expect(JSON.parse(body(encodeImagine(req)).toString()).image).toBe(uri);
  });

  it('escapes prompts safely', () => {
    const prompt = 'quote " backslash \\ newline \n unicode ✓';
    expect(JSON.parse(body(encodeImagine(norm({ prompt }))).toString()).prompt).toBe(prompt);
  });
});

describe('grok-video encoder (multipart dialect)', () => {
  it.each<[string, Record<string, unknown>, Array<[string, string]>, number]>([
    ['text to video', { model: 'grok-video-3', prompt: 'a city', seconds: '8', size: '1920x1080' }, [['model', 'grok-video-3'], ['prompt', 'a city'], ['seconds', '8'], ['size', '1080P'], ['aspect_ratio', '16:9']], 0],
    ['-pro fixed at 10', { model: 'grok-video-1.5-pro', prompt: 'x', resolution: '540p' }, [['model', 'grok-video-1.5-pro'], ['prompt', 'x'], ['seconds', '10'], ['size', '540P'], ['aspect_ratio', '16:9']], 0],
    ['-max fixed at 15 via alias-free name', { model: 'grok-video-3-max', prompt: 'x', aspect_ratio: '9:16' }, [['model', 'grok-video-3-max'], ['prompt', 'x'], ['seconds', '15'], ['size', '720P'], ['aspect_ratio', '9:16']], 0],
    ['data URIs become repeated input_reference parts', { model: 'grok-video-1.5', prompt: 'x', images: [dataUri(PNG_1x1), dataUri(JPEG_BYTES)] }, [['model', 'grok-video-1.5'], ['prompt', 'x'], ['seconds', '6'], ['size', '720P'], ['aspect_ratio', '16:9']], 2],
  ])('%s', async (_n, fields, expectedFields, fileCount) => {
    const e = encodeGrokVideo(norm(fields));
    expect(e.contentType).toMatch(/^multipart\/form-data; boundary=/);
    const { fields: sent, files } = await parseMultipart({ 'content-type': e.contentType }, body(e));
    expect(sent).toEqual(expectedFields);
    expect(files).toHaveLength(fileCount);
    if (fileCount === 2) {
      expect(files.map((f) => [f.name, f.mime, f.filename])).toEqual([
        ['input_reference', 'image/png', 'reference-1.png'],
        ['input_reference', 'image/jpeg', 'reference-2.jpg'],
      ]);
      expect(files[0]!.bytes.equals(PNG_1x1)).toBe(true);
      expect(files[1]!.bytes.equals(JPEG_BYTES)).toBe(true);
    }
  });

  it('decodes a multi-megabyte data URI into exactly its bytes, across the slices it is decoded in', async () => {
    const bytes = Buffer.concat([PNG_1x1, Buffer.from(Array.from({ length: 2_500_001 }, (_, i) => (i * 13) % 256))]);
    const req = normalizeVideoRequest({ fields: { model: 'grok-video-3', prompt: 'x', image: dataUri(bytes) }, files: [] }, catalog, { maxImageBytes: 8 << 20, maxReferenceImages: 8 });
    const e = encodeGrokVideo(req);
    const { files } = await parseMultipart({ 'content-type': e.contentType }, body(e));
    expect(files[0]!.bytes.equals(bytes)).toBe(true);
  });

  it('uses a fresh boundary each time', () => {
    const req = norm({ model: 'grok-video-3', prompt: 'x' });
    expect(encodeGrokVideo(req).contentType).not.toBe(encodeGrokVideo(req).contentType);
  });
});

describe('upstream task decoding', () => {
  it.each([
    ['queued', 'queued'], ['pending', 'queued'], ['submitted', 'queued'], ['created', 'queued'], ['starting', 'queued'],
    ['processing', 'in_progress'], ['in_progress', 'in_progress'], ['running', 'in_progress'], ['generating', 'in_progress'],
    ['completed', 'completed'], ['succeeded', 'completed'], ['success', 'completed'], ['done', 'completed'], ['finished', 'completed'],
    ['failed', 'failed'], ['error', 'failed'], ['cancelled', 'failed'], ['canceled', 'failed'], ['expired', 'failed'],
    ['PROCESSING', 'in_progress'], ['something-new', 'in_progress'],
  ])('%s → %s', (word, status) => {
    expect(decodeTask({ id: 't1', status: word }).status).toBe(status);
  });

  it('hides the upstream quirks: empty error object, completed_at 0, 720P size', () => {
    const t = decodeTask({ id: 't', status: 'processing', progress: 40, completed_at: 0, error: { message: '', code: '' }, size: '720P', seconds: '8' });
    expect(t).toEqual({ id: 't', status: 'in_progress', progress: 40, error: null });
  });

  it('says which way a job failed', () => {
    expect(decodeTask({ id: 't', status: 'cancelled', error: { message: '', code: '' } }).error).toMatchObject({ code: 'cancelled' });
    expect(decodeTask({ id: 't', status: 'failed', error: { message: 'nsfw', code: 'x' } }).error?.message).toMatch(/nsfw/);
    expect(decodeTask({ id: 't', status: 'expired' }).error?.code).toBe('expired');
  });

  it('clamps progress and reports 100 only when completed', () => {
    expect(decodeTask({ id: 't', status: 'processing', progress: 250 }).progress).toBe(99);
    expect(decodeTask({ id: 't', status: 'processing', progress: 'junk' }).progress).toBe(0);
    expect(decodeTask({ id: 't', status: 'completed', progress: 0 }).progress).toBe(100);
  });

  it('refuses garbled tasks', () => {
    expect(() => decodeTask(null)).toThrow(GarbledTaskError);
    expect(() => decodeTask({ status: 'queued' })).toThrow(GarbledTaskError);
  });
});
