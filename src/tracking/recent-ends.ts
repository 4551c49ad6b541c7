/** Ends kept for the admin view: enough for a p95 that means something, little enough to sort per request. */
export const RECENT_ENDS = 1_000;

export interface RecentEndsView {
  /** Ends in the window (at most RECENT_ENDS). */
  readonly jobs: number;
  /** Seconds from the upstream finishing to this process noticing, at most (see noticeLagMs); null with none measured. */
  readonly notice_lag_seconds: { readonly p50: number; readonly p95: number; readonly max: number } | null;
  /** Upstream status calls per job, mean; null with no end. */
  readonly status_checks_per_job: number | null;
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/**
 * The latest job ends this process noticed, for the operator console (GET /admin/tracking): how late and after
 * how many status calls. /metrics has the same as histograms since the start; this is the recent window.
 */
export class RecentEnds {
  private readonly lagsMs: Array<number | undefined> = [];
  private readonly checks: number[] = [];
  private next = 0;

  /** `lagMs` undefined: the upstream gave no answer (the job was lost), so no lag is known. */
  record(lagMs: number | undefined, checks: number): void {
    this.lagsMs[this.next] = lagMs;
    this.checks[this.next] = checks;
    this.next = (this.next + 1) % RECENT_ENDS;
  }

  view(): RecentEndsView {
    const lags = this.lagsMs.filter((l): l is number => l !== undefined).sort((a, b) => a - b);
    const s = (ms: number) => Math.round(ms) / 1000;
    return {
      jobs: this.checks.length,
      notice_lag_seconds: lags.length ? { p50: s(quantile(lags, 0.5)), p95: s(quantile(lags, 0.95)), max: s(lags[lags.length - 1]!) } : null,
      status_checks_per_job: this.checks.length ? Math.round((this.checks.reduce((a, b) => a + b, 0) / this.checks.length) * 100) / 100 : null,
    };
  }
}
