import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/domain/errors.js';
import { ModelCatalog } from '../../src/domain/models.js';
import { normalizeVideoRequest } from '../../src/videos/normalize.js';
import type { NormalizedVideoRequest } from '../../src/domain/request.js';
import type { RawRequest } from '../../src/videos/parse.js';
import type { BodyPart } from '../../src/domain/image-ref.js';
import { GIF_BYTES, JPEG_BYTES, PNG_1x1, WEBP_BYTES, dataUri } from '../support/images.js';

const catalog = new ModelCatalog();
const limits = { maxImageBytes: 1024, maxReferenceImages: 3 };
const json = (fields: Record<string, unknown>): RawRequest => ({ fields, files: [] });
const run = (raw: RawRequest) => normalizeVideoRequest(raw, catalog, limits);
/** A body part's bytes, checked against the length it declared up front. */
const partBytes = (p: BodyPart) => {
  const b = Buffer.isBuffer(p) ? p : Buffer.concat([...p.chunks()]);
  expect(b.length).toBe(p.length);
  return b;
};
const summary = (n: NormalizedVideoRequest) => ({ model: n.model.id, seconds: n.seconds, resolution: n.resolution, aspectRatio: n.aspectRatio, refs: n.references.length });
const png = dataUri(PNG_1x1);

describe('normalization: accepted inputs (contract §3)', () => {
  it.each<[string, Record<string, unknown>, Partial<ReturnType<typeof summary>>]>([
    ['default model and defaults', { prompt: 'p' }, { model: 'grok-imagine-video', seconds: 6, resolution: 720, aspectRatio: '16:9', refs: 0 }],
    ['seconds as string', { prompt: 'p', seconds: '8' }, { seconds: 8 }],
    ['seconds as number', { prompt: 'p', seconds: 8 }, { seconds: 8 }],
    ['duration synonym', { prompt: 'p', duration: 5 }, { seconds: 5 }],
    ['seconds and duration agreeing', { prompt: 'p', seconds: '5', duration: 5 }, { seconds: 5 }],
    ['resolution 480P', { prompt: 'p', resolution: '480P' }, { resolution: 480 }],
    ['resolution 480p', { prompt: 'p', resolution: '480p' }, { resolution: 480 }],
    ['resolution 480', { prompt: 'p', resolution: '480' }, { resolution: 480 }],
    ['resolution as a number', { prompt: 'p', resolution: 720 }, { resolution: 720 }],
    ['size tier 720P', { prompt: 'p', size: '720P' }, { resolution: 720 }],
    ['size tier 720', { prompt: 'p', size: '720' }, { resolution: 720 }],
    ['size 1280x720 → 720P 16:9', { prompt: 'p', size: '1280x720' }, { resolution: 720, aspectRatio: '16:9' }],
    ['size 720x1280 → 720P 9:16', { prompt: 'p', size: '720x1280' }, { resolution: 720, aspectRatio: '9:16' }],
    ['size 1792x1024 on imagine → nearest 720P, 16:9', { prompt: 'p', size: '1792x1024' }, { resolution: 720, aspectRatio: '16:9' }],
    ['size 1024x1792 on grok-video-1.5 → 1080P 9:16', { model: 'grok-video-1.5', prompt: 'p', size: '1024x1792' }, { resolution: 1080, aspectRatio: '9:16' }],
    ['size 640x480 on imagine → 480P 4:3', { prompt: 'p', size: '640x480' }, { resolution: 480, aspectRatio: '4:3' }],
    ['size 960x540 on grok-video-1.5 → 540P', { model: 'grok-video-1.5', prompt: 'p', size: '960x540' }, { resolution: 540, aspectRatio: '16:9' }],
    ['size 1280x720 on grok-video-3 → 720P', { model: 'grok-video-3', prompt: 'p', size: '1280x720' }, { resolution: 720 }],
    ['size 854x480 on grok-video-3 → nearest supported 720P', { model: 'grok-video-3', prompt: 'p', size: '854x480' }, { resolution: 720 }],
    ['explicit aspect_ratio wins over size', { prompt: 'p', size: '1280x720', aspect_ratio: '1:1' }, { aspectRatio: '1:1' }],
    ['size and resolution agreeing', { prompt: 'p', size: '1280x720', resolution: '720P' }, { resolution: 720 }],
    ['custom aspect ratio on imagine', { prompt: 'p', aspect_ratio: '5:4' }, { aspectRatio: '5:4' }],
    ['preset 19.5:9', { prompt: 'p', aspect_ratio: '19.5:9' }, { aspectRatio: '19.5:9' }],
    ['custom ratio at the widest bound 4:1', { prompt: 'p', aspect_ratio: '4:1' }, { aspectRatio: '4:1' }],
    ['custom ratio at the tallest bound 1:4', { prompt: 'p', aspect_ratio: '1:4' }, { aspectRatio: '1:4' }],
    ['custom ratio written as pixels', { prompt: 'p', aspect_ratio: '1920:1080' }, { aspectRatio: '1920:1080' }],
    ['alias sora-2 → grok-video-3', { model: 'sora-2', prompt: 'p' }, { model: 'grok-video-3' }],
    ['alias sora-2-pro → fixed 10 s', { model: 'sora-2-pro', prompt: 'p' }, { model: 'grok-video-3-pro', seconds: 10 }],
    ['-pro defaults to 10 s', { model: 'grok-video-1.5-pro', prompt: 'p' }, { seconds: 10 }],
    ['-max defaults to 15 s', { model: 'grok-video-3-max', prompt: 'p' }, { seconds: 15 }],
    ['-max accepts 15', { model: 'grok-video-1.5-max', prompt: 'p', seconds: '15' }, { seconds: 15 }],
    ['image data URI', { prompt: 'p', image: png }, { refs: 1 }],
    ['images array', { prompt: 'p', images: [png, png] }, { refs: 2 }],
    ['input_reference data URI', { prompt: 'p', input_reference: png }, { refs: 1 }],
    ['input_reference {image_url}', { prompt: 'p', input_reference: { image_url: png } }, { refs: 1 }],
    ['input_reference array', { prompt: 'p', input_reference: [png, { image_url: png }] }, { refs: 2 }],
    ['null fields count as absent', { prompt: 'p', model: null, seconds: null, image: null }, { model: 'grok-imagine-video', seconds: 6, refs: 0 }],
  ])('%s', (_name, fields, expected) => {
    expect(summary(run(json(fields)))).toMatchObject(expected);
  });

  it('sniffs each image type from its bytes, not from the declared type', () => {
    const refs = run(json({ prompt: 'p', images: [dataUri(JPEG_BYTES, 'image/png'), dataUri(WEBP_BYTES), dataUri(GIF_BYTES)] })).references;
    expect(refs.map((r) => r.mime)).toEqual(['image/jpeg', 'image/webp', 'image/gif']);
  });

  it('takes multipart file parts under input_reference', () => {
    const n = run({ fields: { prompt: 'p' }, files: [{ field: 'input_reference', chunks: [PNG_1x1.subarray(0, 5), PNG_1x1.subarray(5)] }, { field: 'input_reference', chunks: [JPEG_BYTES] }] });
    expect(n.references.map((r) => r.mime)).toEqual(['image/png', 'image/jpeg']);
    expect(partBytes(n.references[0]!.bytes()).equals(PNG_1x1)).toBe(true);
  });

  it('keeps the original base64 of a data URI without decoding it', () => {
    const ref = run(json({ prompt: 'p', image: png })).references[0]!;
    expect(partBytes(ref.dataUri()).toString('latin1')).toBe(png);
    expect(ref.size).toBe(PNG_1x1.length);
  });
});

describe('normalization: rejections name the param (contract §3, §7)', () => {
  it.each<[string, Record<string, unknown>, number, string | null, string?]>([
    ['missing prompt', {}, 400, 'prompt', 'missing_required_parameter'],
    ['empty prompt', { prompt: '  ' }, 400, 'prompt'],
    ['prompt over 4096 characters', { prompt: 'x'.repeat(4097) }, 400, 'prompt'],
    ['prompt not a string', { prompt: 5 }, 400, 'prompt'],
    ['unknown model', { prompt: 'p', model: 'gpt-4o' }, 400, 'model', 'model_not_found'],
    ['model in another case', { prompt: 'p', model: 'GROK-VIDEO-3' }, 400, 'model', 'model_not_found'],
    ['seconds zero', { prompt: 'p', seconds: 0 }, 400, 'seconds'],
    ['seconds fractional', { prompt: 'p', seconds: 2.5 }, 400, 'seconds'],
    ['seconds words', { prompt: 'p', seconds: 'eight' }, 400, 'seconds'],
    ['seconds over the model maximum', { prompt: 'p', seconds: 16 }, 400, 'seconds', 'unsupported_value'],
    ['-pro with other seconds', { model: 'grok-video-3-pro', prompt: 'p', seconds: 8 }, 400, 'seconds', 'unsupported_value'],
    ['-max with other seconds (duration)', { model: 'grok-video-1.5-max', prompt: 'p', duration: 10 }, 400, 'duration', 'unsupported_value'],
    ['seconds and duration disagree', { prompt: 'p', seconds: 4, duration: 8 }, 400, 'duration'],
    ['unsupported tier for imagine', { prompt: 'p', resolution: '1080P' }, 400, 'resolution', 'unsupported_value'],
    ['unsupported tier for grok-video-3', { model: 'grok-video-3', prompt: 'p', size: '480P' }, 400, 'size', 'unsupported_value'],
    ['nonsense resolution', { prompt: 'p', resolution: 'HD' }, 400, 'resolution'],
    ['nonsense size', { prompt: 'p', size: 'big' }, 400, 'size'],
    ['size and resolution disagree', { prompt: 'p', size: '1280x720', resolution: '480P' }, 400, 'resolution'],
    ['malformed aspect ratio', { prompt: 'p', aspect_ratio: '16/9' }, 400, 'aspect_ratio'],
    ['custom ratio wider than 4:1', { prompt: 'p', aspect_ratio: '1000:1' }, 400, 'aspect_ratio', 'unsupported_value'],
    ['custom ratio taller than 1:4', { prompt: 'p', aspect_ratio: '1:4.5' }, 400, 'aspect_ratio', 'unsupported_value'],
    ['custom ratio with numbers over 8192', { prompt: 'p', aspect_ratio: '9000:9000' }, 400, 'aspect_ratio', 'unsupported_value'],
    ['custom ratio with a number too long to hold', { prompt: 'p', aspect_ratio: `${'9'.repeat(400)}:1` }, 400, 'aspect_ratio', 'invalid_value'],
    ['custom ratio with a long number of few digits', { prompt: 'p', aspect_ratio: `1.${'0'.repeat(29)}:1` }, 400, 'aspect_ratio', 'invalid_value'],
    ['custom ratio on grok-video-3', { model: 'grok-video-3', prompt: 'p', aspect_ratio: '4:3' }, 400, 'aspect_ratio', 'unsupported_value'],
    ['image and images together', { prompt: 'p', image: png, images: [png] }, 400, 'images', 'conflicting_parameters'],
    ['images and input_reference together', { prompt: 'p', images: [png], input_reference: png }, 400, 'input_reference', 'conflicting_parameters'],
    ['image not a data URI', { prompt: 'p', image: 'https://example.com/a.png' }, 400, 'image', 'invalid_image'],
    ['image with broken base64', { prompt: 'p', image: 'data:image/png;base64,@@@@' }, 400, 'image', 'invalid_image'],
    ['image that is not an image', { prompt: 'p', image: dataUri(Buffer.from('hello world, not an image')) }, 400, 'image', 'invalid_image'],
    ['image with URL-safe base64', { prompt: 'p', image: `${png.slice(0, -8)}-_AAAAAA` }, 400, 'image', 'invalid_image'],
    ['image with whitespace in base64', { prompt: 'p', image: `${png.slice(0, 40)}\n${png.slice(41)}` }, 400, 'image', 'invalid_image'],
    ['image with padding in the middle', { prompt: 'p', image: `data:image/png;base64,iVBO${'='.repeat(4)}${'A'.repeat(20000 * 4)}` }, 400, 'image', 'invalid_image'],
    ['image with a bad character past the first slice', { prompt: 'p', image: `data:image/png;base64,iVBORw0K${'A'.repeat(70000 * 4)}@AAA` }, 400, 'image', 'invalid_image'],
    ['a misspelt field', { prompt: 'p', secounds: '12' }, 400, 'secounds', 'unknown_parameter'],
    ['an empty images list', { prompt: 'p', images: [] }, 400, 'images'],
    ['image given as a list of two', { prompt: 'p', image: [png, png] }, 400, 'image'],
    ['seconds as a boolean', { prompt: 'p', seconds: true }, 400, 'seconds'],
    ['a size with a tiny side', { prompt: 'p', size: '100000x1' }, 400, 'size'],
    ['a zero aspect ratio', { prompt: 'p', aspect_ratio: '0:5' }, 400, 'aspect_ratio'],
    ['second image bad', { prompt: 'p', images: [png, 'data:text/plain;base64,aGk='] }, 400, 'images[1]', 'invalid_image'],
    ['image over the byte limit', { prompt: 'p', image: dataUri(Buffer.concat([PNG_1x1, Buffer.alloc(1100)])) }, 413, 'image'],
    ['too many images', { prompt: 'p', images: [png, png, png, png] }, 400, 'images', 'too_many_images'],
    ['input_reference with image_url and file_id', { prompt: 'p', input_reference: { image_url: png, file_id: 'file_123' } }, 400, 'input_reference', 'conflicting_parameters'],
    ['an input_reference item with image_url and file_id', { prompt: 'p', input_reference: [png, { image_url: png, file_id: 'file_123' }] }, 400, 'input_reference[1]', 'conflicting_parameters'],
    ['file_id references', { prompt: 'p', input_reference: { file_id: 'file_123' } }, 400, 'input_reference.file_id'],
    ['images of the wrong type', { prompt: 'p', images: 5 }, 400, 'images'],
  ])('%s → %i param=%s', (_name, fields, status, param, code) => {
    let caught: unknown;
    try {
      run(json(fields));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApiError);
    const e = caught as ApiError;
    expect(e.status).toBe(status);
    expect(e.param).toBe(param);
    if (code) expect(e.code).toBe(code);
    expect(e.message.length).toBeGreaterThan(10);
  });

  it('says what is wrong in words a user can act on', () => {
    const message = (fields: Record<string, unknown>) => {
      try {
        run(json(fields));
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    };
    expect(message({ prompt: 'p', model: 'sora-2-pro', seconds: 8 })).toMatch(/'sora-2-pro' \(grok-video-3-pro\) is fixed at 10 seconds/);
    expect(message({ prompt: 'p', resolution: '1280x720' })).not.toMatch(/WIDTHxHEIGHT/);
    expect(message({ prompt: 'p', size: 'big' })).toMatch(/WIDTHxHEIGHT/);
    expect(message({ prompt: 'p', image: [png, png] })).toMatch(/images/);
    expect(message({ prompt: 'p', seconds: true })).toMatch(/string or a number/);
    expect(message({ prompt: 'p', secounds: 1 })).toBe('Unrecognized request argument supplied: secounds');
    expect(message({ prompt: 'p', aspect_ratio: '1000:1' })).toMatch(/between 1:4 and 4:1, each number at most 8192; got '1000:1'/);
    expect(message({ prompt: 'p', input_reference: { image_url: png, file_id: 'f' } })).toMatch(/'image_url' or 'file_id', not both/);
  });

  it('rejects a multipart file that is not an image', () => {
    expect(() => run({ fields: { prompt: 'p' }, files: [{ field: 'input_reference', chunks: [Buffer.from('plain text')] }] })).toThrow(/not a PNG/);
  });
});

describe('model table', () => {
  it('loads extra models and aliases from a config file without code changes', () => {
    const c = new ModelCatalog({
      models: [
        { id: 'grok-video-4', family: 'grok-video', kinds: { newapi: {} }, resolutions: [720], aspectRatios: ['16:9'], customAspectRatio: false, seconds: { min: 5, max: 5 }, defaultSeconds: 5, defaultResolution: 720, defaultAspectRatio: '16:9' },
      ],
      aliases: { 'my-video': 'grok-video-4' },
      defaultModel: 'my-video',
    });
    const n = normalizeVideoRequest(json({ prompt: 'p' }), c, limits);
    expect(n.model.id).toBe('grok-video-4');
    expect(n.seconds).toBe(5);
  });

  it('refuses an alias to a missing model', () => {
    expect(() => new ModelCatalog({ models: [], aliases: { x: 'nope' } })).toThrow(/unknown model/);
  });
});
