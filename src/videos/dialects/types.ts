import type { NormalizedVideoRequest } from '../normalize.js';

/** A create request in the exact wire form one upstream family wants. */
export interface EncodedCreate {
  readonly contentType: string;
  /** Kept as chunks so large images are not copied into one buffer before sending. */
  readonly chunks: readonly Buffer[];
  readonly length: number;
}

export type CreateEncoder = (req: NormalizedVideoRequest) => EncodedCreate;

export function fromChunks(contentType: string, chunks: Buffer[]): EncodedCreate {
  return { contentType, chunks, length: chunks.reduce((n, c) => n + c.length, 0) };
}
