import type { Logger } from '../observability/logger.js';
import type { Principal, Store } from '../store/types.js';
import type { Clock } from '../domain/quota-policy.js';

export const REQUEST_FLUSH_MS = 1_000;

type Count = { teamId: string; keyId: string; atMs: number; count: number };

/**
 * Requests of keys and teams without a per-minute limit need counting (for usage) but no admission, so
 * they are summed in memory and written once a second instead of costing a store transaction each. A batch
 * the store refuses (it is down) is kept and written with the next one; a crash loses what is unwritten,
 * at least a second of these counts. No budget depends on them.
 */
export class RequestCounter {
  private pending = new Map<string, Count>();
  /**
   * The count each principal added to last, with its minute and batch: its next request in that minute and batch
   * adds one there, with no key string built and hashed (every request of an unlimited key comes here).
   */
  private readonly last = new WeakMap<Principal, { minute: number; batch: Map<string, Count>; entry: Count }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  add(principal: Principal): void {
    const now = this.clock.now();
    const minute = Math.floor(now / 60_000);
    const last = this.last.get(principal);
    if (last && last.minute === minute && last.batch === this.pending) {
      last.entry.count++;
      return;
    }
    const id = `${principal.teamId}\0${principal.keyId}\0${minute}`;
    let entry = this.pending.get(id);
    if (entry) entry.count++;
    else this.pending.set(id, (entry = { teamId: principal.teamId, keyId: principal.keyId, atMs: now, count: 1 }));
    this.last.set(principal, { minute, batch: this.pending, entry });
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await this.store.countRequests([...batch.values()]);
    } catch (err) {
      // One statement (one transaction): a failure wrote none of it, but for an answer lost after the commit,
      // which then counts twice, the lesser harm. Back into the counts, beside any made meanwhile.
      for (const [id, entry] of batch) {
        const later = this.pending.get(id);
        if (later) later.count += entry.count;
        else this.pending.set(id, entry);
      }
      throw err;
    }
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
