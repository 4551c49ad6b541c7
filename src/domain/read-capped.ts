/**
 * The one rule for reading a stream up to a byte cap, for request bodies and upstream error answers alike.
 * Chunks are passed on while they total at most `limit` bytes. At the first chunk past it the loop over
 * `body` is left, which releases the stream (a web stream is cancelled, a Node stream destroyed): nothing
 * more is read. Then `over` decides: `'cut'` ends with the part of that chunk that still fits, a function
 * gives the error to throw.
 */
export async function* readCapped(body: AsyncIterable<Uint8Array>, limit: number, over: 'cut' | (() => Error)): AsyncGenerator<Uint8Array, void, undefined> {
  let total = 0;
  for await (const chunk of body) {
    if (total + chunk.byteLength > limit) {
      if (over !== 'cut') throw over();
      yield chunk.subarray(0, limit - total);
      return;
    }
    total += chunk.byteLength;
    yield chunk;
  }
}

/** The same, collected into one buffer. */
export async function readCappedBuffer(body: AsyncIterable<Uint8Array>, limit: number, over: 'cut' | (() => Error)): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of readCapped(body, limit, over)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
