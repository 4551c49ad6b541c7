import { z } from 'zod';
import {
  apiKeyListSchema,
  apiKeySchema,
  createTeamSchema,
  issuedKeySchema,
  issueKeySchema,
  keyPathSchema,
  patchTeamSchema,
  revokedKeySchema,
  teamDeletedSchema,
  teamListSchema,
  teamPathSchema,
  teamSchema,
  usageQuerySchema,
  usageSchema,
  upstreamListSchema,
  trackingSchema,
  webhookDeletedSchema,
  webhookEndpointSchema,
  webhookInputSchema,
  deliveriesQuerySchema,
  deliveryListSchema,
  deliveryPathSchema,
  deliverySchema,
  adminVideoListSchema,
  storageStateSchema,
  videosQuerySchema,
} from '../admin/schemas.js';
import { ASSETS } from '../admin/console.js';
import { errorBodySchema } from '../domain/errors.js';
import { quotaPolicySchema } from '../domain/quota-policy.js';
import {
  contentHeadersSchema,
  idempotencyHeadersSchema,
  contentQuerySchema,
  createVideoFieldsSchema,
  createVideoFormSchema,
  editVideoFormSchema,
  editVideoSchema,
  extendVideoFormSchema,
  extendVideoSchema,
  listVideosQuerySchema,
  remixVideoFormSchema,
  remixVideoSchema,
  modelListSchema,
  videoDeletedSchema,
  videoListSchema,
  videoPathSchema,
  videoSchema,
} from '../videos/schemas.js';

/**
 * Every route the gateway serves, once: the OpenAPI document is built from this table, and
 * test/integration/openapi.test.ts checks it against the routes the app really registers.
 */
export type Auth = 'teamKey' | 'adminToken' | 'metricsToken' | 'none';

/** A body of another media type than JSON (a download, an upload form). */
export type Media = Readonly<Record<string, z.ZodType>>;

export interface Answer {
  readonly description: string;
  /** A JSON body, or bodies of other media types; none for a redirect. */
  readonly body?: z.ZodType | Media;
  readonly headers?: Readonly<Record<string, { description: string }>>;
  /** Follow-up operations fed by this answer, for clients and stateful testing (OpenAPI links). */
  readonly links?: Readonly<Record<string, { operationId: string; parameters?: Record<string, string>; requestBody?: unknown }>>;
}

export interface Operation {
  readonly method: 'get' | 'put' | 'post' | 'patch' | 'delete';
  /** OpenAPI form: `{name}` where the app has `:name`. */
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly tag: 'Videos' | 'Models' | 'Admin' | 'Operations';
  readonly auth: Auth;
  readonly pathParams?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly headers?: z.ZodObject;
  readonly body?: { readonly required: boolean; readonly media: Media };
  readonly answers: Readonly<Record<number, Answer>>;
  /** Error statuses besides the ones every route of its auth can give; each has the OpenAI error body. */
  readonly errors: readonly number[];
}

/** Named schemas, emitted under components.schemas and referenced by name wherever they occur. */
export const REQUEST_COMPONENTS = {
  CreateVideoRequest: createVideoFieldsSchema,
  CreateVideoForm: createVideoFormSchema,
  RemixVideoRequest: remixVideoSchema,
  ExtendVideoRequest: extendVideoSchema,
  ExtendVideoForm: extendVideoFormSchema,
  EditVideoRequest: editVideoSchema,
  EditVideoForm: editVideoFormSchema,
  CreateTeamRequest: createTeamSchema,
  UpdateTeamRequest: patchTeamSchema,
  IssueKeyRequest: issueKeySchema,
  SetWebhookRequest: webhookInputSchema,
  QuotaPolicy: quotaPolicySchema,
} as const;

export const healthSchema = z.object({ status: z.literal('ok') });
export const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready', 'draining']),
  store: z.enum(['ok', 'down']).optional(),
  upstream: z.enum(['ok', 'down']).optional(),
});
const openApiDocumentSchema = z.looseObject({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }).loose(), paths: z.record(z.string(), z.unknown()) });

export const RESPONSE_COMPONENTS = {
  Error: errorBodySchema,
  Video: videoSchema,
  VideoList: videoListSchema,
  VideoDeleted: videoDeletedSchema,
  ModelList: modelListSchema,
  QuotaPolicy: quotaPolicySchema,
  Team: teamSchema,
  TeamList: teamListSchema,
  TeamDeleted: teamDeletedSchema,
  ApiKey: apiKeySchema,
  ApiKeyList: apiKeyListSchema,
  IssuedApiKey: issuedKeySchema,
  RevokedApiKey: revokedKeySchema,
  Usage: usageSchema,
  WebhookEndpoint: webhookEndpointSchema,
  WebhookEndpointDeleted: webhookDeletedSchema,
  WebhookDelivery: deliverySchema,
  WebhookDeliveryList: deliveryListSchema,
  Health: healthSchema,
  Readiness: readinessSchema,
} as const;

/** Errors any route with this auth can answer (bad credentials, rate limits, an internal error). */
export const AUTH_ERRORS: Readonly<Record<Auth, readonly number[]>> = {
  teamKey: [401, 429, 500],
  // 403: a team key on the admin API; 503: ADMIN_TOKEN is not set.
  adminToken: [401, 403, 500, 503],
  // 404: neither METRICS_TOKEN nor ADMIN_TOKEN is set, so /metrics is not served on this listener.
  metricsToken: [401, 404],
  none: [],
};

const binary = z.file();
/** The page itself is /admin/ui, never /admin/ui/index.html. */
const CONSOLE_FILES = Object.keys(ASSETS).filter((name) => name !== 'index.html') as [string, ...string[]];
const videoLinks = {
  GetVideo: { operationId: 'getVideo', parameters: { video_id: '$response.body#/id' } },
  DownloadVideoContent: { operationId: 'downloadVideoContent', parameters: { video_id: '$response.body#/id' } },
  DeleteVideo: { operationId: 'deleteVideo', parameters: { video_id: '$response.body#/id' } },
  RemixVideo: { operationId: 'remixVideo', parameters: { video_id: '$response.body#/id' } },
  ExtendVideo: { operationId: 'extendVideo', requestBody: { prompt: 'a continuation', seconds: '4', video: { id: '$response.body#/id' } } },
  EditVideo: { operationId: 'editVideo', requestBody: { prompt: 'an edit', video: { id: '$response.body#/id' } } },
};
const teamLinks = {
  GetTeam: { operationId: 'getTeam', parameters: { team: '$response.body#/id' } },
  UpdateTeam: { operationId: 'updateTeam', parameters: { team: '$response.body#/id' } },
  IssueKey: { operationId: 'issueKey', parameters: { team: '$response.body#/id' } },
  ListKeys: { operationId: 'listKeys', parameters: { team: '$response.body#/id' } },
  GetUsage: { operationId: 'getUsage', parameters: { team: '$response.body#/id' } },
  DeleteTeam: { operationId: 'deleteTeam', parameters: { team: '$response.body#/id' } },
  SetWebhook: { operationId: 'setWebhook', parameters: { team: '$response.body#/id' } },
  ListWebhookDeliveries: { operationId: 'listWebhookDeliveries', parameters: { team: '$response.body#/id' } },
};
const adminBody = (schema: z.ZodType, required: boolean) => ({ required, media: { 'application/json': schema } });
/** A create's 200, which is also a repeat's under its Idempotency-Key. */
const REPLAYED = (description: string) =>
  `${description} A repeat under the request's Idempotency-Key answers the first request's video as it is now, with \`idempotent-replayed: true\`.`;

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'post',
    path: '/v1/videos',
    operationId: 'createVideo',
    summary: 'Start generating a video (JSON or multipart, for any model)',
    tag: 'Videos',
    auth: 'teamKey',
    headers: idempotencyHeadersSchema,
    body: { required: true, media: { 'application/json': createVideoFieldsSchema, 'multipart/form-data': createVideoFormSchema } },
    answers: { 200: { description: REPLAYED('The video, queued.'), body: videoSchema, links: videoLinks } },
    // 403: a model the key may not use, or one without a price under a dollar budget; 404, 409: the Idempotency-Key
    // (its video deleted since; another request, or still in flight); 413, 415: the body; 502-504: the upstream's create failed.
    errors: [400, 403, 404, 409, 413, 415, 502, 503, 504],
  },
  {
    method: 'post',
    path: '/v1/videos/{video_id}/remix',
    operationId: 'remixVideo',
    summary: 'Remix a completed video of the team with a new prompt',
    tag: 'Videos',
    auth: 'teamKey',
    pathParams: videoPathSchema,
    headers: idempotencyHeadersSchema,
    body: { required: true, media: { 'application/json': remixVideoSchema, 'multipart/form-data': remixVideoFormSchema } },
    answers: { 200: { description: REPLAYED('The new video, queued; remixed_from_video_id names the source.'), body: videoSchema, links: videoLinks } },
    // 400 also: the source is not completed, or its upstream cannot remix it (unsupported_operation).
    errors: [400, 403, 404, 409, 413, 415, 502, 503, 504],
  },
  {
    method: 'post',
    path: '/v1/videos/extensions',
    operationId: 'extendVideo',
    summary: 'Extend a completed video of the team by some seconds',
    tag: 'Videos',
    auth: 'teamKey',
    headers: idempotencyHeadersSchema,
    body: { required: true, media: { 'application/json': extendVideoSchema, 'multipart/form-data': extendVideoFormSchema } },
    answers: { 200: { description: REPLAYED('The new video, queued.'), body: videoSchema, links: videoLinks } },
    errors: [400, 403, 404, 409, 413, 415, 502, 503, 504],
  },
  {
    method: 'post',
    path: '/v1/videos/edits',
    operationId: 'editVideo',
    summary: 'Edit a completed video of the team with a prompt',
    tag: 'Videos',
    auth: 'teamKey',
    headers: idempotencyHeadersSchema,
    body: { required: true, media: { 'application/json': editVideoSchema, 'multipart/form-data': editVideoFormSchema } },
    answers: { 200: { description: REPLAYED('The new video, queued.'), body: videoSchema, links: videoLinks } },
    errors: [400, 403, 404, 409, 413, 415, 502, 503, 504],
  },
  {
    method: 'get',
    path: '/v1/videos',
    operationId: 'listVideos',
    summary: "List the team's videos",
    tag: 'Videos',
    auth: 'teamKey',
    query: listVideosQuerySchema,
    answers: { 200: { description: 'A page of videos.', body: videoListSchema } },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/videos/{video_id}',
    operationId: 'getVideo',
    summary: 'Get a video and its status',
    tag: 'Videos',
    auth: 'teamKey',
    pathParams: videoPathSchema,
    answers: { 200: { description: 'The video.', body: videoSchema } },
    errors: [400, 404, 502, 503, 504],
  },
  {
    method: 'delete',
    path: '/v1/videos/{video_id}',
    operationId: 'deleteVideo',
    summary: 'Delete a video',
    tag: 'Videos',
    auth: 'teamKey',
    pathParams: videoPathSchema,
    answers: { 200: { description: 'Deleted; the id answers 404 from now on.', body: videoDeletedSchema } },
    errors: [400, 404, 502, 503, 504],
  },
  {
    method: 'get',
    path: '/v1/videos/{video_id}/content',
    operationId: 'downloadVideoContent',
    summary: "Download a completed video (streamed; Range passes through)",
    tag: 'Videos',
    auth: 'teamKey',
    pathParams: videoPathSchema,
    query: contentQuerySchema,
    headers: contentHeadersSchema,
    answers: {
      200: { description: 'The whole file.', body: { 'video/mp4': binary, 'image/*': binary } },
      206: { description: 'The requested range.', body: { 'video/mp4': binary, 'image/*': binary } },
      302: { description: 'CONTENT_REDIRECT=presigned and the video is stored: a short-lived presigned URL of the copy, to be fetched without credentials.', headers: { location: { description: 'The presigned URL.' } } },
      304: { description: "If-None-Match names the stored copy's ETag." },
    },
    // 400: not completed yet, or an unknown variant; 404 video_expired: past its expires_at; 410: the upstream's
    // media URL expired; 416: an unsatisfiable range.
    errors: [400, 404, 410, 416, 502, 503, 504],
  },
  {
    method: 'get',
    path: '/v1/models',
    operationId: 'listModels',
    summary: 'List the models this key may use',
    tag: 'Models',
    auth: 'teamKey',
    answers: { 200: { description: 'Model ids and aliases.', body: modelListSchema } },
    errors: [],
  },
  {
    method: 'post',
    path: '/admin/teams',
    operationId: 'createTeam',
    summary: 'Create a team',
    tag: 'Admin',
    auth: 'adminToken',
    body: adminBody(createTeamSchema, true),
    answers: { 201: { description: 'The team.', body: teamSchema, links: teamLinks } },
    // 409: the id is taken, now or by a deleted team.
    errors: [400, 409, 413, 415],
  },
  {
    method: 'get',
    path: '/admin/teams',
    operationId: 'listTeams',
    summary: 'List teams',
    tag: 'Admin',
    auth: 'adminToken',
    answers: { 200: { description: 'Every live team.', body: teamListSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/teams/{team}',
    operationId: 'getTeam',
    summary: 'Get a team',
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    answers: { 200: { description: 'The team.', body: teamSchema } },
    errors: [400, 404],
  },
  {
    method: 'patch',
    path: '/admin/teams/{team}',
    operationId: 'updateTeam',
    summary: "Change a team's name or quota policy",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    body: adminBody(patchTeamSchema, false),
    answers: { 200: { description: 'The team as changed.', body: teamSchema } },
    errors: [400, 404, 413, 415],
  },
  {
    method: 'delete',
    path: '/admin/teams/{team}',
    operationId: 'deleteTeam',
    summary: 'Delete a team and revoke its keys (its id is never reused)',
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    answers: { 200: { description: 'Deleted.', body: teamDeletedSchema } },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/admin/teams/{team}/keys',
    operationId: 'issueKey',
    summary: 'Issue an API key for a team (the secret is shown once)',
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    body: adminBody(issueKeySchema, false),
    answers: {
      201: {
        description: 'The key with its secret.',
        body: issuedKeySchema,
        links: { RevokeKey: { operationId: 'revokeKey', parameters: { id: '$response.body#/id' } } },
      },
    },
    errors: [400, 404, 413, 415],
  },
  {
    method: 'get',
    path: '/admin/teams/{team}/keys',
    operationId: 'listKeys',
    summary: "List a team's keys (never their secrets)",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    answers: { 200: { description: "The team's keys, revoked ones included.", body: apiKeyListSchema } },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/admin/keys/{id}',
    operationId: 'revokeKey',
    summary: 'Revoke a key (at once, on every replica)',
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: keyPathSchema,
    answers: { 200: { description: 'The key, revoked.', body: revokedKeySchema } },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/admin/teams/{team}/usage',
    operationId: 'getUsage',
    summary: "A team's usage today and this month against its policy",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    query: usageQuerySchema,
    answers: { 200: { description: 'Usage.', body: usageSchema } },
    errors: [400, 404],
  },
  {
    method: 'put',
    path: '/admin/teams/{team}/webhook',
    operationId: 'setWebhook',
    summary: "Create or replace a team's webhook endpoint (a new one's signing secret is shown once)",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    body: adminBody(webhookInputSchema, true),
    answers: {
      200: {
        description: 'The endpoint; `secret` only when it was created.',
        body: webhookEndpointSchema,
        links: {
          GetWebhook: { operationId: 'getWebhook', parameters: { team: '$response.body#/team' } },
          RotateWebhookSecret: { operationId: 'rotateWebhookSecret', parameters: { team: '$response.body#/team' } },
          DeleteWebhook: { operationId: 'deleteWebhook', parameters: { team: '$response.body#/team' } },
        },
      },
    },
    // 400: also a url that WEBHOOK_ALLOWED_HOSTS or the address rules refuse (`webhook_url_refused`).
    errors: [400, 404, 413, 415],
  },
  {
    method: 'get',
    path: '/admin/teams/{team}/webhook',
    operationId: 'getWebhook',
    summary: "Get a team's webhook endpoint (never its secret)",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    answers: {
      200: {
        description: 'The endpoint.',
        body: webhookEndpointSchema,
        links: {
          RotateWebhookSecret: { operationId: 'rotateWebhookSecret', parameters: { team: '$response.body#/team' } },
          DeleteWebhook: { operationId: 'deleteWebhook', parameters: { team: '$response.body#/team' } },
        },
      },
    },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/admin/teams/{team}/webhook',
    operationId: 'deleteWebhook',
    summary: "Delete a team's webhook endpoint",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    answers: { 200: { description: 'Deleted.', body: webhookDeletedSchema } },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/admin/teams/{team}/webhook/rotate-secret',
    operationId: 'rotateWebhookSecret',
    summary: 'Give the endpoint a new signing secret, shown once; each replaced one keeps signing for 24 hours after its rotation (at most 10 at once: 429)',
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    answers: { 200: { description: 'The endpoint with its new `secret`.', body: webhookEndpointSchema } },
    errors: [400, 404, 429],
  },
  {
    method: 'get',
    path: '/admin/teams/{team}/webhook/deliveries',
    operationId: 'listWebhookDeliveries',
    summary: "A team's most recent webhook deliveries, newest first",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    query: deliveriesQuerySchema,
    answers: {
      200: {
        description: 'Deliveries: attempts, last answer, next attempt.',
        body: deliveryListSchema,
        links: { ReplayWebhookDelivery: { operationId: 'replayWebhookDelivery', parameters: { team: '$request.path.team', id: '$response.body#/data/0/id' } } },
      },
    },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/admin/teams/{team}/webhook/deliveries/{id}/replay',
    operationId: 'replayWebhookDelivery',
    summary: 'Send a delivery again now, with a fresh set of attempts and the same event id',
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: deliveryPathSchema,
    answers: { 200: { description: 'The delivery, due now.', body: deliverySchema } },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/admin/teams/{team}/videos',
    operationId: 'listTeamVideos',
    summary: "A team's videos, newest first, with their stored copies and when they expire",
    tag: 'Admin',
    auth: 'adminToken',
    pathParams: teamPathSchema,
    query: videosQuerySchema,
    answers: { 200: { description: 'The videos (deleted ones left out).', body: adminVideoListSchema } },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/admin/storage',
    operationId: 'getStorage',
    summary: 'Stored results: the stored copies and their bytes, copies pending and failed',
    tag: 'Admin',
    auth: 'adminToken',
    answers: { 200: { description: 'Totals across replicas.', body: storageStateSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/upstreams',
    operationId: 'listUpstreams',
    summary: 'The upstreams: kind, models, breaker, keys by fingerprint, active jobs, recent errors and latency',
    tag: 'Admin',
    auth: 'adminToken',
    answers: { 200: { description: 'Every configured upstream, in configuration order.', body: upstreamListSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/tracking',
    operationId: 'getTracking',
    summary: "The tracker's backlog (due checks not yet taken) and this process's latest ends: notice lag and status calls per job",
    tag: 'Admin',
    auth: 'adminToken',
    answers: { 200: { description: 'The backlog, from the store; the ends, from this process.', body: trackingSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/ui',
    operationId: 'operatorConsole',
    summary: 'The operator console (its files are public; it calls the admin API with the token signed in with)',
    tag: 'Admin',
    auth: 'none',
    answers: { 200: { description: 'The page.', body: { 'text/html': z.string() } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/ui/',
    operationId: 'operatorConsoleSlash',
    summary: 'Redirects to /admin/ui, which the page links its files relative to',
    tag: 'Admin',
    auth: 'none',
    answers: { 301: { description: 'To /admin/ui.', headers: { location: { description: 'The console page, relative.' } } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/admin/ui/{name}',
    operationId: 'operatorConsoleAsset',
    summary: "The console's script and style sheet",
    tag: 'Admin',
    auth: 'none',
    pathParams: z.object({ name: z.enum(CONSOLE_FILES).meta({ description: 'Any other name is 404.' }) }),
    answers: { 200: { description: 'The file.', body: { 'text/javascript': z.string(), 'text/css': z.string() } } },
    errors: [404],
  },
  {
    method: 'get',
    path: '/healthz',
    operationId: 'health',
    summary: 'Liveness: the process answers',
    tag: 'Operations',
    auth: 'none',
    answers: { 200: { description: 'Alive.', body: healthSchema } },
    errors: [],
  },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary: 'Readiness: the store and the upstream answer, and the process is not draining',
    tag: 'Operations',
    auth: 'none',
    answers: {
      200: { description: 'Ready.', body: readinessSchema },
      503: { description: 'Not ready, or draining.', body: readinessSchema },
    },
    errors: [],
  },
  {
    method: 'get',
    path: '/metrics',
    operationId: 'getMetrics',
    summary: 'Prometheus metrics (here unless METRICS_PORT gives them a listener of their own)',
    tag: 'Operations',
    auth: 'metricsToken',
    answers: { 200: { description: 'The Prometheus text format.', body: { 'text/plain': z.string() } } },
    errors: [],
  },
  {
    method: 'get',
    path: '/openapi.json',
    operationId: 'openApiDocument',
    summary: 'This document',
    tag: 'Operations',
    auth: 'none',
    answers: { 200: { description: 'The OpenAPI 3.1 document.', body: openApiDocumentSchema } },
    errors: [],
  },
];
