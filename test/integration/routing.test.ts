import type { Result } from 'hono/router';
import { TrieRouter } from 'hono/router/trie-router';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PerMethodRouter } from '../../src/http/router.js';
import { auth, postJson, startHarness, type Harness } from '../support/harness.js';

type Route = { method: string; path: string };

/** A result in one shape whichever router made it: each matched route with its parameters' values. */
function matched(result: Result<Route>): Array<{ route: string; params: Record<string, string> }> {
  const [entries, stash] = result as [Array<[Route, Record<string, unknown>]>, string[] | undefined];
  return entries.map(([route, params]) => ({
    route: `${route.method} ${route.path}`,
    params: Object.fromEntries(Object.entries(params).map(([k, v]) => [k, stash ? stash[v as number]! : (v as string)])),
  }));
}

/** Every registered pattern as a concrete path, and paths no route has. */
function samplePaths(routes: readonly Route[]): string[] {
  const concrete = routes.map((r) => r.path.replace(/:(\w+)(\{[^}]*\})?/g, 'video_0123abcd').replace(/\/?\*$/, '/anything'));
  return [...new Set([...concrete, '/', '/v1', '/v1/', '/v1/videos/', '/v1/videos/x/y/z', '/v1/videos/extensions/x', '/admin/nothing', '/nowhere'])];
}

describe('routing (issue 20: the poll path on the fast router)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ sim: { completeAfterMs: 60_000 } });
  });
  afterAll(() => h.close());

  it("matches polls with Hono's RegExpRouter although POST /v1/videos/extensions sits beside POST /v1/videos/:video_id/remix", async () => {
    const { body } = await postJson(`${h.url}/v1/videos`, { prompt: 'a fox' });
    const poll = await fetch(`${h.url}/v1/videos/${body.id as string}`, { headers: auth() });
    expect(poll.status).toBe(200);
    const router = h.gw.app.router;
    expect(router).toBeInstanceOf(PerMethodRouter);
    const names = (router as PerMethodRouter<unknown>).routerNames();
    expect(names.GET).toBe('RegExpRouter');
    expect(names.DELETE).toBe('RegExpRouter');
    // The conflict is POST's alone: its routes keep the trie router, which takes them all.
    expect(names.POST).toBe('TrieRouter');
  });

  it("finds, for every method and path, the same routes with the same parameters, in the same order, as Hono's trie router", () => {
    const routes: Route[] = h.gw.app.routes.map((r) => ({ method: r.method, path: r.path }));
    const perMethod = new PerMethodRouter<Route>();
    const trie = new TrieRouter<Route>();
    for (const r of routes) {
      perMethod.add(r.method, r.path, r);
      trie.add(r.method, r.path, r);
    }
    let compared = 0;
    for (const method of ['GET', 'POST', 'DELETE', 'PUT', 'PATCH', 'OPTIONS']) {
      for (const path of samplePaths(routes)) {
        expect(matched(perMethod.match(method, path)), `${method} ${path}`).toEqual(matched(trie.match(method, path)));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(200);
  });
});
