import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { AdminService } from './admin/service.js';
import { createApp } from './app.js';
import { ConfigError, DEMO_API_KEY, type Config } from './config.js';
import { Authenticator } from './http/auth.js';
import { TransportErrors } from './http/transport.js';
import type { Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { listenForMetrics, metricsAccess } from './http/metrics-route.js';
import { chargeListener } from './observability/spend.js';
import { systemClock, type Clock } from './domain/quota-policy.js';
import { openStore } from './store/open.js';
import type { JobRecord } from './domain/job.js';
import type { Store } from './store/types.js';
import { DueWriter } from './tracking/due-writer.js';
import { CheckRecorder } from './tracking/recorder.js';
import { RecentEnds } from './tracking/recent-ends.js';
import { StatusBudget } from './tracking/status-budget.js';
import { Tracker } from './tracking/tracker.js';
import { DEFAULT_UPSTREAM_ID } from './upstream/client.js';
import type { UpstreamKind } from './domain/upstream-kinds.js';
import { UpstreamRouter, type UpstreamSpec } from './upstream/router.js';
import { openStorage, type Storage } from './storage/open.js';
import { VideoJobs } from './videos/jobs.js';
import { ModelCatalog } from './domain/models.js';
import { Pricing } from './domain/pricing.js';
import { upstreamPrices } from './upstream-prices.js';
import { RequestCounter } from './quota/request-counter.js';
import { DestinationPolicy, type ResolveHost } from './webhooks/destination.js';
import { WebhookSender } from './webhooks/sender.js';
import { WebhookWorker } from './webhooks/worker.js';
import { BudgetAlerts } from './webhooks/budget-alerts.js';

const DRAIN_SWEEP_MS = 100;
/**
 * Creates still waiting on the upstream this long before the drain deadline are answered then (an error with
 * `x-should-retry: false`) rather than dropped with their connection, which the SDKs would retry.
 */
const CREATE_ANSWER_RESERVE_MS = 3_000;
/** The drain's last stretch: upstream calls still in flight are cut, their creates refunded, the store closed. */
const CLOSE_RESERVE_MS = 1_000;
/** The most of a short deadline that either reserve takes. */
const CREATE_ANSWER_RESERVE_SHARE = 0.3;
const CLOSE_RESERVE_SHARE = 0.1;
const TRACK_LEASE_MIN_MS = 60_000;
/**
 * Status calls in flight at once from the tracker to one upstream: a second's budget (so that answers within
 * a second keep up with it), within these bounds.
 */
const TRACKER_CALLS_PER_UPSTREAM = { min: 16, max: 128 };
/** Jobs the tracker holds at once: two seconds' worth of its upstreams' budgets, within these bounds. */
const TRACKER_HELD = { min: 64, max: 1_000 };
const clampTo = (n: number, bounds: { min: number; max: number }) => Math.min(bounds.max, Math.max(bounds.min, n));

export interface GatewayOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Where the one-upstream shorthand's upstream is (UPSTREAM_BASE_URL, or a test's simulator). */
  readonly upstreamBaseUrl?: string | undefined;
  readonly upstreamApiKeys?: readonly string[];
  /** The upstreams main.ts runs itself when none is configured (its simulators, one per kind), in place of the shorthand. */
  readonly localUpstreams?: readonly LocalUpstream[];
  readonly store?: Store;
  readonly clock?: Clock;
  /** The demo key is accepted only while the gateway runs against its own simulator. */
  readonly acceptDemoKey?: boolean;
  /** DNS for webhook destinations; tests make names resolve where they need them to. */
  readonly resolveHost?: ResolveHost;
}

export interface Gateway {
  readonly url: string;
  /** Where /metrics is served: `url` unless METRICS_PORT gave it a listener of its own. */
  readonly metricsUrl: string;
  /** The routes it serves, for checking the OpenAPI document against them. */
  readonly app: ReturnType<typeof createApp>;
  readonly server: Server;
  readonly store: Store;
  readonly jobs: VideoJobs;
  readonly tracker: Tracker;
  readonly webhooks: WebhookWorker;
  readonly budgetAlerts: BudgetAlerts;
  readonly auth: Authenticator;
  /** Stored results (§12); undefined with STORAGE_URL=none. */
  readonly storage: Storage | undefined;
  /** Stops taking connections, lets in-flight requests and downloads finish until the deadline, then closes. */
  shutdown(deadlineMs?: number): Promise<void>;
}

/** An upstream given whole rather than in CONFIG_FILE: it serves every model its kind knows, all at one priority. */
export interface LocalUpstream {
  readonly id: string;
  readonly kind: UpstreamKind;
  readonly baseUrl: string;
  readonly keys: readonly string[];
  readonly mediaHosts: readonly string[];
}

/**
 * The upstreams to route to: CONFIG_FILE's, each model it lists checked against the model table (known, and
 * known to the upstream's kind), or else main.ts's simulators or the one-upstream shorthand, each serving
 * every model its kind knows.
 */
function upstreamSpecs(opts: GatewayOptions, catalog: ModelCatalog): UpstreamSpec[] {
  const { config } = opts;
  const timeouts = config.upstream;
  if (!config.upstreams) {
    const local = opts.localUpstreams ?? [shorthandUpstream(opts)];
    return local.map((u) => ({
      ...u,
      models: new Map(catalog.idsOfKind(u.kind).map((id) => [id, id])),
      priority: 0,
      weight: 1,
      timeouts,
    }));
  }
  return config.upstreams.map((u) => {
    const models = new Map<string, string>();
    for (const m of u.models) {
      const spec = catalog.resolve(m.name);
      if (!spec) throw new ConfigError(`upstream ${u.id}: model ${m.name} is not in the model table`);
      if (!spec.kinds[u.kind]) throw new ConfigError(`upstream ${u.id}: model ${m.name} is not known to the ${u.kind} kind`);
      models.set(spec.id, m.upstreamName === m.name ? spec.id : m.upstreamName);
    }
    return { id: u.id, kind: u.kind, baseUrl: u.baseUrl, keys: u.keys, mediaHosts: u.mediaHosts, models, priority: u.priority, weight: u.weight, timeouts };
  });
}

function shorthandUpstream(opts: GatewayOptions): LocalUpstream {
  const { config } = opts;
  if (!opts.upstreamBaseUrl) throw new ConfigError('no upstream: set UPSTREAM_BASE_URL or upstreams in CONFIG_FILE');
  return {
    id: DEFAULT_UPSTREAM_ID,
    kind: config.upstreamKind,
    baseUrl: opts.upstreamBaseUrl,
    keys: opts.upstreamApiKeys ?? config.upstreamApiKeys,
    mediaHosts: config.upstreamMediaHosts,
  };
}

/** Wires config → store → upstream → app and listens. Tests start it exactly as main.ts does. */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const { config, logger } = opts;
  const clock = opts.clock ?? systemClock;
  const catalog = new ModelCatalog(config.models, config.defaultModel);
  const specs = upstreamSpecs(opts, catalog);
  const pricing = new Pricing(catalog, upstreamPrices(config.upstreams, catalog));
  const metrics = new Metrics();
  // The alerts need the store, which tells of spend through the listener it is opened with.
  let alerts: BudgetAlerts | undefined;
  const store = opts.store ?? (await openStore(config, chargeListener(metrics, logger, (teamId) => alerts?.check(teamId))));
  alerts = new BudgetAlerts({ store, clock, logger });
  metrics.watchStore(store, clock);
  const upstream = new UpstreamRouter(specs, { metrics, logger, clock, policy: config.routing });
  const staticKeys = config.staticApiKeys.map((key, i) => ({ key, id: `static-${i + 1}` }));
  if (opts.acceptDemoKey) staticKeys.push({ key: DEMO_API_KEY, id: 'demo' });
  const auth = new Authenticator(store, clock, staticKeys, config.keyCacheMs);
  const requests = new RequestCounter(store, clock, logger);
  const destinations = new DestinationPolicy(config.webhooks.allowedHosts, opts.resolveHost);
  const admin = new AdminService(store, clock, catalog, destinations, config.storage.target?.kind ?? null, { beforeUsage: () => requests.flush() });
  const webhookSender = new WebhookSender(destinations, config.webhooks.timeoutMs);
  const webhooks = new WebhookWorker({ store, sender: webhookSender, clock, logger, metrics }, config.webhooks);
  const storage = openStorage(config.storage, { store, upstream, clock, logger, metrics });
  const budget = new StatusBudget(config.upstreamStatusRps, metrics);
  const dueWriter = new DueWriter({ store, clock, logger });
  const upstreamOf = (job: JobRecord) => upstream.upstreamIdOf(job);
  const recentEnds = new RecentEnds();
  const recorder = new CheckRecorder({
    writer: dueWriter,
    budget,
    upstreamOf,
    catalog,
    clock,
    metrics,
    recent: recentEnds,
    maxJobAgeMs: config.maxJobAgeMs,
    // The event of a job that just ended is sent at once, not at the worker's next look.
    onEnded: () => webhooks.wake(),
  });
  const jobs = new VideoJobs({ store, upstream, catalog, pricing, logger, metrics, clock, statusCacheMs: config.statusCacheMs, watch: recorder, results: storage?.results });
  const tracker = new Tracker(
    { store, jobs, recorder, writer: dueWriter, budget, upstreamOf, logger, clock },
    {
      idleMs: config.reconcileIntervalMs,
      maxJobAgeMs: config.maxJobAgeMs,
      pendingGraceMs: config.upstream.timeoutMs * 2,
      // A check takes at most an upstream timeout; a replica killed mid-check holds its jobs this long at most.
      leaseMs: Math.max(TRACK_LEASE_MIN_MS, config.upstream.timeoutMs * 2),
      maxHeld: clampTo(2 * config.upstreamStatusRps * specs.length, TRACKER_HELD),
      callsPerUpstream: clampTo(config.upstreamStatusRps, TRACKER_CALLS_PER_UPSTREAM),
    },
  );
  let draining = false;
  const app = createApp({ config, store, upstream, jobs, auth, admin, requests, catalog, logger, metrics, clock, recentEnds, isDraining: () => draining });

  const transport = new TransportErrors(logger);
  // HTTP/1.0 requests without a Host are still served (health probes send those), as if sent to config.host.
  const listener = getRequestListener(app.fetch, { hostname: config.host, errorHandler: transport.onRequestError });
  // node:http would answer a missing Host itself, with an empty 400: lacksHost answers it in the OpenAI shape.
  const server = createServer({ requireHostHeader: false }, (req, res) => void (transport.lacksHost(req, res) || listener(req, res)));
  server.on('clientError', transport.onClientError);
  server.on('checkExpectation', transport.onCheckExpectation);
  server.on('connect', transport.onConnect);
  await new Promise<void>((resolve, reject) => {
    // A port already taken is a start-up error for main.ts to report, not an unhandled event.
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (err: Error) => {
    await Promise.all([upstream.close(), store.close()]);
    throw new Error(`cannot listen on ${config.host}:${config.port}: ${err.message}`);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const metricsServer =
    config.metrics.port === undefined
      ? undefined
      : await listenForMetrics(metrics, { port: config.metrics.port, host: config.host, access: metricsAccess(config, 'own') }).catch(async (err: Error) => {
          server.close();
          await Promise.all([upstream.close(), store.close()]);
          throw err;
        });
  tracker.start();
  requests.start();
  webhooks.start();
  storage?.start();
  const url = urlOf(server);

  let closing: Promise<void> | undefined;
  /**
   * The drain, all of it within `deadlineMs` (SHUTDOWN_TIMEOUT_MS, which the container's stop timeout must
   * exceed): requests and downloads finish; creates still waiting on the upstream near the end are answered;
   * at the cut, whatever is left is ended, accepted jobs recorded, and the store closed.
   */
  const shutdown = (deadlineMs = config.shutdownTimeoutMs) =>
    (closing ??= (async () => {
      const startedAt = performance.now();
      /** `work`, or the moment `atMs` into the drain, whichever comes first. */
      const until = async (atMs: number, work: Promise<unknown>) => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, startedAt + atMs - performance.now()))));
        await Promise.race([work.catch((err: unknown) => logger.error({ err: { message: (err as Error).message } }, 'drain step failed')), late]);
        clearTimeout(timer);
      };
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections turn idle as their last response (a download, say) ends: close each then.
      const sweeper = setInterval(() => server.closeIdleConnections(), DRAIN_SWEEP_MS);
      server.closeIdleConnections();
      await until(deadlineMs - Math.min(CREATE_ANSWER_RESERVE_MS, deadlineMs * CREATE_ANSWER_RESERVE_SHARE), closed);
      // Answered now, while their connections are still open; each create runs on, so that a job the upstream
      // accepts before the cut is still recorded.
      jobs.answerCreatesNow();
      const cutAt = deadlineMs - Math.min(CLOSE_RESERVE_MS, deadlineMs * CLOSE_RESERVE_SHARE);
      await until(cutAt, Promise.all([closed, jobs.createsSettled()]));
      clearInterval(sweeper);
      server.closeAllConnections();
      // Alerts still being checked are queued before the outbox worker stops.
      const background = Promise.all([tracker.stop(), alerts.idle().then(() => webhooks.stop()), storage?.stop()]);
      // Cuts every upstream call still in flight: a create cut here is refunded as one whose answer never came.
      await until(deadlineMs, upstream.close());
      await until(deadlineMs, Promise.all([background, webhookSender.close(), jobs.close()]));
      await until(deadlineMs, requests.stop());
      await until(deadlineMs, store.close());
      // Last, so that the drain itself can be watched.
      metricsServer?.closeAllConnections();
      metricsServer?.close();
    })());

  return { url, metricsUrl: metricsServer ? urlOf(metricsServer) : url, app, server, store, jobs, tracker, webhooks, budgetAlerts: alerts, auth, storage, shutdown };
}

function urlOf(server: Server): string {
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
}
