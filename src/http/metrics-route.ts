import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import { bearer, safeEqual } from './auth.js';
import { type AppEnv, json, requestHeader } from './context.js';
import { ApiError, notFound, serverError, toErrorBody, unauthorized, unknownRoute } from '../domain/errors.js';
import type { Config } from '../config.js';
import { UNMATCHED_ROUTE, type Metrics } from '../observability/metrics.js';

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

/** Who may read /metrics on a listener: anyone, the bearer of `token`, or nobody (it is not served there). */
export type MetricsAccess = { readonly open: true } | { readonly open: false; readonly token: string | undefined };

/**
 * /metrics names every team and its usage. The main listener is reachable by every client, so there it wants
 * METRICS_TOKEN, or else ADMIN_TOKEN, and with neither it is not served (404). METRICS_PORT is a listener of
 * its own, meant for a private interface that Prometheus scrapes as usual: open there unless METRICS_TOKEN is set.
 */
export function metricsAccess(config: Pick<Config, 'metrics' | 'adminToken'>, listener: 'main' | 'own'): MetricsAccess {
  if (listener === 'own') return config.metrics.token === undefined ? { open: true } : { open: false, token: config.metrics.token };
  return { open: false, token: config.metrics.token ?? config.adminToken };
}

/** `GET /metrics`: routes, team ids and counts, never a key, a path or a video id. */
export function metricsRoute(metrics: Metrics, access: MetricsAccess) {
  const app = new Hono<AppEnv>();
  app.get('/metrics', async (c) => {
    if (!access.open) {
      if (access.token === undefined) {
        throw notFound('Metrics are not served on this listener: set METRICS_TOKEN (or ADMIN_TOKEN) to serve them here to its bearer, or METRICS_PORT.', null, 'metrics_disabled');
      }
      const given = bearer(requestHeader(c, 'authorization'));
      if (!(given && safeEqual(given, access.token))) {
        throw unauthorized('Missing or incorrect metrics token. Pass METRICS_TOKEN (or, when it is unset, ADMIN_TOKEN) as "Authorization: Bearer <token>".');
      }
    }
    const { contentType, body } = await metrics.render();
    return new Response(body, { headers: { 'content-type': contentType } });
  });
  return app;
}

/** The listener of METRICS_PORT: /metrics and nothing else, errors in the OpenAI shape like the main one. */
export async function listenForMetrics(metrics: Metrics, opts: { port: number; host: string; access: MetricsAccess }): Promise<Server> {
  const app = new Hono<AppEnv>();
  app.route('/', metricsRoute(metrics, opts.access));
  app.notFound((c) => json(c, toErrorBody(unknownRoute(c.req.method, c.req.path)), 404));
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
