import type { JobRecord } from '../domain/job.js';
import type { CopyState, StoredCopy } from '../domain/stored-copy.js';

/** A job handed to one copier or sweeper until its lease runs out; only the holder of `token` may record the outcome. */
export interface ClaimedCopy {
  readonly job: JobRecord;
  readonly token: string;
}

export interface CopyStats {
  readonly stored: number;
  readonly storedBytes: number;
  readonly pending: number;
  readonly failed: number;
}

/**
 * The store's side of stored results: which completed videos are to be copied, which are, and which copies
 * are to be removed. Claims work as the webhook outbox's do: a lease under a fresh token, so that replicas
 * never copy (or remove) the same video at once and a replica that died holds nothing past its lease.
 */
export interface CopyLedger {
  /**
   * Marks a completed job's video to be copied, due now, and records when it expires (unix seconds). Only
   * once per job: a job already scheduled (or not completed, or deleted) is returned as it is.
   */
  schedule(id: string, expiresAt: number, nowMs: number): Promise<JobRecord | undefined>;
  /** Up to `limit` pending copies that are due, of videos neither deleted nor expired, leased for `leaseMs`. */
  claimCopies(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]>;
  /** The copy exists; false (nothing written) when the lease was lost meanwhile. */
  recordStored(id: string, token: string, copy: { bytes: number; contentType: string }, nowMs: number): Promise<boolean>;
  /** An attempt failed: tried again at `retryAtMs`, or never (`null`: the copy is `failed` for good). */
  recordFailure(id: string, token: string, error: string, retryAtMs: number | null): Promise<boolean>;
  /** Gives a claim back untried (the process is stopping): due again at once, no attempt counted. */
  release(id: string, token: string): Promise<void>;
  /**
   * Up to `limit` copies of videos deleted by their team or past `expires_at`, in any state but `removed`,
   * leased for `leaseMs`: the sweeper's worklist.
   */
  claimRemovals(limit: number, leaseMs: number, nowMs: number): Promise<ClaimedCopy[]>;
  /** The copy is gone (or never existed): `removed`. */
  recordRemoved(id: string, token: string): Promise<boolean>;
  /** Totals for the metrics. */
  stats(): Promise<CopyStats>;
}

/** The copy's part of a job row, shared by both stores' row mappers; null while no copy was ever scheduled. */
export function copyOfRow(r: Record<string, unknown>): StoredCopy | null {
  if (r.storage_state == null) return null;
  return {
    state: r.storage_state as CopyState,
    bytes: (r.storage_bytes as number | null) ?? null,
    contentType: (r.storage_type as string | null) ?? null,
    attempts: (r.storage_attempts as number | null) ?? 0,
    nextAttemptAtMs: (r.storage_next_at_ms as number | null) ?? null,
    error: (r.storage_error as string | null) ?? null,
  };
}

/** Per-state counts (and bytes) into the metrics' totals (both stores). */
export function statsOf(rows: ReadonlyArray<{ state: string; n: number; bytes: number }>): CopyStats {
  const of = (state: string) => rows.find((r) => r.state === state);
  return { stored: of('stored')?.n ?? 0, storedBytes: Number(of('stored')?.bytes ?? 0), pending: of('pending')?.n ?? 0, failed: of('failed')?.n ?? 0 };
}
