import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { modelFileSchema, priceSchema, type ModelFile, type PriceSpec } from './domain/models.js';
import { UPSTREAM_KINDS, type UpstreamKind } from './domain/upstream-kinds.js';
import type { RoutingPolicy } from './upstream/router.js';
import { DEFAULT_MEDIA_HOSTS } from './upstream/providers/xai.js';
import { parseAllowedHosts, type AllowedHost } from './webhooks/destination.js';
import { largestBufferedBody, SMALL_BODY_HEADROOM, type CreateBufferLimits } from './http/create-buffer.js';
import { POSTGRES_DEFAULTS } from './store/postgres/store.js';
import type { StorageConfig } from './storage/config.js';
import { parseStorageUrl, type StorageTarget } from './storage/target.js';

const MIB = 1024 * 1024;

/** Every default lives here, once (the database pool's are the store's own, named beside it). */
export const DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  dataDir: './data',
  logLevel: 'info',
  maxBodyBytes: 64 * MIB,
  maxReferenceImages: 8,
  maxImageBytes: 20 * MIB,
  /** Four bodies of the largest size at once. */
  createBufferBytes: 256 * MIB,
  /** A quarter: one team's uploads, however slow, leave three quarters to the others. */
  createBufferTeamShare: 0.25,
  createBufferWaitMs: 2_000,
  upstreamConnectTimeoutMs: 5_000,
  upstreamTimeoutMs: 60_000,
  upstreamIdleTimeoutMs: 30_000,
  shutdownTimeoutMs: 25_000,
  statusCacheMs: 1_000,
  /** The tracker's longest sleep between looks at the store (§11); it wakes sooner when a check is due. */
  reconcileIntervalMs: 1_000,
  /** Status calls a second to each upstream, per replica: room for thousands of jobs at a few calls each. */
  upstreamStatusRps: 100,
  maxJobAgeMs: 6 * 60 * 60 * 1000,
  keyCacheMs: 30_000,
  upstreamBreakerFailures: 5,
  upstreamBreakerCooldownMs: 30_000,
  upstreamKeyCooldownMs: 5 * 60_000,
  upstreamRateLimitCooldownMs: 10_000,
  databaseConnectTimeoutMs: POSTGRES_DEFAULTS.connectTimeoutMs,
  databaseStatementTimeoutMs: POSTGRES_DEFAULTS.statementTimeoutMs,
  databasePoolSize: POSTGRES_DEFAULTS.poolSize,
  webhookTimeoutMs: 10_000,
  webhookPollIntervalMs: 1_000,
  idempotencyLeaseMs: 10_000,
  videoRetentionDays: 7,
  /** Presigned content URLs: long enough to start a download, short enough that a leaked one soon dies. */
  contentRedirectTtlS: 300,
  storageCopyConcurrency: 2,
  /** All copies of a replica together; a download of the API is never slowed by them. */
  storageCopyBytesPerSec: 64 * MIB,
  storageCopyRetryMs: 10_000,
  storagePollIntervalMs: 5_000,
  storageSweepIntervalMs: 60_000,
  /** A derived video of a stored xAI source, on the file backend, sends it as a data URI up to this size. */
  storageDataUriMaxBytes: 8 * MIB,
  awsRegion: 'us-east-1',
} as const;

/** The key that works against the built-in simulator only; never accepted in production. */
export const DEMO_API_KEY = 'gw-demo-local-simulator-only';

const blankIsUnset = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(blankIsUnset, z.string().trim().optional());
const int = (def: number, min = 0) => z.preprocess(blankIsUnset, z.coerce.number().int().min(min).default(def));
const csv = z.preprocess(
  blankIsUnset,
  z
    .string()
    .optional()
    .transform((s) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean)),
);

const envSchema = z.object({
  NODE_ENV: optionalString,
  PORT: int(DEFAULTS.port),
  HOST: z.preprocess(blankIsUnset, z.string().default(DEFAULTS.host)),
  UPSTREAM_BASE_URL: z.preprocess(blankIsUnset, z.url({ protocol: /^https?$/ }).optional()),
  UPSTREAM_API_KEY: csv,
  UPSTREAM_KIND: z.preprocess(blankIsUnset, z.enum(UPSTREAM_KINDS).default('newapi')),
  UPSTREAM_MEDIA_HOSTS: csv,
  ADMIN_TOKEN: z.preprocess(blankIsUnset, z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional()),
  GATEWAY_API_KEYS: csv,
  DATA_DIR: z.preprocess(blankIsUnset, z.string().default(DEFAULTS.dataDir)),
  REDIS_URL: optionalString,
  DATABASE_URL: z.preprocess(
    blankIsUnset,
    z.url({ protocol: /^postgres(ql)?$/, error: 'DATABASE_URL must be a postgres:// or postgresql:// URL' }).optional(),
  ),
  DATABASE_CONNECT_TIMEOUT_MS: int(DEFAULTS.databaseConnectTimeoutMs, 1),
  DATABASE_STATEMENT_TIMEOUT_MS: int(DEFAULTS.databaseStatementTimeoutMs, 1),
  DATABASE_POOL_SIZE: int(DEFAULTS.databasePoolSize, 1),
  PUBLIC_BASE_URL: z.preprocess(blankIsUnset, z.url({ protocol: /^https?$/ }).optional()),
  LOG_LEVEL: z.preprocess(
    blankIsUnset,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default(DEFAULTS.logLevel),
  ),
  MAX_BODY_BYTES: int(DEFAULTS.maxBodyBytes, 1024),
  MAX_REFERENCE_IMAGES: int(DEFAULTS.maxReferenceImages, 0),
  MAX_IMAGE_BYTES: int(DEFAULTS.maxImageBytes, 1),
  CREATE_BUFFER_BYTES: int(DEFAULTS.createBufferBytes, 1024),
  CREATE_BUFFER_TEAM_SHARE: z.preprocess(blankIsUnset, z.coerce.number().gt(0).max(1).default(DEFAULTS.createBufferTeamShare)),
  CREATE_BUFFER_WAIT_MS: int(DEFAULTS.createBufferWaitMs, 0),
  UPSTREAM_CONNECT_TIMEOUT_MS: int(DEFAULTS.upstreamConnectTimeoutMs, 1),
  UPSTREAM_TIMEOUT_MS: int(DEFAULTS.upstreamTimeoutMs, 1),
  UPSTREAM_IDLE_TIMEOUT_MS: int(DEFAULTS.upstreamIdleTimeoutMs, 1),
  SHUTDOWN_TIMEOUT_MS: int(DEFAULTS.shutdownTimeoutMs, 0),
  STATUS_CACHE_MS: int(DEFAULTS.statusCacheMs, 0),
  RECONCILE_INTERVAL_MS: int(DEFAULTS.reconcileIntervalMs, 0),
  UPSTREAM_STATUS_RPS: int(DEFAULTS.upstreamStatusRps, 1),
  MAX_JOB_AGE_MS: int(DEFAULTS.maxJobAgeMs, 1000),
  KEY_CACHE_MS: int(DEFAULTS.keyCacheMs, 0),
  DEFAULT_MODEL: optionalString,
  CONFIG_FILE: optionalString,
  UPSTREAM_BREAKER_FAILURES: int(DEFAULTS.upstreamBreakerFailures, 1),
  UPSTREAM_BREAKER_COOLDOWN_MS: int(DEFAULTS.upstreamBreakerCooldownMs, 0),
  UPSTREAM_KEY_COOLDOWN_MS: int(DEFAULTS.upstreamKeyCooldownMs, 0),
  UPSTREAM_RATE_LIMIT_COOLDOWN_MS: int(DEFAULTS.upstreamRateLimitCooldownMs, 0),
  METRICS_TOKEN: z.preprocess(blankIsUnset, z.string().min(16, 'METRICS_TOKEN must be at least 16 characters').optional()),
  METRICS_PORT: z.preprocess(blankIsUnset, z.coerce.number().int().min(0).max(65_535).optional()),
  WEBHOOK_ALLOWED_HOSTS: csv.transform((entries, ctx) => {
    try {
      return parseAllowedHosts(entries);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${(err as Error).message} (comma-separated host[:port], a leading *. for subdomains)` });
      return z.NEVER;
    }
  }),
  WEBHOOK_TIMEOUT_MS: int(DEFAULTS.webhookTimeoutMs, 1),
  WEBHOOK_POLL_INTERVAL_MS: int(DEFAULTS.webhookPollIntervalMs, 0),
  IDEMPOTENCY_LEASE_MS: int(DEFAULTS.idempotencyLeaseMs, 100),
  STORAGE_URL: optionalString,
  S3_ENDPOINT: z.preprocess(blankIsUnset, z.url({ protocol: /^https?$/ }).optional()),
  AWS_REGION: optionalString,
  AWS_DEFAULT_REGION: optionalString,
  CONTENT_REDIRECT: z.preprocess(blankIsUnset, z.enum(['none', 'presigned']).default('none')),
  CONTENT_REDIRECT_TTL_S: int(DEFAULTS.contentRedirectTtlS, 1),
  VIDEO_RETENTION_DAYS: int(DEFAULTS.videoRetentionDays, 1),
  STORAGE_COPY_CONCURRENCY: int(DEFAULTS.storageCopyConcurrency, 1),
  STORAGE_COPY_BYTES_PER_SEC: int(DEFAULTS.storageCopyBytesPerSec, 0),
  STORAGE_COPY_RETRY_MS: int(DEFAULTS.storageCopyRetryMs, 1),
  STORAGE_POLL_INTERVAL_MS: int(DEFAULTS.storagePollIntervalMs, 0),
  STORAGE_SWEEP_INTERVAL_MS: int(DEFAULTS.storageSweepIntervalMs, 1),
  STORAGE_DATA_URI_MAX_BYTES: int(DEFAULTS.storageDataUriMaxBytes, 0),
});

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Absent means: run against the built-in simulator (never in production). */
  readonly upstreamBaseUrl: string | undefined;
  readonly upstreamApiKeys: readonly string[];
  /** The protocol of the one-upstream shorthand (UPSTREAM_BASE_URL), and where its videos may be fetched from. */
  readonly upstreamKind: UpstreamKind;
  readonly upstreamMediaHosts: readonly string[];
  readonly adminToken: string | undefined;
  /** Keys accepted on /v1 without a store entry (team `default`); the demo key joins them in simulator mode. */
  readonly staticApiKeys: readonly string[];
  readonly dataDir: string;
  readonly redisUrl: string | undefined;
  /** Set: the shared PostgreSQL store (several replicas); unset: the embedded SQLite store under dataDir. */
  readonly databaseUrl: string | undefined;
  readonly database: {
    readonly connectTimeoutMs: number;
    readonly statementTimeoutMs: number;
    readonly poolSize: number;
  };
  readonly publicBaseUrl: string | undefined;
  readonly logLevel: string;
  readonly limits: {
    readonly maxBodyBytes: number;
    readonly maxReferenceImages: number;
    readonly maxImageBytes: number;
    /** The bytes of create bodies held at once (§7). */
    readonly createBuffer: CreateBufferLimits;
  };
  readonly upstream: {
    readonly connectTimeoutMs: number;
    readonly timeoutMs: number;
    readonly idleTimeoutMs: number;
  };
  readonly shutdownTimeoutMs: number;
  readonly statusCacheMs: number;
  /** The tracker's longest sleep; 0: this replica tracks no jobs (others sharing the store do). */
  readonly reconcileIntervalMs: number;
  /** Status calls a second to each upstream from this replica, client polls and tracking together. */
  readonly upstreamStatusRps: number;
  readonly maxJobAgeMs: number;
  readonly keyCacheMs: number;
  readonly defaultModel: string | undefined;
  readonly models: ModelFile | undefined;
  /** The upstreams of CONFIG_FILE, keys read from the variables it names; undefined: the UPSTREAM_* shorthand. */
  readonly upstreams: readonly UpstreamConfig[] | undefined;
  readonly routing: RoutingPolicy;
  readonly metrics: {
    /** Bearer token that /metrics asks for (src/http/metrics-route.ts says where and what else). */
    readonly token: string | undefined;
    /** A listener of its own for /metrics (0: any free port); unset, /metrics is on the main listener. */
    readonly port: number | undefined;
  };
  readonly webhooks: {
    /** Empty: any host with public addresses only, over https. */
    readonly allowedHosts: readonly AllowedHost[];
    readonly timeoutMs: number;
    /** 0: this replica sends no webhooks (others sharing the store do). */
    readonly pollIntervalMs: number;
  };
  /**
   * How long a create with an Idempotency-Key holds its key without renewing it (it renews while it works):
   * a repeat finding the key held longer than this takes the first request for dead.
   */
  readonly idempotencyLeaseMs: number;
  readonly storage: StorageConfig;
  /** Retired variables that are set (RETIRED_VARIABLES), each with what replaced it. */
  readonly retired: ReadonlyArray<{ readonly variable: string; readonly instead: string }>;
}


/**
 * Variables earlier versions read and this one does not, with what took their place: an operator who upgrades
 * is told at start (a warning naming each one set) rather than finding the setting silently without effect.
 */
export const RETIRED_VARIABLES: Readonly<Record<string, string>> = {
  MAX_CONCURRENT_CREATES: 'creates in flight are bounded by their bytes: CREATE_BUFFER_BYTES',
  MAX_CONCURRENT_CREATES_PER_KEY: "creates in flight are bounded by their bytes: CREATE_BUFFER_BYTES, a team's share CREATE_BUFFER_TEAM_SHARE",
  MAX_CONCURRENT_CREATES_PER_TEAM: "creates in flight are bounded by their bytes: CREATE_BUFFER_BYTES, a team's share CREATE_BUFFER_TEAM_SHARE",
};

/** A configuration the process cannot start with: a headline, then one line per zod issue. */
export class ConfigError extends Error {
  constructor(headline: string, issues: readonly z.core.$ZodIssue[] = []) {
    super([headline, ...issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)].join('\n'));
  }
}

/** How the server and the CLI alike end on a wrong configuration: the message on stderr, sysexits' EX_CONFIG. */
export function exitForConfigError(program: string, err: ConfigError): never {
  process.stderr.write(`${program}: ${err.message}\n`);
  return process.exit(78);
}

/** Parses the environment (and the optional model file) once, at start. Blank variables count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError('invalid configuration:', parsed.error.issues);
  const e = parsed.data;
  const file = e.CONFIG_FILE ? readConfigFile(e.CONFIG_FILE) : undefined;
  const upstreams = file?.upstreams ? resolveUpstreams(file.upstreams, env, e.CONFIG_FILE as string) : undefined;
  if (upstreams && e.UPSTREAM_BASE_URL) {
    throw new ConfigError('give the upstreams either in CONFIG_FILE (upstreams) or as UPSTREAM_BASE_URL, not both');
  }
  if (e.NODE_ENV === 'production' && !e.UPSTREAM_BASE_URL && !upstreams) {
    throw new ConfigError('UPSTREAM_BASE_URL (or upstreams in CONFIG_FILE) is required when NODE_ENV=production (the simulator is for local use only)');
  }
  if (e.METRICS_PORT !== undefined && e.METRICS_PORT !== 0 && e.METRICS_PORT === e.PORT) {
    throw new ConfigError('METRICS_PORT must differ from PORT (leave it unset to serve /metrics on the main listener)');
  }
  if (e.UPSTREAM_BASE_URL && e.UPSTREAM_API_KEY.length === 0) {
    throw new ConfigError('UPSTREAM_API_KEY is required when UPSTREAM_BASE_URL is set');
  }
  const createBuffer = { bytes: e.CREATE_BUFFER_BYTES, teamShare: e.CREATE_BUFFER_TEAM_SHARE, waitMs: e.CREATE_BUFFER_WAIT_MS };
  if (largestBufferedBody(createBuffer) < e.MAX_BODY_BYTES) {
    throw new ConfigError(
      `CREATE_BUFFER_BYTES × CREATE_BUFFER_TEAM_SHARE, and CREATE_BUFFER_BYTES × ${1 - SMALL_BODY_HEADROOM} (what large bodies may fill), must be at least MAX_BODY_BYTES (${e.MAX_BODY_BYTES}): a body within the limit could never be read`,
    );
  }
  let storageTarget: StorageTarget | undefined;
  try {
    storageTarget = parseStorageUrl(e.STORAGE_URL, e.DATA_DIR);
  } catch (err) {
    throw new ConfigError(`STORAGE_URL ${(err as Error).message}`);
  }
  if (e.CONTENT_REDIRECT === 'presigned' && storageTarget?.kind !== 's3') {
    throw new ConfigError('CONTENT_REDIRECT=presigned needs an s3:// STORAGE_URL (a directory has no URL to redirect to)');
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    upstreamBaseUrl: e.UPSTREAM_BASE_URL,
    upstreamApiKeys: e.UPSTREAM_API_KEY,
    upstreamKind: e.UPSTREAM_KIND,
    upstreamMediaHosts: e.UPSTREAM_MEDIA_HOSTS.length > 0 ? e.UPSTREAM_MEDIA_HOSTS : DEFAULT_MEDIA_HOSTS,
    adminToken: e.ADMIN_TOKEN,
    staticApiKeys: e.GATEWAY_API_KEYS,
    dataDir: e.DATA_DIR,
    redisUrl: e.REDIS_URL,
    databaseUrl: e.DATABASE_URL,
    database: {
      connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      poolSize: e.DATABASE_POOL_SIZE,
    },
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ''),
    logLevel: e.LOG_LEVEL,
    limits: {
      maxBodyBytes: e.MAX_BODY_BYTES,
      maxReferenceImages: e.MAX_REFERENCE_IMAGES,
      maxImageBytes: e.MAX_IMAGE_BYTES,
      createBuffer,
    },
    upstream: {
      connectTimeoutMs: e.UPSTREAM_CONNECT_TIMEOUT_MS,
      timeoutMs: e.UPSTREAM_TIMEOUT_MS,
      idleTimeoutMs: e.UPSTREAM_IDLE_TIMEOUT_MS,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    statusCacheMs: e.STATUS_CACHE_MS,
    reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
    upstreamStatusRps: e.UPSTREAM_STATUS_RPS,
    maxJobAgeMs: e.MAX_JOB_AGE_MS,
    keyCacheMs: e.KEY_CACHE_MS,
    defaultModel: e.DEFAULT_MODEL,
    models: file ? { models: file.models, aliases: file.aliases, ...(file.defaultModel !== undefined ? { defaultModel: file.defaultModel } : {}), ...(file.prices ? { prices: file.prices } : {}) } : undefined,
    upstreams,
    routing: {
      breakerFailures: e.UPSTREAM_BREAKER_FAILURES,
      breakerCooldownMs: e.UPSTREAM_BREAKER_COOLDOWN_MS,
      keyCooldownMs: e.UPSTREAM_KEY_COOLDOWN_MS,
      rateLimitCooldownMs: e.UPSTREAM_RATE_LIMIT_COOLDOWN_MS,
    },
    metrics: { token: e.METRICS_TOKEN, port: e.METRICS_PORT },
    webhooks: { allowedHosts: e.WEBHOOK_ALLOWED_HOSTS, timeoutMs: e.WEBHOOK_TIMEOUT_MS, pollIntervalMs: e.WEBHOOK_POLL_INTERVAL_MS },
    idempotencyLeaseMs: e.IDEMPOTENCY_LEASE_MS,
    storage: {
      target: storageTarget,
      s3Endpoint: e.S3_ENDPOINT,
      region: e.AWS_REGION ?? e.AWS_DEFAULT_REGION ?? DEFAULTS.awsRegion,
      contentRedirect: e.CONTENT_REDIRECT,
      contentRedirectTtlS: e.CONTENT_REDIRECT_TTL_S,
      retentionDays: e.VIDEO_RETENTION_DAYS,
      copyConcurrency: e.STORAGE_COPY_CONCURRENCY,
      copyBytesPerSec: e.STORAGE_COPY_BYTES_PER_SEC,
      copyRetryMs: e.STORAGE_COPY_RETRY_MS,
      pollIntervalMs: e.STORAGE_POLL_INTERVAL_MS,
      sweepIntervalMs: e.STORAGE_SWEEP_INTERVAL_MS,
      dataUriMaxBytes: e.STORAGE_DATA_URI_MAX_BYTES,
    },
    retired: Object.entries(RETIRED_VARIABLES)
      .filter(([variable]) => blankIsUnset(env[variable]) !== undefined)
      .map(([variable, instead]) => ({ variable, instead })),
  });
}

/** One upstream of CONFIG_FILE (§8); its keys stay in the environment, the file names the variable. */
const upstreamFileSchema = z.object({
  id: z.string().regex(/^[\w.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -'),
  kind: z.enum(UPSTREAM_KINDS).default('newapi'),
  base_url: z.url({ protocol: /^https?$/ }),
  keys: z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must name an environment variable') }).strict(),
  models: z.array(z.union([z.string().min(1), z.object({ name: z.string().min(1), upstream_name: z.string().min(1) }).strict()])).min(1),
  priority: z.number().int().default(0),
  weight: z.number().int().min(1).default(1),
  media_hosts: z.array(z.string().regex(/^[\w.-]+(:\d{1,5})?$/, 'must be host or host:port')).min(1).optional(),
  /** What this upstream charges, by model: resellers set their own prices (§10). */
  prices: z.record(z.string(), priceSchema).optional(),
}).strict();

const configFileSchema = modelFileSchema.extend({ upstreams: z.array(upstreamFileSchema).min(1).optional() });
type ConfigFile = z.infer<typeof configFileSchema>;

export interface UpstreamConfig {
  readonly id: string;
  readonly kind: UpstreamKind;
  readonly baseUrl: string;
  readonly keys: readonly string[];
  /** Gateway model names (aliases allowed) and the name the upstream knows each by. */
  readonly models: ReadonlyArray<{ readonly name: string; readonly upstreamName: string }>;
  readonly priority: number;
  readonly weight: number;
  readonly mediaHosts: readonly string[];
  /** Gateway model names (aliases allowed) → the price this upstream charges, over the model table's. */
  readonly prices: Readonly<Record<string, PriceSpec>>;
}

function resolveUpstreams(list: NonNullable<ConfigFile['upstreams']>, env: NodeJS.ProcessEnv, path: string): UpstreamConfig[] {
  const ids = new Set<string>();
  return list.map((u) => {
    if (ids.has(u.id)) throw new ConfigError(`CONFIG_FILE ${path}: upstream id ${u.id} is given twice`);
    ids.add(u.id);
    const keys = (env[u.keys.env] ?? '').split(',').map((k) => k.trim()).filter(Boolean);
    // The variable's name, never its value.
    if (keys.length === 0) throw new ConfigError(`CONFIG_FILE ${path}: upstream ${u.id} names ${u.keys.env} for its keys, which is unset or empty`);
    return {
      id: u.id,
      kind: u.kind,
      baseUrl: u.base_url,
      keys,
      models: u.models.map((m) => (typeof m === 'string' ? { name: m, upstreamName: m } : { name: m.name, upstreamName: m.upstream_name })),
      priority: u.priority,
      weight: u.weight,
      mediaHosts: u.media_hosts ?? DEFAULT_MEDIA_HOSTS,
      prices: u.prices ?? {},
    };
  });
}

function readConfigFile(path: string): ConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`CONFIG_FILE ${path}: ${(err as Error).message}`);
  }
  const parsed = configFileSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`CONFIG_FILE ${path}:`, parsed.error.issues);
  return parsed.data;
}
