import type { Logger } from '../observability/logger.js';
import { hasMoneyBudget, type Clock } from '../domain/quota-policy.js';
import type { Store } from '../store/types.js';
import { usdToMicros } from '../domain/money.js';

/** The shares of a budget (percent) whose reaching a team's webhook hears of, once per period (§10). */
export const BUDGET_THRESHOLDS = [80, 100] as const;

const PERIODS = [
  ['day', 'usd_per_day'],
  ['month', 'usd_per_month'],
] as const;

/**
 * `budget.threshold` events (§10): after a team's spend grew (an estimate reserved, or an actual cost settled
 * above its estimate), its day and month are held against its dollar budgets, and each threshold reached is
 * queued for its webhook once per period, whichever replica sees it first (the outbox's once-only key).
 * Checks run beside the request, never in its way; several asked for one team while one runs make one more.
 */
export class BudgetAlerts {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();

  constructor(private readonly deps: { store: Store; clock: Clock; logger: Logger }) {}

  check(teamId: string): void {
    if (this.running.has(teamId)) {
      this.again.add(teamId);
      return;
    }
    const run = this.run(teamId)
      .catch((err: unknown) => this.deps.logger.warn({ teamId, err: { message: (err as Error).message } }, 'budget alert check failed; the next spend checks again'))
      .finally(() => {
        this.running.delete(teamId);
        if (this.again.delete(teamId)) this.check(teamId);
      });
    this.running.set(teamId, run);
  }

  /** Resolves once no check is running (before the store closes; tests). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  private async run(teamId: string): Promise<void> {
    const { store, clock, logger } = this.deps;
    const team = await store.getTeam(teamId);
    if (!team || !hasMoneyBudget(team.quota)) return;
    const now = clock.now();
    const usage = await store.usage(teamId, now, 1);
    for (const [period, field] of PERIODS) {
      const budget = team.quota[field];
      if (budget === undefined) continue;
      const { start, usd } = usage[period];
      const used = usdToMicros(usd);
      for (const percent of BUDGET_THRESHOLDS) {
        if (used === 0 || used * 100 < usdToMicros(budget) * percent) continue;
        const data = { team: teamId, period, start, limit_usd: budget, used_usd: usd, percent };
        if (await store.enqueueBudgetAlert(teamId, { key: `budget.threshold:${teamId}:${period}:${start}:${percent}`, data }, now)) {
          logger.info({ teamId, period, start, percent, usedUsd: usd, limitUsd: budget }, 'budget threshold reached; webhook event queued');
        }
      }
    }
  }
}
