import { randomBytes } from 'node:crypto';
import type { Charge, JobRecord } from '../domain/job.js';
import type { HeldReservation, ReservationOnDelete } from './types.js';

/** What an abandoned create's hidden record says, for an operator reading the store. */
export const ABANDONED = { code: 'create_abandoned', message: 'The create got no answer from the upstream in time; its reservation was refunded.' };
/** Refunded before the upstream ever named it, by abandonJob (a client delete of a pending create refunds too, but leaves no mark). */
export const isAbandoned = (job: JobRecord) => job.upstreamId === null && job.charge === 'refunded' && job.error?.code === ABANDONED.code;
/** Deleted by its team while the create was on its way, and refunded then because the outcome was unknown. */
export const isDeletedPending = (job: JobRecord) => job.upstreamId === null && job.charge === 'refunded' && !isAbandoned(job);

/** What a delete does with the reservation `job` (as its transaction found it) still holds. */
export const heldOnDelete = (held: ReservationOnDelete, job: JobRecord): HeldReservation => (typeof held === 'function' ? held(job) : held);

/** How a shift of a job's seconds (reserved and settled deltas) is reported to a ChargeListener. */
export function chargeMove(reserved: number, settled: number): [Charge, number] {
  if (reserved > 0) return ['reserved', reserved];
  if (settled > 0) return ['settled', settled];
  return ['refunded', -reserved];
}

/** Names one claim of a webhook delivery: only its holder may record the attempt. */
export const leaseToken = () => randomBytes(12).toString('hex');
