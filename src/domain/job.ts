import type { DerivedOperation } from './models.js';
import type { StoredCopy } from './stored-copy.js';

/**
 * A video job in the gateway's own terms: its states, and the record every store keeps of it. The upstream's
 * words for states are decoded into these at the upstream's edge (src/upstream/dialects/task.ts).
 */
export type VideoStatus = 'queued' | 'in_progress' | 'completed' | 'failed';

export interface VideoError {
  readonly code: string;
  readonly message: string;
}

export function isTerminal(status: VideoStatus): status is 'completed' | 'failed' {
  switch (status) {
    case 'completed':
    case 'failed':
      return true;
    case 'queued':
    case 'in_progress':
      return false;
    default: {
      const unreachable: never = status;
      return unreachable;
    }
  }
}

export type Charge = 'reserved' | 'settled' | 'refunded';

/** Where a job's actual cost came from: the upstream's own figure (xAI's `usage`), or the price (§10). */
export type CostSource = 'upstream' | 'price';

/**
 * The money of one move of a job's charge: the micro-dollars reserved (its estimate), settled (its actual
 * cost; 0 with `source` null when unknown) or refunded (its estimate).
 */
export interface MoneyMove {
  readonly jobId: string;
  readonly model: string;
  /** The configured upstream that took the job; null before it was placed, and for jobs from before upstream ids. */
  readonly upstream: string | null;
  readonly micros: number;
  readonly estimateMicros: number | null;
  readonly source: CostSource | null;
}

export interface JobRecord {
  readonly id: string;
  readonly teamId: string;
  readonly keyId: string;
  /** Null while the create is still on its way to the upstream. */
  readonly upstreamId: string | null;
  readonly upstreamKeyFp: string | null;
  /**
   * The configured upstream (its `id`) that created the job, which every later call about it goes to; null
   * while pending, and for jobs recorded before upstreams had ids (they belong to the first upstream).
   */
  readonly upstreamName: string | null;
  /** Where the upstream keeps the finished video (xAI's `video.url`): for the content route only, never shown to a client. */
  readonly mediaUrl: string | null;
  /** A derived video's (§9) source video and how it was derived; null for a video created from a prompt. */
  readonly sourceVideoId: string | null;
  readonly derivation: DerivedOperation | null;
  readonly model: string;
  readonly prompt: string;
  readonly seconds: number;
  readonly resolution: number;
  readonly aspectRatio: string;
  readonly status: VideoStatus;
  readonly progress: number;
  readonly error: VideoError | null;
  /** Unix seconds, as the OpenAI object has them. */
  readonly createdAt: number;
  readonly completedAt: number | null;
  readonly updatedAtMs: number;
  readonly charge: Charge;
  readonly chargeDay: string;
  readonly chargeMonth: string;
  /** Unix seconds after which the content is gone (§12 retention); null until a copy was scheduled. */
  readonly expiresAt: number | null;
  /** The video's stored copy (§12); null while none was ever scheduled. */
  readonly storage: StoredCopy | null;
  /** Upstream status calls made for the job, as recorded with its next check (§11). */
  readonly statusChecks: number;
  /** Micro-dollars reserved at admission (§10); null: the cost was unknown, so nothing was reserved. */
  readonly estimateMicros: number | null;
  /**
   * The cost at the price of the upstream that took the job, known once it took it: the actual cost when
   * the upstream reports none. Null before, or when that upstream has no price for it.
   */
  readonly priceMicros: number | null;
  /** What the job cost, once its charge moved for good: 0 when refunded; null while running, or when unknown. */
  readonly costMicros: number | null;
  readonly costSource: CostSource | null;
}

/** The tracker's backlog: checks due and not taken, and how soon the next one not taken is due (negative: late). */
export interface DueChecks {
  readonly due: number;
  readonly nextInMs: number | null;
}
