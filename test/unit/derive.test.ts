import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/domain/errors.js';
import type { JobRecord } from '../../src/domain/job.js';
import { derivationRefusal, normalizeDerivedRequest, type DerivedRequest } from '../../src/videos/derive.js';
import { ModelCatalog, type DerivedOperation } from '../../src/domain/models.js';
import type { RawRequest } from '../../src/videos/parse.js';

const catalog = new ModelCatalog();
const raw = (fields: Record<string, unknown>): RawRequest => ({ fields, files: [] });
const errorOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, code: err.code, param: err.param };
    throw err;
  }
  throw new Error('no error');
};

describe('derived request bodies (JSON and the form the SDKs send)', () => {
  it.each<[DerivedOperation, Record<string, unknown>, string | undefined, Partial<DerivedRequest>]>([
    ['remix', { prompt: 'p' }, 'video_a', { sourceId: 'video_a', prompt: 'p', seconds: undefined }],
    ['extension', { prompt: 'p', seconds: '4', video: { id: 'video_a' } }, undefined, { sourceId: 'video_a', seconds: 4 }],
    ['extension', { prompt: 'p', seconds: 4, 'video[id]': 'video_a' }, undefined, { sourceId: 'video_a', seconds: 4 }],
    ['edit', { prompt: 'p', 'video[id]': 'video_a' }, undefined, { sourceId: 'video_a' }],
  ])('%s %j', (op, fields, pathId, expected) => {
    expect(normalizeDerivedRequest(op, raw(fields), pathId)).toMatchObject({ operation: op, ...expected });
  });

  it.each<[string, DerivedOperation, Record<string, unknown>, { code: string; param: string | null }]>([
    ['a video upload as text', 'edit', { prompt: 'p', video: 'data:video/mp4;base64,AAAA' }, { code: 'unsupported_value', param: 'video' }],
    ['video as a list', 'edit', { prompt: 'p', video: [{ id: 'x' }] }, { code: 'unsupported_value', param: 'video' }],
    ['no video', 'edit', { prompt: 'p' }, { code: 'missing_required_parameter', param: 'video' }],
    ['no seconds on an extension', 'extension', { prompt: 'p', video: { id: 'x' } }, { code: 'invalid_value', param: 'seconds' }],
    ['seconds not whole', 'extension', { prompt: 'p', seconds: '2.5', video: { id: 'x' } }, { code: 'invalid_value', param: 'seconds' }],
    ['a field of another route', 'remix', { prompt: 'p', seconds: 4 }, { code: 'unknown_parameter', param: 'seconds' }],
    ['a model', 'edit', { prompt: 'p', model: 'grok-imagine-video', video: { id: 'x' } }, { code: 'unknown_parameter', param: 'model' }],
    ['video twice', 'edit', { prompt: 'p', video: { id: 'x' }, 'video[id]': 'x' }, { code: 'duplicate_field', param: 'video' }],
    ['an empty prompt', 'edit', { prompt: ' ', video: { id: 'x' } }, { code: 'invalid_value', param: 'prompt' }],
  ])('refuses %s', (_name, op, fields, expected) => {
    expect(errorOf(() => normalizeDerivedRequest(op, raw(fields), op === 'remix' ? 'video_a' : undefined))).toMatchObject({ status: 400, ...expected });
  });
});

describe('which kind can derive what from which model: the model table', () => {
  const source = (model: string, seconds = 6) => ({ id: 'video_s', model, seconds }) as JobRecord;
  const req = (operation: DerivedOperation, seconds?: number): DerivedRequest => ({ operation, sourceId: 'video_s', prompt: 'p', seconds });
  it.each<[string, 'newapi' | 'xai', DerivedRequest, number, string | undefined]>([
    ['grok-imagine-video', 'xai', req('remix'), 6, undefined],
    ['grok-imagine-video', 'xai', req('edit'), 8, undefined],
    ['grok-imagine-video', 'xai', req('edit'), 9, 'unsupported_value'],
    ['grok-imagine-video', 'xai', req('extension', 10), 6, undefined],
    ['grok-imagine-video', 'xai', req('extension', 11), 6, 'unsupported_value'],
    ['grok-imagine-video', 'newapi', req('remix'), 6, 'unsupported_operation'],
    ['grok-imagine-video', 'newapi', req('extension', 4), 6, 'unsupported_operation'],
    ['grok-video-3', 'newapi', req('remix'), 6, undefined],
    ['grok-video-3-pro', 'newapi', req('remix'), 10, undefined],
    ['grok-video-3-max', 'newapi', req('extension', 15), 15, undefined],
    ['grok-video-3', 'newapi', req('edit'), 6, 'unsupported_operation'],
    ['grok-video-1.5', 'newapi', req('remix'), 6, 'unsupported_operation'],
    ['grok-imagine-video-1.5', 'xai', req('remix'), 6, 'unsupported_operation'],
    ['grok-imagine-video-1.5', 'xai', req('edit'), 6, 'unsupported_operation'],
    ['grok-imagine-video-1.5', 'xai', req('extension', 4), 6, 'unsupported_operation'],
    ['grok-imagine-video-1.5-preview', 'xai', req('edit'), 6, 'unsupported_operation'],
  ])('%s on %s: %j of a %i s source', (model, kind, r, seconds, code) => {
    const refusal = derivationRefusal(r, source(model, seconds), catalog.resolve(model), kind);
    expect(refusal?.code).toBe(code);
    if (refusal) expect(refusal.status).toBe(400);
  });

  it.each([
    ['grok-video-3', 'newapi', req('edit'), /cannot be edited through the upstream that made them \(a newapi upstream\): there they can only be remixed or extended\./],
    ['grok-imagine-video', 'newapi', req('remix'), /\(a newapi upstream\): there they cannot be remixed, extended or edited\./],
  ] as const)('an unsupported operation names the kind and what it can do instead: %s on %s', (model, kind, r, message) => {
    expect(derivationRefusal(r, source(model), catalog.resolve(model), kind)?.message).toMatch(message);
  });
});
