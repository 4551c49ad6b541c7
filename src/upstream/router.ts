import { LRUCache } from 'lru-cache';
import { type ApiError, modelNotServed, upstreamBadGateway, upstreamUnavailable } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../domain/quota-policy.js';
import type { JobRecord } from '../domain/job.js';
import type { UpstreamTask } from './dialects/task.js';
import { kindRefusal, type NormalizedVideoRequest } from '../domain/request.js';
import { failureOf, fingerprint, type CallContext, type ContentStream, type UpstreamTiming } from './client.js';
import { makeProvider, type ProviderSettings } from './providers/index.js';
import type { ContentOptions, DerivedCall, JobRef, Provider } from './providers/types.js';
import type { UpstreamKind } from '../domain/upstream-kinds.js';

export interface UpstreamSpec extends Omit<ProviderSettings, 'calls'> {
  readonly id: string;
  readonly kind: UpstreamKind;
  /** Gateway model id → the name this upstream knows it by. */
  readonly models: ReadonlyMap<string, string>;
  /** Lower goes first; among equals creates are spread by `weight`. */
  readonly priority: number;
  readonly weight: number;
}

export interface RoutingPolicy {
  /** Consecutive connection failures or 5xx answers that open an upstream's breaker. */
  readonly breakerFailures: number;
  /** How long an open breaker keeps creates away before one create probes the upstream again. */
  readonly breakerCooldownMs: number;
  /** How long a key the upstream refused (401/403) rests. */
  readonly keyCooldownMs: number;
  /** How long a rate-limited key rests when the 429 named no retry-after. */
  readonly rateLimitCooldownMs: number;
}

/** A create attempt that certainly started no job; `byKey`: the key was refused (401/403, 429), not the upstream. */
interface Refusal {
  readonly refusal: ApiError;
  readonly byKey: boolean;
}

/** Which upstream and key created a job: every later call about it goes to the same pair. */
export interface Placement {
  readonly task: UpstreamTask;
  readonly upstream: string;
  readonly keyFingerprint: string;
}

export interface UpstreamView {
  readonly id: string;
  readonly kind: UpstreamKind;
  readonly models: string[];
  readonly state: 'closed' | 'open' | 'half_open';
  readonly keys: Array<{ fingerprint: string; state: 'ready' | 'cooling'; cooling_until: number | null }>;
  readonly recent: { requests: number; errors: number; p50_ms: number | null };
}

interface Key {
  readonly key: string;
  readonly fp: string;
  /** Epoch ms until which creates leave this key alone. */
  coolingUntil: number;
}

/** The last RECENT_CALLS calls of an upstream, for the admin view's error rate and latency. */
const RECENT_CALLS = 200;

/**
 * An upstream's breaker: `breakerFailures` consecutive connection failures or 5xx answers open it; after the
 * cool-down one create is let through as the probe, whose success closes it and whose failure opens it again.
 * It gates creates only: calls about existing jobs have nowhere else to go.
 */
class Breaker {
  private failures = 0;
  private openUntil = 0;
  private probing = false;

  constructor(
    private readonly policy: RoutingPolicy,
    private readonly clock: Clock,
  ) {}

  state(): UpstreamView['state'] {
    if (this.openUntil === 0) return 'closed';
    return this.clock.now() < this.openUntil ? 'open' : 'half_open';
  }

  /** Whether a create may go there now; in half-open, only one at a time (the probe). */
  admit(): boolean {
    const s = this.state();
    if (s === 'closed') return true;
    if (s === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  retryAt(): number {
    return this.openUntil;
  }

  /** A create admitted as the probe found no key to use: the next create may probe instead. */
  release(): void {
    this.probing = false;
  }

  /**
   * An outcome: a fault counts towards opening (and reopens a half-open breaker); an answer resets the
   * count, and closes the breaker only when it was a create's (the probe), since polls of running jobs
   * say little about whether creates are served.
   */
  observe(fault: boolean, isCreate: boolean): void {
    if (isCreate) this.probing = false;
    if (!fault) {
      if (isCreate || this.openUntil === 0) {
        this.failures = 0;
        this.openUntil = 0;
      }
      return;
    }
    this.failures++;
    if (this.openUntil !== 0 || this.failures >= this.policy.breakerFailures) this.openUntil = this.clock.now() + this.policy.breakerCooldownMs;
  }
}

class Upstream {
  readonly provider: Provider;
  readonly keys: readonly Key[];
  readonly breaker: Breaker;
  /** Smooth weighted round robin: the running score among upstreams of equal priority. */
  score = 0;
  private next = 0;
  /** The last RECENT_CALLS calls as a ring, written on every call without allocating; read by the admin view only. */
  private readonly recentMs = new Float64Array(RECENT_CALLS);
  private readonly recentError = new Uint8Array(RECENT_CALLS);
  private recentCount = 0;
  private recentNext = 0;

  constructor(
    readonly spec: UpstreamSpec,
    metrics: Metrics,
    policy: RoutingPolicy,
    private readonly clock: Clock,
  ) {
    this.provider = makeProvider(spec.kind, { ...spec, calls: metrics.upstreamCalls(spec.id) });
    this.keys = spec.keys.map((key) => ({ key, fp: fingerprint(key), coolingUntil: 0 }));
    if (this.keys.length === 0) throw new Error(`upstream ${spec.id}: at least one key is required`);
    this.breaker = new Breaker(policy, clock);
  }

  serves(model: string): boolean {
    return this.spec.models.has(model);
  }

  upstreamModel(model: string): string {
    return this.spec.models.get(model) ?? model;
  }

  /** The next key in turn that is not cooling down, if any. */
  nextKey(): Key | undefined {
    const now = this.clock.now();
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[this.next++ % this.keys.length]!;
      if (k.coolingUntil <= now) return k;
    }
    return undefined;
  }

  /** When a create may next be tried here: the breaker's reopening, or the end of the shortest key cool-down. */
  availableAt(now: number): number {
    if (this.breaker.state() === 'open') return this.breaker.retryAt();
    return Math.max(now, Math.min(...this.keys.map((k) => k.coolingUntil)));
  }

  /** The key that created the job, if it is still configured. */
  keyOf(fp: string | null): Key | undefined {
    return this.keys.find((k) => k.fp === fp);
  }

  record(ms: number, error: boolean): void {
    this.recentMs[this.recentNext] = ms;
    this.recentError[this.recentNext] = error ? 1 : 0;
    this.recentNext = (this.recentNext + 1) % RECENT_CALLS;
    if (this.recentCount < RECENT_CALLS) this.recentCount++;
  }

  view(): UpstreamView {
    const now = this.clock.now();
    // Order does not matter to a count or a median, so the ring is read from its start.
    const sorted = this.recentMs.slice(0, this.recentCount).sort();
    const errors = this.recentError.subarray(0, this.recentCount).reduce((n, e) => n + e, 0);
    return {
      id: this.spec.id,
      kind: this.spec.kind,
      models: [...this.spec.models.keys()],
      state: this.breaker.state(),
      keys: this.keys.map((k) => ({ fingerprint: k.fp, state: k.coolingUntil > now ? 'cooling' : 'ready', cooling_until: k.coolingUntil > now ? k.coolingUntil : null })),
      recent: {
        requests: this.recentCount,
        errors,
        p50_ms: sorted.length ? Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!) : null,
      },
    };
  }
}

/**
 * Sends each call to its upstream. A create goes to the upstreams serving its model, lowest priority first,
 * spread by weight among equals, over each one's keys in turn, skipping open breakers and cooling keys; it
 * moves on only when the attempt certainly started no job (§8). Every later call about a job goes to the
 * upstream and key that created it.
 */
export class UpstreamRouter {
  private readonly upstreams: readonly Upstream[];
  private readonly byId: ReadonlyMap<string, Upstream>;
  /** Jobs already reported for a key gone from the configuration: each is reported once. */
  private readonly keyMissingTold = new LRUCache<string, true>({ max: 10_000 });

  constructor(
    specs: readonly UpstreamSpec[],
    private readonly deps: { metrics: Metrics; logger: Logger; clock: Clock; policy: RoutingPolicy },
  ) {
    if (specs.length === 0) throw new Error('at least one upstream is required');
    this.upstreams = specs.map((s) => new Upstream(s, deps.metrics, deps.policy, deps.clock));
    this.byId = new Map(this.upstreams.map((u) => [u.spec.id, u]));
    if (this.byId.size !== this.upstreams.length) throw new Error('upstream ids must be unique');
  }

  /** Whether some configured upstream serves the model (by its gateway id). */
  serves(model: string): boolean {
    return this.upstreams.some((u) => u.serves(model));
  }

  /** The ids of the upstreams a create of the model may go to: what its price is estimated over (§10). */
  upstreamsServing(model: string): string[] {
    return this.upstreams.filter((u) => u.serves(model)).map((u) => u.spec.id);
  }

  async create(req: NormalizedVideoRequest, ctx: CallContext, timing?: UpstreamTiming): Promise<Placement> {
    const serving = this.upstreams.filter((u) => u.serves(req.model.id));
    if (serving.length === 0) throw modelNotServed(req.model.id);
    const able = serving.filter((u) => !kindRefusal(req, u.spec.kind));
    // Nobody can take it as asked: the client learns why (from the table's rules for the first one), before any call.
    if (able.length === 0) throw kindRefusal(req, serving[0]!.spec.kind)!;
    let last: Refusal | undefined;
    /** The upstream and key whose cool-down ends first, should every key of every candidate be cooling. */
    let resort: { up: Upstream; key: Key } | undefined;
    for (const up of this.order(able)) {
      if (!up.breaker.admit()) continue;
      const key = up.nextKey();
      if (!key) {
        up.breaker.release();
        const soonest = up.keys.reduce((a, b) => (b.coolingUntil < a.coolingUntil ? b : a));
        if (!resort || soonest.coolingUntil < resort.key.coolingUntil) resort = { up, key: soonest };
        continue;
      }
      const placed = await this.attemptKeys(up, key, req, ctx, timing);
      if ('task' in placed) return placed;
      last = placed;
    }
    // Cooling keys are avoided, not locked out: with no other key to go to, the one back soonest is tried
    // (a lone key that was refused once is not shut off for the whole cool-down).
    if (last === undefined && resort && resort.up.breaker.admit()) {
      const placed = await this.attempt(resort.up, resort.key, req, ctx, timing);
      if ('task' in placed) return placed;
      last = placed;
    }
    throw this.refused(last, able);
  }

  /**
   * Attempts on one upstream, from `key` on: a key's refusal (401/403, 429) says nothing of the upstream's
   * other keys, so the create moves to the next ready key of the same upstream before any other candidate.
   * Each key is tried once; an upstream's own refusal (503, unreachable) ends the round at once.
   */
  private async attemptKeys(up: Upstream, key: Key, req: NormalizedVideoRequest, ctx: CallContext, timing: UpstreamTiming | undefined): Promise<Placement | Refusal> {
    const tried = new Set([key]);
    let placed = await this.attempt(up, key, req, ctx, timing);
    while (!('task' in placed) && placed.byKey) {
      const next = up.nextKey();
      if (!next || tried.has(next) || !up.breaker.admit()) break;
      tried.add(next);
      placed = await this.attempt(up, next, req, ctx, timing);
    }
    return placed;
  }

  /**
   * The answer when no candidate took the create (§8): every key of every candidate refused it, or none could
   * be tried. Always a 503 with when one may be back (the soonest end of a breaker's or a key's cool-down),
   * never the 502 of one upstream's answer: no job was started, and a retry later may well succeed.
   */
  private refused(last: Refusal | undefined, candidates: readonly Upstream[]): ApiError {
    const now = this.deps.clock.now();
    const back = Math.min(...candidates.map((u) => u.availableAt(now)));
    const headers = { 'retry-after': String(Math.max(1, Math.ceil((back - now) / 1000))) };
    if (!last) return upstreamUnavailable('Every upstream serving this model is unavailable; try again later.', 'upstream_unavailable', headers);
    const rateLimited = failureOf(last.refusal)?.refusal === 'rate_limited';
    return upstreamUnavailable(last.refusal.message, rateLimited ? 'upstream_rate_limited' : 'upstream_unavailable', headers);
  }

  /**
   * One create attempt: the placement, or the refusal when it certainly started no job (the caller moves on).
   * Anything else is thrown: it may have started a paid job, or it is the client's to fix.
   */
  private async attempt(up: Upstream, key: Key, req: NormalizedVideoRequest, ctx: CallContext, timing: UpstreamTiming | undefined): Promise<Placement | Refusal> {
    try {
      const task = await this.call(up, 'create', ctx, timing, () => up.provider.create(req, up.upstreamModel(req.model.id), key.key, ctx, timing));
      return { task, upstream: up.spec.id, keyFingerprint: key.fp };
    } catch (err) {
      const failure = failureOf(err);
      const now = this.deps.clock.now();
      if (failure?.refusal === 'key_rejected') key.coolingUntil = now + this.deps.policy.keyCooldownMs;
      if (failure?.refusal === 'rate_limited') key.coolingUntil = now + (failure.retryAfterMs ?? this.deps.policy.rateLimitCooldownMs);
      if (!failure?.refusal) throw err;
      this.deps.logger.warn({ requestId: ctx.requestId, upstream: up.spec.id, key: key.fp, refusal: failure.refusal }, 'upstream refused a create; trying the next key or candidate');
      return { refusal: err as ApiError, byKey: failure.refusal === 'key_rejected' || failure.refusal === 'rate_limited' };
    }
  }

  /** The kind of the upstream a job belongs to, for the model table's rules about it. */
  kindOf(job: JobRecord): UpstreamKind {
    return this.of(job).spec.kind;
  }

  /**
   * A derived video of `source` (§9), on the source's own upstream and key: the new job is placed there
   * too, with no other candidate to move on to. Its failures are a create's.
   */
  async derive(call: DerivedCall, source: JobRecord, ctx: CallContext, timing?: UpstreamTiming): Promise<Placement> {
    const up = this.of(source);
    const key = this.keyFor(up, source);
    const task = await this.call(up, 'create', ctx, timing, () => up.provider.derive(call, refOf(source), up.upstreamModel(source.model), key.key, ctx, timing));
    return { task, upstream: up.spec.id, keyFingerprint: key.fp };
  }

  // Async, as every call about a job: an upstream no longer configured is a rejection for the caller to handle.
  async status(job: JobRecord, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const up = this.of(job);
    const key = this.keyFor(up, job);
    try {
      return await this.call(up, 'status', ctx, timing, () => up.provider.status(refOf(job), key.key, ctx, timing));
    } catch (err) {
      // Another key (another account, on a reseller) need not see the task: its "no such task" is no proof that
      // the upstream lost it, so the job is not ended for it (the age limit ends it, should it never be seen again).
      if (job.upstreamKeyFp !== null && key.fp !== job.upstreamKeyFp && failureOf(err)?.lost) throw upstreamBadGateway("The upstream does not show this video to the gateway's current key.");
      throw err;
    }
  }

  async content(job: JobRecord, opts: ContentOptions, ctx: CallContext, timing?: UpstreamTiming): Promise<ContentStream> {
    const up = this.of(job);
    const { key } = this.keyFor(up, job);
    return this.call(up, 'content', ctx, timing, () => up.provider.content(refOf(job), key, opts, ctx, timing));
  }

  async delete(job: JobRecord, ctx: CallContext, timing?: UpstreamTiming): Promise<void> {
    const up = this.of(job);
    const { key } = this.keyFor(up, job);
    return this.call(up, 'delete', ctx, timing, () => up.provider.delete(refOf(job), key, ctx, timing));
  }

  /** Readiness: some upstream answers. */
  async ping(signal: AbortSignal): Promise<boolean> {
    const answers = await Promise.all(this.upstreams.map((u) => u.provider.ping(u.keys[0]!.key, signal)));
    return answers.some(Boolean);
  }

  /** The admin view, without active job counts (the store has those). */
  views(): UpstreamView[] {
    return this.upstreams.map((u) => u.view());
  }

  /** The upstream a job belongs to, by its recorded id; jobs from before upstreams had ids belong to the first. */
  upstreamIdOf(job: Pick<JobRecord, 'upstreamName'>): string {
    return job.upstreamName ?? this.upstreams[0]!.spec.id;
  }

  async close(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.provider.close()));
  }

  /**
   * Candidates in the order to try them: by priority, and within one priority by smooth weighted round robin
   * (each pick raises every score by its weight and lowers the pick's by the total), so that over many creates
   * each upstream's share is its weight's, evenly interleaved.
   */
  private order(able: readonly Upstream[]): Upstream[] {
    const priorities = [...new Set(able.map((u) => u.spec.priority))].sort((a, b) => a - b);
    return priorities.flatMap((p) => {
      const group = able.filter((u) => u.spec.priority === p);
      const total = group.reduce((n, u) => n + u.spec.weight, 0);
      for (const u of group) u.score += u.spec.weight;
      const first = group.reduce((best, u) => (u.score > best.score ? u : best));
      first.score -= total;
      return [first, ...group.filter((u) => u !== first).sort((a, b) => b.score - a.score)];
    });
  }

  /**
   * The key that created the job; the upstream's first one when that key is gone from the configuration, which
   * the operator hears of (once per job: the log line names the key by its fingerprint only) and can count.
   */
  private keyFor(up: Upstream, job: JobRecord): Key {
    const key = up.keyOf(job.upstreamKeyFp);
    if (key) return key;
    if (job.upstreamKeyFp !== null && !this.keyMissingTold.has(job.id)) {
      this.keyMissingTold.set(job.id, true);
      this.deps.metrics.upstreamKeyMissing(up.spec.id);
      this.deps.logger.warn({ videoId: job.id, upstream: up.spec.id, keyFingerprint: job.upstreamKeyFp }, "the job's upstream key is no longer configured; using the upstream's first key");
    }
    return up.keys[0]!;
  }

  private of(job: JobRecord): Upstream {
    const up = this.byId.get(this.upstreamIdOf(job));
    if (!up) throw upstreamBadGateway('The upstream that created this video is no longer configured.');
    return up;
  }

  /**
   * One provider call, seen by the breaker, the admin view's recent figures and the request log (which
   * upstream). The upstream's own words about a failure go to the log here, never to the client.
   */
  private async call<T>(up: Upstream, op: string, ctx: CallContext, timing: UpstreamTiming | undefined, fn: () => Promise<T>): Promise<T> {
    if (timing) timing.upstream = up.spec.id;
    const started = performance.now();
    try {
      const result = await fn();
      up.record(performance.now() - started, false);
      up.breaker.observe(false, op === 'create');
      return result;
    } catch (err) {
      up.record(performance.now() - started, true);
      const failure = failureOf(err);
      up.breaker.observe(failure?.upstreamFault ?? false, op === 'create');
      if (failure?.detail) this.deps.logger.warn({ requestId: ctx.requestId, upstream: up.spec.id, op, upstreamSaid: failure.detail }, 'upstream error');
      throw err;
    }
  }
}

const refOf = (job: JobRecord): JobRef => ({ upstreamId: job.upstreamId as string, mediaUrl: job.mediaUrl });
