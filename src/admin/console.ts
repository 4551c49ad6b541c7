import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import { unknownRoute } from '../domain/errors.js';
import type { AppContext, AppEnv } from '../http/context.js';

/**
 * Only the page's own files may load and only this origin may be called; nothing inline runs, so a value
 * that slipped into the DOM as markup still could not execute. `form-action 'none'` keeps a form from ever
 * submitting the token in a URL, even if the script failed to load.
 */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const SECURITY_HEADERS = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  // Small files; revalidating each time means an upgraded gateway never serves a stale script.
  'cache-control': 'no-cache',
};

export const ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
} as const;
type AssetName = keyof typeof ASSETS;

/** Read once at start: `npm run build` copies src/admin/ui next to the compiled module (dist/admin/ui). */
function loadAssets(): Map<string, { body: string; type: string }> {
  const dir = new URL('./ui/', import.meta.url);
  const loaded = new Map<string, { body: string; type: string }>();
  for (const [name, type] of Object.entries(ASSETS)) {
    try {
      loaded.set(name, { body: readFileSync(new URL(name, dir), 'utf8'), type });
    } catch (err) {
      throw new Error(`operator console asset ${fileURLToPath(new URL(name, dir))} is missing (npm run build copies src/admin/ui): ${(err as Error).message}`);
    }
  }
  return loaded;
}

/**
 * The operator console at /admin/ui: a static page and its two files, served without the admin bearer
 * because a browser cannot send one when it navigates. They hold no data; every call the page makes goes to
 * the admin API with the token the operator signs in with, and is authorised there.
 */
export function consoleRoutes() {
  const assets = loadAssets();
  const app = new Hono<AppEnv>();
  const serve = (c: AppContext, name: AssetName) => {
    const asset = assets.get(name)!;
    return new Response(asset.body, { headers: { 'content-type': asset.type, ...SECURITY_HEADERS, ...c.get('responseHeaders') } });
  };
  app.get('/ui', (c) => serve(c, 'index.html'));
  // The page links its files relative to /admin/ui, so /admin/ui/ must become /admin/ui (relative: prefix-safe).
  app.get('/ui/', (c) => c.redirect('../ui', 301));
  app.get('/ui/:name{.+}', (c) => {
    const name = c.req.param('name');
    // Other paths under /admin/ui are unknown here rather than left to the admin API's bearer check.
    if (name === 'index.html' || !Object.hasOwn(ASSETS, name)) throw unknownRoute(c.req.method, c.req.path);
    return serve(c, name as AssetName);
  });
  return app;
}
