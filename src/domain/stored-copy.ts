/**
 * The stored copy of a completed video (§12), as the store keeps it beside the job: the columns `storage_*`
 * and `expires_at` of the jobs table, in both stores.
 *
 * - `pending`: to be copied (again, after a failure: `attempts`, `error`, `nextAttemptAtMs`).
 * - `stored`: the copy exists, `bytes` long, of type `contentType`.
 * - `failed`: given up for good (the upstream no longer has the video); content streams from the upstream.
 * - `removed`: the copy was deleted (the video expired or its team deleted it), or never made before then.
 */
export const COPY_STATES = ['pending', 'stored', 'failed', 'removed'] as const;
export type CopyState = (typeof COPY_STATES)[number];

export interface StoredCopy {
  readonly state: CopyState;
  readonly bytes: number | null;
  readonly contentType: string | null;
  readonly attempts: number;
  readonly nextAttemptAtMs: number | null;
  readonly error: string | null;
}
