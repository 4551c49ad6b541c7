import { z } from 'zod';
import { UPSTREAM_KINDS, type UpstreamKind } from './upstream-kinds.js';
import { idText } from './text.js';

/**
 * The model table: everything the gateway knows about a model is a row here. Adding a model (built in or
 * through CONFIG_FILE) never needs a new branch in code.
 */
export type Family = 'imagine' | 'grok-video';

/** Resolution tiers, named by the short side in pixels. */
export const TIERS = [480, 540, 720, 1080] as const;
export type Tier = (typeof TIERS)[number];

/**
 * What a model costs, in US dollars: per second of output video, as one figure or one per resolution tier
 * where they differ (a tier left out has no price), plus optional prices per input: a reference image, and a
 * second of source video (the source of an edit, extension or remix). A model without a price has an unknown
 * cost, never $0 (src/domain/pricing.ts).
 */
const usd = z.number().finite().min(0);
const TIER_KEYS = TIERS.map(String) as ['480', '540', '720', '1080'];
export const priceSchema = z
  .object({
    perSecond: z.union([usd, z.partialRecord(z.enum(TIER_KEYS), usd)]),
    perReferenceImage: usd.optional(),
    perSourceSecond: usd.optional(),
  })
  .strict();
export type PriceSpec = z.infer<typeof priceSchema>;

/**
 * A model id or alias as a request names it. Which names exist depends on the configuration, so the check
 * is the catalog's; the OpenAPI document lists this gateway's names for it (src/openapi/document.ts).
 */
export const modelNameSchema = idText();

export const ASPECT_PRESETS = [
  '1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3', '2:1', '1:2', '19.5:9', '9:19.5', '20:9', '9:20',
] as const;

/**
 * What one upstream kind allows of a model, where it allows less than the model's own limits below (xAI's
 * API knows fewer aspect ratios than the resellers, and caps several reference images lower). Absent
 * fields: the model's own limits hold.
 */
export interface KindRules {
  readonly aspectRatios?: readonly string[] | undefined;
  readonly maxReferences?: number | undefined;
  /** With more than one reference image the kind allows at most this many seconds. */
  readonly maxSecondsWithReferences?: number | undefined;
  /** The derived videos (§9) the kind can make from a video of this model; one absent here is refused. */
  readonly derive?: DeriveRules | undefined;
}

export const DERIVED_OPERATIONS = ['remix', 'extension', 'edit'] as const;
export type DerivedOperation = (typeof DERIVED_OPERATIONS)[number];

/** What one derived operation allows: how long a source may be, and (extensions) how many seconds it adds. */
export interface OperationRules {
  readonly maxSourceSeconds?: number | undefined;
  readonly seconds?: { readonly min: number; readonly max: number } | undefined;
}
export type DeriveRules = Readonly<Partial<Record<DerivedOperation, OperationRules>>>;

export interface ModelSpec {
  readonly id: string;
  /** The new-api dialect the model is sent in. */
  readonly family: Family;
  /** The upstream kinds that know the model, each with the rules it adds. */
  readonly kinds: Readonly<Partial<Record<UpstreamKind, KindRules>>>;
  readonly resolutions: readonly Tier[];
  readonly aspectRatios: readonly string[];
  /** Whether any `n:m` ratio is accepted besides the presets above. */
  readonly customAspectRatio: boolean;
  readonly seconds: { readonly min: number; readonly max: number };
  readonly defaultSeconds: number;
  readonly defaultResolution: Tier;
  readonly defaultAspectRatio: string;
  /**
   * How long the upstream usually takes to make one video of this model, from create to done: when the
   * gateway expects a job's end, and so when it looks (src/tracking/schedule.ts). Absent: the family's.
   */
  readonly typicalSeconds?: number | undefined;
  /** Absent: the model's cost is unknown (upstreams may still price it, `upstreams[].prices`). */
  readonly price?: PriceSpec | undefined;
}

const tierSchema = z.union(TIERS.map((t) => z.literal(t)) as [z.ZodLiteral<480>, ...z.ZodLiteral<Tier>[]]);

export const modelSpecSchema = z
  .object({
    id: z.string().min(1),
    family: z.enum(['imagine', 'grok-video']),
    kinds: z
      .partialRecord(
        z.enum(UPSTREAM_KINDS),
        z.object({
          aspectRatios: z.array(z.string()).min(1).optional(),
          maxReferences: z.number().int().min(0).optional(),
          maxSecondsWithReferences: z.number().int().min(1).optional(),
          derive: z
            .partialRecord(
              z.enum(DERIVED_OPERATIONS),
              z.object({
                maxSourceSeconds: z.number().int().min(1).optional(),
                seconds: z.object({ min: z.number().int().min(1), max: z.number().int().min(1) }).optional(),
              }),
            )
            .optional(),
        }),
      )
      .default({ newapi: {} }),
    resolutions: z.array(tierSchema).min(1),
    aspectRatios: z.array(z.string().regex(/^\d+(\.\d+)?:\d+(\.\d+)?$/)).min(1),
    customAspectRatio: z.boolean().default(false),
    seconds: z.object({ min: z.number().int().min(1), max: z.number().int().min(1) }),
    defaultSeconds: z.number().int().min(1),
    defaultResolution: tierSchema,
    defaultAspectRatio: z.string(),
    typicalSeconds: z.number().int().min(1).optional(),
    price: priceSchema.optional(),
  })
  .refine((m) => m.seconds.min <= m.seconds.max, { message: 'seconds.min must not exceed seconds.max' })
  .refine((m) => m.defaultSeconds >= m.seconds.min && m.defaultSeconds <= m.seconds.max, {
    message: 'defaultSeconds must lie within seconds',
  })
  .refine((m) => m.resolutions.includes(m.defaultResolution), { message: 'defaultResolution must be listed' })
  .refine((m) => m.aspectRatios.includes(m.defaultAspectRatio), { message: 'defaultAspectRatio must be listed' });

export const modelFileSchema = z.object({
  models: z.array(modelSpecSchema).default([]),
  aliases: z.record(z.string(), z.string()).default({}),
  defaultModel: z.string().optional(),
  /** Prices by model id or alias, over the table's own (what the operator pays whichever upstream serves it). */
  prices: z.record(z.string(), priceSchema).optional(),
});
export type ModelFile = z.infer<typeof modelFileSchema>;

/**
 * How long a video of each family usually takes upstream when the model's row does not say: xAI's imagine
 * jobs take a minute or two; the resellers' grok-video clips are longer and take longer.
 */
export const FAMILY_TYPICAL_SECONDS: Readonly<Record<Family, number>> = { imagine: 90, 'grok-video': 120 };

/** How long a video of the model usually takes upstream, in ms. */
export const typicalMs = (model: Pick<ModelSpec, 'family' | 'typicalSeconds'>) => (model.typicalSeconds ?? FAMILY_TYPICAL_SECONDS[model.family]) * 1000;

/**
 * xAI's own API: seven aspect ratios, and at most 7 reference images, then at most 10 seconds. Its edits
 * (which also serve remixes) take a source of up to ~8.7 s, so 8 whole seconds; its extensions add 1–10 s.
 */
const XAI_IMAGINE: KindRules = {
  aspectRatios: ['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3'],
  maxReferences: 7,
  maxSecondsWithReferences: 10,
  derive: { remix: { maxSourceSeconds: 8 }, edit: { maxSourceSeconds: 8 }, extension: { seconds: { min: 1, max: 10 } } },
};

/** new-api resellers remix and extend the grok-video-3 family (and nothing else); they have no edit. */
const RESELLER_VIDEO_3: KindRules = { derive: { remix: {}, extension: { seconds: { min: 1, max: 15 } } } };

/**
 * xAI's published list prices per second of output (its models and pricing page at docs.x.ai, as of 2026);
 * docs/configuration.md (Prices) says how to override them. The reseller grok-video-* family publishes none: unpriced unless configured.
 */
const XAI_LIST_PRICES = {
  imagine: { perSecond: { 480: 0.05, 720: 0.07 } },
  imagine15: { perSecond: { 480: 0.08, 720: 0.14, 1080: 0.25 } },
} as const satisfies Record<string, PriceSpec>;

/** grok-imagine-video-1.5 on xAI: the same rules as the first model, but no edit and no extension (so no remix either). */
const { derive: _noDerive, ...XAI_IMAGINE_15 } = XAI_IMAGINE;

const imagine = (id: string, resolutions: readonly Tier[], price: PriceSpec, xai: KindRules): ModelSpec => ({
  id,
  family: 'imagine',
  kinds: { newapi: {}, xai },
  resolutions,
  aspectRatios: ASPECT_PRESETS,
  customAspectRatio: true,
  seconds: { min: 1, max: 15 },
  defaultSeconds: 6,
  defaultResolution: 720,
  defaultAspectRatio: '16:9',
  price,
});

const GROK_VIDEO_3_RATIOS = ['2:3', '3:2', '1:1', '16:9', '9:16'];
const grokVideo = (id: string, resolutions: readonly Tier[], ratios: readonly string[], seconds: { min: number; max: number }, newapi: KindRules = {}): ModelSpec => ({
  id,
  family: 'grok-video',
  kinds: { newapi },
  resolutions,
  aspectRatios: ratios,
  customAspectRatio: false,
  seconds,
  defaultSeconds: seconds.min === seconds.max ? seconds.min : 6,
  defaultResolution: 720,
  defaultAspectRatio: '16:9',
});

/** `-pro` tiers are fixed at 10 s, `-max` tiers at 15 s; the base tiers take any whole number up to 15. */
const FREE = { min: 1, max: 15 };
const PRO = { min: 10, max: 10 };
const MAX = { min: 15, max: 15 };
const V15 = [480, 540, 720, 1080] as const;
const V3 = [720, 1080] as const;

export const BUILT_IN_MODELS: readonly ModelSpec[] = [
  imagine('grok-imagine-video', [480, 720], XAI_LIST_PRICES.imagine, XAI_IMAGINE),
  imagine('grok-imagine-video-1.5', [480, 720, 1080], XAI_LIST_PRICES.imagine15, XAI_IMAGINE_15),
  grokVideo('grok-video-1.5', V15, ASPECT_PRESETS, FREE),
  grokVideo('grok-video-1.5-pro', V15, ASPECT_PRESETS, PRO),
  grokVideo('grok-video-1.5-max', V15, ASPECT_PRESETS, MAX),
  grokVideo('grok-video-3', V3, GROK_VIDEO_3_RATIOS, FREE, RESELLER_VIDEO_3),
  grokVideo('grok-video-3-pro', V3, GROK_VIDEO_3_RATIOS, PRO, RESELLER_VIDEO_3),
  grokVideo('grok-video-3-max', V3, GROK_VIDEO_3_RATIOS, MAX, RESELLER_VIDEO_3),
];

/**
 * xAI's preview name stands for the model it became; OpenAI model names map onto Grok models so that code
 * written for Sora runs unchanged.
 */
export const BUILT_IN_ALIASES: Readonly<Record<string, string>> = {
  'grok-imagine-video-1.5-preview': 'grok-imagine-video-1.5',
  'sora-2': 'grok-video-3',
  'sora-2-pro': 'grok-video-3-pro',
};

export const BUILT_IN_DEFAULT_MODEL = 'grok-imagine-video';

export class ModelCatalog {
  private readonly byId = new Map<string, ModelSpec>();
  private readonly aliases = new Map<string, string>();
  readonly defaultModel: string;

  constructor(file?: ModelFile, defaultModel?: string) {
    for (const m of [...BUILT_IN_MODELS, ...(file?.models ?? [])]) this.byId.set(m.id, m);
    for (const [alias, target] of Object.entries({ ...BUILT_IN_ALIASES, ...(file?.aliases ?? {}) })) {
      if (!this.byId.has(target)) throw new Error(`model alias ${alias} points at unknown model ${target}`);
      this.aliases.set(alias, target);
    }
    for (const [name, price] of Object.entries(file?.prices ?? {})) {
      const spec = this.resolve(name);
      if (!spec) throw new Error(`prices names ${name}, which is not in the model table`);
      this.byId.set(spec.id, { ...spec, price });
    }
    this.defaultModel = defaultModel ?? file?.defaultModel ?? BUILT_IN_DEFAULT_MODEL;
    if (!this.resolve(this.defaultModel)) throw new Error(`default model ${this.defaultModel} is not in the model table`);
  }

  /** Exact names only: an alias resolves to its target, anything else is unknown. */
  resolve(name: string): ModelSpec | undefined {
    return this.byId.get(this.aliases.get(name) ?? name);
  }

  /** Every model of the table. */
  specs(): ModelSpec[] {
    return [...this.byId.values()];
  }

  /** The ids of the models an upstream kind knows, in table order: what an upstream of that kind serves by default. */
  idsOfKind(kind: UpstreamKind): string[] {
    return this.specs().filter((m) => m.kinds[kind]).map((m) => m.id);
  }

  /**
   * Model ids and aliases, in table order, of the models `served` says some upstream serves: what
   * `GET /v1/models` and the OpenAPI document announce (a model no upstream serves would only be refused).
   */
  names(served: (id: string) => boolean = () => true): string[] {
    return [...[...this.byId.keys()].filter(served), ...[...this.aliases].filter(([, id]) => served(id)).map(([alias]) => alias)];
  }
}
