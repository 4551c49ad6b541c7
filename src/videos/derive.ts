import { invalidRequest, unsupportedOperation, type ApiError } from '../domain/errors.js';
import { parseOrThrow } from '../domain/validation.js';
import type { JobRecord } from '../domain/job.js';
import type { UpstreamKind } from '../domain/upstream-kinds.js';
import { DERIVED_OPERATIONS, type DerivedOperation, type ModelSpec } from '../domain/models.js';
import { refuseUnknownFields, wholeNumber } from './normalize.js';
import type { FileRules, RawRequest } from './parse.js';
import { editVideoSchema, extendVideoSchema, remixVideoSchema } from './schemas.js';

/**
 * Derived videos (§9): a remix, an extension or an edit of a completed video of the caller's team. The
 * body is parsed like a create's (src/videos/parse.ts, same limits); this module says what its fields mean
 * and, from the model table's rules, whether the source's upstream kind can make it.
 */
export interface DerivedRequest {
  readonly operation: DerivedOperation;
  /** The source video's gateway id. */
  readonly sourceId: string;
  readonly prompt: string;
  /** Extensions only: the seconds to add. */
  readonly seconds?: number | undefined;
}

const videoUpload = () =>
  invalidRequest("Uploading a video is not supported; name a completed video of your team as 'video': {\"id\": \"video_…\"}.", 'video', 'unsupported_value');

/** No body of these routes carries a file: a `video` upload is refused as unsupported, any other as unexpected. */
export const DERIVED_FILES: FileRules = {
  fields: new Set(),
  refuse: (field, rawName) => (field === 'video' ? videoUpload() : invalidRequest(`Unexpected file in field '${rawName}'.`, field, 'unexpected_file')),
};

const SCHEMAS = { remix: remixVideoSchema, extension: extendVideoSchema, edit: editVideoSchema } as const;
const FIELDS: Readonly<Record<DerivedOperation, ReadonlySet<string>>> = {
  remix: new Set(Object.keys(remixVideoSchema.shape)),
  extension: new Set(Object.keys(extendVideoSchema.shape)),
  edit: new Set(Object.keys(editVideoSchema.shape)),
};
/** The multipart spelling of `video: {id}`, as both SDKs send it. */
const FORM_VIDEO_ID = 'video[id]';

/** `pathId`: the remix route's source, from its path; the others name it in the body. */
export function normalizeDerivedRequest(operation: DerivedOperation, raw: RawRequest, pathId?: string): DerivedRequest {
  const fields = { ...raw.fields };
  if (FORM_VIDEO_ID in fields) {
    if ('video' in fields) throw invalidRequest("Give the source video once, as 'video[id]' or 'video'.", 'video', 'duplicate_field');
    fields.video = { id: fields[FORM_VIDEO_ID] };
    delete fields[FORM_VIDEO_ID];
  }
  refuseUnknownFields({ fields, files: raw.files }, FIELDS[operation]);
  // Anything but `{id}` is a video given some other way (a URL, bytes): OpenAI's upload, which Grok has no use for.
  if (fields.video !== undefined && (typeof fields.video !== 'object' || fields.video === null || Array.isArray(fields.video))) throw videoUpload();
  const f = parseOrThrow(SCHEMAS[operation], fields) as { prompt: string; seconds?: string | number; video?: { id: string } };
  const seconds = f.seconds !== undefined ? wholeNumber(f.seconds, 'seconds') : undefined;
  const sourceId = pathId ?? f.video!.id;
  return { operation, sourceId, prompt: f.prompt, seconds };
}

/** Errors about the source name `video`, wherever the request named it (the remix route: in its path). */
export const SOURCE_PARAM = 'video';

export const VERB: Readonly<Record<DerivedOperation, string>> = { remix: 'remixed', extension: 'extended', edit: 'edited' };

/**
 * Why the source's upstream kind cannot make this derived video, from the model table's rules; undefined
 * when it can. Checked before admission and before any upstream call.
 */
export function derivationRefusal(req: DerivedRequest, source: JobRecord, model: ModelSpec | undefined, kind: UpstreamKind): ApiError | undefined {
  const derive = model?.kinds[kind]?.derive;
  const rules = derive?.[req.operation];
  if (!rules) {
    const possible = DERIVED_OPERATIONS.filter((op) => derive?.[op]).map((op) => VERB[op]);
    const instead = possible.length > 0 ? `there they can only be ${possible.join(' or ')}` : 'there they cannot be remixed, extended or edited';
    return unsupportedOperation(
      req.operation,
      `Videos of model '${source.model}' cannot be ${VERB[req.operation]} through the upstream that made them (a ${kind} upstream): ${instead}.`,
      SOURCE_PARAM,
    );
  }
  if (rules.maxSourceSeconds !== undefined && source.seconds > rules.maxSourceSeconds) {
    return invalidRequest(
      `Only videos of at most ${rules.maxSourceSeconds} seconds can be ${VERB[req.operation]} here; video '${source.id}' has ${source.seconds}.`,
      SOURCE_PARAM,
      'unsupported_value',
    );
  }
  if (rules.seconds && req.seconds !== undefined && (req.seconds < rules.seconds.min || req.seconds > rules.seconds.max)) {
    return invalidRequest(`An extension of this video takes ${rules.seconds.min} to ${rules.seconds.max} seconds; got ${req.seconds}.`, 'seconds', 'unsupported_value');
  }
  return undefined;
}

/** The seconds a derived job makes and reserves: an extension's own, a remix's or an edit's those of its source. */
export const derivedSeconds = (req: DerivedRequest, source: JobRecord): number => req.seconds ?? source.seconds;
