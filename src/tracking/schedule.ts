import type { VideoStatus } from '../domain/job.js';

/**
 * When to look at a running job next (contract §11): the gateway checks every active job on its own, polled or
 * not, and each check costs an upstream status call. The aim is to notice each end within a few seconds at
 * a few calls per job:
 * - the job is expected to end at `expected`: where its progress is heading at the pace it kept since the
 *   check before (or since its creation, with no progress seen before), or else its model's usual duration;
 * - a job young next to that is looked at after a growing share of its age (a job far faster than its
 *   model's usual, as on a simulator, is still seen early), and at most a third of the way to the expected
 *   end, so the checks close in on it; half the way when the end is where the job's measured pace heads,
 *   a surer aim than a usual duration (a fifth fewer calls per job, at no cost in lag for steady progress);
 * - near the expected end the gap shrinks to `near` (a small share of the expected duration, at least
 *   MIN_GAP_MS), and a check lands just after the expected end;
 * - a job running past it is looked at after a growing share of its overtime: long runners cost calls in the
 *   logarithm of their length, up to one every MAX_GAP_MS.
 */
export const MIN_GAP_MS = 1_000;
export const MAX_GAP_MS = 10 * 60_000;
/** Near the expected end, a check every this share of the expected duration (at least MIN_GAP_MS). */
export const NEAR_FRACTION = 0.04;
/** Early on, the gap is at most this share of the job's age... */
export const AGE_FRACTION = 0.75;
/** ...and at most this share of the time left to the expected end... */
export const APPROACH_FRACTION = 0.3;
/** ...or this share, when the end is where the pace since the check before heads. */
export const PACED_APPROACH_FRACTION = 0.5;
/** Past the expected end, the gap grows as this share of the overtime. */
export const OVERTIME_FRACTION = 0.25;
/** A check aimed at the expected end lands this long after it, so that it finds the job done. */
export const END_MARGIN_MS = 250;

export interface JobProgress {
  /** Since the job was created. */
  readonly ageMs: number;
  /** How long the job's model usually takes (src/domain/models.ts `typicalMs`). */
  readonly typicalMs: number;
  /** What the upstream said last; a terminal job is never scheduled. */
  readonly status: Extract<VideoStatus, 'queued' | 'in_progress'>;
  /** 0–99, as the upstream said (0 when it says nothing). */
  readonly progress: number;
  /** The check before, when known: how old the job was then, and its progress. */
  readonly previous?: { readonly ageMs: number; readonly progress: number } | undefined;
}

/** When the job is expected to end, measured from its creation, and whether that is where its measured pace heads. */
export function expectedEnd(job: JobProgress): { readonly ms: number; readonly paced: boolean } {
  if (job.status !== 'in_progress' || job.progress <= 0) return { ms: job.typicalMs, paced: false };
  const before = job.previous;
  // The pace since the check before: a job that queued for long before it began is not judged by its queueing.
  if (before && before.progress < job.progress && before.ageMs < job.ageMs) {
    return { ms: job.ageMs + ((100 - job.progress) * (job.ageMs - before.ageMs)) / (job.progress - before.progress), paced: true };
  }
  return { ms: (job.ageMs * 100) / job.progress, paced: false };
}

/** How long from now until the job's next check. */
export function nextCheckInMs(job: JobProgress): number {
  const { ms: expected, paced } = expectedEnd(job);
  const near = Math.max(MIN_GAP_MS, expected * NEAR_FRACTION);
  const left = expected - job.ageMs;
  const approach = paced ? PACED_APPROACH_FRACTION : APPROACH_FRACTION;
  const gap =
    left > 0
      ? Math.min(left + END_MARGIN_MS, Math.max(near, Math.min(job.ageMs * AGE_FRACTION, left * approach)))
      : Math.max(near, -left * OVERTIME_FRACTION);
  return Math.round(Math.min(MAX_GAP_MS, Math.max(MIN_GAP_MS, gap)));
}
