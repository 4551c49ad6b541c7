import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, EXIT, runCli } from '../../src/admin/cli.js';
import { spawnCli, type CliRun } from '../support/cli.js';
import { ADMIN_TOKEN, admin, auth, postJson, startHarness, teamWithKey, type Harness } from '../support/harness.js';
import { freshDatabase, postgresUrl } from '../support/postgres.js';

/** Every byte the CLI printed in this file, to check that no secret leaks into any of it. */
const printed: string[] = [];

async function cli(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  const run = await spawnCli(args, env);
  printed.push(run.stdout, run.stderr);
  return run;
}

const json = (r: CliRun) => {
  expect(r, r.stderr).toMatchObject({ code: 0 });
  return JSON.parse(r.stdout) as any;
};

/** A port nothing listens on: bound by us, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let h: Harness;
let storeDir: string;
// Long enough that a key used once stays cached for the whole file: only an explicit drop can refuse it.
beforeAll(async () => {
  h = await startHarness({ env: { KEY_CACHE_MS: '600000' } });
  storeDir = mkdtempSync(join(tmpdir(), 'gw-cli-'));
});
afterAll(async () => {
  await h.close();
  rmSync(storeDir, { recursive: true, force: true });
});

const viaApi = (...args: string[]) => cli(['--json', ...args], { GATEWAY_URL: h.url, ADMIN_TOKEN });
const onStore = (...args: string[]) => cli(['--json', ...args], { DATA_DIR: storeDir });

/** What differs between two stores by nature: generated ids, secrets and clock readings. */
function normalized(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalized);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => {
      if ((k === 'created_at' || k === 'revoked_at') && typeof v === 'number') return [k, 'unix-seconds'];
      if (k === 'key' && typeof v === 'string') return [k, v.replace(/^gvk_.+/, 'gvk_…')];
      if (k === 'prefix' && typeof v === 'string') return [k, v.replace(/^gvk_.+/, 'gvk_…')];
      if (k === 'id' && typeof v === 'string') return [k, v.replace(/^key_.+/, 'key_…')];
      return [k, normalized(v)];
    }),
  );
}

// Each CLI run is a fresh Node process (about half a second, more on a loaded machine).
describe('grok-gateway CLI', { timeout: 120_000 }, () => {
  it('prints the admin API JSON for every command, the same through --url and directly on a store', async () => {
    const script = (teamCmd: (...a: string[]) => Promise<CliRun>) => ({
      create: () => teamCmd('teams', 'create', 'cli-a', '--name', 'A', '--rpm', '5', '--models', 'grok-video-3', '--seconds-per-day', '600', '--usd-per-month', '12.5'),
      get: () => teamCmd('teams', 'get', 'cli-a'),
      update: () => teamCmd('teams', 'update', 'cli-a', '--name', 'A2', '--quota', '{"max_concurrent_jobs":2,"requests_per_minute":9}', '--rpm', '7'),
      list: () => teamCmd('teams', 'list'),
      issue: () => teamCmd('keys', 'issue', 'cli-a', '--name', 'ci', '--max-concurrent', '1', '--max-seconds-per-video', '8', '--expires-at', '2099-01-01T00:00:00Z'),
      keys: () => teamCmd('keys', 'list', 'cli-a'),
      usage: () => teamCmd('usage', 'cli-a', '--days', '2', '--by-model'),
      revoke: (id: string) => teamCmd('keys', 'revoke', id),
      delete: () => teamCmd('teams', 'delete', 'cli-a'),
    });
    const api = script(viaApi);
    const store = script(onStore);
    const both = async (step: (s: typeof api) => Promise<CliRun>) => {
      const [a, s] = [json(await step(api)), json(await step(store))];
      expect(normalized(a)).toEqual(normalized(s));
      return a;
    };

    expect(await both((s) => s.create())).toMatchObject({ id: 'cli-a', name: 'A', quota: { requests_per_minute: 5, models: ['grok-video-3'], video_seconds_per_day: 600, usd_per_month: 12.5 } });
    expect(await both((s) => s.get())).toEqual((await admin(h.url, 'GET', '/teams/cli-a')).body);
    // The flags override fields of --quota, and the whole policy is replaced.
    expect((await both((s) => s.update())).quota).toEqual({ max_concurrent_jobs: 2, requests_per_minute: 7 });
    expect(await both((s) => s.list())).toEqual((await admin(h.url, 'GET', '/teams')).body);

    const issuedApi = json(await api.issue());
    const issuedStore = json(await store.issue());
    expect(normalized(issuedApi)).toEqual(normalized(issuedStore));
    expect(issuedApi).toMatchObject({ object: 'api_key', team: 'cli-a', name: 'ci', quota: { max_concurrent_jobs: 1, max_seconds_per_video: 8 }, expires_at: 4070908800 });
    expect(issuedApi.key).toMatch(/^gvk_/);
    const listed = await both((s) => s.keys());
    expect(listed).toEqual((await admin(h.url, 'GET', '/teams/cli-a/keys')).body);
    const usage = await both((s) => s.usage());
    expect(usage).toEqual((await admin(h.url, 'GET', '/teams/cli-a/usage?days=2&by=model')).body);
    expect(usage).toMatchObject({ day: { usd: 0, usd_reserved: 0 }, by_model: [] });

    const revokedApi = json(await api.revoke(issuedApi.id));
    expect(normalized(revokedApi)).toEqual(normalized(json(await store.revoke(issuedStore.id))));
    expect(revokedApi).toMatchObject({ id: issuedApi.id, revoked: true });
    expect(await both((s) => s.delete())).toEqual({ id: 'cli-a', object: 'team.deleted', deleted: true });

    // The secret was printed once, by `keys issue`, and never again.
    for (const key of [issuedApi.key, issuedStore.key]) expect(printed.filter((p) => p.includes(key))).toHaveLength(1);
  });

  it('a key revoked through --url is refused by the running gateway on its very next request', async () => {
    const viaUrl = await teamWithKey(h.url, 'cli-rev');
    const onDisk = (await admin(h.url, 'POST', '/teams/cli-rev/keys', {})).body as { id: string; key: string };
    // Both keys are now in the gateway's key cache.
    for (const k of [viaUrl.key, onDisk.key]) expect((await fetch(`${h.url}/v1/models`, { headers: auth(k) })).status).toBe(200);

    expect(json(await cli(['keys', 'revoke', viaUrl.id, '--json', '--url', h.url, '--token', ADMIN_TOKEN], {}))).toMatchObject({ revoked: true });
    const refused = await fetch(`${h.url}/v1/models`, { headers: auth(viaUrl.key) });
    expect(refused.status).toBe(401);

    // Written straight into the store, the revocation is not seen until the gateway's cache entry expires:
    // why scripts that must cut access at once go through --url.
    expect((await cli(['keys', 'revoke', onDisk.id], { DATA_DIR: h.dataDir })).code).toBe(0);
    expect((await fetch(`${h.url}/v1/models`, { headers: auth(onDisk.key) })).status).toBe(200);
  });

  it('exits with a status that says what failed, and prints the error in the OpenAI shape on stderr', async () => {
    await admin(h.url, 'POST', '/teams', { id: 'cli-taken' });
    json(await onStore('teams', 'create', 'cli-taken'));
    const teamKey = await teamWithKey(h.url, 'cli-keyholder');
    const down = `http://127.0.0.1:${await closedPort()}`;
    // The store cannot be opened there: unavailable (6), not a configuration error (78).
    const notADir = join(storeDir, 'not-a-directory');
    writeFileSync(notADir, '');
    const cases: { name: string; run: () => Promise<CliRun>; exit: keyof typeof EXIT; code: string }[] = [
      { name: 'no such team (API)', run: () => viaApi('teams', 'get', 'nope'), exit: 'notFound', code: 'team_not_found' },
      { name: 'no such key (store)', run: () => onStore('keys', 'revoke', 'key_nope'), exit: 'notFound', code: 'key_not_found' },
      { name: 'team exists (API)', run: () => viaApi('teams', 'create', 'cli-taken'), exit: 'conflict', code: 'team_exists' },
      { name: 'team exists (store)', run: () => onStore('teams', 'create', 'cli-taken'), exit: 'conflict', code: 'team_exists' },
      { name: 'wrong admin token', run: () => cli(['--json', 'teams', 'list', '--url', h.url, '--token', 'wrong-token-0123456789'], {}), exit: 'denied', code: 'invalid_api_key' },
      { name: 'no admin token', run: () => cli(['--json', 'teams', 'list'], { GATEWAY_URL: h.url }), exit: 'denied', code: 'invalid_api_key' },
      { name: 'a team key as token', run: () => cli(['--json', 'teams', 'list'], { GATEWAY_URL: h.url, ADMIN_TOKEN: teamKey.key }), exit: 'denied', code: 'permission_denied' },
      { name: 'gateway unreachable', run: () => cli(['--json', 'teams', 'list', '--url', down], { ADMIN_TOKEN }), exit: 'unavailable', code: 'gateway_unreachable' },
      { name: 'unknown command', run: () => viaApi('teams', 'frobnicate'), exit: 'usage', code: 'usage_error' },
      { name: 'missing argument', run: () => onStore('keys', 'issue'), exit: 'usage', code: 'usage_error' },
      { name: 'flag of another command', run: () => onStore('teams', 'list', '--rpm', '5'), exit: 'usage', code: 'usage_error' },
      { name: 'not a number', run: () => viaApi('teams', 'create', 'x', '--rpm', 'lots'), exit: 'usage', code: 'usage_error' },
      { name: 'not an amount', run: () => viaApi('teams', 'create', 'x', '--usd-per-day', '$5'), exit: 'usage', code: 'usage_error' },
      { name: 'value refused (API)', run: () => viaApi('teams', 'create', 'no spaces'), exit: 'usage', code: 'invalid_value' },
      { name: 'value refused (store)', run: () => onStore('teams', 'create', 'no spaces'), exit: 'usage', code: 'invalid_value' },
      { name: 'unknown model (API)', run: () => viaApi('teams', 'update', 'cli-taken', '--models', 'nope'), exit: 'usage', code: 'model_not_found' },
      { name: 'invalid environment', run: () => cli(['--json', 'teams', 'list'], { DATA_DIR: storeDir, CONFIG_FILE: join(storeDir, 'missing.json') }), exit: 'config', code: 'invalid_configuration' },
      { name: 'DATA_DIR unusable (a file)', run: () => cli(['--json', 'teams', 'list'], { DATA_DIR: notADir }), exit: 'unavailable', code: 'store_unavailable' },
    ];
    // A few at a time: each is a Node process, and the machine is small.
    const results: CliRun[] = [];
    for (let i = 0; i < cases.length; i += 4) results.push(...(await Promise.all(cases.slice(i, i + 4).map((c) => c.run()))));
    cases.forEach((c, i) => {
      const r = results[i]!;
      expect({ case: c.name, code: r.code, stdout: r.stdout }).toEqual({ case: c.name, code: EXIT[c.exit].code, stdout: '' });
      const body = JSON.parse(r.stderr) as { error: Record<string, unknown> };
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect({ case: c.name, code: body.error.code }).toEqual({ case: c.name, code: c.code });
    });
    // Exit statuses are distinct, or a script could not tell the failures apart.
    expect(new Set(Object.values(EXIT).map((e) => e.code)).size).toBe(Object.keys(EXIT).length);
  });

  it('without --json prints for people: fields, tables, and the once-only notice beside a new key', async () => {
    const team = await cli(['teams', 'create', 'cli-human', '--name', 'Humans', '--rpm', '3'], { DATA_DIR: storeDir });
    expect(team.code).toBe(0);
    expect(team.stdout).toMatch(/^id: +cli-human$/m);
    expect(team.stdout).toMatch(/^quota: +\{"requests_per_minute":3\}$/m);
    const issued = await cli(['keys', 'issue', 'cli-human'], { DATA_DIR: storeDir });
    expect(issued.stdout).toMatch(/^key: +gvk_/m);
    expect(issued.stderr).toContain('only this once');
    const keys = await cli(['keys', 'list', 'cli-human'], { DATA_DIR: storeDir });
    expect(keys.stdout.split('\n')[0]).toMatch(/^id +team +name +prefix/);
    const missing = await cli(['teams', 'get', 'nope'], { DATA_DIR: storeDir });
    expect({ code: missing.code, stderr: missing.stderr }).toEqual({ code: EXIT.notFound.code, stderr: "error: No team 'nope'. (team)\n" });
    const misconfigured = await cli(['teams', 'list'], { DATA_DIR: storeDir, CONFIG_FILE: join(storeDir, 'missing.json') });
    expect(misconfigured.code).toBe(EXIT.config.code);
    expect(misconfigured.stderr).toMatch(/^grok-gateway: CONFIG_FILE /);
  });

  it('answers --help and `help <command>` for every command, without touching a store or a gateway', async () => {
    const run = async (args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(args, { env: { GATEWAY_URL: 'http://127.0.0.1:1' }, stdout: (s) => out.push(s), stderr: (s) => err.push(s) });
      return { code, stdout: out.join(''), stderr: err.join('') };
    };
    for (const command of COMMANDS) {
      const words = command.name.split(' ');
      for (const args of [[...words, '--help'], ['help', ...words], [...words, '-h', '--json']]) {
        const r = await run(args);
        expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
        expect(r.stdout).toMatch(new RegExp(`^usage: grok-gateway ${command.name}\\b`));
        for (const flag of [...command.flags, 'json', 'url', 'token']) expect(r.stdout).toContain(`--${flag}`);
      }
    }
    for (const args of [['help'], ['--help'], ['teams', '--help'], ['help', 'keys']]) expect((await run(args)).code).toBe(0);
    expect((await run(['help'])).stdout).toContain(`${EXIT.unavailable.code}   ${EXIT.unavailable.meaning}`);
    // And as a process, through the bin's entry point.
    const r = await cli(['help', 'usage'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--days N');
  });

  it('upstreams: the running gateway\'s view through --url; directly on the store a usage error', async () => {
    const list = json(await cli(['upstreams', '--json', '--url', h.url, '--token', ADMIN_TOKEN], {}));
    expect(list.data).toEqual([expect.objectContaining({ id: 'default', kind: 'newapi', state: 'closed', keys: [expect.objectContaining({ state: 'ready' })] })]);
    const human = await cli(['upstreams', '--url', h.url, '--token', ADMIN_TOKEN], {});
    expect(human.stdout).toMatch(/^id\s+kind\s+models\s+state\s+keys/);
    const direct = await onStore('upstreams');
    expect(direct.code).toBe(EXIT.usage.code);
    expect(direct.stdout + direct.stderr).toMatch(/--url/);
  });

  it("videos and storage: a team's videos with their stored copies, and the stored results, through --url and directly on a store", async () => {
    const key = await teamWithKey(h.url, 'cli-v');
    const created = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'a cli test', seconds: 6 }, key.key);
    expect(created.res.status).toBe(200);
    const videos = json(await viaApi('videos', 'cli-v', '--limit', '5'));
    expect(videos).toEqual((await admin(h.url, 'GET', '/teams/cli-v/videos?limit=5')).body);
    // This gateway runs with STORAGE_URL=none: no copy is ever scheduled, so none expires.
    expect(videos.data).toEqual([expect.objectContaining({ id: created.body.id, object: 'video', model: 'grok-video-3', storage: null, expires_at: null })]);
    expect(json(await viaApi('storage'))).toEqual({ object: 'storage', backend: null, stored_videos: 0, stored_bytes: 0, pending_copies: 0, failed_copies: 0 });
    const table = await cli(['videos', 'cli-v', '--url', h.url, '--token', ADMIN_TOKEN], {});
    expect(table.stdout).toMatch(/^id\s+model\s+status\s+created_at\s+completed_at\s+expires_at\s+storage/);

    // Directly on a store: the backend STORAGE_URL names there (unset: DATA_DIR/videos, a directory).
    json(await onStore('teams', 'create', 'cli-v'));
    expect(json(await onStore('videos', 'cli-v'))).toEqual({ object: 'list', data: [] });
    expect(json(await onStore('storage'))).toEqual({ object: 'storage', backend: 'file', stored_videos: 0, stored_bytes: 0, pending_copies: 0, failed_copies: 0 });
    expect((await onStore('videos', 'no-such-team')).code).toBe(EXIT.notFound.code);
  });

  it('documents in docs/admin.md exactly the exit statuses it uses', () => {
    const page = readFileSync('docs/admin.md', 'utf8');
    const section = page.slice(page.indexOf('## CLI'), page.indexOf('## Webhooks'));
    const documented = [...section.matchAll(/^\| (\d+) \| /gm)].map((m) => Number(m[1]));
    expect(documented).toEqual(Object.values(EXIT).map((e) => e.code));
  });

  it('never printed the admin token', () => {
    expect(printed.length).toBeGreaterThan(0);
    expect(printed.filter((p) => p.includes(ADMIN_TOKEN))).toEqual([]);
  });
});

describe.skipIf(postgresUrl === null)('grok-gateway on the store named by DATABASE_URL', () => {
  let db: Awaited<ReturnType<typeof freshDatabase>>;
  let g: Harness;
  beforeAll(async () => {
    db = await freshDatabase();
    g = await startHarness({ env: { DATABASE_URL: db.url } });
  });
  afterAll(async () => {
    await g.close();
    await db.drop();
  });

  it('works on PostgreSQL, not on a stray SQLite file in DATA_DIR, when DATABASE_URL is set', async () => {
    const emptyDir = mkdtempSync(join(tmpdir(), 'gw-cli-pg-'));
    try {
      const created = await cli(['--json', 'teams', 'create', 'pg-cli-team'], { DATABASE_URL: db.url, DATA_DIR: emptyDir });
      expect(created.code).toBe(EXIT.ok.code);
      const seen = await admin(g.url, 'GET', '/teams/pg-cli-team');
      expect(seen.res.status).toBe(200);
      expect(readdirSync(emptyDir)).toEqual([]);
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });
});
