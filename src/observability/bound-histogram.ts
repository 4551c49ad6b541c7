import type { Histogram } from 'prom-client';

export interface HistogramChild {
  observe(value: number): void;
}

export interface BoundHistogramChild extends HistogramChild {
  /** Whether observations now count straight into prom-client's record (not before the first one). */
  readonly direct: boolean;
}

/** prom-client's record of one label set of a histogram (an entry of its `hashMap`, prom-client 15). */
interface Series {
  sum: number;
  count: number;
  readonly bucketValues: Record<string, number>;
  readonly labels: unknown;
}

/**
 * A histogram's child for one label set whose observations do no label work. prom-client's own child validates
 * and hashes its label set on every `observe`, 1–2 µs each, twice per poll. This one hands its first
 * observation to prom-client, which creates the series as always (a series still appears with its first
 * observation), then keeps prom-client's record of that series and counts into it as prom-client does: the sum,
 * the count, and the first bucket whose upper bound is not below the value. Should prom-client ever keep its
 * series otherwise, the record is not found and every observation goes through prom-client, only slower.
 *
 * `labels` in the order of the histogram's label names (it is the order of the exposition); `buckets` its
 * buckets. Not for a histogram that is ever reset: the record kept here would be one prom-client dropped.
 */
export function boundHistogramChild<T extends string>(histogram: Histogram<T>, labels: Record<T, string>, buckets: readonly number[]): BoundHistogramChild {
  const child = histogram.labels(labels);
  // prom-client keys its buckets by the bounds as property names: converted once here, not on every observation.
  const keys = buckets.map(String);
  /** undefined until the first observation; null if prom-client's record was not found. */
  let series: Series | null | undefined;
  return {
    get direct() {
      return !!series;
    },
    observe(value: number): void {
      if (!series || !Number.isFinite(value)) {
        child.observe(value);
        if (series === undefined) series = recordOf(histogram, labels, buckets);
        return;
      }
      series.sum += value;
      series.count += 1;
      for (let i = 0; i < buckets.length; i++) {
        if (value <= buckets[i]!) {
          series.bucketValues[keys[i]!]! += 1;
          return;
        }
      }
    },
  };
}

/** The series prom-client made for exactly this labels object, if it keeps it as expected. */
function recordOf(histogram: object, labels: object, buckets: readonly number[]): Series | null {
  const hashMap = (histogram as { hashMap?: Record<string, Partial<Series>> }).hashMap;
  if (typeof hashMap !== 'object' || hashMap === null) return null;
  for (const s of Object.values(hashMap)) {
    if (s.labels !== labels) continue;
    const fits = typeof s.sum === 'number' && typeof s.count === 'number' && typeof s.bucketValues === 'object' && buckets.every((b) => typeof s.bucketValues![b] === 'number');
    return fits ? (s as Series) : null;
  }
  return null;
}
