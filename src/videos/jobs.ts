import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ApiError, createNotRecorded, createOutcomeUnknown, invalidRequest, modelNotServed, shuttingDown, videoNotFound } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../domain/quota-policy.js';
import { checkPriceKnown, checkStaticLimits, refusalToError } from '../quota/refusals.js';
import type { HeldReservation, NewJob, Principal, Store, StoreChange } from '../store/types.js';
import type { JobRecord } from '../domain/job.js';
import { failureOf, type CallContext, type ContentStream, type UpstreamTiming } from '../upstream/client.js';
import type { Placement, UpstreamRouter } from '../upstream/router.js';
import { Activations, type ActivationSite } from './activation.js';
import { CreatesInFlight } from './creates-in-flight.js';
import type { StoredResults } from '../storage/results.js';
import type { ContentRequest } from '../storage/serve.js';
import { derivationRefusal, derivedSeconds, SOURCE_PARAM, VERB, type DerivedRequest } from './derive.js';
import type { UpstreamTask } from '../upstream/dialects/task.js';
import { isTerminal } from '../domain/job.js';
import type { ModelCatalog } from '../domain/models.js';
import type { Pricing, Quote } from '../domain/pricing.js';
import type { NormalizedVideoRequest } from '../domain/request.js';


export interface JobsDeps {
  readonly store: Store;
  readonly upstream: UpstreamRouter;
  readonly catalog: ModelCatalog;
  readonly pricing: Pricing;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
  /** Polls within this window share one upstream call and its answer. */
  readonly statusCacheMs: number;
  /** Stored results (§12); undefined with STORAGE_URL=none. */
  readonly results?: StoredResults | undefined;
  readonly watch: JobWatch;
}

/** What the tracker (src/tracking) hears of the status calls made here, and the say it has over them (§11). */
export interface JobWatch {
  /** Whether a client's request may make a status call about the job now (the upstream's status budget). */
  mayCheck(job: JobRecord): boolean;
  /**
   * A status call about `before` ended with `after`: terminal (in the store already), or still running, which
   * the watch writes to the store with the job's next check; `task`: the upstream's answer, when it gave one;
   * `lastCheckMs`: when the check before it was made (gateway clock), which saw `before`.
   */
  checked(before: JobRecord, after: JobRecord, task: UpstreamTask | undefined, lastCheckMs: number): void;
  /** The upstream accepted the job: its checks begin. */
  placed(job: JobRecord): void;
}

/**
 * Whether a refresh's status call must first be allowed by the upstream's status budget (`ask`: a client's
 * request, answered with what is known when it is not) or may be made at once (`granted`: the tracker waited
 * for its call; a delete, rare and deciding a bill, makes its own).
 */
export type StatusBudgetUse = 'ask' | 'granted';

/** The errors of a job the gateway ends on its own authority; either way the reservation is refunded. */
const EXPIRED = { code: 'expired', message: "The video did not finish within the gateway's time limit." };
const UPSTREAM_LOST = { code: 'upstream_lost', message: 'The upstream video service no longer knows this video (it may have restarted or purged it); the job was failed and its reservation refunded.' };

interface CachedRecord {
  readonly job: JobRecord;
  /** performance.now() when stored, and until when the job's status needs no upstream call. */
  readonly storedAt: number;
  readonly freshUntil: number;
  /** When the upstream last said what `job` holds (gateway clock): polls that find it unchanged move this alone. */
  readonly checkedAtMs: number;
}

export interface RequestContext extends CallContext {
  readonly timing: UpstreamTiming;
}

/**
 * How long this process trusts its own copy of a job record. Jobs change only through this process's
 * calls, except a delete made by another process sharing the store, which the store tells of (`changed`);
 * this bound is what is left should that word never come.
 */
export const RECORD_CACHE_MS = 30_000;

/** How long a delete waits to learn a job's outcome before it settles the reservation (it answers promptly). */
export const DELETE_REFRESH_MS = 5_000;

/** Upstream calls one refused create may make to find finished jobs. */
const MAX_ON_DEMAND_REFRESH = 10;

/** The context of work no client request started (admission look-ups, the tracker): its own id for the logs. */
export function backgroundContext(kind: string): RequestContext {
  return { requestId: `${kind}_${randomBytes(6).toString('hex')}`, timing: { status: undefined, durationMs: 0 } };
}

/** The promise's value if it arrives within `ms`; undefined after that or on an error. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

export const newVideoId = () => `video_${randomBytes(16).toString('hex')}`;

/**
 * The job lifecycle: admit and create, refresh status (single-flight with a short cache of non-terminal
 * answers; terminal states are never fetched again), list, delete, and open content.
 */
export class VideoJobs {
  private readonly inflight = new Map<string, Promise<JobRecord>>();
  /**
   * The latest record of each recent job, so that a poll needs no store read, and until when a non-terminal
   * one counts as fresh (STATUS_CACHE_MS: polls in that window share one upstream call). One cache with
   * timestamps, not two caches with their own TTLs: each poll costs one lookup.
   */
  private readonly records = new LRUCache<string, CachedRecord>({ max: 50_000 });
  /** A record is trusted this long, and at least as long as its status counts as fresh. */
  private readonly recordTtlMs: number;
  /**
   * Videos deleted here lately: a status fetch that was in flight during the delete must not put the record
   * back, and none is started for them. Ids are random and never reused, so a tombstone can only ever hide
   * what is really gone. Its time runs on the gateway's clock, as job ages do; `forget` sets it.
   */
  private readonly deleted: LRUCache<string, true>;
  /** Creates admitted here whose upstream answer has not been handled yet: the tracker leaves them be. */
  private readonly creating = new Set<string>();
  private readonly inFlight = new CreatesInFlight();
  private readonly activations: Activations;

  constructor(private readonly deps: JobsDeps) {
    this.recordTtlMs = Math.max(RECORD_CACHE_MS, deps.statusCacheMs);
    this.activations = new Activations(deps, (job) => this.remember(job, false));
    this.deleted = new LRUCache<string, true>({ max: 10_000, ttl: RECORD_CACHE_MS, perf: deps.clock });
    deps.store.onChange((change) => this.changed(change));
  }

  /** `checkedAtMs`: when the upstream last said what the record holds (gateway clock). */
  private remember(job: JobRecord, fresh: boolean, checkedAtMs = job.updatedAtMs): void {
    if (this.deleted.has(job.id)) return;
    const now = performance.now();
    this.records.set(job.id, { job, storedAt: now, freshUntil: fresh && !isTerminal(job.status) ? now + this.deps.statusCacheMs : 0, checkedAtMs });
  }

  private recall(id: string, now = performance.now()): CachedRecord | undefined {
    const hit = this.records.get(id);
    return hit && now - hit.storedAt < this.recordTtlMs ? hit : undefined;
  }

  /** Whether this process is still waiting for the job's create to be answered (it may yet be accepted) or recorded. */
  isCreating(id: string): boolean {
    return this.creating.has(id) || this.activations.has(id);
  }

  /** The drain's moment to answer every create still waiting on the upstream (see CreatesInFlight). */
  answerCreatesNow(): void {
    this.inFlight.answerNow();
  }

  /** Resolves once every create in flight has finished with the upstream and the store. */
  createsSettled(): Promise<void> {
    return this.inFlight.settled();
  }

  /** The drain's end: creates settled, one last attempt to record each accepted job the store has not taken yet. */
  async close(): Promise<void> {
    await this.inFlight.settled();
    await this.activations.close();
  }

  /** `id`: the video id to admit the job under (an Idempotency-Key chooses it before the job exists). */
  create(principal: Principal, req: NormalizedVideoRequest, ctx: RequestContext, id = newVideoId()): Promise<JobRecord> {
    const job = { model: req.model.id, prompt: req.prompt, seconds: req.seconds, resolution: req.resolution, aspectRatio: req.aspectRatio };
    const work = { seconds: req.seconds, resolution: req.resolution, referenceImages: req.references.length, sourceSeconds: 0 };
    const serving = this.deps.upstream.upstreamsServing(req.model.id);
    // Before admission: a model nobody serves has no price to look for either.
    if (serving.length === 0) throw modelNotServed(req.model.id);
    const quote = this.deps.pricing.quote(req.model.id, serving, work);
    return this.start(principal, id, job, req.requestedModel, quote, ctx, () => this.deps.upstream.create(req, ctx, ctx.timing));
  }

  /**
   * A derived video (§9): the source must be a completed video of the caller's team (anything else is
   * refused before any upstream call, another team's id exactly as an unknown one), and the source's
   * upstream must be able to make it; then it is admitted, sent and refunded exactly as a create, to the
   * source's own upstream and key.
   */
  async derive(principal: Principal, req: DerivedRequest, ctx: RequestContext, id = newVideoId()): Promise<JobRecord> {
    const source = await this.get(principal, req.sourceId, ctx, SOURCE_PARAM);
    if (source.status !== 'completed') {
      throw invalidRequest(`Video '${source.id}' is ${source.status}; only a completed video can be ${VERB[req.operation]}.`, SOURCE_PARAM, 'video_not_ready');
    }
    const refusal = derivationRefusal(req, source, this.deps.catalog.resolve(source.model), this.deps.upstream.kindOf(source));
    if (refusal) throw refusal;
    const seconds = derivedSeconds(req, source);
    const job = { model: source.model, prompt: req.prompt, seconds, resolution: source.resolution, aspectRatio: source.aspectRatio, sourceVideoId: source.id, derivation: req.operation };
    const call = { operation: req.operation, prompt: req.prompt, seconds, sourceSeconds: source.seconds };
    const work = { seconds, resolution: source.resolution, referenceImages: 0, sourceSeconds: source.seconds };
    const quote = this.deps.pricing.quote(source.model, [this.deps.upstream.upstreamIdOf(source)], work);
    // A stored copy outlives the upstream's own URL of the source (xAI's expire).
    const storedUrl = await this.deps.results?.derivedSource(source, this.deps.upstream.kindOf(source));
    const sent = storedUrl ? { ...source, mediaUrl: storedUrl } : source;
    return this.start(principal, id, job, source.model, quote, ctx, () => this.deps.upstream.derive(call, sent, ctx, ctx.timing));
  }

  /**
   * Every job's way in, created or derived: the static limits, atomic admission of its seconds and its
   * estimate (looking for finished jobs before refusing on concurrency), then `place` (the upstream call) and
   * what follows it.
   */
  private async start(
    principal: Principal,
    id: string,
    fields: Omit<NewJob, 'id' | 'teamId' | 'keyId' | 'estimateMicros'>,
    requestedModel: string,
    quote: Quote,
    ctx: RequestContext,
    place: () => Promise<Placement>,
  ): Promise<JobRecord> {
    const { store, clock } = this.deps;
    checkStaticLimits(principal, fields.model, requestedModel, fields.seconds);
    checkPriceKnown(principal, requestedModel, quote.estimateMicros);
    const job: NewJob = { id, teamId: principal.teamId, keyId: principal.keyId, ...fields, estimateMicros: quote.estimateMicros };
    let admission = await store.admitJob(principal, job, clock.now());
    // A slot may be held by a job that has finished upstream but that nobody has polled since: look before refusing.
    if (!admission.ok && admission.refusal.kind === 'concurrency' && (await this.settleFinished(principal, admission.refusal))) {
      admission = await store.admitJob(principal, job, clock.now());
    }
    this.deps.metrics.admission('job', admission);
    if (!admission.ok) throw refusalToError(admission.refusal);
    if (this.inFlight.closing) {
      // Nothing was sent: refunded, and the client may retry on another replica.
      await this.abandon(id, { requestId: ctx.requestId, videoId: id, teamId: principal.teamId });
      throw shuttingDown(false);
    }
    this.creating.add(id);
    return this.inFlight.run(this.send(principal, id, ctx, place, quote).finally(() => this.creating.delete(id)));
  }

  /**
   * The upstream call of an admitted create and what follows it. From the moment the call begins the
   * upstream may have the job, so every failure whose outcome is unknown answers `x-should-retry: false`.
   */
  private async send(principal: Principal, id: string, ctx: RequestContext, place: () => Promise<Placement>, quote: Quote): Promise<JobRecord> {
    const { logger } = this.deps;
    const where = { requestId: ctx.requestId, videoId: id, teamId: principal.teamId };
    let created: Placement;
    try {
      created = await place();
    } catch (err) {
      // The upstream client says which of its failures may have started a job; anything else here is unexpected.
      const known = err instanceof ApiError;
      const uncertain = !known || err.headers['x-should-retry'] === 'false';
      await this.abandon(id, where);
      if (uncertain) {
        // The upstream may have started a job that nobody can see or poll: the operator must know.
        this.deps.metrics.uncertainCreate();
        logger.warn({ ...where, code: known ? err.code : 'error' }, 'upstream create outcome unknown; reservation refunded');
      }
      throw known ? err : createOutcomeUnknown();
    }
    // The upstream runs (and bills) the job from here on: recorded before the client hears of it, or retried.
    const active = await this.activations.record(id, { ...created, priceMicros: quote.at(created.upstream) }, where);
    if (!active) throw createNotRecorded();
    this.remember(active, false);
    // An upstream may answer a create with a finished video.
    if (!isTerminal(active.status)) this.deps.watch.placed(active);
    return this.withCopy(active);
  }

  /** Refunds a create that started no job here (refused, failed or never sent) and hides it. */
  private async abandon(id: string, where: ActivationSite): Promise<void> {
    await this.deps.store.abandonJob(id, this.deps.clock.now()).catch((err: unknown) => {
      // The reservation stays held until the tracker abandons the job: the answer to the client stands.
      this.deps.logger.error({ ...where, err: { message: (err as Error).message } }, 'could not refund a failed create');
    });
  }

  /**
   * Refreshes the jobs holding the refused scope's slots (at most as many as the limit, each through the
   * shared status cache) and says whether any of them has ended.
   */
  private async settleFinished(principal: Principal, refusal: { scope: 'team' | 'key'; limit: number }): Promise<boolean> {
    const jobs = (await this.deps.store.activeJobsOfTeam(principal.teamId, Math.min(refusal.limit, MAX_ON_DEMAND_REFRESH) * 4))
      .filter((j) => j.upstreamId && (refusal.scope === 'team' || j.keyId === principal.keyId))
      .slice(0, MAX_ON_DEMAND_REFRESH);
    const ctx = backgroundContext('admission');
    const refreshed = await Promise.all(jobs.map((j) => this.refresh(j, ctx).catch(() => j)));
    return refreshed.some((j) => isTerminal(j.status));
  }

  /** `param`: where the request named the video, for the 404. */
  get(principal: Principal, id: string, ctx: RequestContext, param: 'video_id' | 'video' = 'video_id'): Promise<JobRecord> {
    // Every poll comes here: a job this process knows goes straight to its refresh, with one clock reading and
    // no promise of this method's own (an async method returning the refresh's promise cost two more turns).
    const now = performance.now();
    const hit = this.recall(id, now);
    const known = hit?.job;
    if (known?.teamId === principal.teamId) return this.wantsCopy(known) ? this.withCopy(known) : this.refreshWith(known, hit, ctx, 'ask', now);
    return this.load(principal, id, ctx, param);
  }

  private async load(principal: Principal, id: string, ctx: RequestContext, param: 'video_id' | 'video'): Promise<JobRecord> {
    const job = await this.deps.store.getJob(principal.teamId, id);
    if (!job) throw videoNotFound(id, param);
    this.remember(job, false);
    return this.withCopy(await this.refresh(job, ctx));
  }

  private wantsCopy(job: JobRecord): boolean {
    return this.deps.results !== undefined && job.status === 'completed' && !job.storage;
  }

  /**
   * Schedules a completed video's copy (§12) the first time the gateway sees it completed, and caches the
   * record with its expiry. A failure leaves the job as it is: the next look (a poll, a download) tries again.
   */
  private async withCopy(job: JobRecord): Promise<JobRecord> {
    const results = this.deps.results;
    if (!results || !this.wantsCopy(job)) return job;
    try {
      const scheduled = await results.schedule(job);
      this.remember(scheduled, false);
      return scheduled;
    } catch (err) {
      this.deps.logger.warn({ videoId: job.id, err: { message: (err as Error).message } }, 'could not schedule the copy of a completed video');
      return job;
    }
  }

  /**
   * Brings a job up to date with the upstream, unless it is terminal or was refreshed moments ago, or the
   * upstream's status budget has no call for a client now (`budget`): then it is what the gateway last knew.
   * An end is written to the store here; every call is told to the watch, which schedules the next check and
   * writes what it saw of a job still running.
   */
  refresh(job: JobRecord, ctx: RequestContext, budget: StatusBudgetUse = 'ask'): Promise<JobRecord> {
    return this.refreshWith(job, this.records.get(job.id), ctx, budget, performance.now());
  }

  /** `refresh`, given what the record cache holds for the job (a poll has just looked it up). */
  private refreshWith(job: JobRecord, cached: CachedRecord | undefined, ctx: RequestContext, budget: StatusBudgetUse, now: number): Promise<JobRecord> {
    if (isTerminal(job.status) || !job.upstreamId || this.deleted.has(job.id)) return Promise.resolve(job);
    if (cached && cached.freshUntil > now) return Promise.resolve(cached.job);
    let pending = this.inflight.get(job.id);
    if (!pending) {
      if (budget === 'ask' && !this.deps.watch.mayCheck(job)) return Promise.resolve(cached?.job ?? job);
      // When the upstream was last asked, as far as this process knows (the store's record says at its last write).
      pending = this.fetch(job, ctx, cached?.job === job ? cached.checkedAtMs : job.updatedAtMs);
      this.inflight.set(job.id, pending);
    }
    return pending;
  }

  /**
   * One status fetch, which `refresh` shares through `inflight` and which drops itself from there when it
   * settles. Nothing before its first `await` can throw, so `refresh` has put the entry in place by the time
   * this `finally` runs (a `.finally()` on the returned promise cost another promise and two more turns).
   */
  private async fetch(job: JobRecord, ctx: RequestContext, lastCheckMs: number): Promise<JobRecord> {
    const { store, upstream, clock, watch } = this.deps;
    try {
      let task: UpstreamTask;
      try {
        // A shared fetch must not die with the first client that asked for it.
        task = await upstream.status(job, { requestId: ctx.requestId }, ctx.timing);
      } catch (err) {
        if (!failureOf(err)?.lost) throw err;
        this.deps.logger.warn({ requestId: ctx.requestId, videoId: job.id, teamId: job.teamId }, 'upstream no longer knows the job; failed and refunded');
        const ended = await this.end(job, UPSTREAM_LOST);
        watch.checked(job, ended, undefined, lastCheckMs);
        return ended;
      }
      const now = clock.now();
      let updated: JobRecord;
      if (isTerminal(task.status)) updated = (await store.updateJob(job.id, task, now)) ?? job;
      // Most polls of a running job find it as it was: the same record (and its rendered JSON) serves on, and
      // only the cache notes the time of the check (a copy per poll cost more than the rest of the poll's work here).
      else if (task.status === job.status && task.progress === job.progress) updated = job;
      else updated = { ...job, status: task.status, progress: task.progress, updatedAtMs: now };
      this.remember(updated, true, now);
      watch.checked(job, updated, task, lastCheckMs);
      // Awaited only when there is a copy to schedule: a running job's poll takes no extra turns for it.
      return this.wantsCopy(updated) ? await this.withCopy(updated) : updated;
    } finally {
      this.inflight.delete(job.id);
    }
  }

  /** Ends a job that outlived the gateway's time limit: its upstream task is presumed lost. */
  async expire(job: JobRecord): Promise<void> {
    await this.end(job, EXPIRED);
  }

  /** Ends a job on the gateway's own authority: failed, refunded, caches updated. */
  private async end(job: JobRecord, error: { code: string; message: string }): Promise<JobRecord> {
    const updated = await this.deps.store.updateJob(job.id, { status: 'failed', progress: job.progress, error }, this.deps.clock.now());
    if (updated) this.remember(updated, false);
    else this.records.delete(job.id);
    return updated ?? job;
  }

  async list(principal: Principal, opts: { after?: string | undefined; limit: number; order: 'asc' | 'desc' }) {
    return this.deps.store.listJobs(principal.teamId, opts);
  }

  async remove(principal: Principal, id: string, ctx: RequestContext): Promise<void> {
    const { store, upstream, clock, logger } = this.deps;
    const job = await store.getJob(principal.teamId, id);
    if (!job) throw videoNotFound(id);
    // Before the upstream delete, which may leave the outcome unknowable.
    const learned = await this.reservationOnDelete(job, ctx);
    if (job.upstreamId) {
      await upstream.delete(job, ctx, ctx.timing).catch((err: unknown) => {
        // The gateway's record goes regardless: the client asked for the video to be gone from its list.
        logger.warn({ requestId: ctx.requestId, videoId: id, code: err instanceof ApiError ? err.code : 'error' }, 'upstream delete failed');
      });
    }
    // Decided on the job as the delete's transaction finds it: a create activated since it was read above runs
    // (and is billed) upstream. The store tells `changed` of the delete, which drops the record here as on every
    // other replica.
    let held: HeldReservation | undefined;
    await store.deleteJob(principal.teamId, id, clock.now(), (now) => (held = now.upstreamId !== job.upstreamId ? 'settle' : learned));
    if (held === 'refund') logger.warn({ requestId: ctx.requestId, videoId: job.id, teamId: job.teamId }, 'job deleted with its outcome unknown; reservation refunded');
    this.deps.results?.deleted();
  }

  /**
   * A job that ended upstream unseen must be settled on its real outcome (a failed one is not billed), so a
   * delete first refreshes it, sharing any poll in flight, for at most DELETE_REFRESH_MS. A job known to be
   * still running is settled: its upstream work had begun. An outcome that cannot be learned in time (no
   * upstream id yet, an error, no answer) is refunded, the rule for a create whose answer never came (§4).
   */
  private async reservationOnDelete(job: JobRecord, ctx: RequestContext): Promise<HeldReservation> {
    // An ended job's charge is decided already; the store ignores the answer.
    if (job.charge !== 'reserved') return 'settle';
    if (job.upstreamId && (await within(DELETE_REFRESH_MS, this.refresh(job, ctx, 'granted')))) return 'settle';
    return 'refund';
  }

  /**
   * A change in the store the cached records would not show. A video deleted (here or on another replica)
   * is dropped and kept out; an abandoned create is only dropped, since its late activation may bring it
   * back; after a gap in the store's word, every record is dropped.
   */
  private changed(change: StoreChange): void {
    if (change.kind === 'reset') return this.records.clear();
    if (change.kind !== 'job') return;
    if (change.deleted) this.forget(change.jobId);
    else this.records.delete(change.jobId);
  }

  /**
   * Drops a deleted video from the cache and keeps it out. While a status fetch of it is still in flight the
   * tombstone does not expire, since that fetch can outlast any fixed time (the idle timeout restarts with
   * every chunk of a trickling answer); it lasts RECORD_CACHE_MS after the fetch settles.
   */
  private forget(id: string): void {
    this.records.delete(id);
    const pending = this.inflight.get(id);
    if (!pending) {
      this.deleted.set(id, true);
      return;
    }
    this.deleted.set(id, true, { ttl: 0 });
    const unpin = () => void this.deleted.set(id, true);
    pending.then(unpin, unpin);
  }

  /**
   * The job as the store has it, when another replica has recorded it completed: this replica's status cache
   * may lag by up to STATUS_CACHE_MS, and a client just told "completed" there must not be refused here.
   */
  private async completedElsewhere(job: JobRecord): Promise<JobRecord> {
    const stored = await this.deps.store.getJob(job.teamId, job.id);
    if (stored?.status !== 'completed') return job;
    this.remember(stored, false);
    return stored;
  }

  async content(principal: Principal, id: string, opts: ContentRequest & { variant?: string | undefined }, ctx: RequestContext): Promise<ContentStream> {
    let job = await this.get(principal, id, ctx);
    if (job.status !== 'completed') job = await this.completedElsewhere(job);
    if (job.status !== 'completed') {
      throw invalidRequest(`Video '${id}' is ${job.status}; its content is available once it is completed.`, 'video_id', 'video_not_ready');
    }
    const stored = await this.deps.results?.content(job, opts);
    if (stored) return stored;
    return this.deps.upstream.content(job, { range: opts.range, variant: opts.variant }, ctx, ctx.timing);
  }
}
