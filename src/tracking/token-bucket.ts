/** A wait for a token that was given up (the tracker stopping). */
export class TokenWaitAbortedError extends Error {
  override readonly name = 'TokenWaitAbortedError';
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * `rate` tokens a second, holding at most one second's worth. Waiters are served first come, first served,
 * and a taker that would not wait (`tryTake`) gets a token only when nobody waits: what waits is never
 * overtaken.
 */
export class TokenBucket {
  private tokens: number;
  private at: number;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly rate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = rate;
    this.at = now();
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
  }

  tryTake(): boolean {
    if (this.waiters.length > 0) return false;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Resolves once a token is this caller's; rejects with TokenWaitAbortedError when `signal` aborts first. */
  take(signal?: AbortSignal): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new TokenWaitAbortedError());
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', abort);
          resolve();
        },
        reject,
      };
      const abort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new TokenWaitAbortedError());
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.waiters.push(waiter);
      this.serve();
    });
  }

  /** Hands out the tokens that have accrued, and sleeps until the next one when someone still waits. */
  private serve(): void {
    if (this.timer) return;
    this.refill();
    while (this.waiters.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.waiters.shift()!.resolve();
    }
    if (this.waiters.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.serve();
    }, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
    this.timer.unref();
  }
}
