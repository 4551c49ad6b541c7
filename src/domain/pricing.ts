import type { ModelCatalog, PriceSpec } from './models.js';
import { usdToMicros } from './money.js';

/** What a job is made of, as far as its price goes. */
export interface PricedWork {
  /** Seconds of output video. */
  readonly seconds: number;
  readonly resolution: number;
  readonly referenceImages: number;
  /** Seconds of the source video an edit, extension or remix starts from; 0 for a create. */
  readonly sourceSeconds: number;
}

/** The cost of `work` at `price` in micro-dollars; null when unknown (no price, or none for the tier). */
export function costAt(price: PriceSpec | undefined, work: PricedWork): number | null {
  if (!price) return null;
  const perSecond = typeof price.perSecond === 'number' ? price.perSecond : price.perSecond[String(work.resolution) as keyof typeof price.perSecond];
  if (perSecond === undefined) return null;
  return (
    usdToMicros(perSecond) * work.seconds +
    usdToMicros(price.perReferenceImage ?? 0) * work.referenceImages +
    usdToMicros(price.perSourceSecond ?? 0) * work.sourceSeconds
  );
}

/** A job's price before it is placed. */
export interface Quote {
  /**
   * What admission reserves: the highest cost among the upstreams that may take the job (the one that does
   * is chosen only after admission), or null when any of them has no price for it: an unknown cost.
   */
  readonly estimateMicros: number | null;
  /** The cost at the price of the upstream that took the job: its actual cost when that upstream reports none. */
  at(upstreamId: string): number | null;
}

/** The model table's prices, under each upstream's own where it has them (`upstreams[].prices`). */
export class Pricing {
  constructor(
    private readonly catalog: ModelCatalog,
    /** Upstream id → model id → price. */
    private readonly byUpstream: ReadonlyMap<string, ReadonlyMap<string, PriceSpec>> = new Map(),
  ) {}

  priceOf(model: string, upstreamId: string): PriceSpec | undefined {
    const spec = this.catalog.resolve(model);
    return this.byUpstream.get(upstreamId)?.get(spec?.id ?? model) ?? spec?.price;
  }

  quote(model: string, upstreamIds: readonly string[], work: PricedWork): Quote {
    const at = (upstreamId: string) => costAt(this.priceOf(model, upstreamId), work);
    const costs = upstreamIds.map(at);
    const known = costs.filter((c): c is number => c !== null);
    return { estimateMicros: known.length > 0 && known.length === costs.length ? Math.max(...known) : null, at };
  }
}
