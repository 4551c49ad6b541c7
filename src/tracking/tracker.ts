import type { Logger } from '../observability/logger.js';
import type { JobRecord } from '../domain/job.js';
import type { Clock } from '../domain/quota-policy.js';
import type { Store } from '../store/types.js';
import { backgroundContext, type VideoJobs } from '../videos/jobs.js';
import type { DueWriter } from './due-writer.js';
import type { CheckRecorder } from './recorder.js';
import type { StatusBudget } from './status-budget.js';
import { TokenWaitAbortedError } from './token-bucket.js';
import { Wakeup } from '../domain/wakeup.js';

export interface TrackerOptions {
  /** The longest the tracker sleeps before it looks at the store again; 0: this replica tracks nothing (others sharing the store do). */
  readonly idleMs: number;
  /** A job still running after this long is failed and refunded: its upstream task is presumed lost. */
  readonly maxJobAgeMs: number;
  /** A create with no upstream id after this long died with its process (kill -9): refund it. */
  readonly pendingGraceMs: number;
  /** How long a claim holds a job: it outlasts a wait for the budget and one status call. */
  readonly leaseMs: number;
  /** Jobs held at once (claimed, waiting for their call, or being checked). */
  readonly maxHeld: number;
  /** Status calls in flight at once to one upstream. */
  readonly callsPerUpstream: number;
}

/**
 * However soon the next check is due, the tracker does not look at the store more often than this: a claim
 * takes every check due by then, so checks come at most this late, and a fleet costs a few claims a second.
 */
const MIN_SLEEP_MS = 100;
/** A sweep (`pass({ all: true })`) takes every active job, due or not: none is due this far out. */
const EVERYTHING_MS = 10 * 365 * 86_400_000;

/** Expired Idempotency-Keys deleted per sweep; a claim also writes over an expired key it meets. */
export const IDEMPOTENCY_SWEEP_BATCH = 500;
/** How often the loop sweeps expired Idempotency-Keys (a pass on demand always does). */
const IDEMPOTENCY_SWEEP_EVERY_MS = 15_000;

/** The status calls of one upstream: a queue of held jobs, at most `callsPerUpstream` of them checked at once. */
interface Lane {
  readonly queue: Array<() => void>;
  active: number;
}

/**
 * Watches every active job so that its slot, its reservation and its webhook follow the upstream promptly,
 * whatever clients do (§11). Each job has its own next check (src/tracking/schedule.ts); the tracker claims
 * the due ones in turns across teams, on any replica (Store.claimDueJobs), checks them concurrently, each
 * upstream's calls bounded in number and rate (StatusBudget), and writes back each one's next check. It
 * sleeps until the next one is due (at most `idleMs`: other replicas' jobs and new ones are seen then).
 * It also ends what no check will: creates whose answer never came, and jobs past the maximum age; and it
 * deletes expired Idempotency-Keys now and then.
 */
export class Tracker {
  private readonly lanes = new Map<string, Lane>();
  private held = 0;
  private readonly wakeup = new Wakeup();
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  /** Checks under way, each resolving when its job is handled. */
  private readonly handling = new Set<Promise<void>>();
  /** When the loop means to look again (gateway clock), so that an earlier due time wakes it. */
  private wakeAt = Infinity;
  /** When the loop next sweeps expired Idempotency-Keys (performance.now()). */
  private sweepAt = 0;

  constructor(
    private readonly deps: {
      store: Store;
      jobs: VideoJobs;
      recorder: CheckRecorder;
      writer: DueWriter;
      budget: StatusBudget;
      upstreamOf: (job: JobRecord) => string;
      logger: Logger;
      clock: Clock;
    },
    private readonly opts: TrackerOptions,
  ) {
    deps.writer.onDue((dueAtMs) => {
      if (dueAtMs < this.wakeAt) this.wakeup.wakeUp();
    });
  }

  start(): void {
    if (this.opts.idleMs <= 0) return;
    this.loop = this.run();
  }

  /** Checks under way finish (their calls are not cut short) and their next checks are written. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeup.wakeUp();
    await this.loop;
    await Promise.all(this.handling);
    await this.deps.writer.flush();
  }

  /**
   * One look at the store, on demand (tests, operators): claims the jobs due now (`all`: every active job)
   * and handles each; resolves once all are handled and written; returns how many it claimed.
   */
  async pass(opts: { all?: boolean } = {}): Promise<number> {
    const claimed = await this.claim(this.opts.maxHeld, opts.all ? EVERYTHING_MS : 0);
    await Promise.all(claimed.map((job) => this.handle(job)));
    await this.deps.writer.flush();
    await this.sweepIdempotencyKeys();
    return claimed.length;
  }

  private async run(): Promise<void> {
    const { store, clock, logger } = this.deps;
    while (!this.stopping.signal.aborted) {
      let sleepMs = this.opts.idleMs;
      try {
        if (performance.now() >= this.sweepAt) {
          this.sweepAt = performance.now() + IDEMPOTENCY_SWEEP_EVERY_MS;
          await this.sweepIdempotencyKeys();
        }
        const room = this.opts.maxHeld - this.held;
        // Claims come in batches: with little room left, the checks under way go on until half of it is free.
        if (room >= this.opts.maxHeld / 2) {
          const claimed = await this.claim(room, 0);
          for (const job of claimed) this.track(this.handle(job));
          if (claimed.length < room) {
            const nextInMs = await store.nextCheckInMs(clock.now());
            // Due yet not claimed: another replica is claiming it at this instant; look again shortly. A due time
            // on its way to the store is not there yet: it counts all the same.
            const unwrittenInMs = this.deps.writer.earliestUnwritten() - clock.now();
            sleepMs = Math.min(this.opts.idleMs, Math.max(MIN_SLEEP_MS, Math.min(nextInMs ?? Infinity, unwrittenInMs)));
          }
        }
      } catch (err) {
        logger.error({ err: { message: (err as Error).message } }, 'tracker could not claim due jobs');
      }
      this.wakeAt = clock.now() + sleepMs;
      await this.wakeup.sleep(sleepMs);
      this.wakeAt = Infinity;
    }
  }

  private async sweepIdempotencyKeys(): Promise<void> {
    await this.deps.store.sweepIdempotencyKeys(this.deps.clock.now(), IDEMPOTENCY_SWEEP_BATCH);
  }

  private claim(limit: number, horizonMs: number): Promise<JobRecord[]> {
    const { store, clock } = this.deps;
    if (limit <= 0) return Promise.resolve([]);
    return store.claimDueJobs(limit, this.opts.leaseMs, clock.now(), { horizonMs, pendingGraceMs: this.opts.pendingGraceMs });
  }

  private track(handled: Promise<void>): void {
    this.handling.add(handled);
    void handled.finally(() => this.handling.delete(handled));
  }

  /** Whatever the job needs: abandoned, expired, or checked in its upstream's lane; never throws. */
  private async handle(job: JobRecord): Promise<void> {
    const { jobs, writer, clock, logger, store } = this.deps;
    this.held++;
    const { requestId } = backgroundContext('track');
    try {
      const ageMs = clock.now() - job.createdAt * 1000;
      if (!job.upstreamId) {
        // A create still in flight here may be answered yet, however long its upload takes; one made by another
        // replica is presumed dead after the grace, and brought back by activateJob should its answer still come.
        if (jobs.isCreating(job.id)) return writer.put(job.id, clock.now() + this.opts.pendingGraceMs, 0);
        logger.warn({ requestId, videoId: job.id, teamId: job.teamId }, 'create never completed (process died?); reservation refunded');
        await store.abandonJob(job.id, clock.now());
        return writer.put(job.id, null, 0);
      }
      if (ageMs > this.opts.maxJobAgeMs) {
        logger.warn({ requestId, videoId: job.id, teamId: job.teamId }, 'job exceeded the maximum age; failed and refunded');
        await jobs.expire(job);
        return writer.put(job.id, null, 0);
      }
      await this.inLane(this.deps.upstreamOf(job), () => this.check(job, requestId));
    } catch (err) {
      // Stopping: the job is left as it was, its claim ended so that another replica (or this one, restarted) checks it.
      if (err instanceof TokenWaitAbortedError) return writer.put(job.id, null, 0);
      logger.warn({ requestId, videoId: job.id, err: { message: (err as Error).message } }, 'tracker could not handle a job');
    } finally {
      // Room for a batch again (see `run`): once, as the count passes half, not at every job that ends.
      if (this.held-- === Math.ceil(this.opts.maxHeld / 2)) this.wakeup.wakeUp();
    }
  }

  /** One status check, in the job's turn for a call; its next check is written whatever the answer. */
  private async check(job: JobRecord, requestId: string): Promise<void> {
    const { jobs, recorder, writer, budget, upstreamOf, logger } = this.deps;
    await budget.take(upstreamOf(job), this.stopping.signal);
    let after: JobRecord;
    try {
      after = await jobs.refresh(job, { requestId, timing: { status: undefined, durationMs: 0 } }, 'granted');
    } catch (err) {
      logger.warn({ requestId, videoId: job.id, err: { message: (err as Error).message } }, 'tracker could not check a job');
      // A call was made all the same; the job is due again on its schedule, so that failing jobs do not hold the worklist.
      return writer.put(job.id, recorder.dueAt(job), 1);
    }
    // The call (this one, or the poll's whose fresh answer served it) scheduled the next check: the claim ends here.
    writer.put(after.id, null, 0);
  }

  /** Runs `fn` when the upstream's lane has room, in the order jobs arrived. */
  private inLane(upstream: string, fn: () => Promise<void>): Promise<void> {
    let lane = this.lanes.get(upstream);
    if (!lane) this.lanes.set(upstream, (lane = { queue: [], active: 0 }));
    const l = lane;
    return new Promise<void>((resolve, reject) => {
      const run = () => {
        l.active++;
        fn()
          .then(resolve, reject)
          .finally(() => {
            l.active--;
            const next = l.queue.shift();
            if (next) next();
          });
      };
      if (l.active < this.opts.callsPerUpstream) run();
      else l.queue.push(run);
    });
  }
}
