import { Hono, type Context } from 'hono';
import { bearer, safeEqual, type Authenticator } from '../http/auth.js';
import { json, requestHeader, type AppEnv } from '../http/context.js';
import { ApiError, forbidden, invalidRequest, unauthorized, unsupportedMediaType } from '../domain/errors.js';
import type { Config } from '../config.js';
import { quoted } from '../domain/text.js';
import { pathParam, pathParams } from '../domain/validation.js';
import { mediaType, readAll } from '../videos/parse.js';
import type { Store } from '../store/types.js';
import type { UpstreamRouter } from '../upstream/router.js';
import type { AdminService } from './service.js';
import type { Clock } from '../domain/quota-policy.js';
import type { RecentEnds } from '../tracking/recent-ends.js';
import { deliveryPathSchema, keyPathSchema, teamPathSchema } from './schemas.js';

/** Admin bodies are small JSON documents; anything larger is refused while it is read. */
const MAX_ADMIN_BODY_BYTES = 64 * 1024;

async function jsonBody(req: Request): Promise<unknown> {
  const text = (await readAll(req.body, MAX_ADMIN_BODY_BYTES)).toString('utf8');
  if (!text) return {};
  const type = mediaType(req.headers.get('content-type'));
  if (type !== 'application/json') throw unsupportedMediaType(`Admin bodies must be application/json, not '${quoted(type) || '(none)'}'.`);
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest('The request body must be JSON.', null, 'invalid_json');
  }
}

/** Jobs counted per upstream for the admin view: at most this many active jobs are looked at. */
const ACTIVE_JOBS_SCAN = 100_000;

const team = (c: Context<AppEnv>) => pathParam(c, teamPathSchema, 'team');
const delivery = (c: Context<AppEnv>) => {
  const p = pathParams(c, deliveryPathSchema);
  return [p.team, p.id] as const;
};

/** The operator API: only ADMIN_TOKEN opens it; a team key is recognised and refused with 403. */
export function adminRoutes(deps: { config: Config; auth: Authenticator; admin: AdminService; upstream: UpstreamRouter; store: Store; clock: Clock; recentEnds: RecentEnds }) {
  const { config, auth, admin, upstream, store, clock, recentEnds } = deps;
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const token = bearer(requestHeader(c, 'authorization'));
    if (!config.adminToken) {
      throw new ApiError({ status: 503, type: 'server_error', code: 'admin_disabled', message: 'The admin API is disabled: set ADMIN_TOKEN to enable it.' });
    }
    if (token && safeEqual(token, config.adminToken)) return next();
    if (await auth.authenticate(token)) throw forbidden('Team API keys cannot use the admin API.');
    throw unauthorized('Missing or incorrect admin token.');
  });

  app.post('/teams', async (c) => json(c, await admin.createTeam(await jsonBody(c.req.raw)), 201));
  app.get('/teams', async (c) => json(c, await admin.listTeams()));
  app.get('/teams/:team', async (c) => json(c, await admin.getTeam(team(c))));
  app.patch('/teams/:team', async (c) => json(c, await admin.updateTeam(team(c), await jsonBody(c.req.raw))));
  app.delete('/teams/:team', async (c) => json(c, await admin.deleteTeam(team(c))));
  app.post('/teams/:team/keys', async (c) => json(c, await admin.issueKey(team(c), await jsonBody(c.req.raw)), 201));
  app.get('/teams/:team/keys', async (c) => json(c, await admin.listKeys(team(c))));
  app.delete('/keys/:id', async (c) => json(c, await admin.revokeKey(pathParam(c, keyPathSchema, 'id'))));
  app.get('/upstreams', async (c) => {
    const active = new Map<string, number>();
    for (const job of await store.activeJobs(ACTIVE_JOBS_SCAN)) {
      if (!job.upstreamId) continue;
      const id = upstream.upstreamIdOf(job);
      active.set(id, (active.get(id) ?? 0) + 1);
    }
    return json(c, upstream.views().map((u) => ({ ...u, active_jobs: active.get(u.id) ?? 0 })));
  });
  app.get('/tracking', async (c) => {
    const due = await store.dueChecks(clock.now());
    return json(c, { object: 'tracking', due_jobs: due.due, overdue_seconds: Math.max(0, -(due.nextInMs ?? 0)) / 1000, recent_ends: recentEnds.view() });
  });
  app.get('/teams/:team/videos', async (c) => json(c, await admin.listVideos(team(c), c.req.query())));
  app.get('/storage', async (c) => json(c, await admin.storage()));
  app.get('/teams/:team/usage', async (c) => json(c, await admin.usage(team(c), c.req.query())));
  app.put('/teams/:team/webhook', async (c) => json(c, await admin.setWebhook(team(c), await jsonBody(c.req.raw))));
  app.get('/teams/:team/webhook', async (c) => json(c, await admin.getWebhook(team(c))));
  app.delete('/teams/:team/webhook', async (c) => json(c, await admin.deleteWebhook(team(c))));
  app.post('/teams/:team/webhook/rotate-secret', async (c) => json(c, await admin.rotateWebhookSecret(team(c))));
  app.get('/teams/:team/webhook/deliveries', async (c) => json(c, await admin.listWebhookDeliveries(team(c), c.req.query())));
  app.post('/teams/:team/webhook/deliveries/:id/replay', async (c) =>
    json(c, await admin.replayWebhookDelivery(...delivery(c))),
  );
  return app;
}
