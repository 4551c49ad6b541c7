import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { TokenBucket, TokenWaitAbortedError } from '../../src/tracking/token-bucket.js';

describe('the status budget of one upstream: a token bucket', () => {
  it('holds one second of tokens, refills at its rate, and serves waiters in turn before anyone who will not wait', async () => {
    let now = 0;
    const bucket = new TokenBucket(4, () => now);
    expect([1, 2, 3, 4, 5].map(() => bucket.tryTake())).toEqual([true, true, true, true, false]);
    now += 250;
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);

    const order: string[] = [];
    const first = bucket.take().then(() => order.push('first'));
    const second = bucket.take().then(() => order.push('second'));
    now += 10_000;
    // Someone waits: a taker that will not wait gets nothing, however many tokens have accrued.
    expect(bucket.tryTake()).toBe(false);
    await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
  });

  it('a wait given up is left', async () => {
    let now = 0;
    const bucket = new TokenBucket(1, () => now);
    expect(bucket.tryTake()).toBe(true);
    const stop = new AbortController();
    const waiting = bucket.take(stop.signal);
    stop.abort();
    await expect(waiting).rejects.toBeInstanceOf(TokenWaitAbortedError);
    now += 1_000;
    expect(bucket.tryTake()).toBe(true);
  });
});

describe('many waiters on one signal (the tracker holding hundreds of jobs)', () => {
  it('add one abort listener to it, so that Node sees no leak, and all of them give up when it aborts', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      let now = 0;
      const bucket = new TokenBucket(1, () => now);
      expect(bucket.tryTake()).toBe(true);
      const stop = new AbortController();
      const waits = Array.from({ length: 50 }, () => bucket.take(stop.signal));
      // Warnings are emitted on the next tick.
      await new Promise((r) => setImmediate(r));
      expect(warnings.map((w) => w.name)).not.toContain('MaxListenersExceededWarning');
      expect(getEventListeners(stop.signal, 'abort')).toHaveLength(1);
      stop.abort();
      const settled = await Promise.allSettled(waits);
      expect(settled.every((s) => s.status === 'rejected' && s.reason instanceof TokenWaitAbortedError)).toBe(true);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('drop the listener once the last of them is served', async () => {
    let now = 0;
    const bucket = new TokenBucket(1000, () => now);
    while (bucket.tryTake());
    const stop = new AbortController();
    const waits = Array.from({ length: 3 }, () => bucket.take(stop.signal));
    now += 1_000;
    await Promise.all(waits);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });
});
