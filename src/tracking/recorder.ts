import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../domain/quota-policy.js';
import { isTerminal, type JobRecord } from '../domain/job.js';
import type { UpstreamTask } from '../upstream/dialects/task.js';
import type { JobWatch } from '../videos/jobs.js';
import { FAMILY_TYPICAL_SECONDS, typicalMs, type ModelCatalog } from '../domain/models.js';
import type { DueWriter } from './due-writer.js';
import type { RecentEnds } from './recent-ends.js';
import { nextCheckInMs } from './schedule.js';
import type { StatusBudget } from './status-budget.js';

/** A job of a model no longer in the table is expected to take as long as the slower family's. */
const UNKNOWN_MODEL_TYPICAL_MS = Math.max(...Object.values(FAMILY_TYPICAL_SECONDS)) * 1000;

/**
 * How long after the upstream finished the gateway noticed, at most: the end lies after the check before
 * (made at `lastCheckMs`, which saw the job running) and, when the upstream says when it finished (new-api's
 * `completed_at`, whole seconds), after that.
 */
export function noticeLagMs(lastCheckMs: number, task: Pick<UpstreamTask, 'finishedAtMs'>, noticedAtMs: number): number {
  return Math.max(0, noticedAtMs - Math.max(lastCheckMs, task.finishedAtMs ?? -Infinity));
}

export interface RecorderDeps {
  readonly writer: DueWriter;
  readonly budget: StatusBudget;
  /** Which upstream a job's calls go to (its budget). */
  readonly upstreamOf: (job: JobRecord) => string;
  readonly catalog: ModelCatalog;
  readonly clock: Clock;
  readonly metrics: Metrics;
  /** The latest ends, for the admin view. */
  readonly recent: RecentEnds;
  /** A job still running this long after its creation is ended by the tracker: its last check is due then. */
  readonly maxJobAgeMs: number;
  /** Told when a check saw a job end (its event may be in the webhook outbox now). */
  readonly onEnded: () => void;
}

/** What every status check of a job leads to, whoever made it (a client's poll or the tracker): its next check. */
export class CheckRecorder implements JobWatch {
  constructor(private readonly deps: RecorderDeps) {}

  mayCheck(job: JobRecord): boolean {
    return this.deps.budget.tryTake(this.deps.upstreamOf(job));
  }

  checked(before: JobRecord, after: JobRecord, task: UpstreamTask | undefined, lastCheckMs: number): void {
    if (!isTerminal(after.status)) {
      return this.deps.writer.put(after.id, this.dueAt(after, { atMs: lastCheckMs, progress: before.progress }), 1, { status: after.status, progress: after.progress });
    }
    const lagMs = task ? noticeLagMs(lastCheckMs, task, this.deps.clock.now()) : undefined;
    this.deps.metrics.jobEndNoticed(lagMs, before.statusChecks + 1);
    this.deps.recent.record(lagMs, before.statusChecks + 1);
    this.deps.writer.ended(after.id, 1);
    this.deps.onEnded();
  }

  placed(job: JobRecord): void {
    this.deps.writer.put(job.id, this.dueAt(job), 0);
  }

  /**
   * When a running job is next due, on the gateway's clock (see schedule.ts); `previous`: the check before
   * this one (when, and the progress it saw), which gives the pace since.
   */
  dueAt(job: JobRecord, previous?: { readonly atMs: number; readonly progress: number }): number {
    const now = this.deps.clock.now();
    const createdMs = job.createdAt * 1000;
    const ageMs = now - createdMs;
    const spec = this.deps.catalog.resolve(job.model);
    const inMs = nextCheckInMs({
      ageMs,
      typicalMs: spec ? typicalMs(spec) : UNKNOWN_MODEL_TYPICAL_MS,
      status: job.status === 'queued' ? 'queued' : 'in_progress',
      progress: job.progress,
      previous: previous && { ageMs: previous.atMs - createdMs, progress: previous.progress },
    });
    return now + Math.min(inMs, Math.max(0, this.deps.maxJobAgeMs - ageMs));
  }
}
