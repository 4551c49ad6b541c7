import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Charge, DueChecks, MoneyMove } from '../domain/job.js';
import type { Admission, Clock, Refusal } from '../domain/quota-policy.js';
import { microsToUsd } from '../domain/money.js';
import { DEFAULT_UPSTREAM_ID } from '../domain/upstream-kinds.js';
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

/** Gauges read from the store come from one query each, shared by scrapes this close together. */
export const STORE_STATS_CACHE_MS = 5_000;

const OPERATIONS: readonly UpstreamOperation[] = ['create', 'status', 'content', 'delete', 'probe'];
const OUTCOMES: readonly UpstreamOutcome[] = ['ok', 'http_4xx', 'http_429', 'http_5xx', 'timeout', 'connect_error', 'network_error', 'garbled', 'aborted'];
/** Admission refusals by the policy field that refused them. */
const LIMIT_OF: Record<Refusal['kind'], string> = {
  rate: 'requests_per_minute',
  concurrency: 'max_concurrent_jobs',
  day: 'video_seconds_per_day',
  month: 'video_seconds_per_month',
  usd_day: 'usd_per_day',
  usd_month: 'usd_per_month',
};
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Around the 5 s the contract allows (§11), and far past it. */
const NOTICE_LAG_BUCKETS = [0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900];
const CHECKS_BUCKETS = [1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100];

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

/** What the gauges read on scrape: the store, handed over at composition (this module imports none). */
export interface StoreGauges {
  activeJobStats(): Promise<Array<{ teamId: string; jobs: number }>>;
  /** The tracker's backlog: checks due and not taken, and how soon the next one not taken is due (negative: late). */
  dueChecks(nowMs: number): Promise<DueChecks>;
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
  private readonly spend: Counter<'team' | 'model' | 'upstream' | 'source'>;
  private readonly settlementDifference: Counter<'direction'>;
  private readonly unpriced: Counter<'model'>;
  private readonly uncertain: Counter;
  private readonly unrecorded: Counter;
  private readonly keyMissing: Counter<'upstream'>;
  private readonly webhooks: Record<WebhookResult, CounterChild>;
  private readonly noticeLag: HistogramChild;
  private readonly checksPerJob: HistogramChild;
  private readonly budgetExhausted: Counter<'upstream'>;
  private readonly budgetExhaustedBy = new Map<string, BatchedCount>();
  private readonly batchedBudget: BatchedCount[] = [];
  private store: { store: StoreGauges; clock: Clock } | undefined;
  private createBuffer: { usage(): number } | undefined;
  private stats: { at: number; value: Promise<ActiveJobStats | undefined> } | undefined;
  private due: { at: number; value: Promise<DueChecks | undefined> } | undefined;

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
    this.spend = new Counter({
      name: 'gateway_spend_usd_total',
      help: 'US dollars settled for good (completed jobs, at their actual cost), by team, model, upstream and where the cost came from (upstream or price).',
      labelNames: ['team', 'model', 'upstream', 'source'],
      registers,
    });
    this.settlementDifference = new Counter({
      name: 'gateway_spend_settlement_difference_usd_total',
      help: 'How far actual costs settled from the estimates reserved for them, in US dollars: above (charged more) or below.',
      labelNames: ['direction'],
      registers,
    });
    this.unpriced = new Counter({
      name: 'gateway_spend_unpriced_jobs_total',
      help: 'Jobs settled with an unknown cost (no price and no upstream figure): counted here, never as $0.',
      labelNames: ['model'],
      registers,
    });
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
    this.noticeLag = new Histogram({
      name: 'gateway_job_end_notice_lag_seconds',
      help: "Time from a job's end upstream to the gateway noticing it, at most: from the later of the check before (which saw it running) and the end time the upstream reports.",
      buckets: NOTICE_LAG_BUCKETS,
      registers,
    });
    this.checksPerJob = new Histogram({
      name: 'gateway_job_status_checks',
      help: 'Upstream status calls made for a job (client polls and the tracker alike), observed when its end is noticed.',
      buckets: CHECKS_BUCKETS,
      registers,
    });
    this.budgetExhausted = new Counter({
      name: 'gateway_upstream_status_budget_exhausted_total',
      help: "Client requests answered with the last known status because the upstream's status calls (UPSTREAM_STATUS_RPS) were spent, by upstream.",
      labelNames: ['upstream'],
      registers,
      collect: flushAll(this.batchedBudget),
    });
    const dueJobs: Gauge = new Gauge({
      name: 'gateway_tracker_due_jobs',
      help: 'Active jobs whose next status check is due and that no tracker has taken yet: the backlog.',
      registers,
      collect: async () => {
        const due = await this.dueChecks();
        if (due) dueJobs.set(due.due);
      },
    });
    const overdue: Gauge = new Gauge({
      name: 'gateway_tracker_overdue_seconds',
      help: 'How late the most overdue status check not yet taken is (0 when none is late).',
      registers,
      collect: async () => {
        const due = await this.dueChecks();
        if (due) overdue.set(Math.max(0, -(due.nextInMs ?? 0)) / 1000);
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

  /** Each move of a job's video-seconds, once per move, and the money a settlement moves. */
  charge(teamId: string, charge: Charge, seconds: number, money: MoneyMove): void {
    this.seconds[charge].labels(teamId).inc(seconds);
    if (charge !== 'settled') return;
    if (money.source === null) {
      this.unpriced.labels(money.model).inc();
      return;
    }
    // Jobs from before upstreams had ids were placed by the one upstream of the time.
    this.spend.labels(teamId, money.model, money.upstream ?? DEFAULT_UPSTREAM_ID, money.source).inc(microsToUsd(money.micros));
    const difference = money.micros - (money.estimateMicros ?? 0);
    if (difference !== 0) this.settlementDifference.labels(difference > 0 ? 'above' : 'below').inc(microsToUsd(Math.abs(difference)));
  }

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

  /** A job's end seen by a status check: how late at most (undefined: the upstream gave no answer, the job was lost), after how many calls. */
  jobEndNoticed(lagMs: number | undefined, checks: number): void {
    if (lagMs !== undefined) this.noticeLag.observe(lagMs / 1000);
    this.checksPerJob.observe(checks);
  }

  statusBudgetExhausted(upstream: string): void {
    let count = this.budgetExhaustedBy.get(upstream);
    if (!count) {
      this.budgetExhaustedBy.set(upstream, (count = new BatchedCount(this.budgetExhausted.labels(upstream))));
      this.batchedBudget.push(count);
    }
    count.inc();
  }

  /** Gauges read from the store on scrape (active jobs, the tracker's backlog). */
  watchStore(store: StoreGauges, clock: Clock): void {
    this.store = { store, clock };
  }

  /** The gauge of the create bodies held, read on scrape. */
  watchCreateBuffer(buffer: { usage(): number }): void {
    this.createBuffer = buffer;
  }

  private storeStats(): Promise<ActiveJobStats | undefined> {
    if (!this.store) return Promise.resolve(undefined);
    const { store, clock } = this.store;
    const now = clock.now();
    if (this.stats && now - this.stats.at < STORE_STATS_CACHE_MS) return this.stats.value;
    // A store that does not answer leaves the gauges out of this scrape rather than failing all of it.
    const value = store.activeJobStats().then(
      (teams) => ({ teams }),
      () => undefined,
    );
    this.stats = { at: now, value };
    return value;
  }

  private dueChecks(): Promise<DueChecks | undefined> {
    if (!this.store) return Promise.resolve(undefined);
    const { store, clock } = this.store;
    const now = clock.now();
    if (this.due && now - this.due.at < STORE_STATS_CACHE_MS) return this.due.value;
    const value = store.dueChecks(now).catch(() => undefined);
    this.due = { at: now, value };
    return value;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

interface ActiveJobStats {
  readonly teams: ReadonlyArray<{ teamId: string; jobs: number }>;
}
