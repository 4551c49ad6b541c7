import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseComposeYaml } from '../support/compose-yaml.js';

/**
 * docker-compose.yml, checked without a container engine: two gateway replicas on one PostgreSQL (official
 * image, pg_isready healthcheck, a named volume) and the simulator, wired so that the gateways' environment is
 * one the gateway itself accepts.
 */
const FILE = 'docker-compose.yml';
const text = readFileSync(FILE, 'utf8');
const compose = parseComposeYaml(text) as any;
const services = compose.services as Record<string, any>;
const gateways = ['gateway-1', 'gateway-2'];

/** What compose substitutes for `${NAME:-default}` when NAME is unset: the local try-out's values. */
const withDefaults = (env: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1')]));

describe(FILE, () => {
  it('parses as PyYAML parses it (where PyYAML is installed)', (ctx) => {
    const py = spawnSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', FILE], { encoding: 'utf8' });
    // The parser refuses what it does not know; this cross-check is a bonus where PyYAML happens to be present.
    if (py.status !== 0) return ctx.skip();
    expect(compose).toEqual(JSON.parse(py.stdout));
  });

  it('runs two gateway replicas, PostgreSQL and the simulator; nothing of the old Redis plan', () => {
    expect(Object.keys(services).sort()).toEqual(['gateway-1', 'gateway-2', 'postgres', 'simulator']);
    expect(text).not.toMatch(/redis/i);
    const ports = gateways.map((g) => services[g].ports);
    expect(new Set(ports.flat()).size).toBe(2);
  });

  it('PostgreSQL: the official image, a pg_isready healthcheck, its data on a named volume', () => {
    const pg = services.postgres;
    expect(pg.image).toMatch(/^postgres:\d+/);
    expect(pg.healthcheck.test).toEqual(expect.arrayContaining(['pg_isready']));
    expect(pg.healthcheck).toMatchObject({ interval: expect.any(String), retries: expect.any(Number) });
    const [volume, mount] = String(pg.volumes[0]).split(':');
    expect(mount).toBe('/var/lib/postgresql/data');
    expect(Object.keys(compose.volumes)).toContain(volume);
  });

  it('both gateways share one DATABASE_URL pointing at that service, and start once it and the simulator are healthy', () => {
    const pg = withDefaults(services.postgres.environment);
    const envs = gateways.map((g) => services[g].environment as Record<string, unknown>);
    expect(envs[0]!.DATABASE_URL).toBe(envs[1]!.DATABASE_URL);
    const url = new URL(withDefaults(envs[0]!).DATABASE_URL!);
    expect({ host: url.hostname, user: url.username, password: url.password, db: url.pathname.slice(1) }).toEqual({
      host: 'postgres',
      user: pg.POSTGRES_USER,
      password: pg.POSTGRES_PASSWORD,
      db: pg.POSTGRES_DB,
    });
    // The same expression, so a POSTGRES_PASSWORD in .env reaches both sides.
    expect(String(envs[0]!.DATABASE_URL)).toContain(String(services.postgres.environment.POSTGRES_PASSWORD));
    for (const g of gateways) {
      expect(services[g].depends_on).toEqual({ postgres: { condition: 'service_healthy' }, simulator: { condition: 'service_healthy' } });
    }
    const sim = withDefaults(services.simulator.environment);
    expect(withDefaults(envs[0]!).UPSTREAM_BASE_URL).toBe(`http://simulator:${sim.SIM_PORT}`);
    expect(withDefaults(envs[0]!).UPSTREAM_API_KEY).toBe(sim.SIM_API_KEY);
  });

  it("sets only variables the gateway and the simulator read, with values the gateway's config accepts", () => {
    const config = readFileSync('src/config.ts', 'utf8');
    const simulator = readFileSync('src/simulator/main.ts', 'utf8');
    for (const g of gateways) {
      for (const name of Object.keys(services[g].environment)) expect({ name, known: new RegExp(`^  ${name}: `, 'm').test(config) }).toEqual({ name, known: true });
    }
    for (const name of Object.keys(services.simulator.environment)) expect({ name, read: simulator.includes(`process.env.${name}`) }).toEqual({ name, read: true });
    // As in the image (Dockerfile: NODE_ENV=production, DATA_DIR=/data).
    const loaded = loadConfig({ NODE_ENV: 'production', DATA_DIR: '/data', ...withDefaults(services['gateway-1'].environment) });
    expect(loaded.databaseUrl).toMatch(/^postgres:\/\/gateway:.+@postgres:5432\/gateway$/);
  });

  it("gives each gateway's drain (SHUTDOWN_TIMEOUT_MS, as the compose environment sets it) time to finish before SIGKILL", () => {
    const seconds = (v: unknown) => {
      const m = /^(\d+)s$/.exec(String(v));
      if (!m) throw new Error(`stop_grace_period ${String(v)}: expected whole seconds, e.g. 30s`);
      return Number(m[1]) * 1000;
    };
    for (const g of gateways) {
      const { shutdownTimeoutMs } = loadConfig({ NODE_ENV: 'production', DATA_DIR: '/data', ...withDefaults(services[g].environment) });
      // Compose's own default (10 s) is shorter than the drain's: the period must be set, and longer.
      expect(seconds(services[g].stop_grace_period)).toBeGreaterThan(shutdownTimeoutMs);
    }
  });

  it('every service has a healthcheck: its own, or the image HEALTHCHECK for the gateways', () => {
    expect(services.simulator.healthcheck.test.length).toBeGreaterThan(1);
    expect(readFileSync('Dockerfile', 'utf8')).toMatch(/^HEALTHCHECK .*\n\s+CMD \["node", "dist\/healthcheck.js"\]/m);
    for (const g of gateways) expect(services[g].healthcheck).toBeUndefined();
  });
});
