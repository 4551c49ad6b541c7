import type { Readable } from 'node:stream';

/** Inclusive byte offsets, as HTTP ranges have them. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Where stored videos live: one object per video under a key the gateway chooses. Each backend keeps the
 * bytes as they are; what they are (type, length) is the store's record.
 */
export interface StorageBackend {
  /** For logs and metrics: `file` or `s3`. */
  readonly kind: 'file' | 's3';
  /**
   * Writes `body` whole under `key`; the object appears only once complete (a failed or aborted write leaves
   * nothing behind and nothing visible).
   */
  put(key: string, body: Readable, contentType: string, signal: AbortSignal): Promise<void>;
  /** The object's bytes (a range of them); rejects with CopyMissingError when it is not there. */
  open(key: string, range: ByteRange | undefined): Promise<Readable>;
  /** Removes the object; removing one that is not there is not an error. */
  remove(key: string): Promise<void>;
  /** A URL that reads the object without credentials for `ttlS` seconds; backends without URLs have none. */
  presign?(key: string, ttlS: number): Promise<string>;
  /**
   * Removes what writes cut short by a crash left behind (a partial file, a multipart upload neither completed
   * nor aborted) that were last written before `beforeMs`; returns how many. Only the caller knows how old is
   * old enough for no live write, of this process or another sharing the storage, to still own one.
   */
  removeAbandoned(beforeMs: number): Promise<number>;
  close(): void;
}

/** The store says a copy exists, the backend has none (removed by hand, or STORAGE_URL changed). */
export class CopyMissingError extends Error {
  override readonly name = 'CopyMissingError';
}

/** The object of a video: spread over 256 prefixes by the id's random part, so no directory grows too large. */
export function objectKey(videoId: string): string {
  const random = videoId.replace(/^video_/, '');
  return `${random.slice(0, 2)}/${videoId}`;
}
