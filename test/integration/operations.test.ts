import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { UpstreamSimulator } from '../../src/simulator/server.js';
import { spawnGateway } from '../support/child-gateway.js';
import { ADMIN_TOKEN, CLIENT_KEY, UPSTREAM_KEY, auth, postJson, startHarness } from '../support/harness.js';
import { PNG_1x1, dataUri } from '../support/images.js';

describe('request logs (contract §5)', () => {
  it('write one line per request with ids, route, status, timings, and never a secret, body or data URI', async () => {
    const h = await startHarness();
    try {
      const image = dataUri(PNG_1x1);
      const { body } = await postJson(`${h.url}/v1/videos`, { model: 'grok-video-3', prompt: 'secret prompt text', image });
      await fetch(`${h.url}/v1/videos/${body.id}`, { headers: auth() });
      await fetch(`${h.url}/v1/videos`, { headers: auth('wrong-key-987654321') });
      await fetch(`${h.url}/admin/teams`, { headers: auth(ADMIN_TOKEN) });
      h.sim.failNextCreate({ status: 500, body: JSON.stringify({ error: { message: `key ${UPSTREAM_KEY}` } }) });
      await postJson(`${h.url}/v1/videos`, { prompt: 'x' });

      const lines = h.logs.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const requests = lines.filter((l) => l.msg === 'request');
      expect(requests.length).toBeGreaterThanOrEqual(5);
      const create = requests.find((l) => l.route === '/v1/videos' && l.method === 'POST')!;
      expect(create).toMatchObject({ status: 200, teamId: 'default', keyId: 'static-1', upstreamStatus: 200 });
      expect(typeof create.requestId).toBe('string');
      expect(typeof create.durationMs).toBe('number');
      expect(typeof create.upstreamMs).toBe('number');
      expect(requests.find((l) => l.status === 401)).toBeDefined();

      const all = h.logs.join('');
      for (const secret of [CLIENT_KEY, UPSTREAM_KEY, ADMIN_TOKEN, 'wrong-key-987654321', PNG_1x1.toString('base64'), 'secret prompt text']) {
        expect(all).not.toContain(secret);
      }
    } finally {
      await h.close();
    }
  });
});

describe('persistence (contract §5)', () => {
  it('remembers jobs, owners and statuses across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-persist-'));
    const first = await startHarness({ dataDir, sim: { completeAfterMs: 0 } });
    const { body } = await postJson(`${first.url}/v1/videos`, { model: 'grok-video-1.5', prompt: 'kept', seconds: 9 });
    await fetch(`${first.url}/v1/videos/${body.id}`, { headers: auth() });
    const tasks = first.sim.tasks;
    await first.close();

    const second = await startHarness({ dataDir });
    try {
      for (const [id, t] of tasks) second.sim.tasks.set(id, t);
      const res = await fetch(`${second.url}/v1/videos/${body.id}`, { headers: auth() });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: body.id, status: 'completed', model: 'grok-video-1.5', seconds: '9', prompt: 'kept' });
      // Terminal: answered from the record, the (new) upstream was not asked.
      expect(second.sim.requests.filter((r) => r.method === 'GET')).toHaveLength(0);
    } finally {
      await second.close();
    }
  });
});

describe('configuration (contract §5, §7)', () => {
  it('refuses to start in production without an upstream', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/UPSTREAM_BASE_URL/);
  });

  it('treats blank variables as unset and applies the documented defaults', () => {
    const c = loadConfig({ PORT: '', UPSTREAM_BASE_URL: ' ', MAX_BODY_BYTES: '' });
    expect(c.port).toBe(8080);
    expect(c.upstreamBaseUrl).toBeUndefined();
    expect(c.limits).toEqual({ maxBodyBytes: 64 * 1024 * 1024, maxReferenceImages: 8, maxImageBytes: 20 * 1024 * 1024, createBuffer: { bytes: 256 * 1024 * 1024, teamShare: 0.25, waitMs: 2000 } });
    expect(c.upstream).toEqual({ connectTimeoutMs: 5000, timeoutMs: 60000, idleTimeoutMs: 30000 });
    expect(c.shutdownTimeoutMs).toBe(25000);
  });

  it('names the variable that is wrong, without echoing secrets', () => {
    let message = '';
    try {
      loadConfig({ PORT: 'eighty', UPSTREAM_BASE_URL: 'http://x', UPSTREAM_API_KEY: 'sk-should-not-appear' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/PORT/);
    expect(message).not.toContain('sk-should-not-appear');
  });

  it.each([
    ['the server', 'src/main.ts', [], 'grok-video-gateway'],
    ['the CLI', 'src/cli.ts', ['teams', 'list'], 'grok-gateway'],
  ])('%s refuses a wrong configuration the same way: each issue on its own line, exit 78', (_n, entry, args, program) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], {
      env: { PATH: process.env.PATH ?? '', PORT: 'eighty', MAX_BODY_BYTES: '1', DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-conf-')) },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(new RegExp(`^${program}: invalid configuration:\n  PORT: .+\n  MAX_BODY_BYTES: .+\n$`));
  });

  it('refuses a create buffer that could never hold a body within MAX_BODY_BYTES', () => {
    expect(() => loadConfig({ CREATE_BUFFER_BYTES: String(128 * 1024 * 1024) })).toThrow(/CREATE_BUFFER_TEAM_SHARE.*MAX_BODY_BYTES/);
    expect(() => loadConfig({ MAX_BODY_BYTES: '4096', CREATE_BUFFER_BYTES: '4096', CREATE_BUFFER_TEAM_SHARE: '1' })).toThrow(/MAX_BODY_BYTES \(4096\)/);
    expect(loadConfig({ MAX_BODY_BYTES: '4096', CREATE_BUFFER_BYTES: '16384', CREATE_BUFFER_TEAM_SHARE: '0.25' }).limits.createBuffer).toEqual({ bytes: 16384, teamShare: 0.25, waitMs: 2000 });
    expect(() => loadConfig({ CREATE_BUFFER_TEAM_SHARE: '0' })).toThrow(/CREATE_BUFFER_TEAM_SHARE/);
  });

  it('splits comma-separated upstream keys', () => {
    expect(loadConfig({ UPSTREAM_BASE_URL: 'http://x', UPSTREAM_API_KEY: 'a, b ,c' }).upstreamApiKeys).toEqual(['a', 'b', 'c']);
  });
});

describe('process lifecycle', () => {
  it('npm start without an upstream routes to a labelled simulator of each kind and accepts the demo key', async () => {
    const child = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-demo-')), ADMIN_TOKEN });
    try {
      const out = child.output();
      expect(out).toMatch(/SIMULATED UPSTREAMS/);
      expect(out).toMatch(/simulator-newapi \(simulated, a new-api style reseller\): .*grok-video-3/);
      expect(out).toMatch(/simulator-xai \(simulated, xAI's own API\): grok-imagine-video\b/);
      const key = /Demo API key \(simulator only\): (\S+)/.exec(out)![1]!;

      const upstreams = async () => {
        const res = await fetch(`${child.url}/admin/upstreams`, { headers: auth(ADMIN_TOKEN) });
        expect(res.status).toBe(200);
        return (await res.json()) as Array<{ id: string; kind: string; models: string[]; active_jobs: number }>;
      };
      const before = await upstreams();
      expect(before.map((u) => [u.id, u.kind])).toEqual([
        ['simulator-newapi', 'newapi'],
        ['simulator-xai', 'xai'],
      ]);
      expect(before[0]!.models).toEqual(expect.arrayContaining(['grok-imagine-video', 'grok-video-3']));
      expect(before[1]!.models).toContain('grok-imagine-video');
      expect(before[1]!.models).not.toContain('grok-video-3');

      const ids: string[] = [];
      for (const model of ['grok-video-3', 'grok-imagine-video', 'grok-imagine-video', 'grok-imagine-video', 'grok-imagine-video']) {
        const { res, body } = await postJson(`${child.url}/v1/videos`, { model, prompt: 'a red fox in snow' }, key);
        expect(res.status, JSON.stringify(body)).toBe(200);
        expect(body.status).toBe('queued');
        ids.push(body.id);
      }
      // Equal weights: the imagine creates are spread over both kinds; grok-video-3 only the reseller knows.
      const active = Object.fromEntries((await upstreams()).map((u) => [u.id, u.active_jobs]));
      expect(active['simulator-xai']).toBeGreaterThanOrEqual(1);
      expect(active['simulator-newapi']).toBeGreaterThanOrEqual(2);
      expect(active['simulator-xai']! + active['simulator-newapi']!).toBe(5);

      // Every video finishes and downloads, the xAI ones from the simulator's own media route.
      for (const id of ids) {
        const status = async () => ((await (await fetch(`${child.url}/v1/videos/${id}`, { headers: auth(key) })).json()) as { status: string }).status;
        await expect.poll(status, { timeout: 20_000, interval: 250 }).toBe('completed');
        const res = await fetch(`${child.url}/v1/videos/${id}/content`, { headers: auth(key) });
        expect(res.status).toBe(200);
        expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
      }
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 60_000);

  it("npm start without an upstream: a model added by CONFIG_FILE (as in docs/configuration.md) is accepted by the simulators, within its own limits", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-demo-models-'));
    const configFile = join(dir, 'models.json');
    const grokVideo4 = { id: 'grok-video-4', family: 'grok-video', resolutions: [720, 1080], aspectRatios: ['16:9', '9:16'], seconds: { min: 1, max: 20 }, defaultSeconds: 8, defaultResolution: 720, defaultAspectRatio: '16:9' };
    writeFileSync(configFile, JSON.stringify({ models: [grokVideo4], aliases: { 'sora-2': 'grok-video-4' }, defaultModel: 'grok-video-4' }));
    const child = await spawnGateway({ DATA_DIR: dir, CONFIG_FILE: configFile });
    try {
      const out = child.output();
      expect(out).toMatch(/simulator-newapi \(simulated, a new-api style reseller\): .*grok-video-4/);
      const key = /Demo API key \(simulator only\): (\S+)/.exec(out)![1]!;
      // 20 s is past every built-in model's limit: the simulator holds the table's limits for grok-video-4.
      for (const body of [{ model: 'grok-video-4', prompt: 'a red fox', seconds: '20', size: '1920x1080' }, { model: 'sora-2', prompt: 'a red fox' }, { prompt: 'a red fox' }]) {
        const { res, body: video } = await postJson(`${child.url}/v1/videos`, body, key);
        expect(res.status, JSON.stringify(video)).toBe(200);
        expect(video.model).toBe('grok-video-4');
      }
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 60_000);

  it('a port already in use is a one-line start-up error', async () => {
    const first = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-port-a-')) });
    try {
      const port = new URL(first.url).port;
      const second = await spawnGateway({ PORT: port, DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-port-b-')) }).then(
        () => 'started',
        (err: Error) => err.message,
      );
      expect(second).toMatch(/exited with 1/);
      expect(second).toMatch(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      expect(second).not.toMatch(/node:events|at Server/);
    } finally {
      await first.stop();
    }
  });

  it('SIGTERM: /readyz turns 503, an in-flight download finishes, the process exits 0', async () => {
    const sim = new UpstreamSimulator({ apiKeys: [UPSTREAM_KEY], completeAfterMs: 0, videoBytes: 64 * 1024 * 1024 });
    const upstreamUrl = await sim.listen();
    const child = await spawnGateway({ UPSTREAM_BASE_URL: upstreamUrl, UPSTREAM_API_KEY: UPSTREAM_KEY, GATEWAY_API_KEYS: CLIENT_KEY, DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-term-')) });
    try {
      const { body } = await postJson(`${child.url}/v1/videos`, { prompt: 'x' });
      const res = await fetch(`${child.url}/v1/videos/${body.id}/content`, { headers: auth() });
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let received = (await reader.read()).value!.length;
      const exit = child.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      // A new connection is refused or told the gateway is going away.
      const ready = await fetch(`${child.url}/readyz`).then((r) => r.status).catch(() => 'refused');
      expect([503, 'refused']).toContain(ready);
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
      }
      expect(received).toBe(64 * 1024 * 1024);
      expect(await exit).toBe(0);
      expect(child.output()).toMatch(/"msg":"draining"/);
    } finally {
      await sim.close();
    }
  });
});
