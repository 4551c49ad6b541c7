import type { Metrics } from '../observability/metrics.js';
import { TokenBucket } from './token-bucket.js';

/**
 * The status calls this process may make to each upstream (UPSTREAM_STATUS_RPS a second, per upstream),
 * shared by client polls and the tracker so that tracking never spends the operator's upstream rate limit.
 * The tracker waits its turn; a client poll never waits: when the bucket is empty, or the tracker is
 * waiting for it, the poll is answered with what the gateway last knew (the tracker checks the job on its
 * schedule). So what the tracker needs to notice every team's ends comes first, and the tracker takes its
 * jobs in turns across teams (Store.claimDueJobs).
 */
export class StatusBudget {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly perSecond: number,
    private readonly metrics: Metrics,
  ) {}

  private of(upstream: string): TokenBucket {
    let bucket = this.buckets.get(upstream);
    if (!bucket) this.buckets.set(upstream, (bucket = new TokenBucket(this.perSecond)));
    return bucket;
  }

  /** For a client's request: a call now, or none. */
  tryTake(upstream: string): boolean {
    if (this.of(upstream).tryTake()) return true;
    this.metrics.statusBudgetExhausted(upstream);
    return false;
  }

  /** For the tracker: waits for a call (see TokenBucket.take). */
  take(upstream: string, signal?: AbortSignal): Promise<void> {
    return this.of(upstream).take(signal);
  }
}
