import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREATE_VIDEO_FIELDS, createVideoFormSchema } from '../../src/videos/schemas.js';
import { auth, startHarness, type Harness } from '../support/harness.js';

/** The OpenAPI document at GET /openapi.json: valid 3.1, and exactly the routes the app serves. */
let h: Harness;
let doc: any;

beforeAll(async () => {
  h = await startHarness();
  doc = await (await fetch(`${h.url}/openapi.json`)).json();
});
afterAll(() => h.close());

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

const served = (gateway: Harness) =>
  gateway.gw.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`);
const documented = (document: any) =>
  Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => METHODS.includes(m))
      .map((m) => `${m} ${path}`),
  );

describe('GET /openapi.json', () => {
  it('is served without credentials, as JSON that caches may keep', async () => {
    const res = await fetch(`${h.url}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('x-request-id')).toMatch(/\S/);
  });

  it('validates as an OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toBe('3.1.0');
  });

  it('documents every route the app serves, and nothing else', () => {
    const routes = served(h);
    expect(new Set(routes).size).toBe(routes.length);
    expect(routes).toContain('get /metrics');
    expect(documented(doc).sort()).toEqual(routes.sort());
  });

  it('leaves /metrics out when METRICS_PORT serves it on a listener of its own', async () => {
    const own = await startHarness({ env: { METRICS_PORT: '0' } });
    try {
      const ownDoc = await (await fetch(`${own.url}/openapi.json`)).json();
      expect(served(own)).not.toContain('get /metrics');
      expect(documented(ownDoc).sort()).toEqual(served(own).sort());
    } finally {
      await own.close();
    }
  });

  it('says which credentials each route takes: a team key on /v1, the admin token on /admin (not its console files), none elsewhere', () => {
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['adminToken', 'metricsToken', 'teamKey']);
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const op of Object.values(item)) {
        const expected = path.startsWith('/v1/')
          ? [{ teamKey: [] }]
          : path.startsWith('/admin/') && !path.startsWith('/admin/ui')
            ? [{ adminToken: [] }]
            : path === '/metrics'
              ? [{ metricsToken: [] }]
              : [];
        expect(op.security, `${path} ${op.operationId}`).toEqual(expected);
        if (expected.length) expect(op.responses['401'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
  });

  it("lists this gateway's model names wherever a request names a model (they depend on its configuration)", async () => {
    const models = ((await (await fetch(`${h.url}/v1/models`, { headers: auth() })).json()) as { data: Array<{ id: string }> }).data.map((m) => m.id);
    expect(models).toContain('sora-2');
    const createModel = doc.components.schemas.CreateVideoRequest.properties.model.anyOf[0];
    expect(createModel.enum).toEqual(models);
    expect(doc.components.schemas.QuotaPolicy.properties.models.items.enum).toEqual(models);
  });

  it('documents error answers with the OpenAI error shape', () => {
    expect(doc.components.schemas.Error).toMatchObject({
      type: 'object',
      required: ['error'],
      properties: { error: { required: ['message', 'type', 'param', 'code'] } },
    });
  });

  it('documents the create body the gateway validates: the same fields, JSON and multipart, and no others', () => {
    const json = doc.components.schemas.CreateVideoRequest;
    expect(Object.keys(json.properties).sort()).toEqual([...CREATE_VIDEO_FIELDS].sort());
    expect(json.additionalProperties).toBe(false);
    expect(json.required).toEqual(['prompt']);
    expect(Object.keys(createVideoFormSchema.shape).sort()).toEqual([...CREATE_VIDEO_FIELDS].sort());
    expect(Object.keys(doc.paths['/v1/videos'].post.requestBody.content).sort()).toEqual(['application/json', 'multipart/form-data']);
  });
});
