import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';

/**
 * A simulated upstream of either kind. `newapi` (the default) speaks both reseller dialects strictly, as the real provider documents them: the
 * imagine family only as JSON, the grok-video family only as multipart, each with its own fields. It
 * backs the quick start, the tests and the benchmarks. Its rules are written out here on their own, not
 * borrowed from the gateway's model table, so that a mistake in that table shows up as a rejection.
 */
export interface SimulatorOptions {
  readonly apiKeys: readonly string[];
  /**
   * `xai`: xAI's own API instead, as documented: creates at /v1/videos/generations answering
   * `{request_id}`, its status words, no list, no delete, and videos on a media route of this same server
   * behind signed URLs that expire.
   */
  readonly kind?: 'newapi' | 'xai';
  /** How long a media URL handed out by the xai kind stays valid. */
  readonly mediaUrlTtlMs?: number;
  /** How long a task takes from queued to completed. */
  readonly completeAfterMs?: number;
  /** Size of every generated video file. */
  readonly videoBytes?: number;
  /**
   * Models accepted besides the simulator's own, with their limits: the demo passes the gateway's model table
   * so that models added by CONFIG_FILE work. A name the simulator knows itself keeps its own rules.
   */
  readonly models?: readonly ExtraModel[];
}

/** A model given to the simulator, with the limits the gateway's table states for it (a ModelSpec fits). */
export interface ExtraModel {
  readonly id: string;
  readonly family: 'imagine' | 'grok-video';
  readonly resolutions: readonly number[];
  readonly aspectRatios: readonly string[];
  readonly customAspectRatio: boolean;
  readonly seconds: { readonly min: number; readonly max: number };
  readonly defaultSeconds: number;
}

/**
 * How many of the latest requests the simulator remembers, and how many body bytes at most: the tests read
 * the last few, while a demo gateway runs against the simulator for days.
 */
export const RECORDED_REQUESTS_MAX = 256;
export const RECORDED_BODY_BYTES_MAX = 32 * 1024 * 1024;
/** How many tasks the simulator keeps; the oldest is forgotten first (and answers 404, as an expired one would). */
export const TASKS_MAX = 10_000;

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
  /** What a failed task says went wrong (the upstream's free text). */
  failMessage?: string;
  deleted: boolean;
  /** xai: which reference field the create used, for tests to see. */
  references?: 'image' | 'reference_images';
  /** What the video's bytes are shifted by (see `videoByteOf`): none for a create, `derivedSeed` for a derived video. */
  seed?: number;
  /** A derived video's source task and operation. */
  derivedFrom?: { task: string; operation: 'remix' | 'extension' | 'edit' };
  /** Status calls about the task answer this HTTP status (an upstream failing on one task) instead. */
  statusFailure?: number;
}

type Fail = { status: number; body?: string; headers?: Record<string, string>; destroy?: boolean; delayMs?: number };

const IMAGINE = /^grok-imagine-video(-[\w.-]+)?$/;
/** The 1.5 generation: 1080p besides 480p and 720p, and on xAI no edit and no extension. */
const IMAGINE_15 = /^grok-imagine-video-1\.5(-[\w.-]+)?$/;
/**
 * What xAI charges per second of output, in ticks (10⁻¹⁰ USD), by model generation and resolution: its list
 * prices as of 2026, written out here on their own like every other rule of the simulator.
 */
const XAI_TICKS_PER_SECOND: Readonly<Record<'imagine' | 'imagine15', Readonly<Record<string, number>>>> = {
  imagine: { '480P': 500_000_000, '720P': 700_000_000 },
  imagine15: { '480P': 800_000_000, '720P': 1_400_000_000, '1080P': 2_500_000_000 },
};
/** A finished task's charge at those prices; undefined for a model or size they do not cover. */
export function listPriceTicks(task: Pick<SimTask, 'model' | 'seconds' | 'size'>): number | undefined {
  const perSecond = XAI_TICKS_PER_SECOND[IMAGINE_15.test(task.model) ? 'imagine15' : 'imagine'][task.size.toUpperCase()];
  return perSecond === undefined ? undefined : perSecond * Number(task.seconds);
}
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

/** The limits of a model the simulator was given (see SimulatorOptions.models), checked as its own are. */
function checkExtra(m: ExtraModel, seconds: string | undefined, size: string | undefined, ratio: string | undefined, sizeParam: string) {
  if (seconds !== undefined && (!/^\d+$/.test(seconds) || +seconds < m.seconds.min || +seconds > m.seconds.max)) {
    reject(`seconds must be a whole number from ${m.seconds.min} to ${m.seconds.max}`, 'seconds');
  }
  const sizes = m.resolutions.map((r) => `${r}P`);
  if (size !== undefined && !sizes.includes(size.toUpperCase())) reject(`${sizeParam} must be one of ${sizes.join(', ')}`, sizeParam);
  if (ratio !== undefined && !m.aspectRatios.includes(ratio) && !(m.customAspectRatio && /^\d+(\.\d+)?:\d+(\.\d+)?$/.test(ratio))) reject('unsupported aspect_ratio', 'aspect_ratio');
}

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

const XAI_RATIOS = ['1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3'];
const XAI_FIELDS = new Set(['model', 'prompt', 'duration', 'aspect_ratio', 'resolution', 'image', 'reference_images']);
const isImageUrl = (v: unknown) =>
  typeof v === 'object' && v !== null && Object.keys(v).length === 1 && typeof (v as { url?: unknown }).url === 'string' &&
  (DATA_URI.test((v as { url: string }).url) || /^https:\/\//.test((v as { url: string }).url));

/** xAI's create body, as its documentation states it; `duration` an integer, `resolution` lower case. */
function validateXai(body: Record<string, unknown>, extraOf: (model: string) => ExtraModel | undefined) {
  for (const k of Object.keys(body)) if (!XAI_FIELDS.has(k)) reject(`unknown field ${k}`, k);
  const model = String(body.model ?? '');
  const extra = IMAGINE.test(model) ? undefined : extraOf(model);
  if (!IMAGINE.test(model) && extra?.family !== 'imagine') reject(`unknown model ${model}`, 'model');
  checkCommon(model, body.prompt);
  const d = body.duration;
  if (d !== undefined && (typeof d !== 'number' || !Number.isInteger(d))) reject('duration must be an integer', 'duration');
  if (extra) checkExtra(extra, d === undefined ? undefined : String(d), body.resolution as string | undefined, undefined, 'resolution');
  else if (d !== undefined && ((d as number) < 1 || (d as number) > 15)) reject('duration must be an integer from 1 to 15', 'duration');
  const resolutions = IMAGINE_15.test(model) ? ['480p', '720p', '1080p'] : ['480p', '720p'];
  if (!extra && body.resolution !== undefined && !resolutions.includes(body.resolution as string)) reject(`resolution must be one of ${resolutions.join(', ')}`, 'resolution');
  if (body.aspect_ratio !== undefined && !XAI_RATIOS.includes(body.aspect_ratio as string)) reject('unsupported aspect_ratio', 'aspect_ratio');
  if (body.image !== undefined && body.reference_images !== undefined) reject('image and reference_images cannot be combined', 'reference_images');
  if (body.image !== undefined && !isImageUrl(body.image)) reject('image must be {url}', 'image');
  let references: 'image' | 'reference_images' | undefined = body.image !== undefined ? 'image' : undefined;
  if (body.reference_images !== undefined) {
    const refs = body.reference_images;
    if (!Array.isArray(refs) || refs.length === 0 || refs.length > 7) reject('reference_images takes 1 to 7 images', 'reference_images');
    for (const r of refs as unknown[]) if (!isImageUrl(r)) reject('reference_images must hold {url} objects', 'reference_images');
    if (((d as number | undefined) ?? 6) > 10) reject('duration must be at most 10 with reference_images', 'duration');
    references = 'reference_images';
  }
  return { model, seconds: String(d ?? extra?.defaultSeconds ?? 6), size: ((body.resolution as string | undefined) ?? '720p').toUpperCase(), ...(references ? { references } : {}) };
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
/**
 * A derived video (remix, extension, edit) is the same pattern shifted by a seed from its prompt, 1–250, so
 * that it differs from its source and a client that knows the prompt can check its bytes too.
 */
export const derivedSeed = (prompt: string) => (Buffer.from(prompt, 'utf8').reduce((a, b) => a + b, 0) % 250) + 1;
export const videoByteOf = (seed: number, i: number) => (i + seed) % 251;

const NEWAPI_DERIVABLE = /^grok-video-3(-pro|-max)?$/;
/** xAI edits take a source of at most ~8.7 s. */
const XAI_EDIT_MAX_SOURCE_S = 8.7;
const exactFields = (body: Record<string, unknown>, fields: readonly string[]) => {
  for (const k of Object.keys(body)) if (!fields.includes(k)) reject(`unknown field ${k}`, k);
  for (const k of fields) if (body[k] === undefined) reject(`${k} is required`, k);
};
const videoUrlOf = (v: unknown): string => {
  if (typeof v !== 'object' || v === null || Object.keys(v).length !== 1 || typeof (v as { url?: unknown }).url !== 'string') reject('video must be {url}', 'video');
  return (v as { url: string }).url;
};
const intIn = (v: unknown, min: number, max: number, param: string) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) reject(`${param} must be an integer from ${min} to ${max}`, param);
  return v as number;
};

const bearerToken = (req: IncomingMessage) => /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];

export class UpstreamSimulator {
  /** The latest requests, oldest first (see RECORDED_REQUESTS_MAX). */
  readonly requests: RecordedRequest[] = [];
  /** Every request ever received, including those no longer in `requests`. */
  received = 0;
  private recordedBytes = 0;
  readonly tasks = new Map<string, SimTask>();
  private readonly server: Server;
  private failures: Fail[] = [];
  /** Every create made with one of these keys answers its failure (a key rate-limited or revoked upstream), after any queued one. */
  readonly keyFailures = new Map<string, Fail>();
  /** How long tasks created from now on take. */
  completeAfterMs: number;
  videoBytes: number;
  /**
   * What the xai kind says it charged for a finished task (`usage.cost_in_usd_ticks`): xAI's list price by
   * default; a test may make it differ from the gateway's estimate, or answer undefined to report no usage.
   */
  costTicks: (task: SimTask) => number | undefined = listPriceTicks;
  /** Stops upstream answers (headers) for this long, to exercise timeouts. */
  stallMs = 0;
  /** Holds each JSON answer this long after it is computed (a slow way back), to exercise races. */
  slowAnswersMs = 0;
  /** Labels video files with this content-encoding (as if stored pre-compressed); the bytes stay as they are. */
  contentEncoding: string | undefined;
  /** Video downloads being answered now: a download ends when its last byte is sent or its connection closes. */
  openDownloads = 0;
  readonly kind: 'newapi' | 'xai';
  /** How long xai media URLs handed out from now on stay valid. */
  mediaUrlTtlMs: number;
  private readonly mediaSecret = randomBytes(16);
  private origin = '';

  constructor(private readonly opts: SimulatorOptions) {
    this.completeAfterMs = opts.completeAfterMs ?? 3_000;
    this.videoBytes = opts.videoBytes ?? 1024 * 1024;
    this.kind = opts.kind ?? 'newapi';
    this.mediaUrlTtlMs = opts.mediaUrlTtlMs ?? 60 * 60 * 1000;
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
    this.origin = `http://${host}:${addr.port}`;
    return this.origin;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** A model given in the options that the simulator does not know itself (its own rules come first). */
  private readonly extraOf = (model: string): ExtraModel | undefined =>
    IMAGINE.test(model) || GROK_VIDEO.test(model) ? undefined : this.opts.models?.find((m) => m.id === model);

  private familyOf(model: string): ExtraModel['family'] | undefined {
    if (IMAGINE.test(model)) return 'imagine';
    if (GROK_VIDEO.test(model)) return 'grok-video';
    return this.extraOf(model)?.family;
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
    return this.requests.filter((r) => r.method === 'POST' && (r.path === '/v1/videos' || r.path === '/v1/videos/generations'));
  }

  /** The derived-video requests received (remixes, extensions, edits), whatever their answer. */
  derives(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && /^\/v1\/videos\/(extensions|edits|[^/]+\/remix)$/.test(r.path));
  }

  /** The bytes of a task's video, as the simulator serves them. */
  contentOf(id: string): Buffer {
    const t = this.tasks.get(id);
    if (!t) throw new Error(`no task ${id}`);
    return Buffer.from(Array.from({ length: this.videoBytes }, (_, i) => videoByteOf(t.seed ?? 0, i)));
  }

  private record(r: RecordedRequest): void {
    this.received++;
    this.requests.push(r);
    this.recordedBytes += r.body.length;
    // The newest request stays whatever its size; older ones go first.
    while (this.requests.length > 1 && (this.requests.length > RECORDED_REQUESTS_MAX || this.recordedBytes > RECORDED_BODY_BYTES_MAX)) {
      this.recordedBytes -= this.requests.shift()!.body.length;
    }
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
      error: status === 'failed' ? { message: t.failMessage ?? 'content policy violation', code: 'failed' } : { message: '', code: '' },
    };
  }

  private error(res: ServerResponse, status: number, message: string, param: string | null = null) {
    if (this.kind === 'xai') {
      // xAI's own shape: a code and the message as a string.
      res.writeHead(status, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ code: status === 401 ? 'unauthenticated' : status === 404 ? 'not-found' : 'invalid-argument', error: message }));
    }
    res.writeHead(status, { 'content-type': 'application/json', 'set-cookie': 'upstream_session=secret', server: 'new-api' });
    res.end(JSON.stringify({ error: { message, type: 'new_api_error', param, code: status === 400 ? 'invalid_request' : 'error' } }));
  }

  private async json(res: ServerResponse, body: unknown, status = 200) {
    const text = JSON.stringify(body);
    if (this.slowAnswersMs) await new Promise((r) => setTimeout(r, this.slowAnswersMs));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'set-cookie': 'upstream_session=secret', server: 'new-api', via: '1.1 upstream' });
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://sim');
    const body = await readBody(req);
    this.record({ method: req.method ?? '', path: url.pathname, headers: req.headers, body });
    if (this.stallMs) await new Promise((r) => setTimeout(r, this.stallMs));
    if (this.kind === 'xai' && url.pathname.startsWith('/media/')) return this.media(req, res, url);
    const token = bearerToken(req);
    if (!token || !this.opts.apiKeys.includes(token)) return this.error(res, 401, 'invalid token');
    if (this.kind === 'xai') return this.handleXai(req, res, url, body);

    if (req.method === 'GET' && url.pathname === '/v1/models') {
      return this.json(res, { object: 'list', data: [{ id: 'grok-imagine-video', object: 'model' }] });
    }
    if (req.method === 'POST' && url.pathname === '/v1/videos') return this.create(req, res, body);
    const remix = /^\/v1\/videos\/([^/]+)\/remix$/.exec(url.pathname);
    if (req.method === 'POST' && (remix || url.pathname === '/v1/videos/extensions')) return this.deriveNewApi(req, res, body, remix ? decodeURIComponent(remix[1]!) : undefined);
    const m = /^\/v1\/videos\/([^/]+)(\/content)?$/.exec(url.pathname);
    const task = m ? this.tasks.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m || !task || task.deleted) return this.error(res, 404, 'task not found');
    if (req.method === 'DELETE' && !m[2]) {
      task.deleted = true;
      return this.json(res, { id: task.id, object: 'video', deleted: true });
    }
    if (req.method !== 'GET') return this.error(res, 405, 'method not allowed');
    if (!m[2] && task.statusFailure) return this.error(res, task.statusFailure, 'simulated status failure');
    if (!m[2]) return this.json(res, this.taskJson(task));
    if (this.status(task).status !== 'completed') return this.error(res, 400, 'video is not ready');
    return this.content(req, res, task.seed ?? 0);
  }

  /** Answers the next queued failure, if any; true when it did. */
  private async failed(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const fail = this.failures.shift() ?? this.keyFailures.get(bearerToken(req) ?? '');
    if (!fail) return false;
    if (fail.delayMs) await new Promise((r) => setTimeout(r, fail.delayMs));
    if (fail.destroy) {
      req.socket.destroy();
      return true;
    }
    res.writeHead(fail.status, { 'content-type': 'application/json', ...fail.headers });
    res.end(fail.body ?? '');
    return true;
  }

  /** A derived task: the source's shape, its own seconds, and bytes of its own. */
  private derivedTask(id: string, source: SimTask, operation: 'remix' | 'extension' | 'edit', prompt: string, seconds: string): SimTask {
    const task: SimTask = {
      id,
      model: source.model,
      seconds,
      size: source.size,
      createdAtMs: Date.now(),
      completeAfterMs: this.completeAfterMs,
      outcome: 'completed',
      deleted: false,
      seed: derivedSeed(prompt),
      derivedFrom: { task: source.id, operation },
    };
    this.addTask(task);
    return task;
  }

  private jsonBody(req: IncomingMessage, body: Buffer): Record<string, unknown> {
    if ((req.headers['content-type'] ?? '').split(';')[0]!.trim() !== 'application/json') throw new Rejection(415, 'content type must be application/json');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new Rejection(400, 'invalid JSON body');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Rejection(400, 'body must be a JSON object');
    return parsed as Record<string, unknown>;
  }

  /** A finished, undeleted task of the grok-video-3 family, the only ones resellers remix or extend. */
  private derivableNewApi(id: string, param: string): SimTask {
    const source = this.tasks.get(id);
    if (!source || source.deleted) throw new Rejection(404, 'task not found', param);
    if (this.status(source).status !== 'completed') reject('the source task is not completed', param);
    if (!NEWAPI_DERIVABLE.test(source.model)) reject(`${source.model} does not support this operation`, param);
    return source;
  }

  /** new-api's remix (`POST /v1/videos/{id}/remix {prompt}`) and extension (`POST /v1/videos/extensions`). */
  private async deriveNewApi(req: IncomingMessage, res: ServerResponse, body: Buffer, remixOf: string | undefined) {
    if (await this.failed(req, res)) return;
    try {
      const b = this.jsonBody(req, body);
      const id = `task_${randomBytes(8).toString('hex')}`;
      if (remixOf !== undefined) {
        exactFields(b, ['prompt']);
        checkCommon('', b.prompt);
        const source = this.derivableNewApi(remixOf, 'id');
        return this.json(res, this.taskJson(this.derivedTask(id, source, 'remix', b.prompt as string, source.seconds)));
      }
      exactFields(b, ['model', 'prompt', 'duration', 'start_time', 'video']);
      checkCommon('', b.prompt);
      const duration = intIn(b.duration, 1, 15, 'duration');
      const source = this.derivableNewApi(videoUrlOf(b.video), 'video');
      if (b.model !== source.model) reject('model must be the source task\'s model', 'model');
      if (typeof b.start_time !== 'number' || b.start_time < 0 || b.start_time > Number(source.seconds)) reject('start_time must lie within the source video', 'start_time');
      return this.json(res, this.taskJson(this.derivedTask(id, source, 'extension', b.prompt as string, String(duration))));
    } catch (err) {
      if (err instanceof Rejection) return this.error(res, err.status, err.message, err.param);
      throw err;
    }
  }

  /** xAI's edit (`POST /v1/videos/edits`) and extension (`POST /v1/videos/extensions`), the source by its media URL. */
  private async deriveXai(req: IncomingMessage, res: ServerResponse, body: Buffer, operation: 'edit' | 'extension') {
    if (await this.failed(req, res)) return;
    try {
      const b = this.jsonBody(req, body);
      exactFields(b, operation === 'edit' ? ['model', 'prompt', 'video'] : ['model', 'prompt', 'duration', 'video']);
      if (!IMAGINE.test(String(b.model))) reject(`unknown model ${String(b.model)}`, 'model');
      if (IMAGINE_15.test(String(b.model))) reject(`${String(b.model)} does not support ${operation}s`, 'model');
      checkCommon('', b.prompt);
      const found = this.mediaTask(videoUrlOf(b.video));
      if (typeof found === 'string') reject(`video.url: ${found}`, 'video');
      const source = found as SimTask;
      if (this.status(source).status !== 'completed') reject('the source video is not done', 'video');
      let seconds = source.seconds;
      if (operation === 'edit') {
        if (Number(source.seconds) > XAI_EDIT_MAX_SOURCE_S) reject(`the source video must be at most ${XAI_EDIT_MAX_SOURCE_S} s`, 'video');
      } else {
        seconds = String(intIn(b.duration, 1, 10, 'duration'));
      }
      const task = this.derivedTask(randomBytes(16).toString('hex'), source, operation, b.prompt as string, seconds);
      return this.json(res, { request_id: task.id });
    } catch (err) {
      if (err instanceof Rejection) return this.error(res, err.status === 400 ? 422 : err.status, err.message, err.param);
      throw err;
    }
  }

  private addTask(task: SimTask): void {
    this.tasks.set(task.id, task);
    if (this.tasks.size > TASKS_MAX) this.tasks.delete(this.tasks.keys().next().value!);
  }

  private async handleXai(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    if (req.method === 'GET' && url.pathname === '/v1/models') return this.json(res, { data: [{ id: 'grok-imagine-video', object: 'model' }] });
    if (req.method === 'POST' && url.pathname === '/v1/videos/edits') return this.deriveXai(req, res, body, 'edit');
    if (req.method === 'POST' && url.pathname === '/v1/videos/extensions') return this.deriveXai(req, res, body, 'extension');
    if (req.method === 'POST' && url.pathname === '/v1/videos/generations') {
      if (await this.failed(req, res)) return;
      try {
        if ((req.headers['content-type'] ?? '').split(';')[0]!.trim() !== 'application/json') throw new Rejection(415, 'content type must be application/json');
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          throw new Rejection(400, 'invalid JSON body');
        }
        const spec = validateXai(parsed, this.extraOf);
        const task: SimTask = { id: randomBytes(16).toString('hex'), ...spec, createdAtMs: Date.now(), completeAfterMs: this.completeAfterMs, outcome: 'completed', deleted: false };
        this.addTask(task);
        return this.json(res, { request_id: task.id });
      } catch (err) {
        if (err instanceof Rejection) return this.error(res, err.status === 400 ? 422 : err.status, err.message, err.param);
        throw err;
      }
    }
    const m = /^\/v1\/videos\/([^/]+)$/.exec(url.pathname);
    const task = m && req.method === 'GET' ? this.tasks.get(decodeURIComponent(m[1]!)) : undefined;
    if (!task) return this.error(res, 404, 'not found');
    if (task.statusFailure) return this.error(res, task.statusFailure, 'simulated status failure');
    const elapsed = Date.now() - task.createdAtMs;
    // Early on, xAI answers 202 with nothing but the request id.
    if (elapsed < task.completeAfterMs / 8) return this.json(res, { request_id: task.id }, 202);
    const { status, progress } = this.status(task);
    const word = status === 'completed' ? 'done' : status === 'cancelled' ? 'expired' : status === 'queued' ? 'pending' : status;
    const answer: Record<string, unknown> = { status: word, model: task.model };
    if (word === 'processing') answer.progress = progress;
    if (word === 'done') {
      answer.video = { url: this.mediaUrl(task.id), duration: Number(task.seconds), respect_moderation: true };
      const ticks = this.costTicks(task);
      if (ticks !== undefined) answer.usage = { cost_in_usd_ticks: ticks };
    }
    if (word === 'failed') answer.error = { code: 'content_moderated', message: task.failMessage ?? 'content policy violation' };
    return this.json(res, answer);
  }

  private signature(id: string, exp: string): Buffer {
    return createHmac('sha256', this.mediaSecret).update(`${id}.${exp}`).digest();
  }

  /** A signed, expiring URL on this server's media route, as xAI's media host hands out. */
  private mediaUrl(id: string): string {
    const exp = String(Date.now() + this.mediaUrlTtlMs);
    return `${this.origin}/media/${id}.mp4?exp=${exp}&sig=${this.signature(id, exp).toString('hex')}`;
  }

  /** The task a media URL of this server names, or why it names none. */
  private mediaTask(raw: string): SimTask | 'bad signature' | 'url expired' | 'not found' {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'bad signature';
    }
    if (url.origin !== this.origin) return 'not found';
    const id = /^\/media\/([0-9a-f]+)\.mp4$/.exec(url.pathname)?.[1];
    const exp = url.searchParams.get('exp') ?? '';
    const sig = Buffer.from(url.searchParams.get('sig') ?? '', 'hex');
    const expected = id ? this.signature(id, exp) : Buffer.alloc(0);
    if (!id || sig.length !== expected.length || !timingSafeEqual(sig, expected)) return 'bad signature';
    if (Number(exp) < Date.now()) return 'url expired';
    return this.tasks.get(id) ?? 'not found';
  }

  /** The media host: no credentials taken (a key sent here is a leak), a valid unexpired signature required. */
  private media(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (req.headers.authorization !== undefined) return this.error(res, 400, 'the media host takes no credentials');
    const task = this.mediaTask(`${this.origin}${url.pathname}${url.search}`);
    if (typeof task === 'string') return this.error(res, task === 'not found' ? 404 : 403, task);
    return this.content(req, res, task.seed ?? 0);
  }

  private async create(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    if (await this.failed(req, res)) return;
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
        const family = this.familyOf(model);
        if (family === 'grok-video') reject(`${model} requires multipart/form-data`, 'model');
        if (family !== 'imagine') reject(`unknown model ${model}`, 'model');
        spec = validateImagine(parsed, this.extraOf(model));
      } else if (type === 'multipart/form-data') {
        const { fields, files } = await parseMultipart(req.headers, body);
        model = fields.get('model')?.[0] ?? '';
        const family = this.familyOf(model);
        if (family === 'imagine') reject(`${model} requires application/json`, 'model');
        if (family !== 'grok-video') reject(`unknown model ${model}`, 'model');
        spec = validateGrokVideo(fields, files, this.extraOf(model));
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
      this.addTask(task);
      return this.json(res, this.taskJson(task));
    } catch (err) {
      if (err instanceof Rejection) return this.error(res, err.status, err.message, err.param);
      throw err;
    }
  }

  private content(req: IncomingMessage, res: ServerResponse, seed: number) {
    const total = this.videoBytes;
    let start = 0;
    let end = total - 1;
    // As a CDN-backed provider would: cacheable by anyone, and a session cookie besides.
    const base: Record<string, string> = {
      'content-type': 'video/mp4',
      'accept-ranges': 'bytes',
      etag: '"sim-video"',
      'cache-control': 'public, max-age=86400',
      'set-cookie': 'upstream_session=secret',
      server: 'new-api',
    };
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
        const offset = (pos + seed) % 251;
        const n = Math.min(PATTERN.length - offset, end - pos + 1);
        pos += n;
        if (!res.write(PATTERN.subarray(offset, offset + n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  }
}
