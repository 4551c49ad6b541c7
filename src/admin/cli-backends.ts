import { AdminService } from './service.js';
import type { Config } from '../config.js';
import { ApiError, type ErrorType } from '../domain/errors.js';
import { systemClock } from '../domain/quota-policy.js';
import { openStore } from '../store/open.js';
import type { Store } from '../store/types.js';
import { ModelCatalog } from '../domain/models.js';
import { DestinationPolicy } from '../webhooks/destination.js';

/**
 * The admin operations as the CLI sees them. AdminService satisfies it on a store; AdminHttpClient on a running
 * gateway's admin API. Both answer the admin API's JSON shapes and fail with ApiError, so every command behaves
 * and prints the same whichever backend runs it.
 */
export interface AdminOps {
  createTeam(body: unknown): Promise<unknown>;
  listTeams(): Promise<unknown>;
  getTeam(id: string): Promise<unknown>;
  updateTeam(id: string, body: unknown): Promise<unknown>;
  deleteTeam(id: string): Promise<unknown>;
  issueKey(teamId: string, body: unknown): Promise<unknown>;
  listKeys(teamId: string): Promise<unknown>;
  revokeKey(id: string): Promise<unknown>;
  usage(teamId: string, query: Record<string, string>): Promise<unknown>;
  setWebhook(teamId: string, body: unknown): Promise<unknown>;
  getWebhook(teamId: string): Promise<unknown>;
  deleteWebhook(teamId: string): Promise<unknown>;
  rotateWebhookSecret(teamId: string): Promise<unknown>;
  listWebhookDeliveries(teamId: string, query: Record<string, string>): Promise<unknown>;
  replayWebhookDelivery(teamId: string, id: string): Promise<unknown>;
  /** The upstreams' live state (breakers, cool-downs, recent calls): only a running gateway has it. */
  upstreams(): Promise<unknown>;
  listVideos(teamId: string, query: Record<string, string>): Promise<unknown>;
  storage(): Promise<unknown>;
}

export interface AdminBackend {
  readonly ops: AdminOps;
  close(): Promise<void>;
}

/** The one place the CLI opens the gateway's store, so it opens whichever store the gateway would. */
export async function directBackend(config: Config): Promise<AdminBackend> {
  let store: Store;
  try {
    store = await openStore(config);
  } catch (err) {
    throw new ApiError({ status: 503, type: 'server_error', code: 'store_unavailable', message: `cannot open the store: ${(err as Error).message}` });
  }
  // No key cache lives in this process, so there is nothing to drop on change: a running gateway notices a
  // revocation made here when its own cache entry expires (KEY_CACHE_MS).
  const ops = new AdminService(store, systemClock, new ModelCatalog(config.models, config.defaultModel), new DestinationPolicy(config.webhooks.allowedHosts), config.storage.target?.kind ?? null);
  return { ops, close: () => store.close() };
}

const REQUEST_TIMEOUT_MS = 30_000;
const seg = encodeURIComponent;

/** The admin API over HTTP: a change made here goes through the gateway, which drops its key cache at once. */
export class AdminHttpClient implements AdminOps {
  private readonly base: string;

  constructor(
    baseUrl: string,
    private readonly token: string | undefined,
  ) {
    this.base = `${baseUrl.replace(/\/+$/, '')}/admin`;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new ApiError({ status: 503, type: 'server_error', code: 'gateway_unreachable', message: `cannot reach the gateway at ${this.base}: ${why}` });
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.ok && parsed !== undefined) return parsed;
    const e = (parsed as { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } } | undefined)?.error;
    if (!e || typeof e.message !== 'string') {
      throw new ApiError({ status: res.ok ? 502 : res.status, type: 'server_error', code: 'unexpected_answer', message: `${this.base}${path} answered ${res.status} without an admin API body` });
    }
    throw new ApiError({
      status: res.status,
      type: e.type as ErrorType,
      message: e.message,
      param: typeof e.param === 'string' ? e.param : null,
      code: typeof e.code === 'string' ? e.code : null,
    });
  }

  createTeam(body: unknown) {
    return this.call('POST', '/teams', body);
  }
  listTeams() {
    return this.call('GET', '/teams');
  }
  getTeam(id: string) {
    return this.call('GET', `/teams/${seg(id)}`);
  }
  updateTeam(id: string, body: unknown) {
    return this.call('PATCH', `/teams/${seg(id)}`, body);
  }
  deleteTeam(id: string) {
    return this.call('DELETE', `/teams/${seg(id)}`);
  }
  issueKey(teamId: string, body: unknown) {
    return this.call('POST', `/teams/${seg(teamId)}/keys`, body);
  }
  listKeys(teamId: string) {
    return this.call('GET', `/teams/${seg(teamId)}/keys`);
  }
  revokeKey(id: string) {
    return this.call('DELETE', `/keys/${seg(id)}`);
  }
  usage(teamId: string, query: Record<string, string>) {
    const qs = new URLSearchParams(query).toString();
    return this.call('GET', `/teams/${seg(teamId)}/usage${qs ? `?${qs}` : ''}`);
  }
  setWebhook(teamId: string, body: unknown) {
    return this.call('PUT', `/teams/${seg(teamId)}/webhook`, body);
  }
  getWebhook(teamId: string) {
    return this.call('GET', `/teams/${seg(teamId)}/webhook`);
  }
  deleteWebhook(teamId: string) {
    return this.call('DELETE', `/teams/${seg(teamId)}/webhook`);
  }
  rotateWebhookSecret(teamId: string) {
    return this.call('POST', `/teams/${seg(teamId)}/webhook/rotate-secret`);
  }
  listWebhookDeliveries(teamId: string, query: Record<string, string>) {
    const qs = new URLSearchParams(query).toString();
    return this.call('GET', `/teams/${seg(teamId)}/webhook/deliveries${qs ? `?${qs}` : ''}`);
  }
  replayWebhookDelivery(teamId: string, id: string) {
    return this.call('POST', `/teams/${seg(teamId)}/webhook/deliveries/${seg(id)}/replay`);
  }
  listVideos(teamId: string, query: Record<string, string>) {
    const qs = new URLSearchParams(query).toString();
    return this.call('GET', `/teams/${seg(teamId)}/videos${qs ? `?${qs}` : ''}`);
  }
  storage() {
    return this.call('GET', '/storage');
  }
  async upstreams() {
    // A bare array on the wire (§8); a list here, so that it prints as a table.
    return { object: 'list', data: await this.call('GET', '/upstreams') };
  }
}

export function httpBackend(url: string, token: string | undefined): AdminBackend {
  return { ops: new AdminHttpClient(url, token), close: async () => {} };
}
