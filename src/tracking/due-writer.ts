import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { ActiveStatus, CheckSchedule, Store } from '../store/types.js';

/** Writes wait this long for company: one statement carries every check that ended meanwhile. */
export const DUE_FLUSH_DELAY_MS = 20;
/** A batch this large is written at once. */
const DUE_BATCH = 500;

interface Pending {
  /** On the gateway's clock; null: the due time stays as it is. */
  dueAtMs: number | null;
  checks: number;
  seen: ActiveStatus | undefined;
}

/**
 * Each job's next check, its status calls and the progress they saw on their way to the store
 * (Store.scheduleChecks), a few milliseconds at a time in one statement, and in order: two records of one
 * job merge (the latest due time and progress given stand, their calls add up). A running job's progress
 * goes this way rather than in a transaction of its own: it costs the store next to nothing in the batch,
 * and a check that is late by DUE_FLUSH_DELAY_MS to show it changes nothing. Whoever plans to wake at a due
 * time hears of earlier ones (`onDue`).
 */
export class DueWriter {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** The earliest due time of the batches being written, which the store may not show yet. */
  private writingEarliest = Infinity;
  private listener: ((dueAtMs: number) => void) | undefined;

  constructor(private readonly deps: { store: Store; clock: Clock; logger: Logger }) {}

  onDue(listener: (dueAtMs: number) => void): void {
    this.listener = listener;
  }

  /**
   * Records that the job is next due at `dueAtMs` (null: unchanged) after `checks` more status calls, the
   * latest of which saw it running as `seen`, and ends this process's claim on it.
   */
  put(id: string, dueAtMs: number | null, checks: number, seen?: ActiveStatus): void {
    const before = this.pending.get(id);
    this.pending.set(id, { dueAtMs: dueAtMs ?? before?.dueAtMs ?? null, checks: checks + (before?.checks ?? 0), seen: seen ?? before?.seen });
    if (dueAtMs !== null) this.listener?.(dueAtMs);
    if (this.pending.size >= DUE_BATCH) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), DUE_FLUSH_DELAY_MS);
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
