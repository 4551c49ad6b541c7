import { forbidden, insufficientQuota, invalidRequest, rateLimited, type ApiError } from '../domain/errors.js';
import type { Principal } from '../store/types.js';
import { formatUsd } from '../domain/money.js';
import { hasMoneyBudget, type QuotaPolicy, type Refusal } from '../domain/quota-policy.js';

/** How long a client refused for concurrency should wait: slots free only as jobs end. */
export const CONCURRENCY_RETRY_MS = 5_000;

const who = (scope: 'team' | 'key') => (scope === 'key' ? 'this API key' : 'your team');

export function refusalToError(r: Refusal): ApiError {
  switch (r.kind) {
    case 'rate':
      return rateLimited(`Rate limit reached for ${who(r.scope)}: ${r.limit} requests per minute. Retry after the window resets.`, r.retryAfterMs, 'rate_limit_exceeded');
    case 'concurrency':
      return rateLimited(
        `Too many videos in progress for ${who(r.scope)}: the limit is ${r.limit} at once. Retry when one has finished.`,
        CONCURRENCY_RETRY_MS,
        'concurrency_limit_exceeded',
      );
    case 'day':
    case 'month':
      return insufficientQuota(
        `The ${r.kind === 'day' ? 'daily (UTC)' : 'monthly (UTC)'} video-seconds budget of ${who(r.scope)} does not cover this video: ` +
          `${r.requested} seconds requested, ${Math.max(0, r.limit - r.used)} of ${r.limit} left. Ask your administrator to raise it.`,
        'seconds',
      );
    case 'usd_day':
    case 'usd_month':
      return insufficientQuota(
        `The ${r.kind === 'usd_day' ? 'daily (UTC)' : 'monthly (UTC)'} spend budget of ${who(r.scope)} does not cover this video: ` +
          `the budget is ${formatUsd(r.limit)}, ${formatUsd(r.used)} is used or reserved, and this video is estimated at ${formatUsd(r.requested)}. ` +
          'Ask your administrator to raise it.',
      );
    default: {
      const unreachable: never = r;
      return unreachable;
    }
  }
}

/**
 * A job whose cost is unknown (its model has no price where it may run) cannot be counted against a budget in
 * dollars, so a key or team with one is refused it rather than charged $0 (§10).
 */
export function checkPriceKnown(principal: Principal, model: string, estimateMicros: number | null): void {
  if (estimateMicros !== null) return;
  for (const [scope, policy] of [['key', principal.keyPolicy], ['team', principal.teamPolicy]] as const) {
    if (hasMoneyBudget(policy)) {
      throw forbidden(
        `The model '${model}' has no configured price, so its videos cannot be counted against the spend budget of ${who(scope)}. Ask your administrator to configure its price.`,
        'model',
        'price_unknown',
      );
    }
  }
}

/** The allow-list rule: a model is allowed by its own name or, for an alias, by the model it stands for. */
function allows(policy: QuotaPolicy, name: string, modelId: string): boolean {
  return !policy.models || policy.models.includes(name) || policy.models.includes(modelId);
}

/** Limits that need no counting: the model allow-list and the longest video, for the key and its team. */
export function checkStaticLimits(principal: Principal, modelId: string, requestedModel: string, seconds: number): void {
  for (const [scope, policy] of [['key', principal.keyPolicy], ['team', principal.teamPolicy]] as const) {
    if (!allows(policy, requestedModel, modelId)) {
      throw forbidden(`The model '${requestedModel}' is not allowed for ${who(scope)}.`, 'model', 'model_not_allowed');
    }
    if (policy.max_seconds_per_video !== undefined && seconds > policy.max_seconds_per_video) {
      throw invalidRequest(`Videos are limited to ${policy.max_seconds_per_video} seconds for ${who(scope)}; asked for ${seconds}.`, 'seconds', 'seconds_limit_exceeded');
    }
  }
}

/** Whether the key and its team both allow a model (by name or alias), for `GET /v1/models`. */
export function modelAllowed(principal: Principal, name: string, modelId: string): boolean {
  return allows(principal.keyPolicy, name, modelId) && allows(principal.teamPolicy, name, modelId);
}
