import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { modelNameSchema } from '../domain/models.js';
import { AUTH_ERRORS, OPERATIONS, REQUEST_COMPONENTS, RESPONSE_COMPONENTS, type Answer, type Auth, type Media, type Operation } from './operations.js';

/**
 * The OpenAPI 3.1 document, built from the route table and the zod schemas the routes validate with:
 * requests as zod's input side (defaults optional, coercions as the wire type), answers as its output side.
 */
type JsonSchema = Record<string, unknown>;
type Io = 'input' | 'output';

const ref = (name: string) => `#/components/schemas/${name}`;

/** Each standalone or registry schema carries `$schema` (and `$id`); inside one OpenAPI document they are noise. */
function bare(schema: JsonSchema): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

type Override = NonNullable<z.core.ToJSONSchemaParams['override']>;

/** A model name is checked against the catalog, not by zod; the document lists the catalog's names. */
const listModels =
  (models: readonly string[]): Override =>
  ({ zodSchema, jsonSchema }) => {
    if (zodSchema === modelNameSchema) jsonSchema.enum = [...models];
  };

class SchemaSide {
  readonly schemas: Record<string, JsonSchema> = {};
  private readonly names = new Map<z.ZodType, string>();

  constructor(
    named: Readonly<Record<string, z.ZodType>>,
    private readonly io: Io,
    private readonly override: Override,
  ) {
    const registry = z.registry<{ id: string }>();
    for (const [id, schema] of Object.entries(named)) {
      registry.add(schema, { id });
      this.names.set(schema, id);
    }
    for (const [id, schema] of Object.entries(z.toJSONSchema(registry, { io, uri: ref, override }).schemas)) this.schemas[id] = bare(schema as JsonSchema);
  }

  /** A `$ref` to a named schema, or the schema inline. */
  of(schema: z.ZodType): JsonSchema {
    const name = this.names.get(schema);
    return name ? { $ref: ref(name) } : bare(z.toJSONSchema(schema, { io: this.io, override: this.override }) as JsonSchema);
  }
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Invalid request (`param` names the field).',
  401: 'Missing, incorrect, expired or revoked credentials.',
  403: 'Not allowed with these credentials (a model outside the key’s allow-list; a team key on the admin API).',
  404: 'Not found (another team’s video is not found either).',
  409: 'Conflicts with an existing resource, or with the request that first used this `Idempotency-Key`: `idempotency_key_reused` (another request; not to be retried) or `request_in_progress` (still running; retry after `retry-after`).',
  410: 'The upstream no longer has the video for download (its media URL expired).',
  413: 'The body is too large.',
  415: 'The body has an unsupported content type.',
  416: 'The range is not satisfiable.',
  429: 'A rate limit (with `retry-after`) or an exhausted budget (`insufficient_quota`, `x-should-retry: false`).',
  500: 'An internal error, logged with the request id; `x-should-retry: false` on a create the upstream may have started.',
  502: 'The upstream answered with an error.',
  503: 'Not available right now (upstream unavailable, gateway busy, or the admin API disabled).',
  504: 'The upstream did not answer in time.',
};

const SECURITY: Readonly<Record<Auth, JsonSchema[]>> = {
  teamKey: [{ teamKey: [] }],
  adminToken: [{ adminToken: [] }],
  metricsToken: [{ metricsToken: [] }],
  none: [],
};

const REQUEST_ID_HEADER = { 'x-request-id': { $ref: '#/components/headers/RequestId' } };

function content(media: Media, side: SchemaSide): JsonSchema {
  return Object.fromEntries(Object.entries(media).map(([type, schema]) => [type, { schema: side.of(schema) }]));
}

function parameters(where: 'path' | 'query' | 'header', object: z.ZodObject | undefined): JsonSchema[] {
  if (!object) return [];
  const json = z.toJSONSchema(object, { io: 'input' }) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, schema]) => {
    const { description, ...rest } = schema;
    return { name, in: where, required: where === 'path' || (json.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest };
  });
}

function answer(a: Answer, responses: SchemaSide): JsonSchema {
  const media = a.body instanceof z.ZodType ? { 'application/json': a.body } : a.body;
  const headers = Object.fromEntries(Object.entries(a.headers ?? {}).map(([name, { description }]) => [name, { description, required: true, schema: { type: 'string' } }]));
  return {
    description: a.description,
    headers: { ...REQUEST_ID_HEADER, ...headers },
    ...(media ? { content: content(media as Media, responses) } : {}),
    ...(a.links ? { links: a.links } : {}),
  };
}

function operation(op: Operation, requests: SchemaSide, responses: SchemaSide): JsonSchema {
  const out: Record<string, JsonSchema> = {};
  for (const [status, a] of Object.entries(op.answers)) out[status] = answer(a, responses);
  const errorBody = { 'application/json': { schema: { $ref: ref('Error') } } };
  for (const status of [...AUTH_ERRORS[op.auth], ...op.errors]) {
    out[String(status)] ??= { description: STATUS_TEXT[status] ?? 'Error.', headers: REQUEST_ID_HEADER, content: errorBody };
  }
  const params = [...parameters('path', op.pathParams), ...parameters('query', op.query), ...parameters('header', op.headers)];
  return {
    operationId: op.operationId,
    summary: op.summary,
    tags: [op.tag],
    security: SECURITY[op.auth],
    ...(params.length ? { parameters: params } : {}),
    ...(op.body ? { requestBody: { required: op.body.required, content: content(op.body.media, requests) } } : {}),
    responses: Object.fromEntries(Object.entries(out).sort(([a], [b]) => Number(a) - Number(b))),
  };
}

/** Request and answer schemas of one name must agree (QuotaPolicy is both), or the document would lie for one side. */
function mergeComponents(a: Record<string, JsonSchema>, b: Record<string, JsonSchema>): Record<string, JsonSchema> {
  for (const [name, schema] of Object.entries(b)) {
    if (name in a && JSON.stringify(a[name]) !== JSON.stringify(schema)) throw new Error(`OpenAPI component ${name} differs between requests and answers`);
  }
  return { ...a, ...b };
}

function packageVersion(): string {
  // src/openapi/ and dist/openapi/ both sit two levels below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export interface DocumentOptions {
  /** The names this gateway's catalog knows, which differ with its configuration. */
  readonly models: readonly string[];
  /** Operation ids this app does not serve (/metrics when it has a listener of its own). */
  readonly without: readonly string[];
}

export function buildOpenApiDocument({ models, without }: DocumentOptions): JsonSchema {
  const override = listModels(models);
  const requests = new SchemaSide(REQUEST_COMPONENTS, 'input', override);
  const responses = new SchemaSide(RESPONSE_COMPONENTS, 'output', override);
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) if (!without.includes(op.operationId)) (paths[op.path] ??= {})[op.method] = operation(op, requests, responses);
  return {
    openapi: '3.1.0',
    info: {
      title: 'Grok video gateway',
      version: packageVersion(),
      description: 'OpenAI-compatible Videos API in front of Grok video models, with team keys, quotas and an admin API.',
    },
    tags: [
      { name: 'Videos', description: 'The OpenAI Videos API.' },
      { name: 'Models', description: 'The models a key may use.' },
      { name: 'Admin', description: 'Teams, keys and usage (ADMIN_TOKEN).' },
      { name: 'Operations', description: 'Health, readiness, metrics and this document.' },
    ],
    paths,
    components: {
      schemas: mergeComponents(requests.schemas, responses.schemas),
      headers: { RequestId: { description: "The request's id: the client's own `x-request-id` when it sent a usable one.", schema: { type: 'string' } } },
      securitySchemes: {
        teamKey: { type: 'http', scheme: 'bearer', description: 'A team API key (POST /admin/teams/{team}/keys), or a static key from GATEWAY_API_KEYS.' },
        adminToken: { type: 'http', scheme: 'bearer', description: 'The operator token, ADMIN_TOKEN. Team keys are refused with 403.' },
        metricsToken: { type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN, or ADMIN_TOKEN when it is unset. (On a METRICS_PORT listener of its own, /metrics is open unless METRICS_TOKEN is set.)' },
      },
    },
  };
}

export function openApiJson(opts: DocumentOptions): string {
  return JSON.stringify(buildOpenApiDocument(opts));
}
