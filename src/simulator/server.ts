import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';

/**
 * A simulated upstream that speaks both dialects strictly, as the real provider documents them: the
 * imagine family only as JSON, the grok-video family only as multipart, each with its own fields. It
 * backs the quick start, the tests and the benchmarks. Its rules are written out here on their own, not
 * borrowed from the gateway's model table, so that a mistake in that table shows up as a rejection.
 */
export interface SimulatorOptions {
  readonly apiKeys: readonly string[];
  /** How long a task takes from queued to completed. */
  readonly completeAfterMs?: number;
  /** Size of every generated video file. */
  readonly videoBytes?: number;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

export interface SimTask {
  id: string;
  model: string;
  seconds: string;
  size: string;
  createdAtMs: number;
  completeAfterMs: number;
  outcome: 'completed' | 'failed' | 'cancelled';
  deleted: boolean;
}

type Fail = { status: number; body?: string; headers?: Record<string, string>; destroy?: boolean; delayMs?: number };

const IMAGINE = /^grok-imagine-video(-[\w.-]+)?$/;
const GROK_VIDEO = /^grok-video-(1\.5|3)(-pro|-max)?$/;
const PRESETS = ['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3', '2:1', '1:2', '19.5:9', '9:19.5', '20:9', '9:20'];
const V3_RATIOS = ['2:3', '3:2', '1:1', '16:9', '9:16'];
const DATA_URI = /^data:image\/(png|jpeg|jpg|webp|gif);base64,[A-Za-z0-9+/]+={0,2}$/;

class Rejection extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

const reject = (message: string, param: string | null = null): never => {
  throw new Rejection(400, message, param);
};

function checkCommon(model: string, prompt: unknown) {
  if (typeof prompt !== 'string' || prompt.length === 0) reject('prompt is required', 'prompt');
  if ((prompt as string).length > 4096) reject('prompt must be at most 4096 characters', 'prompt');
  return model;
}

function validateImagine(body: Record<string, unknown>) {
  const allowed = new Set(['model', 'prompt', 'seconds', 'aspect_ratio', 'resolution', 'image', 'images']);
  for (const k of Object.keys(body)) if (!allowed.has(k)) reject(`unknown field ${k} for grok-imagine-video`, k);
  checkCommon(body.model as string, body.prompt);
  if (body.seconds !== undefined && (typeof body.seconds !== 'string' || !/^\d+$/.test(body.seconds) || +body.seconds < 1 || +body.seconds > 15)) {
    reject('seconds must be a string holding a whole number from 1 to 15', 'seconds');
  }
  if (body.resolution !== undefined && !['480P', '720P'].includes(body.resolution as string)) reject('resolution must be 480P or 720P', 'resolution');
  if (body.aspect_ratio !== undefined && !PRESETS.includes(body.aspect_ratio as string) && !/^\d+(\.\d+)?:\d+(\.\d+)?$/.test(String(body.aspect_ratio))) {
    reject('invalid aspect_ratio', 'aspect_ratio');
  }
  if (body.image !== undefined && body.images !== undefined) reject('do not pass image together with images', 'images');
  if (body.image !== undefined && (typeof body.image !== 'string' || !DATA_URI.test(body.image))) reject('image must be a data URI', 'image');
  if (body.images !== undefined) {
    if (!Array.isArray(body.images) || body.images.length === 0) reject('images must be a non-empty array', 'images');
    for (const im of body.images as unknown[]) if (typeof im !== 'string' || !DATA_URI.test(im)) reject('images must hold data URIs', 'images');
  }
  return { seconds: (body.seconds as string | undefined) ?? '6', size: (body.resolution as string | undefined) ?? '720P' };
}

function validateGrokVideo(fields: Map<string, string[]>, files: Array<{ name: string; mime: string; bytes: Buffer }>) {
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

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, rejectP) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', rejectP);
  });
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

/** Byte i of every generated video is i % 251, so any range can be checked without keeping the file. */
const PATTERN = Buffer.from(Array.from({ length: 251 * 256 }, (_, i) => i % 251));
export const videoByte = (i: number) => i % 251;

export class UpstreamSimulator {
  readonly requests: RecordedRequest[] = [];
  readonly tasks = new Map<string, SimTask>();
  private readonly server: Server;
  private failures: Fail[] = [];
  private readonly completeAfterMs: number;
  videoBytes: number;
  /** Stops upstream answers (headers) for this long, to exercise timeouts. */
  stallMs = 0;
  /** Holds each JSON answer this long after it is computed (a slow way back), to exercise races. */
  slowAnswersMs = 0;
  /** Labels video files with this content-encoding (as if stored pre-compressed); the bytes stay as they are. */
  contentEncoding: string | undefined;
  /** Video downloads being answered now: a download ends when its last byte is sent or its connection closes. */
  openDownloads = 0;

  constructor(private readonly opts: SimulatorOptions) {
    this.completeAfterMs = opts.completeAfterMs ?? 3_000;
    this.videoBytes = opts.videoBytes ?? 1024 * 1024;
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.error(res, 500, (err as Error).message);
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 30_000;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const addr = this.server.address() as AddressInfo;
    return `http://${host}:${addr.port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** The next create answers with this instead (a status with a body, or a dropped connection). */
  failNextCreate(f: Fail): void {
    this.failures.push(f);
  }

  /** Decides how a task ends, and optionally ends it now. */
  settle(id: string, outcome: SimTask['outcome'], now = true): void {
    const t = this.tasks.get(id);
    if (!t) throw new Error(`no task ${id}`);
    t.outcome = outcome;
    if (now) t.completeAfterMs = 0;
  }

  creates(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.path === '/v1/videos');
  }

  private status(t: SimTask) {
    const elapsed = Date.now() - t.createdAtMs;
    if (elapsed >= t.completeAfterMs) return { status: t.outcome, progress: 100 };
    if (elapsed < t.completeAfterMs / 4) return { status: 'queued', progress: 0 };
    return { status: 'processing', progress: Math.floor((elapsed / t.completeAfterMs) * 100) };
  }

  private taskJson(t: SimTask) {
    const { status, progress } = this.status(t);
    const done = status === 'completed';
    return {
      id: t.id,
      object: 'video',
      model: t.model,
      status,
      progress,
      created_at: Math.floor(t.createdAtMs / 1000),
      completed_at: done ? Math.floor(Date.now() / 1000) : 0,
      seconds: t.seconds,
      size: t.size,
      video_url: done ? `https://cdn.upstream.invalid/${t.id}.mp4` : '',
      error: status === 'failed' ? { message: 'content policy violation', code: 'failed' } : { message: '', code: '' },
    };
  }

  private error(res: ServerResponse, status: number, message: string, param: string | null = null) {
    res.writeHead(status, { 'content-type': 'application/json', 'set-cookie': 'upstream_session=secret', server: 'new-api' });
    res.end(JSON.stringify({ error: { message, type: 'new_api_error', param, code: status === 400 ? 'invalid_request' : 'error' } }));
  }

  private async json(res: ServerResponse, body: unknown) {
    const text = JSON.stringify(body);
    if (this.slowAnswersMs) await new Promise((r) => setTimeout(r, this.slowAnswersMs));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'set-cookie': 'upstream_session=secret', server: 'new-api', via: '1.1 upstream' });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://sim');
    const body = await readBody(req);
    this.requests.push({ method: req.method ?? '', path: url.pathname, headers: req.headers, body });
    if (this.stallMs) await new Promise((r) => setTimeout(r, this.stallMs));
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !this.opts.apiKeys.includes(token)) return this.error(res, 401, 'invalid token');

    if (req.method === 'GET' && url.pathname === '/v1/models') {
      return this.json(res, { object: 'list', data: [{ id: 'grok-imagine-video', object: 'model' }] });
    }
    if (req.method === 'POST' && url.pathname === '/v1/videos') return this.create(req, res, body);
    const m = /^\/v1\/videos\/([^/]+)(\/content)?$/.exec(url.pathname);
    const task = m ? this.tasks.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m || !task || task.deleted) return this.error(res, 404, 'task not found');
    if (req.method === 'DELETE' && !m[2]) {
      task.deleted = true;
      return this.json(res, { id: task.id, object: 'video', deleted: true });
    }
    if (req.method !== 'GET') return this.error(res, 405, 'method not allowed');
    if (!m[2]) return this.json(res, this.taskJson(task));
    if (this.status(task).status !== 'completed') return this.error(res, 400, 'video is not ready');
    return this.content(req, res);
  }

  private async create(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const fail = this.failures.shift();
    if (fail) {
      if (fail.delayMs) await new Promise((r) => setTimeout(r, fail.delayMs));
      if (fail.destroy) return req.socket.destroy();
      res.writeHead(fail.status, { 'content-type': 'application/json', ...fail.headers });
      return res.end(fail.body ?? '');
    }
    try {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      let model: string;
      let spec: { seconds: string; size: string };
      if (type === 'application/json') {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          throw new Rejection(400, 'invalid JSON body');
        }
        model = String(parsed.model ?? '');
        if (GROK_VIDEO.test(model)) reject(`${model} requires multipart/form-data`, 'model');
        if (!IMAGINE.test(model)) reject(`unknown model ${model}`, 'model');
        spec = validateImagine(parsed);
      } else if (type === 'multipart/form-data') {
        const { fields, files } = await parseMultipart(req.headers, body);
        model = fields.get('model')?.[0] ?? '';
        if (IMAGINE.test(model)) reject(`${model} requires application/json`, 'model');
        if (!GROK_VIDEO.test(model)) reject(`unknown model ${model}`, 'model');
        spec = validateGrokVideo(fields, files);
      } else {
        throw new Rejection(415, `unsupported content type ${type}`);
      }
      const task: SimTask = {
        id: `task_${randomBytes(8).toString('hex')}`,
        model,
        ...spec,
        createdAtMs: Date.now(),
        completeAfterMs: this.completeAfterMs,
        outcome: 'completed',
        deleted: false,
      };
      this.tasks.set(task.id, task);
      return this.json(res, this.taskJson(task));
    } catch (err) {
      if (err instanceof Rejection) return this.error(res, err.status, err.message, err.param);
      throw err;
    }
  }

  private content(req: IncomingMessage, res: ServerResponse) {
    const total = this.videoBytes;
    let start = 0;
    let end = total - 1;
    const base: Record<string, string> = { 'content-type': 'video/mp4', 'accept-ranges': 'bytes', etag: '"sim-video"', 'set-cookie': 'upstream_session=secret', server: 'new-api' };
    if (this.contentEncoding) base['content-encoding'] = this.contentEncoding;
    const range = req.headers.range;
    if (range) {
      const r = /^bytes=(\d*)-(\d*)$/.exec(range);
      const a = r?.[1] ? Number(r[1]) : undefined;
      const b = r?.[2] ? Number(r[2]) : undefined;
      if (a !== undefined) {
        start = a;
        end = b !== undefined ? Math.min(b, total - 1) : total - 1;
      } else if (b !== undefined) {
        start = Math.max(0, total - b);
      }
      if (!r || (a === undefined && b === undefined) || start >= total || start > end) {
        res.writeHead(416, { ...base, 'content-range': `bytes */${total}` });
        return res.end();
      }
      res.writeHead(206, { ...base, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${total}` });
    } else {
      res.writeHead(200, { ...base, 'content-length': total });
    }
    this.openDownloads++;
    res.once('close', () => this.openDownloads--);
    let pos = start;
    const pump = () => {
      while (pos <= end) {
        const offset = pos % 251;
        const n = Math.min(PATTERN.length - offset, end - pos + 1);
        pos += n;
        if (!res.write(PATTERN.subarray(offset, offset + n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }
}
