import { randomFillSync } from 'node:crypto';
import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { RateInfo } from '../domain/quota-policy.js';
import type { Principal } from '../store/types.js';
import type { UpstreamTiming } from '../upstream/client.js';
import type { RequestContext } from '../videos/jobs.js';

/** What each request carries through the middleware chain. */
export type AppEnv = {
  Bindings: HttpBindings;
  Variables: {
    /** Set by handlers that write the response themselves (streams), for the request log. */
    sentStatus?: number;
    requestId: string;
    timing: UpstreamTiming;
    principal: Principal;
    /** Headers every answer to this request carries (request id, rate limits, poll interval). */
    responseHeaders: Record<string, string>;
  };
};

export type AppContext = Context<AppEnv>;

/** Random bytes for request ids, drawn 16 at a time and refilled when used up. */
const idPool = Buffer.alloc(4096);
let idOffset = idPool.length;

/**
 * The id of a request that brought no usable one of its own: 128 random bits in hex. Cut from a pool of random
 * bytes: `randomUUID()` with its dashes removed cost about 1 µs a request, this about a quarter of that.
 */
export function newRequestId(): string {
  if (idOffset === idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const id = `req_${idPool.toString('hex', idOffset, idOffset + 16)}`;
  idOffset += 16;
  return id;
}

export function principalOf(c: AppContext): Principal {
  return c.get('principal');
}

/** Upstream calls made for this request stop when the client goes away, unless `detached`. */
export function callContext(c: AppContext, detached = false): RequestContext {
  return { requestId: c.get('requestId'), timing: c.get('timing'), signal: detached ? undefined : c.req.raw.signal };
}

/**
 * Request headers are read from Node's own parsed headers: Hono's `c.req.header()` first builds a web
 * `Headers` object from every raw header, which cost about 10% of a poll's CPU.
 */
export function requestHeader(c: AppContext, name: string): string | undefined {
  const v = c.env.incoming.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Collected in a plain object and written with the answer, instead of Hono's `c.header()`, which allocates
 * a web `Headers` object per request and takes the answer off @hono/node-server's fast path.
 */
export function setResponseHeader(c: AppContext, name: string, value: string): void {
  c.get('responseHeaders')[name] = value;
}

/** The headers of an answer written straight to Node's response (downloads). */
export function responseHeaders(c: AppContext, own: Record<string, string>): Record<string, string> {
  return Object.assign({}, own, c.get('responseHeaders'));
}

/**
 * Every JSON answer of the gateway. A plain header object (a fresh one: @hono/node-server adds
 * content-length to it) keeps the answer on @hono/node-server's fast path; `c.json()` with more than one
 * header would build a web `Headers` object.
 */
export function json(c: AppContext, body: unknown, status = 200, extra?: Record<string, string>): Response {
  return jsonText(c, JSON.stringify(body), status, extra);
}

export function jsonText(c: AppContext, text: string, status = 200, extra?: Record<string, string>): Response {
  return new Response(text, { status, headers: Object.assign({ 'content-type': 'application/json' }, c.get('responseHeaders'), extra) });
}

export function setRateHeaders(c: AppContext, rate: RateInfo | null): void {
  if (!rate) return;
  setResponseHeader(c, 'x-ratelimit-limit-requests', String(rate.limit));
  setResponseHeader(c, 'x-ratelimit-remaining-requests', String(rate.remaining));
  setResponseHeader(c, 'x-ratelimit-reset-requests', `${Math.ceil(rate.resetMs / 1000)}s`);
}
