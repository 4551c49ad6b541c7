import { pipeline } from 'node:stream/promises';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { Hono } from 'hono';
import { z } from 'zod';
import type { Config } from '../config.js';
import { ApiError, toErrorBody, tooLarge } from '../http/errors.js';
import { callContext, json, jsonText, principalOf, requestHeader, responseHeaders, setResponseHeader, type AppContext, type AppEnv } from '../http/context.js';
import { parseOrThrow } from '../http/validation.js';
import { modelAllowed } from '../quota/refusals.js';
import type { VideoJobs } from './jobs.js';
import type { ModelCatalog } from './models.js';
import { normalizeVideoRequest } from './normalize.js';
import { parseVideoBody } from './parse.js';
import { toVideoObject, videoJson } from './video-object.js';
import { CreateSlots } from '../http/semaphore.js';

const listQuery = z.object({
  after: z.string().min(1).optional(),
  limit: z.coerce.number({ error: 'must be a whole number from 1 to 100' }).int('must be a whole number from 1 to 100').min(1, 'must be at least 1').max(100, 'must be at most 100').default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
});

const contentQuery = z.object({ variant: z.enum(['video', 'thumbnail', 'spritesheet']).optional() });

export interface VideoRouteDeps {
  readonly config: Config;
  readonly catalog: ModelCatalog;
  readonly jobs: VideoJobs;
}

/** Thin handlers: parse, normalize, hand over to the job lifecycle, render the OpenAI shape. */
export function videoRoutes({ config, catalog, jobs }: VideoRouteDeps) {
  const app = new Hono<AppEnv>();
  const limits = config.limits;
  const creates = new CreateSlots(limits);
  const pollAfterMs = String(Math.max(1000, config.statusCacheMs));
  // c.req.url is always absolute (scheme://host/path): its origin is the part before the path, no URL parse needed.
  const baseUrl = (c: AppContext) => config.publicBaseUrl ?? c.req.url.slice(0, c.req.url.indexOf('/', c.req.url.indexOf('//') + 2));

  app.post('/videos', async (c) => {
    // Worked out first: nothing may fail once the upstream has the job but the answer carrying its id.
    const base = baseUrl(c);
    const declared = Number(requestHeader(c, 'content-length'));
    if (declared > limits.maxBodyBytes) throw tooLarge(`Request body exceeds the limit of ${limits.maxBodyBytes} bytes.`);
    // Bodies are held in memory while parsed and sent: the number in flight bounds the memory they take.
    const release = creates.acquire(principalOf(c));
    try {
      const raw = await parseVideoBody(requestHeader(c, 'content-type'), c.req.raw.body, limits);
      const normalized = normalizeVideoRequest(raw, catalog, limits);
      // Detached: once the upstream may have the create, a client hang-up must not orphan the job.
      const job = await jobs.create(principalOf(c), normalized, callContext(c, true));
      return json(c, toVideoObject(job, base));
    } finally {
      release();
    }
  });

  app.get('/videos', async (c) => {
    const q = parseOrThrow(listQuery, c.req.query());
    const { jobs: page, hasMore } = await jobs.list(principalOf(c), q);
    const data = page.map((j) => toVideoObject(j, baseUrl(c)));
    return json(c, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  });

  app.get('/videos/:id', async (c) => {
    // Detached: the status fetch is shared by every poller of this video, so no single client may cancel it
    // (and not touching the request's abort signal keeps the hot path free of a full Request object).
    const job = await jobs.get(principalOf(c), c.req.param('id'), callContext(c, true));
    if (job.status === 'queued' || job.status === 'in_progress') setResponseHeader(c, 'openai-poll-after-ms', pollAfterMs);
    return jsonText(c, videoJson(job, baseUrl(c)));
  });

  app.delete('/videos/:id', async (c) => {
    const id = c.req.param('id');
    await jobs.remove(principalOf(c), id, callContext(c, true));
    return json(c, { id, object: 'video.deleted', deleted: true });
  });

  app.get('/videos/:id/content', async (c) => {
    const { variant } = parseOrThrow(contentQuery, c.req.query());
    const stream = await jobs.content(principalOf(c), c.req.param('id'), { range: requestHeader(c, 'range'), variant }, callContext(c));
    if (stream.status === 416) {
      stream.body.resume();
      const err = new ApiError({ status: 416, type: 'invalid_request_error', code: 'range_not_satisfiable', param: 'range', message: 'The requested range is not satisfiable.' });
      return json(c, toErrorBody(err), 416, stream.headers['content-range'] ? { 'content-range': stream.headers['content-range'] } : undefined);
    }
    // Piped straight from the upstream socket to the client socket: no web-stream conversion, backpressure
    // end to end, and a hang-up on either side destroys the other.
    const outgoing = c.env.outgoing;
    outgoing.writeHead(stream.status, responseHeaders(c, stream.headers));
    c.set('sentStatus', stream.status);
    pipeline(stream.body, outgoing).catch(() => undefined);
    return RESPONSE_ALREADY_SENT;
  });

  app.get('/models', (c) => {
    const p = principalOf(c);
    const data = catalog
      .names()
      .filter((name) => modelAllowed(p, name, catalog.resolve(name)!.id))
      .map((id) => ({ id, object: 'model', created: 0, owned_by: 'grok-video-gateway' }));
    return json(c, { object: 'list', data });
  });

  return app;
}
