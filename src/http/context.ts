import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { RateInfo } from '../quota/policy.js';
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
  };
};

export type AppContext = Context<AppEnv>;

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
 * Headers every answer may carry (request id, rate limits) go onto Node's response, which merges them into
 * whatever the handler returns. Hono's `c.header()` would allocate a web `Headers` object per request and
 * take the response off @hono/node-server's fast path.
 */
export function setResponseHeader(c: AppContext, name: string, value: string): void {
  c.env.outgoing.setHeader(name, value);
}

export function setRateHeaders(c: AppContext, rate: RateInfo | null): void {
  if (!rate) return;
  setResponseHeader(c, 'x-ratelimit-limit-requests', String(rate.limit));
  setResponseHeader(c, 'x-ratelimit-remaining-requests', String(rate.remaining));
  setResponseHeader(c, 'x-ratelimit-reset-requests', `${Math.ceil(rate.resetMs / 1000)}s`);
}
