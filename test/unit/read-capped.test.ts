import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readCappedBuffer } from '../../src/domain/read-capped.js';

class Over extends Error {}
const over = () => new Over('over the cap');

/** An endless web stream of `size`-byte chunks that counts the chunks pulled and notices cancellation. */
function endless(size: number) {
  const seen = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(c) {
        seen.pulled++;
        c.enqueue(new Uint8Array(size).fill(seen.pulled));
      },
      cancel() {
        seen.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, seen };
}

describe('reading a stream up to a byte cap', () => {
  it.each<[string, number[], number, number | 'throws']>([
    ['under the cap', [3, 3], 10, 6],
    ['exactly at the cap', [5, 5], 10, 10],
    ['one byte over', [5, 6], 10, 'throws'],
    ['one chunk far over', [100], 10, 'throws'],
    ['empty', [], 0, 0],
  ])('%s, over → error', async (_n, sizes, limit, expected) => {
    const body = Readable.from(sizes.map((n) => Buffer.alloc(n, 1)));
    const read = readCappedBuffer(body, limit, over);
    if (expected === 'throws') await expect(read).rejects.toBeInstanceOf(Over);
    else expect((await read).length).toBe(expected);
  });

  it.each<[string, number[], number, number]>([
    ['under the cap', [3, 3], 10, 6],
    ['one byte over', [5, 6], 10, 10],
    ['one chunk far over', [100], 10, 10],
  ])('%s, over → cut', async (_n, sizes, limit, expected) => {
    expect((await readCappedBuffer(Readable.from(sizes.map((n) => Buffer.alloc(n, 1))), limit, 'cut')).length).toBe(expected);
  });

  it.each(['cut', 'error'] as const)('past the cap (%s) reads no further and releases a web stream', async (mode) => {
    const { stream, seen } = endless(4);
    const read = readCappedBuffer(stream, 10, mode === 'cut' ? 'cut' : over);
    if (mode === 'cut') expect([...(await read)]).toEqual([1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    else await expect(read).rejects.toBeInstanceOf(Over);
    expect(seen).toEqual({ pulled: 3, cancelled: true });
  });

  it('past the cap destroys a Node stream (an upstream answer: its socket is dropped)', async () => {
    const body = new Readable({ read() { this.push(Buffer.alloc(4)); } });
    expect((await readCappedBuffer(body, 10, 'cut')).length).toBe(10);
    expect(body.destroyed).toBe(true);
  });
});
