import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { CopyLedger } from '../store/copies.js';
import { objectKey, type StorageBackend } from './backend.js';
import type { StorageMetrics } from './metrics.js';
import { Periodic } from './periodic.js';

/** Removals claimed per pass; a full batch runs the next pass at once. */
const BATCH = 32;
/** A removal is one small request; a replica that died holding some leaves them this long. */
const REMOVAL_LEASE_MS = 5 * 60_000;
/**
 * Writes left by a crash are removed once this old. No live copy runs this long (its lease is 15 min, and a
 * copy that outlives it is claimed again), so none of this replica or another sharing the storage is cut
 * short, even with clocks a little apart.
 */
export const ABANDONED_AFTER_MS = 24 * 60 * 60_000;
/** How often the storage is looked over for them: at start (a crash is usually followed by one), then hourly. */
const ABANDONED_SCAN_MS = 60 * 60_000;
/** A look that failed (the bucket not there yet at start, the storage down) is tried again this soon. */
export const ABANDONED_RETRY_MS = 5 * 60_000;

/**
 * Deletes the copies of videos past their `expires_at` and of videos their team deleted, claimed across
 * replicas, so that disks and buckets do not grow without bound. The record and its usage stay.
 */
export class Sweeper {
  private readonly loop: Periodic;
  private nextAbandonedScanMs = 0;

  constructor(
    private readonly deps: { ledger: CopyLedger; backend: StorageBackend; clock: Clock; logger: Logger; metrics: StorageMetrics },
    private readonly enabled: boolean,
    intervalMs: number,
  ) {
    this.loop = new Periodic(() => this.pass(), intervalMs, (err) => deps.logger.error({ err: { message: (err as Error).message } }, 'storage sweep failed'));
  }

  start(): void {
    if (this.enabled) this.loop.start();
  }

  /** A video was just deleted: its copy goes now rather than at the next interval. */
  wake(): void {
    this.loop.wake();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  private async pass(): Promise<boolean> {
    await this.removeAbandoned();
    const { ledger, backend, clock, logger, metrics } = this.deps;
    const claimed = await ledger.claimRemovals(BATCH, REMOVAL_LEASE_MS, clock.now());
    for (const { job, token } of claimed) {
      try {
        // Whatever the state: a copy whose outcome went unrecorded may have left an object all the same.
        await backend.remove(objectKey(job.id));
      } catch (err) {
        // Left claimed: tried again once the lease runs out, not in a tight loop while storage is down.
        logger.warn({ videoId: job.id, err: { message: (err as Error).message } }, 'could not remove a stored copy; will retry');
        continue;
      }
      if (await ledger.recordRemoved(job.id, token)) {
        if (job.storage?.state === 'stored') metrics.removed();
        logger.info({ videoId: job.id, teamId: job.teamId, reason: job.expiresAt !== null && job.expiresAt * 1000 <= clock.now() ? 'expired' : 'deleted' }, 'stored copy removed');
      }
    }
    return claimed.length === BATCH;
  }

  private async removeAbandoned(): Promise<void> {
    const { backend, clock, logger } = this.deps;
    const now = clock.now();
    if (now < this.nextAbandonedScanMs) return;
    this.nextAbandonedScanMs = now + ABANDONED_SCAN_MS;
    try {
      const removed = await backend.removeAbandoned(now - ABANDONED_AFTER_MS);
      if (removed > 0) logger.info({ backend: backend.kind, removed }, 'removed writes left unfinished by a crash');
    } catch (err) {
      // The removals of expired and deleted copies go on; the scan is tried again soon, not an hour later.
      this.nextAbandonedScanMs = now + ABANDONED_RETRY_MS;
      logger.warn({ backend: backend.kind, err: { message: (err as Error).message } }, 'could not look for unfinished writes');
    }
  }
}
