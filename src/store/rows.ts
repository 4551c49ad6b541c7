import type { QuotaPolicy } from '../domain/quota-policy.js';
import type { ApiKeyRecord, RetiredSecret, Team, WebhookDelivery, WebhookEndpoint } from './types.js';
import type { JobRecord } from '../domain/job.js';
import { copyOfRow } from './copies.js';

/** A row as the driver returns it, keyed by column name. */
export type Row = Record<string, unknown>;

/**
 * Where the two stores' columns differ: SQLite keeps JSON as text and booleans as 0/1, PostgreSQL hands
 * jsonb and boolean over decoded. Everything else (bigints included, see the pool's type parser) arrives alike.
 */
export interface ColumnDecoders {
  json(v: unknown): unknown;
  bool(v: unknown): boolean;
}

/** One entry of `webhook_endpoints.previous_secrets`, a JSON array in both stores. */
export interface StoredSecret {
  readonly secret: string;
  readonly expires_at_ms: number;
}

export const toStoredSecrets = (list: readonly RetiredSecret[]): StoredSecret[] => list.map((p) => ({ secret: p.secret, expires_at_ms: p.expiresAtMs }));

/** A nullable column. */
const opt = <T>(v: unknown): T | null => (v as T | null | undefined) ?? null;

/** The records of the Store interface from table rows, the same for both stores but for their `ColumnDecoders`. */
export function rowMappers(c: ColumnDecoders) {
  const toJob = (r: Row): JobRecord => ({
    id: r.id as string,
    teamId: r.team_id as string,
    keyId: r.key_id as string,
    upstreamId: opt(r.upstream_id),
    upstreamKeyFp: opt(r.upstream_key_fp),
    upstreamName: opt(r.upstream_name),
    mediaUrl: opt(r.media_url),
    sourceVideoId: opt(r.source_video_id),
    derivation: opt(r.derivation),
    model: r.model as string,
    prompt: r.prompt as string,
    seconds: r.seconds as number,
    resolution: r.resolution as number,
    aspectRatio: r.aspect_ratio as string,
    status: r.status as JobRecord['status'],
    progress: r.progress as number,
    error: r.error == null ? null : (c.json(r.error) as JobRecord['error']),
    createdAt: r.created_at as number,
    completedAt: opt(r.completed_at),
    updatedAtMs: r.updated_at_ms as number,
    charge: r.charge as JobRecord['charge'],
    chargeDay: r.charge_day as string,
    chargeMonth: r.charge_month as string,
    expiresAt: opt(r.expires_at),
    storage: copyOfRow(r),
    statusChecks: (r.status_checks as number | undefined) ?? 0,
    estimateMicros: opt(r.cost_estimate_micros),
    priceMicros: opt(r.cost_price_micros),
    costMicros: opt(r.cost_micros),
    costSource: opt(r.cost_source),
  });

  const toTeam = (r: Row): Team => ({
    id: r.id as string,
    name: opt(r.name),
    quota: c.json(r.quota) as QuotaPolicy,
    createdAt: r.created_at as number,
  });

  const toKey = (r: Row): ApiKeyRecord => ({
    id: r.id as string,
    teamId: r.team_id as string,
    name: opt(r.name),
    prefix: r.prefix as string,
    quota: c.json(r.quota) as QuotaPolicy,
    createdAt: r.created_at as number,
    expiresAt: opt(r.expires_at),
    revokedAt: opt(r.revoked_at),
  });

  const toEndpoint = (r: Row): WebhookEndpoint => ({
    teamId: r.team_id as string,
    url: r.url as string,
    events: c.json(r.events) as WebhookEndpoint['events'],
    enabled: c.bool(r.enabled),
    secret: r.secret as string,
    previousSecrets: (c.json(r.previous_secrets) as StoredSecret[]).map((p) => ({ secret: p.secret, expiresAtMs: p.expires_at_ms })),
    createdAt: r.created_at as number,
  });

  const toDelivery = (r: Row): WebhookDelivery => ({
    id: r.id as string,
    eventId: r.event_id as string,
    teamId: r.team_id as string,
    videoId: r.video_id as string,
    type: r.type as WebhookDelivery['type'],
    createdAt: r.created_at as number,
    status: r.status as WebhookDelivery['status'],
    attempts: r.attempts as number,
    lastStatus: opt(r.last_status),
    lastError: opt(r.last_error),
    lastLatencyMs: opt(r.last_latency_ms),
    lastAttemptAtMs: opt(r.last_attempt_at_ms),
    nextAttemptAtMs: opt(r.next_attempt_at_ms),
    deliveredAtMs: opt(r.delivered_at_ms),
    data: r.data == null ? null : (c.json(r.data) as WebhookDelivery['data']),
  });

  return { toJob, toTeam, toKey, toEndpoint, toDelivery };
}
