import { z } from 'zod';
import { quoted } from './text.js';

/**
 * The one error family of the gateway. Everything that goes wrong becomes an ApiError, and `toErrorBody`
 * is the single place that turns it into the OpenAI shape `{error:{message,type,param,code}}`.
 */
const ERROR_TYPES = [
  'invalid_request_error',
  'authentication_error',
  'permission_error',
  'not_found_error',
  'rate_limit_error',
  'insufficient_quota',
  'upstream_error',
  'server_error',
] as const;
export type ErrorType = (typeof ERROR_TYPES)[number];

/** The wire shape of every error answer, as the OpenAPI document publishes it. */
export const errorBodySchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.enum(ERROR_TYPES),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});
export type ErrorBody = z.output<typeof errorBodySchema>;

export interface ApiErrorInit {
  status: number;
  type: ErrorType;
  message: string;
  code?: string | null;
  param?: string | null;
  headers?: Record<string, string>;
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ErrorType;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(init: ApiErrorInit) {
    super(init.message);
    this.status = init.status;
    this.type = init.type;
    this.code = init.code ?? null;
    this.param = init.param ?? null;
    this.headers = init.headers ?? {};
  }
}

export const invalidRequest = (message: string, param: string | null = null, code = 'invalid_value') =>
  new ApiError({ status: 400, type: 'invalid_request_error', message, param, code });

/** The rest of an over-long body is never read, so the connection cannot carry another request. */
export const tooLarge = (message: string, param: string | null = null) =>
  new ApiError({ status: 413, type: 'invalid_request_error', message, param, code: 'request_too_large', headers: { connection: 'close' } });

/** A request the HTTP layer could not parse or make a URL of: the connection is not trusted with another. */
export const malformedRequest = (message: string, status = 400, code = 'malformed_request') =>
  new ApiError({ status, type: 'invalid_request_error', message, code, headers: { connection: 'close' } });

export const unsupportedMediaType = (message: string) =>
  new ApiError({ status: 415, type: 'invalid_request_error', message, code: 'unsupported_media_type' });

export const unauthorized = (message = 'Incorrect or missing API key. Pass it as "Authorization: Bearer <key>".') =>
  new ApiError({ status: 401, type: 'authentication_error', message, code: 'invalid_api_key' });

export const forbidden = (message: string, param: string | null = null, code = 'permission_denied') =>
  new ApiError({ status: 403, type: 'permission_error', message, param, code });

export const notFound = (message: string, param: string | null = null, code = 'not_found') =>
  new ApiError({ status: 404, type: 'invalid_request_error', message, param, code });

/** No route serves this path (its echo cut short: a path may be kilobytes long). */
export const unknownRoute = (method: string, path: string) => notFound(`Unknown route: ${method} ${quoted(path)}`, null, 'unknown_route');

/** The video existed, but the place the upstream kept it for download has expired. */
export const contentExpired = () =>
  new ApiError({ status: 410, type: 'invalid_request_error', message: "The video's content has expired upstream and can no longer be downloaded.", param: 'video_id', code: 'video_expired' });

/** The video is past its retention (§12): its content is gone, its record and usage stay. */
export const retentionExpired = (id: string, expiresAt: number) =>
  notFound(`The content of video '${id}' expired at ${new Date(expiresAt * 1000).toISOString()} and has been removed.`, 'video_id', 'video_expired');

/** One body for an unknown id and for another team's: which ids exist is nobody else's business. */
export const videoNotFound = (id: string, param: 'video_id' | 'video' = 'video_id') => notFound(`No video found with id '${id}'.`, param, 'video_not_found');

/** A derived video (§9) the source's upstream cannot make: refused before any upstream call. */
export const unsupportedOperation = (operation: string, message: string, param: string) =>
  invalidRequest(`${message} The '${operation}' operation is not supported for this video.`, param, 'unsupported_operation');

/** A model of the table that no configured upstream (or none of a kind that knows it) serves. */
export const modelNotServed = (model: string) => invalidRequest(`Model '${model}' is not served by the configured upstreams.`, 'model', 'model_not_available');

export const modelNotFound = (model: string) =>
  invalidRequest(`The model '${model}' does not exist or is not a video model.`, 'model', 'model_not_found');

/** The SDKs retry 5xx, 408, 409 and 429 unless told not to. */
const NO_RETRY = { 'x-should-retry': 'false' };

/** When to try again, in both forms the SDKs read (`retry-after-ms` first). */
const retryAfter = (ms: number) => ({ 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))), 'retry-after-ms': String(Math.max(0, Math.ceil(ms))) });

export const rateLimited = (message: string, retryAfterMs: number, code: string, extra: Record<string, string> = {}) =>
  new ApiError({ status: 429, type: 'rate_limit_error', message, code, headers: { ...retryAfter(retryAfterMs), ...extra } });

/** The request header that makes a create idempotent (§2), as errors name it. */
export const IDEMPOTENCY_KEY_PARAM = 'Idempotency-Key';

/** Not retried: the same key with the same different body would be refused again. */
export const idempotencyKeyReused = () =>
  new ApiError({
    status: 409,
    type: 'invalid_request_error',
    message: 'This Idempotency-Key was already used with a different request in the last 24 hours. Use a new key for a new request.',
    param: IDEMPOTENCY_KEY_PARAM,
    code: 'idempotency_key_reused',
    headers: NO_RETRY,
  });

/** Retried by the SDKs (409), after `retry-after`: by then the first request has likely been answered. */
export const requestInProgress = (retryAfterMs: number) =>
  new ApiError({
    status: 409,
    type: 'invalid_request_error',
    message: 'A request with this Idempotency-Key is still being processed. Retry shortly to get its answer.',
    param: IDEMPOTENCY_KEY_PARAM,
    code: 'request_in_progress',
    headers: retryAfter(retryAfterMs),
  });

/** A repeat under an Idempotency-Key whose first request's video has been deleted since: no second one is made. */
export const idempotentVideoDeleted = (id: string) =>
  notFound(`The video made by the first request with this Idempotency-Key ('${id}') has been deleted.`, IDEMPOTENCY_KEY_PARAM, 'video_not_found');

/**
 * The first request with an Idempotency-Key was cut off (its gateway process stopped) after its job was
 * admitted and before the upstream's answer was recorded: the upstream may have started the video, and
 * nobody can tell. The same answer as a create whose upstream answer never came, for every repeat.
 */
export const firstAttemptLost = () =>
  new ApiError({
    status: 500,
    type: 'server_error',
    message:
      'The first request with this Idempotency-Key was cut off (its gateway process stopped) after the upstream may have started the video; its outcome is unknown and its reservation was refunded. Not retrying automatically.',
    code: 'create_outcome_unknown',
    headers: NO_RETRY,
  });

/** Whether a failed create may have left a job upstream: exactly the server errors the SDKs are told not to retry. */
export const mayHaveStartedJob = (err: ApiError) => err.status >= 500 && err.headers['x-should-retry'] === 'false';

export const insufficientQuota = (message: string, param: string | null = null) =>
  new ApiError({ status: 429, type: 'insufficient_quota', message, param, code: 'insufficient_quota', headers: NO_RETRY });

export const upstreamBadGateway = (message: string, opts: { maybeCreated?: boolean } = {}) =>
  new ApiError({
    status: 502,
    type: 'upstream_error',
    message,
    code: 'upstream_error',
    headers: opts.maybeCreated ? NO_RETRY : {},
  });

export const upstreamTimeout = (message: string, opts: { maybeCreated?: boolean } = {}) =>
  new ApiError({
    status: 504,
    type: 'upstream_error',
    message,
    code: 'upstream_timeout',
    headers: opts.maybeCreated ? NO_RETRY : {},
  });

export const upstreamUnavailable = (message: string, code = 'upstream_unavailable', headers: Record<string, string> = {}) =>
  new ApiError({ status: 503, type: 'upstream_error', message, code, headers });

/** The store (PostgreSQL) did not answer in time: nothing was admitted, so a retry shortly after is safe. */
export const storeUnavailable = (retryAfterS = 2) =>
  new ApiError({
    status: 503,
    type: 'server_error',
    message: 'The gateway cannot reach its database right now. Retry shortly.',
    code: 'store_unavailable',
    headers: { 'retry-after': String(retryAfterS) },
  });

export const serverError = (message = 'The gateway hit an internal error. It has been logged with this request id.') =>
  new ApiError({ status: 500, type: 'server_error', message, code: 'internal_error' });

/**
 * An internal failure of a create after the upstream call began: the upstream may have started the video,
 * so the SDKs must not retry (a retry could start a second paid job).
 */
export const createOutcomeUnknown = () =>
  new ApiError({
    status: 500,
    type: 'server_error',
    message: 'The gateway hit an internal error after the upstream may have started the video; not retrying automatically. It has been logged with this request id.',
    code: 'internal_error',
    headers: NO_RETRY,
  });

/**
 * The upstream accepted a create that the store would not record in time: the video exists and the gateway
 * keeps trying to record it, so the SDKs must not start a second one.
 */
export const createNotRecorded = () =>
  new ApiError({
    status: 503,
    type: 'server_error',
    message: 'The upstream accepted the video, but the gateway cannot reach its database to record it; it keeps trying, and the video then appears in GET /v1/videos. Not retrying automatically.',
    code: 'store_unavailable',
    headers: NO_RETRY,
  });

/**
 * A create the drain answered before the upstream did, rather than dropping its connection (which the SDKs
 * retry). `maybeCreated`: the upstream call had begun, so no retry; otherwise nothing was sent and another
 * replica may take it.
 */
export const shuttingDown = (maybeCreated: boolean) =>
  new ApiError({
    status: 503,
    type: 'server_error',
    message: maybeCreated
      ? 'The gateway is shutting down and the upstream has not answered yet. It may still have started the video (it then appears in GET /v1/videos); not retrying automatically.'
      : 'The gateway is shutting down; nothing was sent upstream. Retry the request.',
    code: 'shutting_down',
    headers: maybeCreated ? NO_RETRY : { 'retry-after': '1' },
  });

export function toErrorBody(err: ApiError): ErrorBody {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}
