/**
 * Money (§10). Every amount the gateway keeps is a whole number of micro-dollars (10⁻⁶ USD): sums are
 * exact, with no floating point, and a price is counted to the micro-dollar.
 */
export const MICROS_PER_USD = 1_000_000;
/** xAI's `usage.cost_in_usd_ticks`: one tick is 10⁻¹⁰ USD. */
export const TICKS_PER_MICRO = 10_000;

export const usdToMicros = (usd: number) => Math.round(usd * MICROS_PER_USD);
/** For answers: the JSON number nearest the exact amount (micro-dollars have at most 6 decimals). */
export const microsToUsd = (micros: number) => micros / MICROS_PER_USD;
export const ticksToMicros = (ticks: number) => Math.round(ticks / TICKS_PER_MICRO);
/** For messages: `$1.25`, or every decimal down to the micro-dollar a smaller amount needs (`$0.000350`). */
export function formatUsd(micros: number): string {
  const usd = microsToUsd(micros);
  return Number.isInteger(micros / 10_000) ? `$${usd.toFixed(2)}` : `$${usd.toFixed(6)}`;
}
