import type { Logger } from '../observability/logger.js';
import type { Principal, Store } from '../store/types.js';
import type { Clock } from '../domain/quota-policy.js';

export const REQUEST_FLUSH_MS = 1_000;

/**
 * Requests of keys and teams without a per-minute limit need counting (for usage) but no admission, so
 * they are summed in memory and written once a second instead of costing a store transaction each. A
 * crash loses at most a second of these counts; no budget depends on them.
 */
export class RequestCounter {
  private pending = new Map<string, { teamId: string; keyId: string; atMs: number; count: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  add(principal: Principal): void {
    const now = this.clock.now();
    const minute = Math.floor(now / 60_000);
    const id = `${principal.teamId}\0${principal.keyId}\0${minute}`;
    const entry = this.pending.get(id);
    if (entry) entry.count++;
    else this.pending.set(id, { teamId: principal.teamId, keyId: principal.keyId, atMs: now, count: 1 });
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    await this.store.countRequests(batch);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.flush().catch((err: unknown) => this.logger.error({ err: { message: (err as Error).message } }, 'request count flush failed'));
    }, REQUEST_FLUSH_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
