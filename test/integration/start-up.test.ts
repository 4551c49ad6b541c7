import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnGateway } from '../support/child-gateway.js';
import { postJson } from '../support/harness.js';
import { DEMO_API_KEY } from '../../src/config.js';

/** What the process says when it starts, where a setting would otherwise act unseen. */

const listening = (out: string) => JSON.parse(out.split('\n').find((l) => l.includes('"msg":"gateway listening"'))!) as Record<string, unknown>;

describe('start-up log', () => {
  it('METRICS_PORT=0: the "gateway listening" line names the port it picked, and /metrics answers there', async () => {
    const child = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-metrics0-')), METRICS_PORT: '0' });
    try {
      const { url, metricsUrl } = listening(child.output());
      expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(metricsUrl).not.toBe(url);
      const res = await fetch(`${metricsUrl as string}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toMatch(/gateway_http_requests_total/);
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);

  it('an upstream and no ADMIN_TOKEN: a warning says the admin API is disabled; with one, no warning', async () => {
    const upstream = { UPSTREAM_BASE_URL: 'http://127.0.0.1:9', UPSTREAM_API_KEY: 'sk-unused' };
    const without = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-no-admin-')), ...upstream });
    const withToken = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-admin-')), ...upstream, ADMIN_TOKEN: 'admin-token-0123456789abcdef' });
    try {
      expect(without.output()).toMatch(/"level":40.*ADMIN_TOKEN is unset: the admin API and console are disabled/);
      expect(withToken.output()).not.toMatch(/ADMIN_TOKEN is unset/);
    } finally {
      expect(await without.stop()).toBe(0);
      expect(await withToken.stop()).toBe(0);
    }
  }, 30_000);

  it('without METRICS_PORT the line has no metricsUrl (/metrics is on the main listener)', async () => {
    const child = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-metrics-main-')) });
    try {
      expect(listening(child.output())).not.toHaveProperty('metricsUrl');
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);
});

describe("DEFAULT_MODEL beside CONFIG_FILE's defaultModel", () => {
  const grokVideo4 = { id: 'grok-video-4', family: 'grok-video', resolutions: [720, 1080], aspectRatios: ['16:9', '9:16'], seconds: { min: 1, max: 20 }, defaultSeconds: 8, defaultResolution: 720, defaultAspectRatio: '16:9' };
  const configFile = (dir: string) => {
    const path = join(dir, 'models.json');
    writeFileSync(path, JSON.stringify({ models: [grokVideo4], aliases: { 'sora-2': 'grok-video-4' }, defaultModel: 'grok-video-4' }));
    return path;
  };
  const WARNING = "DEFAULT_MODEL overrides CONFIG_FILE's defaultModel";

  it('different models: DEFAULT_MODEL wins, and a warning says so at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-default-model-'));
    const child = await spawnGateway({ DATA_DIR: dir, CONFIG_FILE: configFile(dir), DEFAULT_MODEL: 'grok-video-3' });
    try {
      const warning = child.output().split('\n').find((l) => l.includes(WARNING));
      expect(JSON.parse(warning!)).toMatchObject({ level: 40, defaultModel: 'grok-video-3', configFileDefaultModel: 'grok-video-4' });
      const { res, body } = await postJson(`${child.url}/v1/videos`, { prompt: 'a red fox' }, DEMO_API_KEY);
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body.model).toBe('grok-video-3');
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);

  it('the same model (here through an alias): no warning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gw-default-model-same-'));
    const child = await spawnGateway({ DATA_DIR: dir, CONFIG_FILE: configFile(dir), DEFAULT_MODEL: 'sora-2' });
    try {
      expect(child.output()).not.toContain(WARNING);
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);
});

describe('variables earlier versions read', () => {
  it('each one set is named in a warning with what replaced it; a blank one is not', async () => {
    const child = await spawnGateway({ DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-retired-')), MAX_CONCURRENT_CREATES_PER_KEY: '4', MAX_CONCURRENT_CREATES_PER_TEAM: ' ' });
    try {
      const warnings = child
        .output()
        .split('\n')
        .filter((l) => l.includes('is no longer read'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(warnings).toEqual([expect.objectContaining({ level: 40, variable: 'MAX_CONCURRENT_CREATES_PER_KEY', instead: expect.stringContaining('CREATE_BUFFER_BYTES') })]);
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);
});
