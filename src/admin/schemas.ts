import { z } from 'zod';
import { idText, lineText, MAX_NAME_CHARS } from '../domain/text.js';
import { UPSTREAM_KINDS } from '../domain/upstream-kinds.js';
import { quotaPolicySchema } from '../domain/quota-policy.js';
import { RECENT_ENDS } from '../tracking/recent-ends.js';
import { WEBHOOK_EVENT_TYPES } from '../domain/webhook-event.js';
import { COPY_STATES } from '../domain/stored-copy.js';
import { videoStatusSchema } from '../videos/schemas.js';

/**
 * The wire shapes of the admin API. The service validates with these and the OpenAPI document is
 * generated from them (src/openapi/), so the two cannot disagree.
 */

export const teamIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'use 1-64 letters, digits, dots, dashes or underscores');
const name = lineText(MAX_NAME_CHARS).nullable().optional();

export const createTeamSchema = z.object({ id: teamIdSchema, name, quota: quotaPolicySchema.default({}) }).strict();
export const patchTeamSchema = z.object({ name, quota: quotaPolicySchema.optional() }).strict();
export const issueKeySchema = z
  .object({
    name,
    quota: quotaPolicySchema.default({}),
    /** Unix seconds, as every timestamp of the API. */
    expires_at: z.number().int().positive().nullable().optional(),
  })
  .strict();
export const usageQuerySchema = z.object({
  days: z.coerce.number().int().min(1).max(366).optional().meta({ description: 'Adds `daily`, one entry per UTC day, for the last N days.' }),
  by: z.enum(['model']).optional().meta({ description: '`model` adds `by_model`: the day and the month per model, from the jobs charged to them.' }),
});

export const teamPathSchema = z.object({ team: idText() });
export const keyPathSchema = z.object({ id: idText().meta({ description: 'The key id (`key_…`), never its secret.' }) });

export const teamSchema = z.object({ id: z.string(), object: z.literal('team'), name: z.string().nullable(), quota: quotaPolicySchema, created_at: z.number().int() });
export type TeamObject = z.output<typeof teamSchema>;
export const teamListSchema = z.object({ object: z.literal('list'), data: z.array(teamSchema) });
export const teamDeletedSchema = z.object({ id: z.string(), object: z.literal('team.deleted'), deleted: z.literal(true) });

export const apiKeySchema = z.object({
  id: z.string(),
  object: z.literal('api_key'),
  team: z.string(),
  name: z.string().nullable(),
  prefix: z.string().meta({ description: 'The first characters of the secret, to recognise it by.' }),
  quota: quotaPolicySchema,
  created_at: z.number().int(),
  expires_at: z.number().int().nullable(),
  revoked_at: z.number().int().nullable(),
});
export type ApiKeyObject = z.output<typeof apiKeySchema>;
export const apiKeyListSchema = z.object({ object: z.literal('list'), data: z.array(apiKeySchema) });
/** The only answer that ever holds the secret. */
export const issuedKeySchema = apiKeySchema.extend({ key: z.string().meta({ description: 'The secret: shown once, stored only as a hash.' }) });
export const revokedKeySchema = apiKeySchema.extend({ revoked: z.literal(true) });

const periodUsage = z.object({
  start: z.string(),
  video_seconds: z.number().meta({ description: 'What counts against the budget: settled and still reserved.' }),
  video_seconds_reserved: z.number().meta({ description: 'The part held by jobs not yet ended.' }),
  usd: z.number().meta({ description: 'US dollars that count against a budget: actual costs settled and estimates still reserved.' }),
  usd_reserved: z.number().meta({ description: 'The part held by the estimates of jobs not yet ended.' }),
  requests: z.number().int(),
});
const modelPeriodUsage = z.object({
  video_seconds: z.number(),
  video_seconds_reserved: z.number(),
  usd: z.number(),
  usd_reserved: z.number(),
  jobs: z.number().int().meta({ description: 'Jobs charged to the period (refunded ones left out).' }),
});
export const usageSchema = z.object({
  team: z.string(),
  day: periodUsage.meta({ description: 'The current UTC day; `start` is its date.' }),
  month: periodUsage.meta({ description: 'The current UTC month; `start` is YYYY-MM.' }),
  active_jobs: z.number().int(),
  requests_this_minute: z.number().int(),
  quota: quotaPolicySchema,
  daily: z.array(z.object({ date: z.string(), video_seconds: z.number(), usd: z.number(), requests: z.number().int() })).optional(),
  by_model: z
    .array(z.object({ model: z.string(), day: modelPeriodUsage, month: modelPeriodUsage }))
    .optional()
    .meta({ description: 'With `?by=model`: the models the month was spent on, each with its day and month; they add up to `day` and `month`.' }),
});
export type UsageObject = z.output<typeof usageSchema>;

export const upstreamListSchema = z.array(
  z.object({
    id: z.string(),
    kind: z.enum(UPSTREAM_KINDS),
    models: z.array(z.string()).meta({ description: 'The gateway model ids this upstream serves.' }),
    state: z.enum(['closed', 'open', 'half_open']).meta({ description: "The breaker: `open` keeps creates away; `half_open` lets one through as the probe." }),
    keys: z.array(
      z.object({
        fingerprint: z.string().meta({ description: 'The first 12 hex digits of the key’s SHA-256, never the key.' }),
        state: z.enum(['ready', 'cooling']),
        cooling_until: z.number().int().nullable().meta({ description: 'Epoch milliseconds.' }),
      }),
    ),
    recent: z
      .object({ requests: z.number().int(), errors: z.number().int(), p50_ms: z.number().nullable() })
      .meta({ description: 'The last 200 calls of this process to the upstream.' }),
    active_jobs: z.number().int(),
  }),
);

export const trackingSchema = z.object({
  object: z.literal('tracking'),
  due_jobs: z.number().int().meta({ description: 'Active jobs whose next status check is due and that no replica has taken yet: the backlog (the whole store).' }),
  overdue_seconds: z.number().meta({ description: 'How late the most overdue of those checks is (0 when none is late).' }),
  recent_ends: z
    .object({
      jobs: z.number().int(),
      notice_lag_seconds: z
        .object({ p50: z.number(), p95: z.number(), max: z.number() })
        .nullable()
        .meta({ description: 'From the upstream finishing to this process noticing, at most; the contract wants 5 s (p95).' }),
      status_checks_per_job: z.number().nullable().meta({ description: 'Upstream status calls per job (client polls and the tracker alike), mean.' }),
    })
    .meta({ description: `The last ${RECENT_ENDS.toLocaleString('en-US')} job ends this process noticed.` }),
});

const MAX_WEBHOOK_URL_CHARS = 2048;
export const webhookInputSchema = z
  .object({
    url: lineText(MAX_WEBHOOK_URL_CHARS).meta({
      format: 'uri',
      // The usual form; the rules themselves are the description's (and src/webhooks/destination.ts).
      pattern: '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$',
      description:
        'https (http too, for a host listed in WEBHOOK_ALLOWED_HOSTS), no credentials; refused when the host is not listed in a non-empty WEBHOOK_ALLOWED_HOSTS, or resolves to a private, loopback or link-local address that is not listed.',
    }),
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES))
      .min(1)
      .optional()
      .meta({ description: 'Default: `video.completed` and `video.failed`; `budget.threshold` (80 % and 100 % of a dollar budget) when asked for.' }),
    enabled: z.boolean().optional().meta({ description: 'Default: true. Disabled, no event is queued or sent.' }),
  })
  .strict();
export const deliveriesQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(100).optional().meta({ description: 'Default 20.' }) });
export const deliveryPathSchema = teamPathSchema.extend({ id: idText().meta({ description: 'The delivery id (`whd_…`).' }) });

export const webhookEndpointSchema = z.object({
  object: z.literal('webhook_endpoint'),
  team: z.string(),
  url: z.string(),
  events: z.array(z.enum(WEBHOOK_EVENT_TYPES)),
  enabled: z.boolean(),
  created_at: z.number().int(),
  previous_secret_expires_at: z
    .number()
    .int()
    .nullable()
    .meta({ description: 'Until when the secret before the last rotation still signs (those of earlier rotations stop sooner, each 24 h after its own).' }),
  secret: z.string().optional().meta({ description: 'The signing secret (`whsec_…`): only when the endpoint is created or its secret rotated.' }),
});
export type WebhookEndpointObject = z.output<typeof webhookEndpointSchema>;
export const webhookDeletedSchema = z.object({ object: z.literal('webhook_endpoint.deleted'), team: z.string(), deleted: z.literal(true) });
export const deliverySchema = z.object({
  id: z.string(),
  object: z.literal('webhook.delivery'),
  event_id: z.string().meta({ description: 'The `webhook-id` of every attempt.' }),
  type: z.enum(WEBHOOK_EVENT_TYPES),
  video_id: z.string().nullable().meta({ description: 'The video the event is about; null for a budget alert.' }),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  last_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  last_latency_ms: z.number().int().nullable(),
  last_attempt_at: z.number().int().nullable(),
  next_attempt_at: z.number().int().nullable(),
  delivered_at: z.number().int().nullable(),
  created_at: z.number().int(),
});
export type DeliveryObject = z.output<typeof deliverySchema>;
export const deliveryListSchema = z.object({ object: z.literal('list'), data: z.array(deliverySchema) });

export const storageStateSchema = z.object({
  object: z.literal('storage'),
  backend: z.enum(['file', 's3']).nullable().meta({ description: 'Where completed videos are copied (`STORAGE_URL`); null when it is `none`.' }),
  stored_videos: z.number().int().meta({ description: 'Videos with a stored copy, on every replica (read from the store).' }),
  stored_bytes: z.number().int().meta({ description: 'What those copies take up in the directory or the bucket.' }),
  pending_copies: z.number().int().meta({ description: 'Completed videos waiting for their copy (new, or retrying after a failure).' }),
  failed_copies: z.number().int().meta({ description: 'Copies given up for good (the upstream no longer had the video).' }),
});
export type StorageStateObject = z.output<typeof storageStateSchema>;

export const videosQuerySchema = z.object({ limit: z.coerce.number().int().min(1).max(100).optional().meta({ description: 'Default 20.' }) });
export const adminVideoSchema = z.object({
  id: z.string(),
  object: z.literal('video'),
  model: z.string(),
  status: videoStatusSchema,
  created_at: z.number().int(),
  completed_at: z.number().int().nullable(),
  expires_at: z.number().int().nullable().meta({ description: 'When its content goes (the retention); null until its copy is scheduled.' }),
  storage: z
    .object({
      state: z.enum(COPY_STATES),
      bytes: z.number().int().nullable(),
      attempts: z.number().int().meta({ description: 'Failed attempts so far.' }),
      error: z.string().nullable().meta({ description: 'Why the last attempt failed.' }),
      next_attempt_at: z.number().int().nullable().meta({ description: 'When a pending copy is tried (again).' }),
    })
    .nullable()
    .meta({ description: 'Its stored copy; null while none was scheduled (not completed, or storage off).' }),
});
export type AdminVideoObject = z.output<typeof adminVideoSchema>;
export const adminVideoListSchema = z.object({ object: z.literal('list'), data: z.array(adminVideoSchema) });
