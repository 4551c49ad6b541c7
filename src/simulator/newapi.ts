import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import busboy from 'busboy';
import { checkCommon, checkExtra, DATA_URI, exactFields, GROK_VIDEO, IMAGINE_15, intIn, outcomeOf, PRESETS, reject, Rejection, videoUrlOf, type ExtraModel, type KindRoutes, type SimCore, type SimTask } from './shared.js';

const V3_RATIOS = ['2:3', '3:2', '1:1', '16:9', '9:16'];

function validateImagine(body: Record<string, unknown>, extra: ExtraModel | undefined) {
  const allowed = new Set(['model', 'prompt', 'seconds', 'aspect_ratio', 'resolution', 'image', 'images']);
  for (const k of Object.keys(body)) if (!allowed.has(k)) reject(`unknown field ${k} for grok-imagine-video`, k);
  checkCommon(body.model as string, body.prompt);
  if (body.seconds !== undefined && typeof body.seconds !== 'string') reject('seconds must be a string', 'seconds');
  if (extra) {
    checkExtra(extra, body.seconds as string | undefined, body.resolution as string | undefined, body.aspect_ratio as string | undefined, 'resolution');
  } else {
    if (body.seconds !== undefined && (!/^\d+$/.test(body.seconds as string) || +(body.seconds as string) < 1 || +(body.seconds as string) > 15)) {
      reject('seconds must be a string holding a whole number from 1 to 15', 'seconds');
    }
    const resolutions = IMAGINE_15.test(String(body.model)) ? ['480P', '720P', '1080P'] : ['480P', '720P'];
    if (body.resolution !== undefined && !resolutions.includes(body.resolution as string)) reject(`resolution must be one of ${resolutions.join(', ')}`, 'resolution');
    if (body.aspect_ratio !== undefined && !PRESETS.includes(body.aspect_ratio as string) && !/^\d+(\.\d+)?:\d+(\.\d+)?$/.test(String(body.aspect_ratio))) {
      reject('invalid aspect_ratio', 'aspect_ratio');
    }
  }
  if (body.image !== undefined && body.images !== undefined) reject('do not pass image together with images', 'images');
  if (body.image !== undefined && (typeof body.image !== 'string' || !DATA_URI.test(body.image))) reject('image must be a data URI', 'image');
  if (body.images !== undefined) {
    if (!Array.isArray(body.images) || body.images.length === 0) reject('images must be a non-empty array', 'images');
    for (const im of body.images as unknown[]) if (typeof im !== 'string' || !DATA_URI.test(im)) reject('images must hold data URIs', 'images');
  }
  return { seconds: (body.seconds as string | undefined) ?? String(extra?.defaultSeconds ?? 6), size: (body.resolution as string | undefined) ?? '720P' };
}

function validateGrokVideo(fields: Map<string, string[]>, files: Array<{ name: string; mime: string; bytes: Buffer }>, extra: ExtraModel | undefined) {
  const allowed = new Set(['model', 'prompt', 'seconds', 'size', 'aspect_ratio']);
  for (const [k, v] of fields) {
    if (!allowed.has(k)) reject(`unknown field ${k} for grok-video`, k);
    if (v.length > 1) reject(`field ${k} given twice`, k);
  }
  for (const f of files) {
    if (f.name !== 'input_reference') reject(`unexpected file field ${f.name}`, f.name);
    if (!/^image\/(png|jpeg|webp|gif)$/.test(f.mime)) reject('input_reference must be an image file', 'input_reference');
  }
  const one = (k: string) => fields.get(k)?.[0];
  const model = one('model') as string;
  checkCommon(model, one('prompt'));
  if (extra) {
    checkExtra(extra, one('seconds'), one('size'), one('aspect_ratio'), 'size');
    return { seconds: one('seconds') ?? String(extra.defaultSeconds), size: one('size') ?? '720P' };
  }
  const [, version, tier] = GROK_VIDEO.exec(model) as RegExpExecArray;
  const seconds = one('seconds');
  if (seconds !== undefined && (!/^\d+$/.test(seconds) || +seconds < 1 || +seconds > 15)) reject('seconds must be a whole number', 'seconds');
  if (tier === '-pro' && seconds !== undefined && seconds !== '10') reject('pro tier is fixed at 10 seconds', 'seconds');
  if (tier === '-max' && seconds !== undefined && seconds !== '15') reject('max tier is fixed at 15 seconds', 'seconds');
  const size = one('size');
  const sizes = version === '3' ? ['720P', '1080P'] : ['480P', '540P', '720P', '1080P'];
  if (size !== undefined && !sizes.includes(size)) reject(`size must be one of ${sizes.join(', ')}`, 'size');
  const ratio = one('aspect_ratio');
  if (ratio !== undefined && !(version === '3' ? V3_RATIOS : PRESETS).includes(ratio)) reject('unsupported aspect_ratio', 'aspect_ratio');
  return { seconds: seconds ?? (tier === '-pro' ? '10' : tier === '-max' ? '15' : '6'), size: size ?? '720P' };
}

function parseMultipart(headers: IncomingMessage['headers'], body: Buffer) {
  return new Promise<{ fields: Map<string, string[]>; files: Array<{ name: string; mime: string; bytes: Buffer }> }>((resolve, rejectP) => {
    const fields = new Map<string, string[]>();
    const files: Array<{ name: string; mime: string; bytes: Buffer }> = [];
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers, limits: { fieldSize: 1 << 20 } });
    } catch {
      return rejectP(new Rejection(400, 'malformed multipart body'));
    }
    bb.on('field', (name, value) => fields.set(name, [...(fields.get(name) ?? []), value]));
    bb.on('file', (name, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => files.push({ name, mime: info.mimeType, bytes: Buffer.concat(chunks) }));
    });
    bb.on('close', () => resolve({ fields, files }));
    bb.on('error', () => rejectP(new Rejection(400, 'malformed multipart body')));
    bb.end(body);
  });
}

const NEWAPI_DERIVABLE = /^grok-video-3(-pro|-max)?$/;

/**
 * The new-api reseller kind: both dialects, the imagine family only as JSON, the grok-video family only as
 * multipart; OpenAI-like task objects; remixes and extensions of the grok-video-3 family; new-api's errors.
 */
export class NewApiRoutes implements KindRoutes {
  constructor(private readonly sim: SimCore) {}

  answerWithoutKey(): boolean {
    return false;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      return this.sim.json(res, { object: 'list', data: [{ id: 'grok-imagine-video', object: 'model' }] });
    }
    if (req.method === 'POST' && url.pathname === '/v1/videos') return this.create(req, res, body);
    const remix = /^\/v1\/videos\/([^/]+)\/remix$/.exec(url.pathname);
    if (req.method === 'POST' && (remix || url.pathname === '/v1/videos/extensions')) return this.deriveNewApi(req, res, body, remix ? decodeURIComponent(remix[1]!) : undefined);
    const m = /^\/v1\/videos\/([^/]+)(\/content)?$/.exec(url.pathname);
    const task = m ? this.sim.tasks.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m) return this.error(res, 404, 'not found');
    if (!task || task.deleted) return this.noSuchTask(res);
    if (req.method === 'DELETE' && !m[2]) {
      task.deleted = true;
      return this.sim.json(res, { id: task.id, object: 'video', deleted: true });
    }
    if (req.method !== 'GET') return this.error(res, 405, 'method not allowed');
    if (!m[2]) task.statusCalls = (task.statusCalls ?? 0) + 1;
    if (!m[2] && task.statusFailure) return this.error(res, task.statusFailure, 'simulated status failure');
    if (!m[2]) return this.sim.json(res, this.taskJson(task));
    if (this.sim.status(task).status !== 'completed') return this.error(res, 400, 'video is not ready');
    return this.sim.content(req, res, task.seed ?? 0);
  }

  private taskJson(t: SimTask) {
    const { status, progress } = this.sim.status(t);
    const done = status === 'completed';
    return {
      id: t.id,
      object: 'video',
      model: t.model,
      status,
      progress,
      created_at: Math.floor(t.createdAtMs / 1000),
      completed_at: done ? Math.floor((t.createdAtMs + t.completeAfterMs) / 1000) : 0,
      seconds: t.seconds,
      size: t.size,
      video_url: done ? `https://cdn.upstream.invalid/${t.id}.mp4` : '',
      error: status === 'failed' ? { message: t.failMessage ?? 'content policy violation', code: 'failed' } : { message: '', code: '' },
    };
  }

  error(res: ServerResponse, status: number, message: string, param: string | null = null) {
    res.writeHead(status, { 'content-type': 'application/json', 'set-cookie': 'upstream_session=secret', server: 'new-api' });
    res.end(JSON.stringify({ error: { message, type: 'new_api_error', param, code: status === 400 ? 'invalid_request' : 'error' } }));
  }

  /** new-api's task error: `{code, message, data}`, not the `{error:{…}}` of its relay errors. */
  private noSuchTask(res: ServerResponse) {
    if (this.sim.unknownTask === 'not_found') return this.error(res, 404, 'task not found');
    res.writeHead(400, { 'content-type': 'application/json', server: 'new-api' });
    res.end(JSON.stringify({ code: 'task_not_exist', message: 'task_not_exist', data: null }));
  }


  private async create(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    if (await this.sim.failed(req, res)) return;
    try {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      let model: string;
      let spec: { seconds: string; size: string };
      let prompt: string;
      if (type === 'application/json') {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          throw new Rejection(400, 'invalid JSON body');
        }
        model = String(parsed.model ?? '');
        const family = this.sim.familyOf(model);
        if (family === 'grok-video') reject(`${model} requires multipart/form-data`, 'model');
        if (family !== 'imagine') reject(`unknown model ${model}`, 'model');
        spec = validateImagine(parsed, this.sim.extraOf(model));
        prompt = parsed.prompt as string;
      } else if (type === 'multipart/form-data') {
        const { fields, files } = await parseMultipart(req.headers, body);
        model = fields.get('model')?.[0] ?? '';
        const family = this.sim.familyOf(model);
        if (family === 'imagine') reject(`${model} requires application/json`, 'model');
        if (family !== 'grok-video') reject(`unknown model ${model}`, 'model');
        spec = validateGrokVideo(fields, files, this.sim.extraOf(model));
        prompt = fields.get('prompt')![0]!;
      } else {
        throw new Rejection(415, `unsupported content type ${type}`);
      }
      const task: SimTask = {
        id: `task_${randomBytes(8).toString('hex')}`,
        model,
        ...spec,
        prompt,
        createdAtMs: Date.now(),
        completeAfterMs: this.sim.completeAfterMs,
        outcome: outcomeOf(prompt),
        deleted: false,
      };
      this.sim.addTask(task);
      if (this.sim.createDelayMs) await new Promise((r) => setTimeout(r, this.sim.createDelayMs));
      return this.sim.json(res, this.taskJson(task));
    } catch (err) {
      if (err instanceof Rejection) return this.error(res, err.status, err.message, err.param);
      throw err;
    }
  }

  /** A finished, undeleted task of the grok-video-3 family, the only ones resellers remix or extend. */
  private derivableNewApi(id: string, param: string): SimTask {
    const source = this.sim.tasks.get(id);
    if (!source || source.deleted) throw new Rejection(404, 'task not found', param);
    if (this.sim.status(source).status !== 'completed') reject('the source task is not completed', param);
    if (!NEWAPI_DERIVABLE.test(source.model)) reject(`${source.model} does not support this operation`, param);
    return source;
  }

  /** new-api's remix (`POST /v1/videos/{id}/remix {prompt}`) and extension (`POST /v1/videos/extensions`). */
  private async deriveNewApi(req: IncomingMessage, res: ServerResponse, body: Buffer, remixOf: string | undefined) {
    if (await this.sim.failed(req, res)) return;
    try {
      const b = this.sim.jsonBody(req, body);
      const id = `task_${randomBytes(8).toString('hex')}`;
      if (remixOf !== undefined) {
        exactFields(b, ['prompt']);
        checkCommon('', b.prompt);
        const source = this.derivableNewApi(remixOf, 'id');
        return this.sim.json(res, this.taskJson(this.sim.derivedTask(id, source, 'remix', b.prompt as string, source.seconds)));
      }
      exactFields(b, ['model', 'prompt', 'duration', 'start_time', 'video']);
      checkCommon('', b.prompt);
      const duration = intIn(b.duration, 1, 15, 'duration');
      const source = this.derivableNewApi(videoUrlOf(b.video), 'video');
      if (b.model !== source.model) reject('model must be the source task\'s model', 'model');
      if (typeof b.start_time !== 'number' || b.start_time < 0 || b.start_time > Number(source.seconds)) reject('start_time must lie within the source video', 'start_time');
      return this.sim.json(res, this.taskJson(this.sim.derivedTask(id, source, 'extension', b.prompt as string, String(duration))));
    } catch (err) {
      if (err instanceof Rejection && err.status === 404) return this.noSuchTask(res);
      if (err instanceof Rejection) return this.error(res, err.status, err.message, err.param);
      throw err;
    }
  }
}
