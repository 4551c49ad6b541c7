import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import { UpstreamSimulator, type SimulatorOptions } from '../../src/simulator/server.js';
import type { Clock } from '../../src/domain/quota-policy.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/types.js';

/** A log destination that keeps every line, for tests that read what the gateway logged (and what it must not). */
export function capturingSink(into: string[] = []): { logs: string[]; sink: Writable } {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      into.push(String(chunk));
      cb();
    },
  });
  return { logs: into, sink };
}

export const UPSTREAM_KEY = 'sk-upstream-secret-0123456789abcdef';
export const CLIENT_KEY = 'gw-test-static-key-0123456789';
export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

export interface Harness {
  readonly sim: UpstreamSimulator;
  readonly gw: Gateway;
  readonly url: string;
  readonly upstreamUrl: string;
  readonly dataDir: string;
  /** Every log line the gateway wrote, raw, for redaction checks. */
  readonly logs: string[];
  close(): Promise<void>;
}

/** `sim.kind: 'xai'` runs the gateway with UPSTREAM_KIND=xai against an xAI-speaking simulator, its own media host. */
export async function startHarness(
  opts: {
    env?: Record<string, string>;
    sim?: Partial<SimulatorOptions>;
    /** A simulator another harness started, shared (and left running on close) instead of a new one. */
    upstream?: { sim: UpstreamSimulator; url: string };
    dataDir?: string;
    clock?: Clock;
    resolveHost?: GatewayOptions['resolveHost'];
    /** Puts something around the store the gateway would open (see support/flaky-store.ts). */
    wrapStore?: (store: Store) => Store;
  } = {},
): Promise<Harness> {
  const sim = opts.upstream?.sim ?? new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 0, ...opts.sim });
  const upstreamUrl = opts.upstream?.url ?? (await sim.listen());
  const kindEnv = sim.kind === 'xai' ? { UPSTREAM_KIND: 'xai', UPSTREAM_MEDIA_HOSTS: new URL(upstreamUrl).host } : {};
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'gw-test-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    UPSTREAM_BASE_URL: upstreamUrl,
    UPSTREAM_API_KEY: UPSTREAM_KEY,
    GATEWAY_API_KEYS: CLIENT_KEY,
    ADMIN_TOKEN,
    RECONCILE_INTERVAL_MS: '0',
    STATUS_CACHE_MS: '0',
    // Suites about stored results (§12) turn it on; the others test the upstream path alone.
    STORAGE_URL: 'none',
    // Suites share one gateway and poll far faster than any real client: the default budget (100 status calls
    // a second per upstream) would answer some polls from the last known status. tracking.test.ts sets its own.
    UPSTREAM_STATUS_RPS: '100000',
    LOG_LEVEL: 'info',
    ...kindEnv,
    ...opts.env,
  });
  const { logs, sink } = capturingSink();
  const store = opts.wrapStore ? { store: opts.wrapStore(await openStore(config)) } : {};
  const gw = await startGateway({ config, logger: createLogger(config.logLevel, sink), upstreamBaseUrl: upstreamUrl, upstreamApiKeys: [UPSTREAM_KEY], ...store, ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.resolveHost ? { resolveHost: opts.resolveHost } : {}) });
  return {
    sim,
    gw,
    url: gw.url,
    upstreamUrl,
    dataDir,
    logs,
    async close() {
      await gw.shutdown(1000);
      if (!opts.upstream) await sim.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const auth = (key = CLIENT_KEY) => ({ authorization: `Bearer ${key}` });

export async function postJson(url: string, body: unknown, key = CLIENT_KEY) {
  const res = await fetch(url, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { res, body: (await res.json()) as any };
}

const DAY_MS = 86_400_000;
/** Tests advance the clock by up to hours; starting this close to a UTC midnight, one would cross it. */
const DAY_END_MARGIN_MS = 8 * 3_600_000;

/**
 * A clock the test can move forward: minute windows, UTC days and job ages without waiting. It starts clear
 * of the end of the UTC day (moved back when the real time is within the margin), so that a day's usage read
 * after an advance is the day the job was charged to, whatever the hour the suite runs at.
 */
export class TestClock implements Clock {
  offsetMs = DAY_MS - (Date.now() % DAY_MS) < DAY_END_MARGIN_MS ? -DAY_END_MARGIN_MS : 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export async function admin(url: string, method: string, path: string, body?: unknown, token = ADMIN_TOKEN) {
  const res = await fetch(`${url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { res, body: (await res.json()) as any };
}

/** Creates a team with a policy and issues one key for it; returns the secret. */
export async function teamWithKey(url: string, id: string, quota: Record<string, unknown> = {}, keyQuota: Record<string, unknown> = {}) {
  const team = await admin(url, 'POST', '/teams', { id, quota });
  if (team.res.status !== 201) throw new Error(`team ${id}: ${JSON.stringify(team.body)}`);
  const key = await admin(url, 'POST', `/teams/${id}/keys`, { name: `${id}-key`, quota: keyQuota });
  return key.body as { id: string; key: string; prefix: string };
}
