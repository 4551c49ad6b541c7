import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Clock, Refusal } from '../quota/policy.js';
import type { Admission, Charge, Store } from '../store/types.js';
import { boundHistogramChild, type HistogramChild } from './bound-histogram.js';

/**
 * The gateway's Prometheus metrics, on a registry of their own (several gateways may share a process, as in
 * the tests). Every label value comes from a closed set: route patterns, methods, statuses, operations,
 * outcomes, limits, scopes, upstream ids and team ids. Team ids are bounded by the operator's team list;
 * nothing a client chooses freely (a path, a video id, a key) ever becomes a label.
 */
export type UpstreamOperation = 'create' | 'status' | 'content' | 'delete' | 'probe';
export type UpstreamOutcome = 'ok' | 'http_4xx' | 'http_429' | 'http_5xx' | 'timeout' | 'connect_error' | 'network_error' | 'garbled' | 'aborted';

/** The label of every request that matched no route. */
export const UNMATCHED_ROUTE = 'unmatched';

/** Active-job gauges come from one store query, shared by scrapes this close together. */
export const STORE_STATS_CACHE_MS = 5_000;

const OPERATIONS: readonly UpstreamOperation[] = ['create', 'status', 'content', 'delete', 'probe'];
const OUTCOMES: readonly UpstreamOutcome[] = ['ok', 'http_4xx', 'http_429', 'http_5xx', 'timeout', 'connect_error', 'network_error', 'garbled', 'aborted'];
/** Admission refusals by the policy field that refused them. */
const LIMIT_OF: Record<Refusal['kind'], string> = {
  rate: 'requests_per_minute',
  concurrency: 'max_concurrent_jobs',
  day: 'video_seconds_per_day',
  month: 'video_seconds_per_month',
};
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

type CounterChild = { inc(value?: number): void };
export type WebhookResult = 'delivered' | 'retrying' | 'failed';

/**
 * A counter child whose increments add up here and reach prom-client when a scrape collects them: prom-client's
 * own inc hashes and validates the label set on every call, a measurable share of a poll's CPU. A series still
 * appears with its first increment, as before.
 */
class BatchedCount {
  private pending = 0;

  constructor(private readonly child: CounterChild) {}

  inc(): void {
    this.pending++;
  }

  flush(): void {
    if (this.pending === 0) return;
    this.child.inc(this.pending);
    this.pending = 0;
  }
}

/** The pair recorded for one upstream call, bound once per (operation, outcome). */
export interface UpstreamCallRecorder {
  record(operation: UpstreamOperation, outcome: UpstreamOutcome, seconds: number): void;
}

export class Metrics {
  readonly registry = new Registry();

  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  /** route → method → bound children: the hot path does map look-ups, no label hashing (see BatchedCount, boundHistogramChild). */
  private readonly httpChildren = new Map<string, Map<string, { duration: HistogramChild; byStatus: Map<number, BatchedCount> }>>();
  /** Every batched child of a counter, flushed when the counter is collected. */
  private readonly batchedHttp: BatchedCount[] = [];
  private readonly batchedUpstream: BatchedCount[] = [];
  private readonly upstreamRequests: Counter<'upstream' | 'operation' | 'outcome'>;
  private readonly upstreamDuration: Histogram<'upstream' | 'operation' | 'outcome'>;
  private readonly admissions: Record<'request' | 'job', CounterChild>;
  private readonly refusals: Counter<'limit' | 'scope'>;
  private readonly seconds: Record<Charge, Counter<'team'>>;
  private readonly uncertain: Counter;
  private readonly unrecorded: Counter;
  private readonly keyMissing: Counter<'upstream'>;
  private readonly webhooks: Record<WebhookResult, CounterChild>;
  private store: { store: Store; clock: Clock } | undefined;
  private createBuffer: { usage(): number } | undefined;
  private stats: { at: number; value: Promise<StoreStats | undefined> } | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const flushAll = (batched: readonly BatchedCount[]) => () => {
      for (const b of batched) b.flush();
    };
    this.httpRequests = new Counter({
      name: 'gateway_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
      collect: flushAll(this.batchedHttp),
    });
    this.httpDuration = new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Time to the response headers (downloads: until streaming starts), by method and route pattern.',
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamRequests = new Counter({
      name: 'gateway_upstream_requests_total',
      help: 'Calls to the upstream, by upstream, operation and outcome.',
      labelNames: ['upstream', 'operation', 'outcome'],
      registers,
      collect: flushAll(this.batchedUpstream),
    });
    this.upstreamDuration = new Histogram({
      name: 'gateway_upstream_request_duration_seconds',
      help: 'Time to the upstream response headers (or the failure), by upstream, operation and outcome.',
      labelNames: ['upstream', 'operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const admissions = new Counter({ name: 'gateway_quota_admissions_total', help: 'Quota admissions granted by the store: per-minute request checks and job reservations.', labelNames: ['kind'], registers });
    this.admissions = { request: admissions.labels('request'), job: admissions.labels('job') };
    this.refusals = new Counter({ name: 'gateway_quota_refusals_total', help: 'Requests refused by a quota, by the limit that refused them and its scope (team or key).', labelNames: ['limit', 'scope'], registers });
    const perTeam = (charge: Charge, help: string) =>
      new Counter({ name: `gateway_video_seconds_${charge}_total`, help, labelNames: ['team'], registers });
    this.seconds = {
      reserved: perTeam('reserved', 'Video-seconds reserved at admission (or again, when a create abandoned in doubt turned out accepted), by team.'),
      settled: perTeam('settled', 'Video-seconds charged for good (the job completed or was deleted while running), by team.'),
      refunded: perTeam('refunded', 'Video-seconds given back (the create failed or its outcome stayed unknown, or the job failed), by team.'),
    };
    this.uncertain = new Counter({
      name: 'gateway_uncertain_creates_total',
      help: 'Creates whose upstream answer never arrived (timeout, reset, garbled): refunded, though the upstream may have started a job.',
      registers,
    });
    this.unrecorded = new Counter({
      name: 'gateway_unrecorded_upstream_jobs_total',
      help: 'Jobs the upstream accepted that the store still had not recorded when the process stopped (each logged with its upstream task id).',
      registers,
    });
    this.keyMissing = new Counter({
      name: 'gateway_upstream_key_missing_total',
      help: "Jobs whose upstream key is no longer configured, called about with their upstream's first key instead (once per job and process), by upstream.",
      labelNames: ['upstream'],
      registers,
    });
    const webhooks = new Counter({
      name: 'gateway_webhook_deliveries_total',
      help: 'Webhook delivery attempts by result: delivered, retrying (failed, another attempt is scheduled) or failed (for good).',
      labelNames: ['outcome'],
      registers,
    });
    this.webhooks = { delivered: webhooks.labels('delivered'), retrying: webhooks.labels('retrying'), failed: webhooks.labels('failed') };
    const activeJobs: Gauge<'team'> = new Gauge({
      name: 'gateway_active_jobs',
      help: 'Jobs holding a concurrency slot (reserved, not yet ended), by team.',
      labelNames: ['team'],
      registers,
      collect: async () => {
        const stats = await this.storeStats();
        activeJobs.reset();
        for (const t of stats?.teams ?? []) activeJobs.set({ team: t.teamId }, t.jobs);
      },
    });
    const buffered: Gauge = new Gauge({
      name: 'gateway_create_buffer_bytes',
      help: 'Bytes of create bodies this process holds (read from clients, not yet sent upstream): near CREATE_BUFFER_BYTES, creates wait and are refused.',
      registers,
      collect: () => {
        if (this.createBuffer) buffered.set(this.createBuffer.usage());
      },
    });
    const lag: Gauge = new Gauge({
      name: 'gateway_reconciler_oldest_refresh_age_seconds',
      help: 'How long ago the least recently refreshed active job was last looked at upstream (0 when none is active): the reconciler lag.',
      registers,
      collect: async () => {
        const stats = await this.storeStats();
        if (stats) lag.set(stats.oldestRefreshAgeMs / 1000);
      },
    });
  }

  /** One answered request; `route` is the matched pattern or UNMATCHED_ROUTE, never the raw path. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.httpChildren.get(route);
    if (!byMethod) this.httpChildren.set(route, (byMethod = new Map()));
    let children = byMethod.get(method);
    if (!children) byMethod.set(method, (children = { duration: boundHistogramChild(this.httpDuration, { method, route }, LATENCY_BUCKETS), byStatus: new Map() }));
    let count = children.byStatus.get(status);
    if (!count) {
      children.byStatus.set(status, (count = new BatchedCount(this.httpRequests.labels(method, route, String(status)))));
      this.batchedHttp.push(count);
    }
    count.inc();
    children.duration.observe(seconds);
  }

  /** The recorder of one upstream's calls, its label children bound here once. */
  upstreamCalls(upstream: string): UpstreamCallRecorder {
    const bound = {} as Record<UpstreamOperation, Record<UpstreamOutcome, { count: BatchedCount; duration: HistogramChild }>>;
    for (const op of OPERATIONS) {
      bound[op] = {} as Record<UpstreamOutcome, { count: BatchedCount; duration: HistogramChild }>;
      for (const outcome of OUTCOMES) {
        const count = new BatchedCount(this.upstreamRequests.labels(upstream, op, outcome));
        this.batchedUpstream.push(count);
        bound[op][outcome] = { count, duration: boundHistogramChild(this.upstreamDuration, { upstream, operation: op, outcome }, LATENCY_BUCKETS) };
      }
    }
    return {
      record(op, outcome, seconds) {
        const c = bound[op][outcome];
        c.count.inc();
        c.duration.observe(seconds);
      },
    };
  }

  /** The final answer of an admission check (a refusal retried after freeing slots counts once, as answered). */
  admission(kind: 'request' | 'job', admission: Admission): void {
    if (admission.ok) this.admissions[kind].inc();
    else this.refusals.labels(LIMIT_OF[admission.refusal.kind], admission.refusal.scope).inc();
  }

  /** Where a store reports each move of a job's video-seconds, once per move. */
  readonly charge = (teamId: string, charge: Charge, seconds: number): void => {
    this.seconds[charge].labels(teamId).inc(seconds);
  };

  uncertainCreate(): void {
    this.uncertain.inc();
  }

  unrecordedJob(): void {
    this.unrecorded.inc();
  }

  upstreamKeyMissing(upstream: string): void {
    this.keyMissing.labels(upstream).inc();
  }

  webhookDelivery(result: WebhookResult): void {
    this.webhooks[result].inc();
  }

  /** Gauges read from the store on scrape (active jobs, reconciler lag). */
  watchStore(store: Store, clock: Clock): void {
    this.store = { store, clock };
  }

  /** The gauge of the create bodies held, read on scrape. */
  watchCreateBuffer(buffer: { usage(): number }): void {
    this.createBuffer = buffer;
  }

  private storeStats(): Promise<StoreStats | undefined> {
    if (!this.store) return Promise.resolve(undefined);
    const { store, clock } = this.store;
    // On the gateway's clock, as job ages are.
    const now = clock.now();
    if (this.stats && now - this.stats.at < STORE_STATS_CACHE_MS) return this.stats.value;
    // A store that does not answer leaves the gauges out of this scrape rather than failing all of it.
    const value = store.activeJobStats().then(
      (teams) => {
        const oldest = Math.min(...teams.map((t) => t.oldestRefreshMs));
        return { teams, oldestRefreshAgeMs: teams.length ? Math.max(0, now - oldest) : 0 };
      },
      () => undefined,
    );
    this.stats = { at: now, value };
    return value;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

interface StoreStats {
  readonly teams: ReadonlyArray<{ teamId: string; jobs: number; oldestRefreshMs: number }>;
  readonly oldestRefreshAgeMs: number;
}
