/**
 * How long one probe of the upstream (or the store) answers every /readyz. /readyz is unauthenticated and
 * the upstream probe spends the operator's upstream key, so readiness traffic reaches the upstream, and the
 * store, at most once per this interval whatever the request rate.
 */
export const READINESS_PROBE_INTERVAL_MS = 5_000;

/**
 * Runs `probe` at most once per interval: callers meanwhile share the probe in flight (single flight) or
 * its last result. A new probe starts only once the last one has ended and the interval has passed.
 */
export class SharedProbe {
  private last: { startedAt: number; result: Promise<boolean>; settled: boolean } | undefined;

  constructor(
    private readonly probe: () => Promise<boolean>,
    private readonly intervalMs: number,
  ) {}

  check(): Promise<boolean> {
    const now = performance.now();
    const last = this.last;
    if (last && (!last.settled || now - last.startedAt < this.intervalMs)) return last.result;
    const next = { startedAt: now, settled: false, result: this.probe().catch(() => false) };
    void next.result.finally(() => (next.settled = true));
    this.last = next;
    return next.result;
  }
}
