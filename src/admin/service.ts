import { randomBytes } from 'node:crypto';
import { generateKey, hashKey, STATIC_TEAM } from '../http/auth.js';
import { ApiError, invalidRequest, notFound, rateLimited } from '../domain/errors.js';
import { parseOrThrow } from '../domain/validation.js';
import type { Clock, QuotaPolicy } from '../domain/quota-policy.js';
import type { ApiKeyRecord, Store, Team, WebhookDelivery, WebhookEndpoint } from '../store/types.js';
import type { JobRecord } from '../domain/job.js';
import { DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from '../domain/webhook-event.js';
import type { ModelCatalog } from '../domain/models.js';
import { RefusedDestinationError, type DestinationPolicy } from '../webhooks/destination.js';
import { MAX_PREVIOUS_SECRETS, newWebhookSecret, ROTATION_OVERLAP_MS, signingPreviousSecrets } from '../webhooks/signing.js';
import {
  createTeamSchema,
  deliveriesQuerySchema,
  issueKeySchema,
  patchTeamSchema,
  usageQuerySchema,
  videosQuerySchema,
  webhookInputSchema,
  type AdminVideoObject,
  type ApiKeyObject,
  type DeliveryObject,
  type StorageStateObject,
  type TeamObject,
  type UsageObject,
  type WebhookEndpointObject,
} from './schemas.js';

const unixS = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));

/** Never the secret: only the calls that make one return it (`secret`). */
export const webhookView = (e: WebhookEndpoint, secret?: string): WebhookEndpointObject => ({
  object: 'webhook_endpoint',
  team: e.teamId,
  url: e.url,
  events: [...e.events],
  enabled: e.enabled,
  created_at: e.createdAt,
  previous_secret_expires_at: e.previousSecrets.length ? unixS(Math.max(...e.previousSecrets.map((p) => p.expiresAtMs))) : null,
  ...(secret !== undefined ? { secret } : {}),
});
export const deliveryView = (d: WebhookDelivery): DeliveryObject => ({
  id: d.id,
  object: 'webhook.delivery',
  event_id: d.eventId,
  type: d.type,
  // A budget alert is about no video (its once-only key stays inside).
  video_id: d.data === null ? d.videoId : null,
  status: d.status,
  attempts: d.attempts,
  last_status: d.lastStatus,
  last_error: d.lastError,
  last_latency_ms: d.lastLatencyMs,
  last_attempt_at: unixS(d.lastAttemptAtMs),
  next_attempt_at: unixS(d.nextAttemptAtMs),
  delivered_at: unixS(d.deliveredAtMs),
  created_at: d.createdAt,
});

/** A video as the operator sees it: its state and its stored copy, never its prompt or upstream details. */
export const adminVideoView = (j: JobRecord): AdminVideoObject => ({
  id: j.id,
  object: 'video',
  model: j.model,
  status: j.status,
  created_at: j.createdAt,
  completed_at: j.completedAt,
  expires_at: j.expiresAt,
  storage: j.storage && {
    state: j.storage.state,
    bytes: j.storage.bytes,
    attempts: j.storage.attempts,
    error: j.storage.error,
    next_attempt_at: j.storage.state === 'pending' ? unixS(j.storage.nextAttemptAtMs) : null,
  },
});

export const teamView = (t: Team): TeamObject => ({ id: t.id, object: 'team', name: t.name, quota: t.quota, created_at: t.createdAt });
export const keyView = (k: ApiKeyRecord): ApiKeyObject => ({
  id: k.id,
  object: 'api_key',
  team: k.teamId,
  name: k.name,
  prefix: k.prefix,
  quota: k.quota,
  created_at: k.createdAt,
  expires_at: k.expiresAt,
  revoked_at: k.revokedAt,
});

const teamNotFound = (id: string) => notFound(`No team '${id}'.`, 'team', 'team_not_found');
const webhookNotFound = (team: string) => notFound(`Team '${team}' has no webhook endpoint.`, 'team', 'webhook_not_found');
const teamConflict = (message: string, code: string) => new ApiError({ status: 409, type: 'invalid_request_error', message, param: 'id', code });

/** Team, key and usage operations, shared by the admin API and the CLI so both behave the same. */
export class AdminService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Model allow-lists must name models or aliases the gateway knows, or they silently allow nothing. */
    private readonly catalog: ModelCatalog,
    /** Where webhook endpoints may point (WEBHOOK_ALLOWED_HOSTS), checked when one is set. */
    private readonly destinations: DestinationPolicy,
    /** Where completed videos are copied (STORAGE_URL): `file`, `s3`, or null for `none`. */
    private readonly storageKind: 'file' | 's3' | null,
    /** Revocations and policy changes need no hook: the store tells every replica (Store.onChange). */
    private readonly hooks: {
      /** Writes request counts still held in memory, so usage is exact on this replica. */
      beforeUsage?: () => Promise<void>;
    } = {},
  ) {}

  private checkModels(quota: QuotaPolicy | undefined): void {
    const unknown = quota?.models?.find((m) => !this.catalog.resolve(m));
    if (unknown !== undefined) {
      throw invalidRequest(`quota.models names '${unknown}', which is not a model or alias of this gateway (see GET /v1/models).`, 'quota.models', 'model_not_found');
    }
  }

  async createTeam(body: unknown) {
    const input = parseOrThrow(createTeamSchema, body);
    this.checkModels(input.quota);
    if (input.id === STATIC_TEAM) throw invalidRequest(`Team id '${STATIC_TEAM}' is reserved for static keys.`, 'id');
    const created = await this.store.createTeam({ id: input.id, name: input.name ?? null, quota: input.quota }, this.clock.now());
    if (created.ok) return teamView(created.team);
    if (created.reason === 'exists') throw teamConflict(`Team '${input.id}' already exists; change its name or quota with PATCH /admin/teams/${input.id}.`, 'team_exists');
    // A deleted team's id stays retired rather than its jobs and counters being wiped or re-keyed: its videos,
    // usage and slots are the record of what that team did (billing, audit, jobs still settling upstream), and
    // an operator re-creating the id for someone else must not hand them that team's videos or spent budget.
    throw teamConflict(
      `Team id '${input.id}' belonged to a deleted team; ids of deleted teams are never reused, so that its videos and usage stay its own. Choose another id.`,
      'team_id_deleted',
    );
  }

  async listTeams() {
    return { object: 'list', data: (await this.store.listTeams()).map(teamView) };
  }

  async getTeam(id: string) {
    const team = await this.store.getTeam(id);
    if (!team) throw teamNotFound(id);
    return teamView(team);
  }

  async updateTeam(id: string, body: unknown) {
    const patch = parseOrThrow(patchTeamSchema, body);
    this.checkModels(patch.quota);
    const team = await this.store.updateTeam(id, { ...(patch.name !== undefined ? { name: patch.name } : {}), ...(patch.quota ? { quota: patch.quota } : {}) });
    if (!team) throw teamNotFound(id);
    return teamView(team);
  }

  async deleteTeam(id: string) {
    if (!(await this.store.deleteTeam(id, this.clock.now()))) throw teamNotFound(id);
    return { id, object: 'team.deleted', deleted: true };
  }

  /** The only moment the secret exists outside the client: it is returned here and stored as a hash. */
  async issueKey(teamId: string, body: unknown) {
    const input = parseOrThrow(issueKeySchema, body ?? {});
    this.checkModels(input.quota);
    if (!(await this.store.getTeam(teamId))) throw teamNotFound(teamId);
    const nowS = Math.floor(this.clock.now() / 1000);
    if (input.expires_at != null && input.expires_at <= nowS) throw invalidRequest('expires_at must be in the future.', 'expires_at');
    const { key, prefix } = generateKey();
    const record = await this.store.createKey({
      id: `key_${randomBytes(8).toString('hex')}`,
      teamId,
      name: input.name ?? null,
      prefix,
      hash: hashKey(key),
      quota: input.quota,
      createdAt: nowS,
      expiresAt: input.expires_at ?? null,
    });
    return { ...keyView(record), key };
  }

  async listKeys(teamId: string) {
    if (!(await this.store.getTeam(teamId))) throw teamNotFound(teamId);
    return { object: 'list', data: (await this.store.listKeys(teamId)).map(keyView) };
  }

  /** A team's videos, newest first. */
  async listVideos(teamId: string, query: unknown) {
    const { limit } = parseOrThrow(videosQuerySchema, query);
    await this.requireTeam(teamId);
    const { jobs } = await this.store.listJobs(teamId, { limit: limit ?? 20, order: 'desc' });
    return { object: 'list', data: jobs.map(adminVideoView) };
  }

  /** Stored results (§12) across replicas, and where this gateway copies to. */
  async storage(): Promise<StorageStateObject> {
    const s = await this.store.copies.stats();
    return { object: 'storage', backend: this.storageKind, stored_videos: s.stored, stored_bytes: s.storedBytes, pending_copies: s.pending, failed_copies: s.failed };
  }

  async revokeKey(id: string) {
    const record = await this.store.revokeKey(id, this.clock.now());
    if (!record) throw notFound(`No key '${id}'.`, 'key', 'key_not_found');
    return { ...keyView(record), revoked: true };
  }

  /** Breakers, cool-downs and recent calls live in the running gateway's memory, not in the store. */
  async upstreams(): Promise<never> {
    throw invalidRequest("The upstreams' state lives in the running gateway: give --url (or GATEWAY_URL).", null, 'needs_gateway');
  }

  async usage(teamId: string, query: unknown) {
    const { days, by } = parseOrThrow(usageQuerySchema, query);
    const team = await this.store.getTeam(teamId);
    if (!team) throw teamNotFound(teamId);
    await this.hooks.beforeUsage?.();
    const now = this.clock.now();
    const [u, byModel] = await Promise.all([this.store.usage(teamId, now, days ?? 1), by === 'model' ? this.store.usageByModel(teamId, now) : undefined]);
    const usage: UsageObject = {
      team: teamId,
      day: u.day,
      month: u.month,
      active_jobs: u.activeJobs,
      requests_this_minute: u.requestsThisMinute,
      quota: team.quota,
      ...(days ? { daily: [...u.daily] } : {}),
      ...(byModel ? { by_model: byModel } : {}),
    };
    return usage;
  }

  private async requireTeam(teamId: string): Promise<void> {
    if (!(await this.store.getTeam(teamId))) throw teamNotFound(teamId);
  }

  /** Creates the endpoint (its secret shown this once) or replaces its url, events and enabled flag. */
  async setWebhook(teamId: string, body: unknown) {
    const input = parseOrThrow(webhookInputSchema, body);
    await this.requireTeam(teamId);
    let url: URL;
    try {
      url = await this.destinations.check(input.url);
    } catch (err) {
      if (err instanceof RefusedDestinationError) throw invalidRequest(`Invalid 'url': ${err.message}.`, 'url', 'webhook_url_refused');
      throw err;
    }
    const events = WEBHOOK_EVENT_TYPES.filter((t) => (input.events ?? DEFAULT_WEBHOOK_EVENTS).includes(t));
    const secret = newWebhookSecret();
    const { endpoint, created } = await this.store.putWebhook(teamId, { url: url.href, events, enabled: input.enabled ?? true }, secret, this.clock.now());
    return webhookView(endpoint, created ? secret : undefined);
  }

  async getWebhook(teamId: string) {
    await this.requireTeam(teamId);
    const endpoint = await this.store.getWebhook(teamId);
    if (!endpoint) throw webhookNotFound(teamId);
    return webhookView(endpoint);
  }

  async deleteWebhook(teamId: string) {
    await this.requireTeam(teamId);
    if (!(await this.store.deleteWebhook(teamId))) throw webhookNotFound(teamId);
    return { object: 'webhook_endpoint.deleted', team: teamId, deleted: true };
  }

  /**
   * The new secret, shown this once; the one it replaces keeps signing for ROTATION_OVERLAP_MS, as do those of
   * earlier rotations for the rest of theirs. Refused (429) while MAX_PREVIOUS_SECRETS of them still sign.
   */
  async rotateWebhookSecret(teamId: string) {
    await this.requireTeam(teamId);
    const secret = newWebhookSecret();
    const now = this.clock.now();
    const rotation = await this.store.rotateWebhookSecret(teamId, secret, ROTATION_OVERLAP_MS, MAX_PREVIOUS_SECRETS, now);
    if (rotation.ok) return webhookView(rotation.endpoint, secret);
    if (!rotation.endpoint) throw webhookNotFound(teamId);
    const oldest = Math.min(...signingPreviousSecrets(rotation.endpoint, now).map((p) => p.expiresAtMs));
    throw rateLimited(
      `Team '${teamId}' has ${MAX_PREVIOUS_SECRETS} replaced secrets still signing every delivery (each for ${ROTATION_OVERLAP_MS / 3_600_000} h after its rotation); the oldest stops at ${new Date(oldest).toISOString()}: rotate again then.`,
      oldest - now,
      'too_many_previous_secrets',
    );
  }

  async listWebhookDeliveries(teamId: string, query: unknown) {
    const { limit } = parseOrThrow(deliveriesQuerySchema, query);
    await this.requireTeam(teamId);
    return { object: 'list', data: (await this.store.listDeliveries(teamId, limit ?? 20)).map(deliveryView) };
  }

  async replayWebhookDelivery(teamId: string, id: string) {
    await this.requireTeam(teamId);
    const delivery = await this.store.replayDelivery(teamId, id, this.clock.now());
    if (!delivery) throw notFound(`Team '${teamId}' has no webhook delivery '${id}'.`, 'id', 'delivery_not_found');
    return deliveryView(delivery);
  }
}
