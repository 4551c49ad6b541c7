import type { StorageTarget } from './target.js';

/** Stored results (§12). */
export interface StorageConfig {
  /** Undefined: STORAGE_URL=none, content always streams from the upstream. */
  readonly target: StorageTarget | undefined;
  /** S3_ENDPOINT: a non-AWS service (MinIO, R2, …), addressed path-style. */
  readonly s3Endpoint: string | undefined;
  readonly region: string;
  readonly contentRedirect: 'none' | 'presigned';
  readonly contentRedirectTtlS: number;
  /** The default of the team policy's `video_retention_days`. */
  readonly retentionDays: number;
  readonly copyConcurrency: number;
  /** 0: unbounded. */
  readonly copyBytesPerSec: number;
  /** The wait after the first failed copy, doubled after each further one. */
  readonly copyRetryMs: number;
  /** 0: this replica copies and sweeps nothing (others sharing the store do). */
  readonly pollIntervalMs: number;
  readonly sweepIntervalMs: number;
  readonly dataUriMaxBytes: number;
}
