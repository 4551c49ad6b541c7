import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-upcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (upstreams: unknown[]) => {
  const path = join(dir, `c${++n}.json`);
  writeFileSync(path, JSON.stringify({ upstreams }));
  return path;
};
const xai = { id: 'x', kind: 'xai', base_url: 'https://api.x.ai', keys: { env: 'XAI_KEYS' }, models: ['grok-imagine-video'] };

describe('CONFIG_FILE upstreams', () => {
  it('reads keys from the variable the file names, comma-separated, with defaults filled in', () => {
    const c = loadConfig({ CONFIG_FILE: file([xai, { id: 'r', base_url: 'https://reseller.example/v1', keys: { env: 'R' }, models: [{ name: 'sora-2', upstream_name: 'grok-video-3-hd' }], priority: 2, weight: 5, prices: { 'sora-2': { perSecond: { 720: 0.1, 1080: 0.2 } } } }]), XAI_KEYS: 'xai-a, xai-b', R: 'sk-r' });
    expect(c.upstreams).toEqual([
      { id: 'x', kind: 'xai', baseUrl: 'https://api.x.ai', keys: ['xai-a', 'xai-b'], models: [{ name: 'grok-imagine-video', upstreamName: 'grok-imagine-video' }], priority: 0, weight: 1, mediaHosts: ['vidgen.x.ai'], prices: {} },
      { id: 'r', kind: 'newapi', baseUrl: 'https://reseller.example/v1', keys: ['sk-r'], models: [{ name: 'sora-2', upstreamName: 'grok-video-3-hd' }], priority: 2, weight: 5, mediaHosts: ['vidgen.x.ai'], prices: { 'sora-2': { perSecond: { 720: 0.1, 1080: 0.2 } } } },
    ]);
  });

  it.each<[string, () => Record<string, string>, RegExp]>([
    ['an unset key variable (named, never a value)', () => ({ CONFIG_FILE: file([xai]) }), /upstream x names XAI_KEYS .* unset or empty/],
    ['a duplicate id', () => ({ CONFIG_FILE: file([xai, xai]), XAI_KEYS: 'k' }), /upstream id x is given twice/],
    ['upstreams and UPSTREAM_BASE_URL both', () => ({ CONFIG_FILE: file([xai]), XAI_KEYS: 'k', UPSTREAM_BASE_URL: 'https://a.example', UPSTREAM_API_KEY: 'k' }), /not both/],
    ['a key written into the file', () => ({ CONFIG_FILE: file([{ ...xai, keys: ['xai-secret'] }]) }), /keys/],
    ['an unknown kind', () => ({ CONFIG_FILE: file([{ ...xai, kind: 'sora' }]), XAI_KEYS: 'k' }), /kind/],
    ['a zero weight', () => ({ CONFIG_FILE: file([{ ...xai, weight: 0 }]), XAI_KEYS: 'k' }), /weight/],
    ['a negative price', () => ({ CONFIG_FILE: file([{ ...xai, prices: { 'grok-imagine-video': { perSecond: -0.05 } } }]), XAI_KEYS: 'k' }), /prices/],
    ['a price for an unknown tier', () => ({ CONFIG_FILE: file([{ ...xai, prices: { 'grok-imagine-video': { perSecond: { '4k': 1 } } } }]), XAI_KEYS: 'k' }), /prices/],
  ])('refuses %s', (_n, env, message) => {
    expect(() => loadConfig(env())).toThrow(ConfigError);
    expect(() => loadConfig(env())).toThrow(message);
  });

  it('is enough in production without UPSTREAM_BASE_URL', () => {
    expect(loadConfig({ NODE_ENV: 'production', CONFIG_FILE: file([xai]), XAI_KEYS: 'k' }).upstreams).toHaveLength(1);
  });
});
