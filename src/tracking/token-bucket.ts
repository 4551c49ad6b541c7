/** A wait for a token that was given up (the tracker stopping). */
export class TokenWaitAbortedError extends Error {
  override readonly name = 'TokenWaitAbortedError';
}

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
  readonly signal: AbortSignal | undefined;
}

/** The one abort listener of a signal, and how many waiters it speaks for. */
interface Watch {
  readonly abort: () => void;
  waiting: number;
}

/**
 * `rate` tokens a second, holding at most one second's worth. Waiters are served first come, first served,
 * and a taker that would not wait (`tryTake`) gets a token only when nobody waits: what waits is never
 * overtaken. A signal shared by many waiters (the tracker's stop) gets one listener, not one each: hundreds
 * of listeners on one signal are what Node warns of as a leak (MaxListenersExceededWarning).
 */
export class TokenBucket {
  private tokens: number;
  private at: number;
  private waiters: Waiter[] = [];
  private readonly watches = new Map<AbortSignal, Watch>();
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
      this.waiters.push({ resolve, reject, signal });
      if (signal) this.watch(signal);
      this.serve();
    });
  }

  private watch(signal: AbortSignal): void {
    const watch = this.watches.get(signal);
    if (watch) {
      watch.waiting++;
      return;
    }
    const abort = () => {
      this.watches.delete(signal);
      const left: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.signal === signal) w.reject(new TokenWaitAbortedError());
        else left.push(w);
      }
      this.waiters = left;
    };
    this.watches.set(signal, { abort, waiting: 1 });
    signal.addEventListener('abort', abort, { once: true });
  }

  private served(signal: AbortSignal | undefined): void {
    const watch = signal && this.watches.get(signal);
    if (!watch || --watch.waiting > 0) return;
    this.watches.delete(signal);
    signal.removeEventListener('abort', watch.abort);
  }

  /** Hands out the tokens that have accrued, and sleeps until the next one when someone still waits. */
  private serve(): void {
    if (this.timer) return;
    this.refill();
    while (this.waiters.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      const waiter = this.waiters.shift()!;
      this.served(waiter.signal);
      waiter.resolve();
    }
    if (this.waiters.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.serve();
    }, Math.ceil(((1 - this.tokens) * 1000) / this.rate));
    this.timer.unref();
  }
}
