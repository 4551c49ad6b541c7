import { LRUCache } from 'lru-cache';
import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { ActiveStatus, CheckSchedule, Store } from '../store/types.js';

/** Writes wait this long for company: one statement carries every check that ended meanwhile. */
export const DUE_FLUSH_DELAY_MS = 20;
/** A batch this large is written at once. */
const DUE_BATCH = 500;
/**
 * A running job's check whose write may wait (see `put`) leaves the due time already given in place when that
 * lies at least this share of the new wait away (and no later than the new plan).
 */
const HOLD_SHARE = 0.5;
/** Running jobs whose last write this process remembers; past it, the least recent is forgotten (its held calls written). */
const GIVEN_MAX = 100_000;

interface Pending {
  /** On the gateway's clock; null: the due time stays as it is. */
  dueAtMs: number | null;
  checks: number;
  seen: ActiveStatus | undefined;
}

/** What this process last gave the store for a running job, and the calls it has held back since. */
interface Given {
  dueAtMs: number;
  seen: ActiveStatus;
  heldChecks: number;
}

/**
 * Each job's next check, its status calls and the progress they saw on their way to the store
 * (Store.scheduleChecks), a few milliseconds at a time in one statement, and in order: two records of one
 * job merge (the latest due time and progress given stand, their calls add up). A running job's progress
 * goes this way rather than in a transaction of its own: it costs the store next to nothing in the batch,
 * and a check that is late by DUE_FLUSH_DELAY_MS to show it changes nothing. Whoever plans to wake at a due
 * time hears of earlier ones (`onDue`).
 *
 * A job a client polls every second or so is checked at every poll whose cached status has expired, and each
 * such check would be a row written. When the check saw the job as the last write gave it and the due time
 * written then still lies between HOLD_SHARE of the new wait and the new plan, nothing is written: the tracker
 * leaves the job be until then all the same, and a later poll writes it again. The calls held back this way
 * ride with the job's next write from this process, whatever causes it (a change seen, the due time coming
 * near, a tracker check's claim ending, the job's end); they are missing from `status_checks` only when the
 * process dies first or another replica sees the job end. Nothing else is lost: the progress and status on
 * record are what the check saw.
 */
export class DueWriter {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** The earliest due time of the batches being written, which the store may not show yet. */
  private writingEarliest = Infinity;
  private listener: ((dueAtMs: number) => void) | undefined;
  private readonly given = new LRUCache<string, Given>({
    max: GIVEN_MAX,
    dispose: (g, id, reason) => {
      if (reason === 'evict' && g.heldChecks > 0) this.enqueue(id, g.dueAtMs, g.heldChecks, undefined);
    },
  });

  constructor(private readonly deps: { store: Store; clock: Clock; logger: Logger }) {}

  onDue(listener: (dueAtMs: number) => void): void {
    this.listener = listener;
  }

  /**
   * Records that the job is next due at `dueAtMs` (null: unchanged) after `checks` more status calls, the
   * latest of which saw it running as `seen`, and ends this process's claim on it. A check of a running job
   * may be held back (see the class's comment).
   */
  put(id: string, dueAtMs: number | null, checks: number, seen?: ActiveStatus): void {
    const given = this.given.get(id);
    if (given && seen && dueAtMs !== null && !this.pending.has(id) && this.mayWait(given, dueAtMs, seen)) {
      given.heldChecks += checks;
      return;
    }
    // A claim's end re-asserts the due time that held checks were measured against: the store may show an
    // earlier one (another replica's), and the claim would be taken again at once.
    if (given?.heldChecks) {
      checks += given.heldChecks;
      dueAtMs ??= given.dueAtMs;
      given.heldChecks = 0;
    }
    const merged = this.enqueue(id, dueAtMs, checks, seen);
    if (merged.dueAtMs !== null && merged.seen) this.given.set(id, { dueAtMs: merged.dueAtMs, seen: merged.seen, heldChecks: 0 });
  }

  /** The job has ended after `checks` more status calls: written with any held back, and forgotten. */
  ended(id: string, checks: number): void {
    const given = this.given.get(id);
    this.given.delete(id);
    this.enqueue(id, null, checks + (given?.heldChecks ?? 0), undefined);
  }

  private mayWait(given: Given, dueAtMs: number, seen: ActiveStatus): boolean {
    if (given.seen.status !== seen.status || given.seen.progress !== seen.progress || given.dueAtMs > dueAtMs) return false;
    const now = this.deps.clock.now();
    return given.dueAtMs - now >= (dueAtMs - now) * HOLD_SHARE;
  }

  private enqueue(id: string, dueAtMs: number | null, checks: number, seen: ActiveStatus | undefined): Pending {
    const before = this.pending.get(id);
    const merged = { dueAtMs: dueAtMs ?? before?.dueAtMs ?? null, checks: checks + (before?.checks ?? 0), seen: seen ?? before?.seen };
    this.pending.set(id, merged);
    if (dueAtMs !== null) this.listener?.(dueAtMs);
    if (this.pending.size >= DUE_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), DUE_FLUSH_DELAY_MS);
    return merged;
  }

  /** The earliest due time not yet written (gateway clock; Infinity: none): a look at the store would miss it. */
  earliestUnwritten(): number {
    let earliest = this.writingEarliest;
    for (const p of this.pending.values()) if (p.dueAtMs !== null && p.dueAtMs < earliest) earliest = p.dueAtMs;
    return earliest;
  }

  /** Writes what is pending, after any write already under way; resolves once all of it is written (or given up). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return this.writing;
    const batch = this.pending;
    this.pending = new Map();
    for (const p of batch.values()) if (p.dueAtMs !== null) this.writingEarliest = Math.min(this.writingEarliest, p.dueAtMs);
    const chained: Promise<void> = this.writing
      .then(() => this.write(batch))
      .finally(() => {
        // The last write under way has ended: what is unwritten now is only what is pending.
        if (this.writing === chained) this.writingEarliest = Infinity;
      });
    this.writing = chained;
    return chained;
  }

  private async write(batch: ReadonlyMap<string, Pending>): Promise<void> {
    const now = this.deps.clock.now();
    const items: CheckSchedule[] = [...batch].map(([id, p]) => ({ id, inMs: p.dueAtMs === null ? null : Math.max(0, Math.round(p.dueAtMs - now)), checks: p.checks, seen: p.seen }));
    try {
      await this.deps.store.scheduleChecks(items, now);
    } catch (err) {
      // The claims lapse with their lease and the jobs are due as before: they are checked again then.
      this.deps.logger.warn({ err: { message: (err as Error).message }, jobs: items.length }, 'could not record the next checks of jobs');
    }
  }
}
