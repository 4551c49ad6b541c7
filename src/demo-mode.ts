import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Config } from './config.js';

/**
 * Demo mode: no upstream configured, so main.ts routes to built-in simulators that live in its own process.
 * What that mode refuses, and the admin token it hands out so that the admin examples work at once.
 */

export const hasConfiguredUpstream = (config: Config) => config.upstreamBaseUrl !== undefined || config.upstreams !== undefined;

/**
 * Each replica would run simulators of its own, in memory: a job created on one is unknown to the other's,
 * whose tracker claims it from the shared store and fails it `upstream_lost`. One upstream for all is the fix.
 */
export function refuseSharedStoreWithoutUpstream(config: Config): void {
  if (config.databaseUrl === undefined || hasConfiguredUpstream(config)) return;
  throw new ConfigError(
    [
      'DATABASE_URL is set but no upstream is configured: every replica would run its own in-memory simulator,',
      "and each replica would fail the other's videos. Give all replicas one upstream: the standalone simulator",
      '(npm run build && SIM_API_KEY=sim-key npm run simulator, then UPSTREAM_BASE_URL=http://127.0.0.1:9090',
      'UPSTREAM_API_KEY=sim-key, as docker-compose.yml does), or a real one (UPSTREAM_BASE_URL and UPSTREAM_API_KEY,',
      'or upstreams in CONFIG_FILE). Or leave DATABASE_URL unset for a one-process demo on SQLite.',
    ].join('\n  '),
  );
}

export const DEMO_ADMIN_TOKEN_FILE = 'demo-admin-token';

/**
 * The admin token of demo mode when ADMIN_TOKEN is unset: generated once and kept in DATA_DIR (readable by its
 * owner only), so that it survives restarts and a second shell can read it instead of restarting the gateway.
 */
export function demoAdminToken(dataDir: string): string {
  const path = join(dataDir, DEMO_ADMIN_TOKEN_FILE);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, `demo-admin-${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const token = readFileSync(path, 'utf8').trim();
  // The same rule as ADMIN_TOKEN's: a file edited down to a guessable token is refused, not used.
  if (token.length < 16) throw new ConfigError(`${path} holds no admin token of at least 16 characters: delete it and start again`);
  return token;
}
