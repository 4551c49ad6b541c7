import type { NormalizedVideoRequest } from '../normalize.js';

/**
 * A piece of a create body: bytes at hand, or bytes produced on demand while the body is sent (a reference
 * image decoded from or encoded to base64 slice by slice), whose length is known beforehand.
 */
export type BodyPart = Buffer | { readonly length: number; chunks(): Iterable<Buffer> };

/** A create request in the exact wire form one upstream family wants. */
export interface EncodedCreate {
  readonly contentType: string;
  readonly length: number;
  /**
   * The body, produced as it is sent (one pass only): the other form of an 8 MB image never exists whole,
   * only the slice being written.
   */
  readonly chunks: Iterable<Buffer>;
}

/** `model`: the name the upstream knows the model by. */
export type CreateEncoder = (req: NormalizedVideoRequest, model: string) => EncodedCreate;

export function fromParts(contentType: string, parts: readonly BodyPart[]): EncodedCreate {
  return {
    contentType,
    length: parts.reduce((n, p) => n + p.length, 0),
    chunks: (function* () {
      for (const p of parts) {
        if (Buffer.isBuffer(p)) yield p;
        else yield* p.chunks();
      }
    })(),
  };
}
