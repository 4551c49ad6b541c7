import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import { bearer, safeEqual } from '../http/auth.js';
import { type AppEnv, json, requestHeader } from '../http/context.js';
import { quoted } from '../http/text.js';
import { ApiError, notFound, serverError, toErrorBody, unauthorized } from '../http/errors.js';
import { UNMATCHED_ROUTE, type Metrics } from './metrics.js';

/**
 * The pattern of the route that answered (`/v1/videos/:video_id`), also when a middleware refused the request
 * before it got there; UNMATCHED_ROUTE when no route matched. Middlewares are registered for every method.
 */
export function routeLabel(c: Context): string {
  const routes = matchedRoutes(c);
  for (let i = routes.length - 1; i >= 0; i--) {
    if (routes[i]!.method !== 'ALL') return routes[i]!.path;
  }
  return UNMATCHED_ROUTE;
}

/**
 * `GET /metrics`. Without METRICS_TOKEN it is open, as Prometheus endpoints usually are: it names routes,
 * team ids and counts, never a key, a path or a video id. Set the token (or METRICS_PORT on a private
 * interface) when the listener is reachable by people who should not see which teams use the gateway.
 */
export function metricsRoute(metrics: Metrics, token: string | undefined) {
  const app = new Hono<AppEnv>();
  app.get('/metrics', async (c) => {
    const given = bearer(requestHeader(c, 'authorization'));
    if (token && !(given && safeEqual(given, token))) throw unauthorized('Missing or incorrect metrics token. Pass it as "Authorization: Bearer <METRICS_TOKEN>".');
    const { contentType, body } = await metrics.render();
    return new Response(body, { headers: { 'content-type': contentType } });
  });
  return app;
}

/** The listener of METRICS_PORT: /metrics and nothing else, errors in the OpenAI shape like the main one. */
export async function listenForMetrics(metrics: Metrics, opts: { port: number; host: string; token: string | undefined }): Promise<Server> {
  const app = new Hono<AppEnv>();
  app.route('/', metricsRoute(metrics, opts.token));
  app.notFound((c) => json(c, toErrorBody(notFound(`Unknown route: ${c.req.method} ${quoted(c.req.path)}`, null, 'unknown_route')), 404));
  app.onError((err, c) => {
    const e = err instanceof ApiError ? err : serverError();
    return json(c, toErrorBody(e), e.status, e.headers);
  });
  return new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port, hostname: opts.host }, () => {
      s.off('error', reject);
      resolve(s);
    }) as Server;
    s.once('error', reject);
  }).catch((err: Error) => {
    throw new Error(`cannot listen for metrics on ${opts.host}:${opts.port}: ${err.message}`);
  });
}
