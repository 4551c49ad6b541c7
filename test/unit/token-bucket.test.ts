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
