import { z } from 'zod';
import { modelNameSchema } from './models.js';
import { usdToMicros } from './money.js';

/** All fields optional; an absent field is unlimited. */
export const quotaPolicySchema = z
  .object({
    requests_per_minute: z.number().int().min(0).optional(),
    max_concurrent_jobs: z.number().int().min(0).optional(),
    video_seconds_per_day: z.number().int().min(0).optional(),
    video_seconds_per_month: z.number().int().min(0).optional(),
    max_seconds_per_video: z.number().int().min(1).optional(),
    /** Budgets in US dollars (UTC day and month), counted in micro-dollars (§10). */
    usd_per_day: z.number().finite().min(0).optional(),
    usd_per_month: z.number().finite().min(0).optional(),
    models: z.array(modelNameSchema).optional(),
    /** Stored results (§12): days a completed video stays downloadable; read from the team's policy only. */
    video_retention_days: z.number().int().min(1).optional(),
  })
  .strict();
export type QuotaPolicy = z.infer<typeof quotaPolicySchema>;

export type Scope = 'team' | 'key';

/** What a store reads, inside its atomic section, for one scope. */
export interface UsageSnapshot {
  readonly requestsThisMinute: number;
  readonly activeJobs: number;
  readonly daySeconds: number;
  readonly monthSeconds: number;
  /** Micro-dollars settled and reserved. */
  readonly dayMicros: number;
  readonly monthMicros: number;
}

export type Refusal =
  | { readonly kind: 'rate'; readonly scope: Scope; readonly limit: number; readonly retryAfterMs: number }
  | { readonly kind: 'concurrency'; readonly scope: Scope; readonly limit: number }
  | { readonly kind: 'day' | 'month'; readonly scope: Scope; readonly limit: number; readonly used: number; readonly requested: number }
  /** A budget in dollars: every amount in micro-dollars, `requested` the video's estimate. */
  | { readonly kind: 'usd_day' | 'usd_month'; readonly scope: Scope; readonly limit: number; readonly used: number; readonly requested: number };

export interface RateInfo {
  readonly limit: number;
  readonly remaining: number;
  readonly resetMs: number;
}

/** A store's answer to an admission check: admitted (with the per-minute view, when counted), or why not. */
export type Admission = { readonly ok: true; readonly rate: RateInfo | null } | { readonly ok: false; readonly refusal: Refusal };

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

/** UTC buckets: the minute window, the day and the month that a moment falls in. */
export function buckets(nowMs: number) {
  const iso = new Date(nowMs).toISOString();
  return {
    minute: iso.slice(0, 16),
    day: iso.slice(0, 10),
    month: iso.slice(0, 7),
    msToNextMinute: 60_000 - (nowMs % 60_000),
  };
}

/**
 * The admission rules, shared by every store, in two steps. Every request, a create included, is counted
 * against the per-minute limits when it arrives, before any body is read (`evaluateRequest`); a create,
 * once validated, then needs a concurrency slot and its video-seconds (`evaluateJob`), where the request is
 * not counted again. Within a step all limits of both scopes are checked before anything is counted, so a
 * refusal by one limit consumes nothing of the others.
 */
export function evaluateRequest(scopes: ReadonlyArray<{ scope: Scope; policy: QuotaPolicy; usage: UsageSnapshot }>, nowMs: number): Refusal | null {
  for (const { scope, policy, usage } of scopes) {
    const rpm = policy.requests_per_minute;
    if (rpm !== undefined && usage.requestsThisMinute + 1 > rpm) return { kind: 'rate', scope, limit: rpm, retryAfterMs: buckets(nowMs).msToNextMinute };
  }
  return null;
}

/** Whether a policy has a budget in dollars, which a job of unknown cost cannot be admitted against. */
export const hasMoneyBudget = (policy: QuotaPolicy) => policy.usd_per_day !== undefined || policy.usd_per_month !== undefined;

/** `estimateMicros`: what the job reserves in money (null: unknown, which only a policy without a money budget admits). */
export function evaluateJob(
  scopes: ReadonlyArray<{ scope: Scope; policy: QuotaPolicy; usage: UsageSnapshot }>,
  job: { seconds: number; estimateMicros?: number | null | undefined },
): Refusal | null {
  for (const { scope, policy, usage } of scopes) {
    const max = policy.max_concurrent_jobs;
    if (max !== undefined && usage.activeJobs + 1 > max) return { kind: 'concurrency', scope, limit: max };
  }
  for (const { scope, policy, usage } of scopes) {
    const day = policy.video_seconds_per_day;
    if (day !== undefined && usage.daySeconds + job.seconds > day) return { kind: 'day', scope, limit: day, used: usage.daySeconds, requested: job.seconds };
    const month = policy.video_seconds_per_month;
    if (month !== undefined && usage.monthSeconds + job.seconds > month) return { kind: 'month', scope, limit: month, used: usage.monthSeconds, requested: job.seconds };
  }
  const cost = job.estimateMicros ?? 0;
  for (const { scope, policy, usage } of scopes) {
    for (const [kind, budget, used] of [['usd_day', policy.usd_per_day, usage.dayMicros], ['usd_month', policy.usd_per_month, usage.monthMicros]] as const) {
      if (budget === undefined) continue;
      const limit = usdToMicros(budget);
      if (used + cost > limit) return { kind, scope, limit, used, requested: cost };
    }
  }
  return null;
}

/** The `x-ratelimit-*` view: the tighter of the key's and the team's per-minute limit, after counting. */
export function rateInfo(
  scopes: ReadonlyArray<{ policy: QuotaPolicy; usage: UsageSnapshot }>,
  nowMs: number,
): RateInfo | null {
  let best: RateInfo | null = null;
  for (const { policy, usage } of scopes) {
    const limit = policy.requests_per_minute;
    if (limit === undefined) continue;
    const remaining = Math.max(0, limit - usage.requestsThisMinute - 1);
    if (!best || remaining < best.remaining) best = { limit, remaining, resetMs: buckets(nowMs).msToNextMinute };
  }
  return best;
}
