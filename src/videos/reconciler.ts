import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { Store } from '../store/types.js';
import type { JobRecord } from '../domain/job.js';
import { backgroundContext, type VideoJobs } from './jobs.js';

export interface ReconcilerOptions {
  readonly intervalMs: number;
  /** A job still running after this long is failed and refunded: its upstream task is presumed lost. */
  readonly maxJobAgeMs: number;
  /** A create with no upstream id after this long died with its process (kill -9): refund it. */
  readonly pendingGraceMs: number;
  /** Jobs refreshed per pass: bounds the upstream calls the reconciler makes. */
  readonly batch?: number;
  /**
   * How long a pass holds the jobs it claimed (Store.claimActiveJobs): no other replica refreshes them
   * meanwhile, and should this process die mid-pass, they are free again after this long. A pass stops
   * before its lease runs out, leaving the rest to the next claim, so it must outlast one refresh.
   */
  readonly leaseMs: number;
}

/** Expired Idempotency-Keys deleted per pass; a claim also writes over an expired key it meets. */
export const IDEMPOTENCY_SWEEP_BATCH = 500;

/**
 * Frees concurrency slots and settles reservations for jobs that no client polls any more: each pass
 * claims the least recently refreshed active jobs that no other replica holds and refreshes them, one at a
 * time, and passes are jittered so that replicas do not march in step. Each pass also deletes a batch of
 * expired Idempotency-Keys.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  /** Claims a pass could not release (the store was down): released before the next pass claims anew. */
  private unreleased: string[] = [];

  constructor(
    private readonly deps: { store: Store; jobs: VideoJobs; logger: Logger; clock: Clock },
    private readonly opts: ReconcilerOptions,
  ) {}

  start(): void {
    if (this.opts.intervalMs <= 0) return;
    const schedule = () => {
      const jitter = 0.75 + Math.random() * 0.5;
      this.timer = setTimeout(() => {
        this.running = this.pass()
          .catch((err: unknown) => this.deps.logger.error({ err: { message: (err as Error).message } }, 'reconciler pass failed'))
          .finally(() => {
            this.running = undefined;
            if (!this.stopped) schedule();
          });
      }, this.opts.intervalMs * jitter);
      this.timer.unref();
    };
    schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass; returns how many jobs it looked at. Public so tests and operators can run it on demand. */
  async pass(): Promise<number> {
    const { store, logger } = this.deps;
    // Otherwise this replica's own stale claims would keep those jobs from it until their lease ran out.
    if (this.unreleased.length > 0) {
      await store.releaseJobs(this.unreleased);
      this.unreleased = [];
    }
    // Measured here, before the claim is asked for: the lease, started later on the store's clock, ends later.
    const deadline = performance.now() + this.opts.leaseMs;
    const claimed = await store.claimActiveJobs(this.opts.batch ?? 50, this.opts.leaseMs, this.deps.clock.now());
    try {
      await this.work(claimed, deadline);
    } finally {
      const ids = claimed.map((j) => j.id);
      await store.releaseJobs(ids).catch((err: unknown) => {
        this.unreleased = ids;
        logger.warn({ err: { message: (err as Error).message } }, 'reconciler could not release its claims; retried before the next pass');
      });
    }
    await store.sweepIdempotencyKeys(this.deps.clock.now(), IDEMPOTENCY_SWEEP_BATCH);
    return claimed.length;
  }

  private async work(claimed: readonly JobRecord[], deadline: number): Promise<void> {
    const { store, jobs, logger, clock } = this.deps;
    for (const job of claimed) {
      // Past its lease another replica may have claimed what is left: leave it to that one.
      if (this.stopped || performance.now() >= deadline) break;
      const ageMs = clock.now() - job.createdAt * 1000;
      const ctx = backgroundContext('reconcile');
      const { requestId } = ctx;
      if (!job.upstreamId) {
        // A create still in flight here may be answered yet, however long its upload takes; one made by another
        // replica is presumed dead after the grace, and brought back by activateJob should its answer still come.
        if (ageMs > this.opts.pendingGraceMs && !jobs.isCreating(job.id)) {
          logger.warn({ requestId, videoId: job.id, teamId: job.teamId }, 'create never completed (process died?); reservation refunded');
          await store.abandonJob(job.id, clock.now());
        }
        continue;
      }
      if (ageMs > this.opts.maxJobAgeMs) {
        logger.warn({ requestId, videoId: job.id, teamId: job.teamId }, 'job exceeded the maximum age; failed and refunded');
        await jobs.expire(job);
        continue;
      }
      try {
        await jobs.refresh(job, ctx, true);
      } catch (err) {
        logger.warn({ requestId, videoId: job.id, err: { message: (err as Error).message } }, 'reconciler could not refresh a job');
        // Recorded as looked at all the same, so that a batch of failing jobs cannot hold the front of the
        // least-recently-refreshed worklist and starve the others; only the time, since `job` was read at the
        // start of the pass and a poll may have recorded progress since.
        await store.touchJob(job.id, clock.now());
      }
    }
  }
}
