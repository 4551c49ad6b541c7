import { z } from 'zod';
import { freeText, idText, lineText, MAX_SCALAR_CHARS } from '../domain/text.js';
import { modelNameSchema } from '../domain/models.js';

/**
 * The wire shapes of `/v1`: what requests may carry and what answers hold. The routes validate with these
 * and the OpenAPI document is generated from them (src/openapi/), so the two cannot disagree.
 */

const MAX_PROMPT_CHARS = 4096;

/** JSON `null` means the same as leaving a field out. */
const opt = <T extends z.ZodType>(t: T) => t.nullish().transform((v) => v ?? undefined);
const shortText = () => lineText(MAX_SCALAR_CHARS);
const scalar = z.union([shortText(), z.number()], { error: 'must be a string or a number' });
const dataUriOrObject = z.union([z.string(), z.object({ image_url: z.string().optional(), file_id: z.string().optional() })]);

// `\S` is exactly what trim() strips, and JSON Schema's `pattern` can say it.
const prompt = freeText(MAX_PROMPT_CHARS).regex(/\S/, 'must not be empty');

/**
 * The fields of a create, JSON or multipart alike (a multipart text field is a string, which each field
 * takes). Only their shape is checked here; what the values mean for the model is `normalize.ts`'s work.
 * Strict: unknown fields are refused (before this schema runs, with OpenAI's own message).
 */
export const createVideoFieldsSchema = z
  .object({
    model: opt(modelNameSchema).meta({ description: 'A model id or alias from GET /v1/models; the default model when absent.' }),
    prompt,
    seconds: opt(scalar).meta({ description: 'Whole seconds, as a string or a number.' }),
    duration: opt(scalar).meta({ description: "A synonym of 'seconds'." }),
    size: opt(scalar).meta({ description: "WIDTHxHEIGHT (such as '1280x720') or a resolution tier ('720P')." }),
    resolution: opt(scalar).meta({ description: "A resolution tier: '480P', '720P', …" }),
    aspect_ratio: opt(shortText()).meta({ description: "A preset or custom ratio such as '16:9'." }),
    image: opt(z.union([z.string(), z.array(z.string()).length(1)], { error: "takes one data URI; send several as 'images'" })),
    images: opt(z.union([z.string(), z.array(z.string())])),
    input_reference: opt(z.union([dataUriOrObject, z.array(dataUriOrObject)])).meta({
      description: 'Reference images as data URIs or {image_url}; at most one of image, images and input_reference.',
    }),
  })
  .strict();
export type CreateVideoFields = z.output<typeof createVideoFieldsSchema>;
export const CREATE_VIDEO_FIELDS: ReadonlySet<string> = new Set(Object.keys(createVideoFieldsSchema.shape));
/** Fields that may carry an image (a data URI, or a file part in multipart). */
export const IMAGE_FIELDS: ReadonlySet<string> = new Set(['image', 'images', 'input_reference']);
/** Fields that may repeat in a multipart body. */
export const LIST_FIELDS: ReadonlySet<string> = new Set(['images', 'input_reference']);

const imageFile = z.file().meta({ description: 'An image file (JPEG, PNG, WebP or GIF).' });
const imagePart = z.union([imageFile, z.string()]);

/**
 * The same fields as a multipart form, where scalars are text and images may be file parts. The parser
 * turns a form into the fields above, so this schema documents the form; test/unit/openapi.test.ts keeps
 * its field names equal to the JSON body's.
 */
export const createVideoFormSchema = z
  .object({
    model: modelNameSchema.optional(),
    prompt,
    seconds: shortText().optional(),
    duration: shortText().optional(),
    size: shortText().optional(),
    resolution: shortText().optional(),
    aspect_ratio: shortText().optional(),
    image: imagePart.optional(),
    images: z.array(imagePart).optional(),
    input_reference: z.union([imagePart, z.array(imagePart)]).optional(),
  })
  .strict();

/** A derived video's source: a video of the caller's team, by id (uploads are not supported). */
const videoReference = z.object({ id: idText().meta({ description: "The id of a completed video of the caller's team." }) }).strict();
const videoIdField = idText().meta({ description: "The id of a completed video of the caller's team." });

/** The bodies of the derived-video routes (§9), JSON; the forms below are the same as multipart. */
export const remixVideoSchema = z.object({ prompt }).strict();
export const extendVideoSchema = z
  .object({ prompt, seconds: scalar.meta({ description: 'Whole seconds to add, as a string or a number.' }), video: videoReference })
  .strict();
export const editVideoSchema = z.object({ prompt, video: videoReference }).strict();
export const remixVideoFormSchema = remixVideoSchema;
export const extendVideoFormSchema = z.object({ prompt, seconds: shortText(), 'video[id]': videoIdField }).strict();
export const editVideoFormSchema = z.object({ prompt, 'video[id]': videoIdField }).strict();

const LIMIT_RULE = 'must be a whole number from 1 to 100';
export const listVideosQuerySchema = z.object({
  after: idText().optional().meta({ description: 'A video id: the page starts after it.' }),
  limit: z.coerce.number({ error: LIMIT_RULE }).int(LIMIT_RULE).min(1, 'must be at least 1').max(100, 'must be at most 100').default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
});

export const contentQuerySchema = z.object({ variant: z.enum(['video', 'thumbnail', 'spritesheet']).optional() });
export const contentHeadersSchema = z.object({
  range: z.string().optional().meta({ description: 'A byte range answers 206, an unsatisfiable one 416 (passed to the upstream until the video is stored).' }),
  'if-none-match': z.string().optional().meta({ description: "The stored copy's ETag: 304 while it still matches." }),
  'if-range': z.string().optional().meta({ description: 'With Range: the range only if the stored copy still has this ETag, else the whole video.' }),
});
/** An Idempotency-Key (§2): printable ASCII, as Stripe takes keys (a UUID, a hash, a job name with its row number). */
export const IDEMPOTENCY_KEY_FORMAT = /^[\x20-\x7e]{1,255}$/;
export const idempotencyHeadersSchema = z.object({
  'Idempotency-Key': z
    .string()
    .regex(IDEMPOTENCY_KEY_FORMAT)
    .optional()
    .meta({
      description:
        "Makes the create idempotent for 24 hours, per team and on every replica: a repeat of the same request (compared as normalized, whatever its encoding) answers the first request's video as it is now, with `idempotent-replayed: true`, and never starts a second job; another request with the key is 409 `idempotency_key_reused`; a repeat while the first is in flight waits for it up to 5 s, then is 409 `request_in_progress` with `retry-after`. Answers that changed nothing (invalid input, quota refusals, an upstream refusal) are not kept.",
    }),
});
export const videoPathSchema = z.object({ video_id: idText().meta({ description: "The gateway's video id." }) });

export const videoStatusSchema = z.enum(['queued', 'in_progress', 'completed', 'failed']);

/** The OpenAI Video object, with the gateway's extensions (`resolution`, `aspect_ratio`, `video_url`, `cost`). */
export const videoSchema = z.object({
  id: z.string(),
  object: z.literal('video'),
  model: z.string(),
  status: videoStatusSchema,
  progress: z.number().min(0).max(100),
  created_at: z.number().int(),
  completed_at: z.number().int().nullable(),
  expires_at: z.number().int().nullable(),
  prompt: z.string(),
  seconds: z.string(),
  size: z.string(),
  remixed_from_video_id: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  resolution: z.string(),
  aspect_ratio: z.string(),
  video_url: z.string().nullable().meta({ description: "The content route of a completed video: a path on this origin, or under PUBLIC_BASE_URL." }),
  cost: z
    .object({
      usd: z.number().meta({ description: 'US dollars, to the micro-dollar.' }),
      source: z.enum(['upstream', 'price']).meta({ description: "`upstream`: the upstream's own figure (xAI's usage); `price`: the configured price." }),
    })
    .nullable()
    .optional()
    .meta({ description: 'Completed videos only: what the video cost; null when its model has no price and the upstream said nothing.' }),
});
export type VideoObject = z.output<typeof videoSchema>;

export const videoListSchema = z.object({
  object: z.literal('list'),
  data: z.array(videoSchema),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});
export type VideoList = z.output<typeof videoListSchema>;

export const videoDeletedSchema = z.object({ id: z.string(), object: z.literal('video.deleted'), deleted: z.literal(true) });
export type VideoDeleted = z.output<typeof videoDeletedSchema>;

export const modelSchema = z.object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() });
export const modelListSchema = z.object({ object: z.literal('list'), data: z.array(modelSchema) });
export type ModelList = z.output<typeof modelListSchema>;
