import type { ColumnDecoders, Row } from './rows.js';
import type { IdempotencyClaim, IdempotencyClaimRequest, IdempotentAnswer } from './types.js';

/**
 * The rules of an `Idempotency-Key` claim, shared by both stores (each runs them inside its own transaction,
 * on the key's row read with its job): which claim the row gives, and what the claim writes.
 *
 * A row is in flight while `answer` is null: its holder works under a lease it renews. Once answered it
 * has no holder; it is kept, answered or not, until `expiresAtMs`.
 */
export interface IdempotencyRow {
  readonly fingerprint: string;
  readonly jobId: string;
  readonly leaseUntilMs: number | null;
  readonly answer: IdempotentAnswer | null;
  readonly expiresAtMs: number;
  /** The job admitted under `jobId`: undefined when there is none, else its upstream id (null: not placed yet). */
  readonly jobUpstreamId: string | null | undefined;
}

/** What a claim writes: the row anew as the caller's (`fresh`), a new holder and lease only (`takeover`), or nothing. */
export type ClaimWrite = 'fresh' | 'takeover' | 'none';

export function judgeClaim(row: IdempotencyRow | undefined, req: IdempotencyClaimRequest, nowMs: number): { write: ClaimWrite; claim: IdempotencyClaim } {
  if (!row || row.expiresAtMs <= nowMs) return { write: 'fresh', claim: { kind: 'claimed', jobId: req.jobId } };
  if (row.fingerprint !== req.fingerprint) return { write: 'none', claim: { kind: 'mismatch' } };
  if (row.answer) return { write: 'none', claim: { kind: 'answered', answer: answerNow(row.answer, row) } };
  if ((row.leaseUntilMs ?? 0) > nowMs) return { write: 'none', claim: { kind: 'in_progress' } };
  const orphan = row.jobUpstreamId === undefined ? 'absent' : row.jobUpstreamId === null ? 'unplaced' : 'placed';
  return { write: 'takeover', claim: { kind: 'claimed', jobId: row.jobId, orphan } };
}

/**
 * A key answered with an error keeps it unless the key's job has since been recorded with its upstream id: the
 * errors a key keeps are those after which the upstream may have the job (a create the store could not record
 * yet, one cut off mid-flight), and a late activation proves it does. Its video is then the answer, so that
 * the client holding the key learns of the video it is billed for.
 */
function answerNow(answer: IdempotentAnswer, row: IdempotencyRow): IdempotentAnswer {
  return answer.kind === 'error' && row.jobUpstreamId ? { kind: 'video', jobId: row.jobId } : answer;
}

/** The columns of the key's row joined with its job's, as both stores select them. */
export const KEY_WITH_JOB = `SELECT k.fingerprint, k.job_id, k.lease_until_ms, k.answer, k.expires_at_ms,
  j.id AS job_found, j.upstream_id AS job_upstream_id
  FROM idempotency_keys k LEFT JOIN jobs j ON j.id = k.job_id`;

/** A row of KEY_WITH_JOB, its `answer` decoded as the store keeps JSON. */
export function toIdempotencyRow(r: Row, json: ColumnDecoders['json']): IdempotencyRow {
  return {
    fingerprint: r.fingerprint as string,
    jobId: r.job_id as string,
    leaseUntilMs: (r.lease_until_ms as number | null) ?? null,
    answer: r.answer == null ? null : (json(r.answer) as IdempotentAnswer),
    expiresAtMs: r.expires_at_ms as number,
    jobUpstreamId: r.job_found == null ? undefined : ((r.job_upstream_id as string | null) ?? null),
  };
}
