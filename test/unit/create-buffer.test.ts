import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/domain/errors.js';
import { CreateBuffer, metered, SMALL_BODY_BYTES } from '../../src/http/create-buffer.js';

const KIB = 1024;
const MIB = 1024 * KIB;
/** 1 MiB in all, 512 KiB per team, 896 KiB for bodies over 64 KiB (1/8 kept for small ones). */
const limits = { bytes: MIB, teamShare: 0.5, waitMs: 100 };
const MAX_BODY = 512 * KIB;

/** How a hold ended: granted, or refused with the error's status and code; and after how long. */
async function outcome(p: Promise<void>) {
  const started = performance.now();
  try {
    await p;
    return { granted: true, ms: performance.now() - started };
  } catch (err) {
    const e = err as ApiError;
    return { granted: false, status: e.status, code: e.code, retryAfter: e.headers['retry-after'], ms: performance.now() - started };
  }
}

describe('create buffer', () => {
  it("bounds each team by its share: over it, the team's own create waits, then is refused with 429; another team goes at once", async () => {
    const buf = new CreateBuffer(limits);
    await buf.open('a', MAX_BODY).hold(512 * KIB);
    const other = outcome(buf.open('b', MAX_BODY).hold(300 * KIB));
    // Granted on the spot, without waiting a turn.
    expect(buf.usage('b')).toBe(300 * KIB);
    const own = await outcome(buf.open('a', MAX_BODY).hold(1));
    expect(await other).toMatchObject({ granted: true });
    expect(own).toMatchObject({ granted: false, status: 429, code: 'too_many_uploads', retryAfter: '1' });
    expect(own.ms).toBeGreaterThanOrEqual(90);
    expect(buf.usage('a')).toBe(512 * KIB);
    expect(buf.usage()).toBe(812 * KIB);
  });

  it('keeps the last eighth for small bodies: a large one waits and gets 503 server_busy, a small one is served', async () => {
    const buf = new CreateBuffer(limits);
    await buf.open('a', MAX_BODY).hold(448 * KIB);
    await buf.open('b', MAX_BODY).hold(448 * KIB);
    // 896 KiB held: the large bodies' part is full.
    const large = outcome(buf.open('c', MAX_BODY).hold(SMALL_BODY_BYTES + 1));
    const small = outcome(buf.open('d', MAX_BODY).hold(SMALL_BODY_BYTES));
    expect(buf.usage('d')).toBe(SMALL_BODY_BYTES);
    expect(await small).toMatchObject({ granted: true });
    expect(await large).toMatchObject({ granted: false, status: 503, code: 'server_busy', retryAfter: '1' });
  });

  it('a waiting create gets its room as soon as another body is released, before its deadline', async () => {
    const buf = new CreateBuffer({ ...limits, waitMs: 5_000 });
    const first = buf.open('a', MAX_BODY);
    await first.hold(512 * KIB);
    const waiting = outcome(buf.open('a', MAX_BODY).hold(256 * KIB));
    await new Promise((r) => setTimeout(r, 20));
    first.release();
    const got = await waiting;
    expect(got).toMatchObject({ granted: true });
    // Well before its 5 s deadline: woken by the release, not by the timer.
    expect(got.ms).toBeLessThan(4_000);
    expect(buf.usage('a')).toBe(256 * KIB);
  });

  it('a large create waiting for room does not hold up a small one behind it, and gets its room once freed', async () => {
    const buf = new CreateBuffer({ ...limits, waitMs: 5_000 });
    const a = buf.open('a', MAX_BODY);
    await a.hold(448 * KIB);
    await buf.open('b', MAX_BODY).hold(448 * KIB);
    const large = outcome(buf.open('c', MAX_BODY).hold(400 * KIB));
    const small = outcome(buf.open('d', MAX_BODY).hold(40 * KIB));
    expect(buf.usage('d')).toBe(40 * KIB);
    expect(await small).toMatchObject({ granted: true });
    a.release();
    expect(await large).toMatchObject({ granted: true });
    expect(buf.usage()).toBe(888 * KIB);
  });

  it('gives every byte back once, on release, whatever the lease held; a second release changes nothing', async () => {
    const buf = new CreateBuffer(limits);
    const lease = buf.open('a', MAX_BODY);
    await lease.hold(100 * KIB);
    await lease.hold(50 * KIB);
    expect(buf.usage('a')).toBe(100 * KIB);
    lease.release();
    lease.release();
    expect(buf.usage()).toBe(0);
    // Released: nothing more is held for it.
    await lease.hold(10 * KIB);
    expect(buf.usage()).toBe(0);
  });

  it('a chunked body holds what it has read, growing by doubling up to the body limit, never past it', async () => {
    const buf = new CreateBuffer(limits);
    const lease = buf.open('a', MAX_BODY);
    async function* chunks() {
      for (let i = 0; i < 9; i++) yield new Uint8Array(64 * KIB);
    }
    const seen: number[] = [];
    for await (const _ of metered(chunks(), lease)) seen.push(buf.usage('a'));
    expect(seen).toEqual([64, 128, 256, 256, 512, 512, 512, 512, 512].map((k) => k * KIB));
    lease.release();
    expect(buf.usage()).toBe(0);
  });

  it('a chunked body that stays small may use the headroom; once large it may not', async () => {
    const buf = new CreateBuffer(limits);
    await buf.open('a', MAX_BODY).hold(448 * KIB);
    await buf.open('b', MAX_BODY).hold(448 * KIB);
    const lease = buf.open('c', MAX_BODY);
    await lease.count(32 * KIB);
    await lease.count(32 * KIB);
    expect(buf.usage('c')).toBe(64 * KIB);
    expect(await outcome(lease.count(1)!)).toMatchObject({ granted: false, code: 'server_busy' });
  });

  it('bytes granted to a lease released while it waited go straight back', async () => {
    const buf = new CreateBuffer({ ...limits, waitMs: 5_000 });
    const hog = buf.open('a', MAX_BODY);
    await hog.hold(512 * KIB);
    const lease = buf.open('a', MAX_BODY);
    const waiting = lease.hold(128 * KIB);
    lease.release();
    hog.release();
    await waiting;
    expect(buf.usage()).toBe(0);
  });
});
