import { microsToUsd } from '../domain/money.js';
import { chargeMove } from './lifecycle.js';
import type { Charge, CostSource, JobRecord, MoneyMove } from '../domain/job.js';
import type { ModelUsage, NewJob } from './types.js';

/**
 * The money side of a job's charge (§10), the same for both stores: its estimate is reserved with its
 * seconds, and replaced by its actual cost when the seconds are settled, or given back when they are refunded.
 */
export interface FinalCost {
  readonly costMicros: number | null;
  readonly costSource: CostSource | null;
}

/** A refunded job (failed, refused, abandoned, or deleted with its outcome unknown) costs nothing. */
export const NO_COST: FinalCost = { costMicros: 0, costSource: null };

/**
 * What a job costs when its seconds are settled: the upstream's own figure where it gave one, else its
 * price at the upstream that took it (its estimate, for a job placed before prices were kept), else unknown.
 */
export function settledCost(job: JobRecord, upstreamMicros: number | undefined): FinalCost {
  if (upstreamMicros !== undefined) return { costMicros: upstreamMicros, costSource: 'upstream' };
  const price = job.priceMicros ?? job.estimateMicros;
  return price === null ? { costMicros: null, costSource: null } : { costMicros: price, costSource: 'price' };
}

/** The charge a move of the job's seconds makes, and the money that goes with it. */
export interface ChargeShift {
  readonly charge: Charge;
  readonly seconds: number;
  readonly reservedMicros: number;
  readonly settledMicros: number;
  readonly money: MoneyMove;
}

/**
 * A move of `reserved` and `settled` seconds (deltas, as the counters take them) in money: reserving or
 * releasing the job's estimate, and settling `cost` (needed when seconds are settled).
 */
export function chargeShift(job: JobRecord, reserved: number, settled: number, cost: FinalCost = NO_COST): ChargeShift {
  const reservedMicros = Math.sign(reserved) * (job.estimateMicros ?? 0);
  const settledMicros = settled > 0 ? (cost.costMicros ?? 0) : 0;
  const [charge, seconds] = chargeMove(reserved, settled);
  const money: MoneyMove = {
    jobId: job.id,
    model: job.model,
    upstream: job.upstreamName,
    micros: charge === 'settled' ? settledMicros : Math.abs(reservedMicros),
    estimateMicros: job.estimateMicros,
    source: charge === 'settled' ? cost.costSource : null,
  };
  return { charge, seconds, reservedMicros, settledMicros, money };
}

/** The money an admission reserves with the job's seconds. */
export const admissionMove = (job: NewJob): MoneyMove => ({
  jobId: job.id,
  model: job.model,
  upstream: null,
  micros: job.estimateMicros ?? 0,
  estimateMicros: job.estimateMicros ?? null,
  source: null,
});

/**
 * Per model, over the jobs charged to `day` and to `month` (the same for both stores, but for how they name
 * parameters): seconds and money, settled plus reserved, and the reserved part, as the counters add them up.
 */
export const usageByModelSql = (p: { teamId: string; day: string; month: string }) => `
  SELECT model,
    SUM(CASE WHEN charge_day = ${p.day} THEN seconds ELSE 0 END) AS day_seconds,
    SUM(CASE WHEN charge_day = ${p.day} AND charge = 'reserved' THEN seconds ELSE 0 END) AS day_seconds_reserved,
    SUM(CASE WHEN charge_day = ${p.day} THEN COALESCE(CASE WHEN charge = 'reserved' THEN cost_estimate_micros ELSE cost_micros END, 0) ELSE 0 END) AS day_micros,
    SUM(CASE WHEN charge_day = ${p.day} AND charge = 'reserved' THEN COALESCE(cost_estimate_micros, 0) ELSE 0 END) AS day_micros_reserved,
    SUM(CASE WHEN charge_day = ${p.day} THEN 1 ELSE 0 END) AS day_jobs,
    SUM(seconds) AS month_seconds,
    SUM(CASE WHEN charge = 'reserved' THEN seconds ELSE 0 END) AS month_seconds_reserved,
    SUM(COALESCE(CASE WHEN charge = 'reserved' THEN cost_estimate_micros ELSE cost_micros END, 0)) AS month_micros,
    SUM(CASE WHEN charge = 'reserved' THEN COALESCE(cost_estimate_micros, 0) ELSE 0 END) AS month_micros_reserved,
    COUNT(*) AS month_jobs
  FROM jobs WHERE team_id = ${p.teamId} AND charge_month = ${p.month} AND charge <> 'refunded'
  GROUP BY model ORDER BY model`;

/** The rows of usageByModelSql (either store's) as the usage answer has them. */
export function toModelUsage(rows: ReadonlyArray<Record<string, unknown>>): ModelUsage[] {
  const n = (v: unknown) => Number(v ?? 0);
  return rows.map((r) => ({
    model: r.model as string,
    day: { video_seconds: n(r.day_seconds), video_seconds_reserved: n(r.day_seconds_reserved), usd: microsToUsd(n(r.day_micros)), usd_reserved: microsToUsd(n(r.day_micros_reserved)), jobs: n(r.day_jobs) },
    month: { video_seconds: n(r.month_seconds), video_seconds_reserved: n(r.month_seconds_reserved), usd: microsToUsd(n(r.month_micros)), usd_reserved: microsToUsd(n(r.month_micros_reserved)), jobs: n(r.month_jobs) },
  }));
}
