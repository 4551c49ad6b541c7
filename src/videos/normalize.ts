import { invalidRequest, modelNotFound, modelNotServed, type ApiError } from '../http/errors.js';
import type { UpstreamKind } from '../upstream/providers/types.js';
import { parseOrThrow } from '../http/validation.js';
import { ImageRef } from './image-ref.js';
import { TIERS, type ModelCatalog, type ModelSpec, type Tier } from './models.js';
import type { RawRequest } from './parse.js';
import { CREATE_VIDEO_FIELDS, createVideoFieldsSchema, type CreateVideoFields } from './schemas.js';

/** The one validated form every request becomes, whatever its encoding and dialect. */
export interface NormalizedVideoRequest {
  readonly model: ModelSpec;
  /** The name the client used (an alias, perhaps): model allow-lists may name either. */
  readonly requestedModel: string;
  readonly prompt: string;
  readonly seconds: number;
  readonly resolution: Tier;
  readonly aspectRatio: string;
  readonly references: readonly ImageRef[];
  /** The field the references came in, for errors about them. */
  readonly referenceField: string;
}

export interface NormalizeLimits {
  readonly maxImageBytes: number;
  readonly maxReferenceImages: number;
}

/** Bounds on an OpenAI-style WIDTHxHEIGHT: anything outside them is a typo, not a video size. */
const MIN_SIDE = 64;
const MAX_SIDE = 8192;
/** The widest shape a video may have, either way up: for `size` and for a custom `aspect_ratio` alike. */
const MAX_RATIO = 4;

export function normalizeVideoRequest(raw: RawRequest, catalog: ModelCatalog, limits: NormalizeLimits): NormalizedVideoRequest {
  refuseUnknownFields(raw, CREATE_VIDEO_FIELDS);
  const f = parseOrThrow(createVideoFieldsSchema, raw.fields);
  const requested = f.model ?? catalog.defaultModel;
  const model = catalog.resolve(requested);
  if (!model) throw modelNotFound(requested);

  const seconds = normalizeSeconds(f, model, requested);
  const { resolution, aspectFromSize } = normalizeSize(f, model);
  const aspectRatio = f.aspect_ratio !== undefined ? normalizeAspectRatio(f.aspect_ratio, model) : aspectFromSize ?? model.defaultAspectRatio;
  const references = normalizeReferences(f, raw, limits);
  const referenceField = REFERENCE_FIELDS.find((k) => f[k] !== undefined || raw.files.some((file) => file.field === k)) ?? 'input_reference';
  return { model, requestedModel: requested, prompt: f.prompt, seconds, resolution, aspectRatio, references, referenceField };
}

/** As OpenAI's API does: a misspelt field would otherwise be dropped and a default billed in its place. */
export function refuseUnknownFields(raw: RawRequest, known: ReadonlySet<string>): void {
  const unknown = [...Object.keys(raw.fields), ...raw.files.map((file) => file.field)].find((k) => !known.has(k));
  if (unknown !== undefined) throw invalidRequest(`Unrecognized request argument supplied: ${unknown}`, unknown, 'unknown_parameter');
}

/**
 * Why an upstream of `kind` cannot take the request, from the model table's rules for that kind, as the 400
 * the client gets when no upstream can; undefined when it can. Checked before any upstream call.
 */
export function kindRefusal(req: NormalizedVideoRequest, kind: UpstreamKind): ApiError | undefined {
  const rules = req.model.kinds[kind];
  const id = req.model.id;
  if (!rules) return modelNotServed(id);
  if (rules.aspectRatios && !rules.aspectRatios.includes(req.aspectRatio)) {
    return invalidRequest(`Model '${id}' supports aspect ratios ${rules.aspectRatios.join(', ')} here; got '${req.aspectRatio}'.`, 'aspect_ratio', 'unsupported_value');
  }
  const refs = req.references.length;
  if (rules.maxReferences !== undefined && refs > rules.maxReferences) {
    return invalidRequest(`Model '${id}' takes at most ${rules.maxReferences} reference images here; got ${refs}.`, req.referenceField, 'too_many_images');
  }
  if (refs > 1 && rules.maxSecondsWithReferences !== undefined && req.seconds > rules.maxSecondsWithReferences) {
    return invalidRequest(
      `Model '${id}' takes at most ${rules.maxSecondsWithReferences} seconds with several reference images here; got ${req.seconds}.`,
      'seconds',
      'unsupported_value',
    );
  }
  return undefined;
}

export function wholeNumber(v: string | number, param: string): number {
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw invalidRequest(`'${param}' must be a whole number of seconds, at least 1.`, param);
  return n;
}

function normalizeSeconds(f: CreateVideoFields, model: ModelSpec, requested: string): number {
  const seconds = f.seconds !== undefined ? wholeNumber(f.seconds, 'seconds') : undefined;
  const duration = f.duration !== undefined ? wholeNumber(f.duration, 'duration') : undefined;
  if (seconds !== undefined && duration !== undefined && seconds !== duration) {
    throw invalidRequest("'seconds' and 'duration' disagree; give one of them.", 'duration');
  }
  const param = seconds !== undefined ? 'seconds' : 'duration';
  const value = seconds ?? duration ?? model.defaultSeconds;
  const { min, max } = model.seconds;
  if (value < min || value > max) {
    const rule = min === max ? `is fixed at ${min} seconds` : `takes ${min} to ${max} seconds`;
    const name = requested === model.id ? `'${model.id}'` : `'${requested}' (${model.id})`;
    throw invalidRequest(`Model ${name} ${rule}; got ${value}.`, param, 'unsupported_value');
  }
  return value;
}

/** `720P`, `720p`, `720` and 720 all name the 720 tier. */
export function parseTier(v: string | number): Tier | undefined {
  const m = /^\s*(\d{3,4})\s*[pP]?\s*$/.exec(String(v));
  const n = m ? Number(m[1]) : NaN;
  return (TIERS as readonly number[]).includes(n) ? (n as Tier) : undefined;
}

function requireSupportedTier(tier: Tier | undefined, raw: string | number, model: ModelSpec, param: string): Tier {
  const supported = model.resolutions.map((t) => `${t}P`).join(', ');
  if (tier === undefined) {
    const forms = param === 'size' ? ` or WIDTHxHEIGHT such as 1280x720` : '';
    throw invalidRequest(`'${param}' must be a resolution tier (${supported})${forms}; got '${raw}'.`, param);
  }
  if (!model.resolutions.includes(tier)) {
    throw invalidRequest(`Model '${model.id}' supports ${supported}; got '${raw}'.`, param, 'unsupported_value');
  }
  return tier;
}

const ratioValue = (r: string) => {
  const [w, h] = r.split(':').map(Number) as [number, number];
  return w / h;
};

/** Nearest by log-ratio, so 2:1 and 1:2 are equally far from 1:1. */
function nearestAspect(width: number, height: number, model: ModelSpec): string {
  const target = Math.log(width / height);
  let best = model.aspectRatios[0]!;
  for (const r of model.aspectRatios) {
    if (Math.abs(Math.log(ratioValue(r)) - target) < Math.abs(Math.log(ratioValue(best)) - target)) best = r;
  }
  return best;
}

function nearestTier(shortSide: number, model: ModelSpec): Tier {
  return model.resolutions.reduce((best, t) => (Math.abs(t - shortSide) < Math.abs(best - shortSide) ? t : best));
}

function normalizeSize(f: CreateVideoFields, model: ModelSpec): { resolution: Tier; aspectFromSize?: string } {
  let fromSize: { resolution: Tier; aspectFromSize?: string } | undefined;
  if (f.size !== undefined) {
    const wh = /^\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*$/.exec(String(f.size));
    if (wh) {
      const w = Number(wh[1]);
      const h = Number(wh[2]);
      if (Math.min(w, h) < MIN_SIDE || Math.max(w, h) > MAX_SIDE || Math.max(w, h) / Math.min(w, h) > MAX_RATIO) {
        throw invalidRequest(
          `'size' must have sides from ${MIN_SIDE} to ${MAX_SIDE} pixels and a ratio of at most ${MAX_RATIO}:1; got '${f.size}'.`,
          'size',
        );
      }
      fromSize = { resolution: nearestTier(Math.min(w, h), model), aspectFromSize: nearestAspect(w, h, model) };
    } else {
      fromSize = { resolution: requireSupportedTier(parseTier(f.size), f.size, model, 'size') };
    }
  }
  if (f.resolution === undefined) return fromSize ?? { resolution: model.defaultResolution };
  const resolution = requireSupportedTier(parseTier(f.resolution), f.resolution, model, 'resolution');
  if (fromSize && fromSize.resolution !== resolution) {
    throw invalidRequest(`'size' (${f.size}) and 'resolution' (${f.resolution}) disagree; give one of them.`, 'resolution');
  }
  return fromSize ?? { resolution };
}

function normalizeAspectRatio(value: string, model: ModelSpec): string {
  const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(value);
  if (!m || Number(m[1]) <= 0 || Number(m[2]) <= 0) {
    throw invalidRequest(`'aspect_ratio' must be two positive numbers such as '16:9'; got '${value}'.`, 'aspect_ratio');
  }
  const ratio = `${m[1]}:${m[2]}`;
  if (model.aspectRatios.includes(ratio)) return ratio;
  if (!model.customAspectRatio) {
    throw invalidRequest(`Model '${model.id}' supports aspect ratios ${model.aspectRatios.join(', ')}; got '${value}'.`, 'aspect_ratio', 'unsupported_value');
  }
  // The ratio becomes the Video's `size`: a custom one is held to the shapes `size` itself accepts.
  const [w, h] = [Number(m[1]), Number(m[2])];
  if (Math.max(w, h) > MAX_SIDE || Math.max(w, h) / Math.min(w, h) > MAX_RATIO) {
    throw invalidRequest(
      `'aspect_ratio' must lie between 1:${MAX_RATIO} and ${MAX_RATIO}:1, each number at most ${MAX_SIDE}; got '${value}'.`,
      'aspect_ratio',
      'unsupported_value',
    );
  }
  return ratio;
}

const REFERENCE_FIELDS = ['image', 'images', 'input_reference'] as const;

function normalizeReferences(f: CreateVideoFields, raw: RawRequest, limits: NormalizeLimits): ImageRef[] {
  const given = REFERENCE_FIELDS.filter((k) => f[k] !== undefined || raw.files.some((file) => file.field === k));
  if (given.length > 1) {
    throw invalidRequest(`Give reference images in one of 'image', 'images' or 'input_reference', not ${given.join(' and ')}.`, given[1]!, 'conflicting_parameters');
  }
  const field = given[0];
  if (!field) return [];
  const textValues = ([] as unknown[]).concat(f[field] ?? []);
  const refs = textValues.map((v, i) => {
    const param = textValues.length > 1 ? `${field}[${i}]` : field;
    if (typeof v === 'string') return ImageRef.fromDataUri(v, param, limits.maxImageBytes);
    const obj = v as { image_url?: string; file_id?: string };
    if (obj.image_url !== undefined && obj.file_id !== undefined) {
      // Either one alone names the image: with both, which one the client meant is a guess.
      throw invalidRequest(`'${param}' takes 'image_url' or 'file_id', not both.`, param, 'conflicting_parameters');
    }
    if (obj.image_url !== undefined) return ImageRef.fromDataUri(obj.image_url, `${param}.image_url`, limits.maxImageBytes);
    throw invalidRequest("Reference images by 'file_id' are not supported; send the image itself.", `${param}.file_id`, 'unsupported_value');
  });
  for (const file of raw.files) refs.push(ImageRef.fromChunks(file.chunks, field, limits.maxImageBytes));
  if (refs.length === 0) throw invalidRequest(`'${field}' is empty; leave it out for a video without reference images.`, field);
  if (refs.length > limits.maxReferenceImages) {
    throw invalidRequest(`At most ${limits.maxReferenceImages} reference images are allowed; got ${refs.length}.`, field, 'too_many_images');
  }
  return refs;
}
