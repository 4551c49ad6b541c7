import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { DEMO_API_KEY, type Config } from './config.js';
import { adminRoutes } from './admin/routes.js';
import { consoleRoutes } from './admin/console.js';
import { bearer, refusedKeyMessage, type Authenticator } from './http/auth.js';
import { READINESS_PROBE_INTERVAL_MS, SharedProbe } from './http/readiness.js';
import { PerMethodRouter } from './http/router.js';
import { type AppEnv, json, jsonText, newRequestId, requestHeader, setRateHeaders } from './http/context.js';
import { ApiError, serverError, storeUnavailable, toErrorBody, unauthorized, unknownRoute } from './domain/errors.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { metricsAccess, metricsRoute, routeLabel } from './http/metrics-route.js';
import { openApiJson } from './openapi/document.js';
import type { Clock } from './domain/quota-policy.js';
import { refusalToError } from './quota/refusals.js';
import type { RequestCounter } from './quota/request-counter.js';
import { StoreUnavailableError, type Store } from './store/types.js';
import type { UpstreamRouter } from './upstream/router.js';
import type { VideoJobs } from './videos/jobs.js';
import type { AdminService } from './admin/service.js';
import type { RecentEnds } from './tracking/recent-ends.js';
import type { ModelCatalog } from './domain/models.js';
import { videoRoutes } from './http/video-routes.js';

export interface AppDeps {
  readonly config: Config;
  readonly store: Store;
  readonly upstream: UpstreamRouter;
  readonly jobs: VideoJobs;
  readonly auth: Authenticator;
  readonly admin: AdminService;
  readonly requests: RequestCounter;
  readonly catalog: ModelCatalog;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** The latest job ends this process noticed (GET /admin/tracking). */
  readonly recentEnds: RecentEnds;
  /** Set while draining: /readyz turns 503 so that load balancers stop sending traffic. */
  readonly isDraining: () => boolean;
}

const CLIENT_REQUEST_ID = /^[\w.:-]{1,128}$/;
const READY_TIMEOUT_MS = 2_000;

function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException) return new ApiError({ status: err.status, type: 'invalid_request_error', message: err.message || 'Bad request.' });
  if (err instanceof StoreUnavailableError) return storeUnavailable();
  return undefined;
}

/** Builds the whole HTTP surface from injected parts; only main.ts listens. */
export function createApp(deps: AppDeps) {
  const { store, upstream, auth, logger, clock } = deps;
  const app = new Hono<AppEnv>({ router: new PerMethodRouter() });

  app.use('*', async (c, next) => {
    const started = performance.now();
    const given = requestHeader(c, 'x-request-id');
    const requestId = given && CLIENT_REQUEST_ID.test(given) ? given : newRequestId();
    c.set('requestId', requestId);
    c.set('timing', { status: undefined, durationMs: 0 });
    c.set('responseHeaders', { 'x-request-id': requestId });
    await next();
    const sent = c.get('sentStatus');
    deps.metrics.httpRequest(c.req.method, routeLabel(c), sent ?? c.res.status, (performance.now() - started) / 1000);
    // While draining, a request that still arrives on a kept-alive connection is served, then the connection ends.
    if (sent === undefined && deps.isDraining()) c.env.outgoing.setHeader('connection', 'close');
    if (!logger.isLevelEnabled('info')) return;
    const principal = c.get('principal');
    const timing = c.get('timing');
    logger.info(
      {
        requestId,
        method: c.req.method,
        route: c.req.routePath,
        path: c.req.path,
        status: sent ?? c.res.status,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
        teamId: principal?.teamId,
        keyId: principal?.keyId,
        upstream: timing.upstream,
        upstreamStatus: timing.status,
        upstreamMs: timing.status !== undefined ? Math.round(timing.durationMs * 100) / 100 : undefined,
      },
      'request',
    );
  });

  app.onError((err, c) => {
    const apiError = toApiError(err);
    if (!apiError) logger.error({ requestId: c.get('requestId'), err: { message: err.message, stack: err.stack } }, 'unhandled error');
    else if (err instanceof StoreUnavailableError) logger.warn({ requestId: c.get('requestId'), err: { message: err.message } }, 'store unavailable');
    const e = apiError ?? serverError();
    return json(c, toErrorBody(e), e.status, e.headers);
  });
  app.notFound((c) => {
    const e = unknownRoute(c.req.method, c.req.path);
    return json(c, toErrorBody(e), 404);
  });

  app.get('/healthz', (c) => json(c, { status: 'ok' }));
  const storeProbe = new SharedProbe(() => store.ping(), READINESS_PROBE_INTERVAL_MS);
  const upstreamProbe = new SharedProbe(() => upstream.ping(AbortSignal.timeout(READY_TIMEOUT_MS)), READINESS_PROBE_INTERVAL_MS);
  app.get('/readyz', async (c) => {
    if (deps.isDraining()) return json(c, { status: 'draining' }, 503);
    const [storeOk, upstreamOk] = await Promise.all([storeProbe.check(), upstreamProbe.check()]);
    const body = { status: storeOk && upstreamOk ? 'ready' : 'not_ready', store: storeOk ? 'ok' : 'down', upstream: upstreamOk ? 'ok' : 'down' };
    return json(c, body, storeOk && upstreamOk ? 200 : 503);
  });

  // No secret in it, and the same for every caller: no auth, and caches may keep it a while. Built on first use.
  let openApi: string | undefined;
  const documented = { models: deps.catalog.names((id) => upstream.serves(id)), without: deps.config.metrics.port === undefined ? [] : ['getMetrics'] };
  app.get('/openapi.json', (c) => jsonText(c, (openApi ??= openApiJson(documented)), 200, { 'cache-control': 'public, max-age=300' }));

  app.use('/v1/*', async (c, next) => {
    const key = bearer(requestHeader(c, 'authorization'));
    const principal = auth.known(key) ?? (await auth.authenticate(key));
    if (!principal) throw unauthorized(refusedKeyMessage(key, deps.config.adminToken, DEMO_API_KEY));
    c.set('principal', principal);
    // Every request counts, a create too and before its body is read: a create refused here, or later as
    // invalid, has cost the gateway no upload (and its concurrency and seconds are admitted separately).
    if (principal.keyPolicy.requests_per_minute === undefined && principal.teamPolicy.requests_per_minute === undefined) {
      deps.requests.add(principal);
    } else {
      const admission = await store.admitRequest(principal, clock.now());
      deps.metrics.admission('request', admission);
      if (!admission.ok) throw refusalToError(admission.refusal);
      setRateHeaders(c, admission.rate);
    }
    await next();
  });
  // With a port of its own (METRICS_PORT), /metrics is served there only.
  if (deps.config.metrics.port === undefined) app.route('/', metricsRoute(deps.metrics, metricsAccess(deps.config, 'main')));
  app.route('/v1', videoRoutes(deps));
  // Before the admin API: the console's files are public, and its routes answer before the API's bearer check.
  app.route('/admin', consoleRoutes());
  app.route('/admin', adminRoutes(deps));
  return app;
}
