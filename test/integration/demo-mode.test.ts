import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spawnGateway } from '../support/child-gateway.js';
import { ADMIN_TOKEN, auth } from '../support/harness.js';

/** `npm start` with no upstream configured: the built-in simulators, and what that mode refuses and hands out. */

const runMain = (env: Record<string, string>) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', PORT: '0', HOST: '127.0.0.1', DATA_DIR: mkdtempSync(join(tmpdir(), 'gw-demo-db-')), ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });

describe('demo mode on a shared store', () => {
  // Nothing listens on port 1: a gateway that got past the refusal would fail to open the store instead.
  const DATABASE_URL = 'postgres://gateway:pw@127.0.0.1:1/gateway';

  it('DATABASE_URL without an upstream: exit 78 naming the standalone simulator and a real upstream, before touching the database', () => {
    const r = runMain({ DATABASE_URL, DATABASE_CONNECT_TIMEOUT_MS: '500' });
    expect(r.status).toBe(78);
    expect(r.stderr).toMatch(/^grok-video-gateway: DATABASE_URL is set but no upstream is configured/);
    expect(r.stderr).toMatch(/npm run simulator/);
    expect(r.stderr).toMatch(/UPSTREAM_BASE_URL/);
    expect(r.stderr).not.toMatch(/cannot open the PostgreSQL store/);
    expect(r.stderr).not.toContain('pw@');
  });

  it('DATABASE_URL with an upstream is not refused by that rule (it goes on to open the store)', () => {
    const r = runMain({ DATABASE_URL, DATABASE_CONNECT_TIMEOUT_MS: '500', UPSTREAM_BASE_URL: 'http://127.0.0.1:9', UPSTREAM_API_KEY: 'k' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot open the PostgreSQL store/);
  });
});

describe('demo mode admin token', () => {
  const bannerToken = (out: string) => /Admin token \(demo, kept in DATA_DIR\/demo-admin-token\): (\S+)/.exec(out)?.[1];
  const teams = (url: string, token: string) => fetch(`${url}/admin/teams`, { headers: auth(token) }).then((r) => r.status);

  it('without ADMIN_TOKEN: one is generated into DATA_DIR (owner-only), printed in the banner, works on /admin, and survives a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-demo-admin-'));
    const first = await spawnGateway({ DATA_DIR: dataDir });
    let token: string;
    try {
      const out = first.output();
      token = bannerToken(out)!;
      expect(token).toMatch(/^demo-admin-[\w-]{32}$/);
      expect(readFileSync(join(dataDir, 'demo-admin-token'), 'utf8').trim()).toBe(token);
      expect(statSync(join(dataDir, 'demo-admin-token')).mode & 0o777).toBe(0o600);
      expect(out).toMatch(/The simulators keep their jobs in memory: a restart forgets them/);
      expect(await teams(first.url, token)).toBe(200);
      expect(await teams(first.url, 'not-the-demo-admin-token')).toBe(401);
    } finally {
      expect(await first.stop()).toBe(0);
    }
    const second = await spawnGateway({ DATA_DIR: dataDir });
    try {
      expect(bannerToken(second.output())).toBe(token);
      expect(await teams(second.url, token)).toBe(200);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  }, 60_000);

  it('with ADMIN_TOKEN set: that token, and none generated', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-demo-admin-set-'));
    const child = await spawnGateway({ DATA_DIR: dataDir, ADMIN_TOKEN });
    try {
      expect(child.output()).toMatch(/Admin token: the ADMIN_TOKEN you set/);
      expect(bannerToken(child.output())).toBeUndefined();
      expect(() => statSync(join(dataDir, 'demo-admin-token'))).toThrow(/ENOENT/);
      expect(await teams(child.url, ADMIN_TOKEN)).toBe(200);
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);

  it('with an upstream configured: none generated, the admin API stays off', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'gw-demo-admin-real-'));
    const child = await spawnGateway({ DATA_DIR: dataDir, UPSTREAM_BASE_URL: 'http://127.0.0.1:9', UPSTREAM_API_KEY: 'k' });
    try {
      expect(child.output()).not.toMatch(/Admin token/);
      expect(() => statSync(join(dataDir, 'demo-admin-token'))).toThrow(/ENOENT/);
      expect(await teams(child.url, 'any-token-0123456789')).toBe(503);
    } finally {
      expect(await child.stop()).toBe(0);
    }
  }, 30_000);
});
