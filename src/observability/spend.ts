import type { Charge, MoneyMove } from '../domain/job.js';
import { microsToUsd } from '../domain/money.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

/**
 * What the gateway's store tells of each move of a job's charge (§10): the metrics count it; a move that made
 * the team's spend grow (an estimate reserved, an actual cost above its estimate) is passed to `spendGrew`
 * (budget alerts); and a job settled at a cost other than the estimate it reserved (the upstream charged its
 * own figure, or another upstream's price applied) gets a log line saying by how much, for whoever
 * reconciles the bills.
 */
export function chargeListener(metrics: Metrics, logger: Logger, spendGrew: (teamId: string) => void) {
  return (teamId: string, charge: Charge, seconds: number, money: MoneyMove): void => {
    metrics.charge(teamId, charge, seconds, money);
    const above = charge === 'settled' ? money.micros - (money.estimateMicros ?? 0) : charge === 'reserved' ? money.micros : 0;
    if (above > 0) spendGrew(teamId);
    if (charge !== 'settled' || money.source === null || money.micros === (money.estimateMicros ?? 0)) return;
    logger.info(
      {
        teamId,
        videoId: money.jobId,
        model: money.model,
        upstream: money.upstream,
        source: money.source,
        estimateUsd: money.estimateMicros === null ? null : microsToUsd(money.estimateMicros),
        actualUsd: microsToUsd(money.micros),
        differenceUsd: microsToUsd(money.micros - (money.estimateMicros ?? 0)),
      },
      'job settled at a cost other than its estimate',
    );
  };
}
