import { describe, expect, it } from 'vitest';
import { ConfigError, type UpstreamConfig } from '../../src/config.js';
import { BUILT_IN_MODELS, ModelCatalog, type PriceSpec } from '../../src/domain/models.js';
import { formatUsd, ticksToMicros, usdToMicros } from '../../src/domain/money.js';
import { costAt, Pricing } from '../../src/domain/pricing.js';
import { upstreamPrices } from '../../src/upstream-prices.js';

/**
 * Prices (§10), table-driven: every model of the table, at every tier it has, for every kind of input (text
 * alone, reference images, a source video), at the built-in prices and with input prices configured.
 */
const LIST_USD_PER_SECOND: Record<string, Partial<Record<number, number>> | null> = {
  'grok-imagine-video': { 480: 0.05, 720: 0.07 },
  'grok-imagine-video-1.5': { 480: 0.08, 720: 0.14, 1080: 0.25 },
  'grok-video-1.5': null,
  'grok-video-1.5-pro': null,
  'grok-video-1.5-max': null,
  'grok-video-3': null,
  'grok-video-3-pro': null,
  'grok-video-3-max': null,
};
const INPUTS = [
  { kind: 'text only', referenceImages: 0, sourceSeconds: 0 },
  { kind: 'three reference images', referenceImages: 3, sourceSeconds: 0 },
  { kind: 'a source video of 6 s', referenceImages: 0, sourceSeconds: 6 },
] as const;
const SECONDS = 8;

const cases = BUILT_IN_MODELS.flatMap((m) => m.resolutions.flatMap((tier) => INPUTS.map((input) => ({ model: m.id, tier, ...input }))));

describe('the model table follows the catalogue', () => {
  it('prices exactly the models with a published price, and nothing else', () => {
    expect(Object.fromEntries(BUILT_IN_MODELS.map((m) => [m.id, m.price ? m.price.perSecond : null]))).toEqual(LIST_USD_PER_SECOND);
  });

  it('has grok-imagine-video-1.5 at 480p, 720p and 1080p, with no derived videos on xAI and the preview name as an alias', () => {
    const catalog = new ModelCatalog();
    const m = catalog.resolve('grok-imagine-video-1.5')!;
    expect(m.resolutions).toEqual([480, 720, 1080]);
    expect(m.kinds.xai?.derive).toBeUndefined();
    expect(Object.keys(m.kinds).sort()).toEqual(['newapi', 'xai']);
    expect(catalog.resolve('grok-imagine-video-1.5-preview')).toBe(m);
    // 1080p only where a model has it.
    expect(catalog.resolve('grok-imagine-video')!.resolutions).toEqual([480, 720]);
  });
});

describe.each(cases)('$model at $tier p, $kind', ({ model, tier, referenceImages, sourceSeconds }) => {
  const work = { seconds: SECONDS, resolution: tier, referenceImages, sourceSeconds };
  const perSecond = LIST_USD_PER_SECOND[model]?.[tier];

  it('costs the list price per second of output (inputs free), or is unknown without one', () => {
    const pricing = new Pricing(new ModelCatalog());
    const expected = perSecond === undefined ? null : usdToMicros(perSecond) * SECONDS;
    expect(pricing.quote(model, ['u'], work).estimateMicros).toBe(expected);
    expect(costAt(new ModelCatalog().resolve(model)!.price, work)).toBe(expected);
  });

  it('adds configured input prices to configured per-tier prices', () => {
    const catalog = new ModelCatalog({
      models: [],
      aliases: {},
      prices: { [model]: { perSecond: { [String(tier)]: 0.1 }, perReferenceImage: 0.02, perSourceSecond: 0.015 } },
    });
    const expected = 100_000 * SECONDS + 20_000 * referenceImages + 15_000 * sourceSeconds;
    expect(new Pricing(catalog).quote(model, ['u'], work).estimateMicros).toBe(expected);
  });
});

describe('quotes over several upstreams', () => {
  const catalog = new ModelCatalog();
  const work = { seconds: 10, resolution: 720, referenceImages: 0, sourceSeconds: 0 };
  const pricing = new Pricing(
    catalog,
    new Map<string, Map<string, PriceSpec>>([
      ['cheap', new Map([['grok-imagine-video', { perSecond: 0.03 }]])],
      ['reseller', new Map([['grok-video-3', { perSecond: { 720: 0.2 } }]])],
    ]),
  );

  it('reserve the dearest candidate, and each upstream is settled at its own price', () => {
    const q = pricing.quote('grok-imagine-video', ['cheap', 'xai'], work);
    expect(q.estimateMicros).toBe(700_000);
    expect(q.at('cheap')).toBe(300_000);
    expect(q.at('xai')).toBe(700_000);
  });

  it('are unknown when any candidate has no price, never $0', () => {
    expect(pricing.quote('grok-video-3', ['reseller', 'other'], work).estimateMicros).toBeNull();
    expect(pricing.quote('grok-video-3', ['reseller'], work).estimateMicros).toBe(2_000_000);
    // A tier the per-tier price leaves out has no price either.
    expect(pricing.quote('grok-video-3', ['reseller'], { ...work, resolution: 1080 }).estimateMicros).toBeNull();
  });

  it('price an alias as the model it stands for', () => {
    expect(pricing.quote('grok-imagine-video-1.5-preview', ['xai'], { ...work, resolution: 1080 }).estimateMicros).toBe(2_500_000);
  });
});

describe('configuration', () => {
  const upstream = (prices: UpstreamConfig['prices']): UpstreamConfig => ({
    id: 'r',
    kind: 'newapi',
    baseUrl: 'https://r.example',
    keys: ['k'],
    models: [{ name: 'sora-2', upstreamName: 'sora-2' }],
    priority: 0,
    weight: 1,
    mediaHosts: [],
    prices,
  });

  it('reads upstream prices by model id, aliases resolved', () => {
    const byUpstream = upstreamPrices([upstream({ 'sora-2': { perSecond: 0.3 } })], new ModelCatalog());
    expect(byUpstream.get('r')?.get('grok-video-3')).toEqual({ perSecond: 0.3 });
  });

  it('refuses a price for a model the upstream does not serve, or a model the table does not know', () => {
    expect(() => upstreamPrices([upstream({ 'grok-imagine-video': { perSecond: 0.3 } })], new ModelCatalog())).toThrow(ConfigError);
    expect(() => new ModelCatalog({ models: [], aliases: {}, prices: { 'no-such-model': { perSecond: 1 } } })).toThrow(/no-such-model/);
  });
});

describe('money units', () => {
  it.each([
    [500_000_000, 50_000],
    [1, 0],
    [5_000, 1],
    [12_345_678_901, 1_234_568],
  ])('%d ticks are %d micro-dollars', (ticks, micros) => expect(ticksToMicros(ticks)).toBe(micros));

  it.each([
    [1_250_000, '$1.25'],
    [350, '$0.000350'],
    [0, '$0.00'],
  ])('%d micro-dollars read %s', (micros, text) => expect(formatUsd(micros)).toBe(text));
});
