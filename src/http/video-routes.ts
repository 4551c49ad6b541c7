import { pipeline } from 'node:stream/promises';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono, type Context } from 'hono';
import type { Config } from '../config.js';
import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { JobRecord } from '../domain/job.js';
import type { Store } from '../store/types.js';
import { ApiError, toErrorBody, tooLarge } from '../domain/errors.js';
import { callContext, json, jsonText, principalOf, requestHeader, responseHeaders, setResponseHeader, type AppEnv } from './context.js';
import { parseOrThrow, pathParam } from '../domain/validation.js';
import { modelAllowed } from '../quota/refusals.js';
import type { Metrics } from '../observability/metrics.js';
import type { UpstreamRouter } from '../upstream/router.js';
import { idempotencyKeyOf, IdempotentCreates } from '../videos/idempotency.js';
import type { RequestContext, VideoJobs } from '../videos/jobs.js';
import type { ModelCatalog } from '../domain/models.js';
import { normalizeVideoRequest } from '../videos/normalize.js';
import { CREATE_FILES, parseVideoBody, type FileRules, type RawRequest } from '../videos/parse.js';
import { DERIVED_FILES, normalizeDerivedRequest } from '../videos/derive.js';
import type { DerivedOperation } from '../domain/models.js';
import { contentQuerySchema, listVideosQuerySchema, videoPathSchema, type ModelList, type VideoDeleted, type VideoList } from '../videos/schemas.js';
import { createFingerprint, derivedFingerprint } from '../videos/request-fingerprint.js';
import { toVideoObject, videoJson } from '../videos/video-object.js';
import { CreateBuffer, metered } from './create-buffer.js';

export interface VideoRouteDeps {
  readonly config: Config;
  readonly catalog: ModelCatalog;
  readonly jobs: VideoJobs;
  readonly upstream: Pick<UpstreamRouter, 'serves'>;
  readonly metrics: Pick<Metrics, 'watchCreateBuffer'>;
  readonly store: Store;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** A create's body made sense of: what identifies it under an Idempotency-Key, and how its job starts. */
interface PreparedCreate {
  fingerprint(method: string, path: string): string;
  /** `videoId`: the id an Idempotency-Key chose; a new one without a key. */
  start(ctx: RequestContext, videoId?: string): Promise<JobRecord>;
}

const videoIdOf = (c: Context<AppEnv>) => pathParam(c, videoPathSchema, 'video_id');

/** Thin handlers: parse, normalize, hand over to the job lifecycle, render the OpenAI shape. */
export function videoRoutes({ config, catalog, jobs, upstream, metrics, store, clock, logger }: VideoRouteDeps) {
  const app = new Hono<AppEnv>();
  const limits = config.limits;
  const buffer = new CreateBuffer(limits.createBuffer);
  metrics.watchCreateBuffer(buffer);
  const idempotent = new IdempotentCreates({ store, jobs, clock, logger, leaseMs: config.idempotencyLeaseMs });
  const pollAfterMs = String(Math.max(1000, config.statusCacheMs));
  // Never the request's Host (a client could point links anywhere): unset, `video_url` is a path on this origin.
  const baseUrl = config.publicBaseUrl ?? '';

  /**
   * A create's body, read within the limits, made sense of by `prepare` and turned into a job — once per
   * Idempotency-Key when the request has one; every route that starts a job (creates and derived videos
   * alike) goes through here.
   */
  const startJob = async (c: Context<AppEnv>, files: FileRules, prepare: (raw: RawRequest) => PreparedCreate) => {
    // Before the body is read: a bad key costs no upload.
    const key = idempotencyKeyOf(requestHeader(c, 'idempotency-key'));
    const declared = Number(requestHeader(c, 'content-length'));
    if (declared > limits.maxBodyBytes) throw tooLarge(`Request body exceeds the limit of ${limits.maxBodyBytes} bytes.`);
    // Bodies are held in memory from the first byte read until the upstream has them: their bytes are bounded.
    const lease = buffer.open(principalOf(c).teamId, limits.maxBodyBytes);
    try {
      if (declared > 0) await lease.hold(declared);
      const body = c.req.raw.body;
      const create = prepare(await parseVideoBody(requestHeader(c, 'content-type'), body && metered(body, lease), limits, files));
      // Detached: once the upstream may have the create, a client hang-up must not orphan the job.
      const ctx: RequestContext = { ...callContext(c, true), onBodySent: lease.release };
      if (key === undefined) return json(c, toVideoObject(await create.start(ctx), baseUrl));
      const { job, replayed } = await idempotent.run(principalOf(c), key, create.fingerprint(c.req.method, c.req.path), ctx, (id) => create.start(ctx, id));
      return json(c, toVideoObject(job, baseUrl), 200, replayed ? { 'idempotent-replayed': 'true' } : undefined);
    } finally {
      lease.release();
    }
  };
  const derived = (operation: DerivedOperation, c: Context<AppEnv>, pathId?: string) =>
    startJob(c, DERIVED_FILES, (raw) => {
      const req = normalizeDerivedRequest(operation, raw, pathId);
      return { fingerprint: (method, path) => derivedFingerprint(method, path, req), start: (ctx, id) => jobs.derive(principalOf(c), req, ctx, id) };
    });

  app.post('/videos', (c) =>
    startJob(c, CREATE_FILES, (raw) => {
      const req = normalizeVideoRequest(raw, catalog, limits);
      return { fingerprint: (method, path) => createFingerprint(method, path, req), start: (ctx, id) => jobs.create(principalOf(c), req, ctx, id) };
    }),
  );
  app.post('/videos/:video_id/remix', (c) => derived('remix', c, videoIdOf(c)));
  app.post('/videos/extensions', (c) => derived('extension', c));
  app.post('/videos/edits', (c) => derived('edit', c));

  app.get('/videos', async (c) => {
    const q = parseOrThrow(listVideosQuerySchema, c.req.query());
    const { jobs: page, hasMore } = await jobs.list(principalOf(c), q);
    const data = page.map((j) => toVideoObject(j, baseUrl));
    const list: VideoList = { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore };
    return json(c, list);
  });

  app.get('/videos/:video_id', async (c) => {
    // Detached: the status fetch is shared by every poller of this video, so no single client may cancel it
    // (and not touching the request's abort signal keeps the hot path free of a full Request object).
    const job = await jobs.get(principalOf(c), videoIdOf(c), callContext(c, true));
    if (job.status === 'queued' || job.status === 'in_progress') setResponseHeader(c, 'openai-poll-after-ms', pollAfterMs);
    return jsonText(c, videoJson(job, baseUrl));
  });

  app.delete('/videos/:video_id', async (c) => {
    const id = videoIdOf(c);
    await jobs.remove(principalOf(c), id, callContext(c, true));
    const deleted: VideoDeleted = { id, object: 'video.deleted', deleted: true };
    return json(c, deleted);
  });

  app.get('/videos/:video_id/content', async (c) => {
    const { variant } = parseOrThrow(contentQuerySchema, c.req.query());
    const conditions = { range: requestHeader(c, 'range'), ifNoneMatch: requestHeader(c, 'if-none-match'), ifRange: requestHeader(c, 'if-range') };
    const stream = await jobs.content(principalOf(c), videoIdOf(c), { ...conditions, variant }, callContext(c));
    if (stream.status === 416) {
      stream.body.resume();
      const err = new ApiError({ status: 416, type: 'invalid_request_error', code: 'range_not_satisfiable', param: 'range', message: 'The requested range is not satisfiable.' });
      return json(c, toErrorBody(err), 416, stream.headers['content-range'] ? { 'content-range': stream.headers['content-range'] } : undefined);
    }
    // Piped straight from the upstream socket to the client socket: no web-stream conversion, backpressure
    // end to end, and a hang-up on either side destroys the other.
    const outgoing = c.env.outgoing;
    // A video is one team's, fetched with its key: whatever the upstream advises, no shared cache may keep it.
    stream.headers['cache-control'] = 'private';
    outgoing.writeHead(stream.status, responseHeaders(c, stream.headers));
    c.set('sentStatus', stream.status);
    pipeline(stream.body, outgoing).catch(() => undefined);
    return RESPONSE_ALREADY_SENT;
  });

  app.get('/models', (c) => {
    const p = principalOf(c);
    const data = catalog
      .names((id) => upstream.serves(id))
      .filter((name) => modelAllowed(p, name, catalog.resolve(name)!.id))
      .map((id) => ({ id, object: 'model' as const, created: 0, owned_by: 'grok-video-gateway' }));
    const list: ModelList = { object: 'list', data };
    return json(c, list);
  });

  return app;
}
