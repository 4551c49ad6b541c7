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

export function setRateHeaders(c: AppContext, rate: RateInfo | null): void {
  if (!rate) return;
  c.header('x-ratelimit-limit-requests', String(rate.limit));
  c.header('x-ratelimit-remaining-requests', String(rate.remaining));
  c.header('x-ratelimit-reset-requests', `${Math.ceil(rate.resetMs / 1000)}s`);
}
