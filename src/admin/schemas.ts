import { z } from 'zod';
import { UPSTREAM_KINDS } from '../upstream/providers/types.js';
import { quotaPolicySchema } from '../quota/policy.js';

/**
 * The wire shapes of the admin API. The service validates with these and the OpenAPI document is
 * generated from them (src/openapi/), so the two cannot disagree.
 */

export const teamIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'use 1-64 letters, digits, dots, dashes or underscores');
const name = z.string().max(200).nullable().optional();

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
});

export const teamPathSchema = z.object({ team: z.string().min(1) });
export const keyPathSchema = z.object({ id: z.string().min(1).meta({ description: 'The key id (`key_…`), never its secret.' }) });

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
  requests: z.number().int(),
});
export const usageSchema = z.object({
  team: z.string(),
  day: periodUsage.meta({ description: 'The current UTC day; `start` is its date.' }),
  month: periodUsage.meta({ description: 'The current UTC month; `start` is YYYY-MM.' }),
  active_jobs: z.number().int(),
  requests_this_minute: z.number().int(),
  quota: quotaPolicySchema,
  daily: z.array(z.object({ date: z.string(), video_seconds: z.number(), requests: z.number().int() })).optional(),
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
