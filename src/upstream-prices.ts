import { ConfigError, type UpstreamConfig } from './config.js';
import type { ModelCatalog, PriceSpec } from './domain/models.js';

/** CONFIG_FILE's `upstreams[].prices`, by model id; each must name a model the upstream serves. */
export function upstreamPrices(upstreams: readonly UpstreamConfig[] | undefined, catalog: ModelCatalog): Map<string, Map<string, PriceSpec>> {
  const byUpstream = new Map<string, Map<string, PriceSpec>>();
  for (const u of upstreams ?? []) {
    const served = new Set(u.models.map((m) => catalog.resolve(m.name)?.id));
    const prices = new Map<string, PriceSpec>();
    for (const [name, price] of Object.entries(u.prices)) {
      const id = catalog.resolve(name)?.id;
      if (!id || !served.has(id)) throw new ConfigError(`upstream ${u.id}: prices names ${name}, which is not among the models it serves`);
      prices.set(id, price);
    }
    byUpstream.set(u.id, prices);
  }
  return byUpstream;
}
