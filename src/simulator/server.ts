import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { NewApiRoutes } from './newapi.js';
import { bearerToken, GROK_VIDEO, IMAGINE, listPriceTicks, outcomeOf, Rejection, TASKS_PATH, type ExtraModel, type KindRoutes, type SimCore, type SimTask } from './shared.js';
import { XaiRoutes } from './xai.js';

/**
 * A simulated upstream of either kind. `newapi` (the default) speaks both reseller dialects strictly, as the real provider documents them: the
 * imagine family only as JSON, the grok-video family only as multipart, each with its own fields. It
 * backs the quick start, the tests and the benchmarks. Its rules are written out on their own (./newapi.ts, ./xai.ts), not
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
  /** How long the answer to a create takes, the task already made (an upstream slow to say it accepted). */
  readonly createDelayMs?: number;
  /**
   * Models accepted besides the simulator's own, with their limits: the demo passes the gateway's model table
   * so that models added by CONFIG_FILE work. A name the simulator knows itself keeps its own rules.
   */
  readonly models?: readonly ExtraModel[];
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

type Fail = { status: number; body?: string; headers?: Record<string, string>; destroy?: boolean; delayMs?: number };

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, rejectP) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', rejectP);
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

export class UpstreamSimulator implements SimCore {
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
  /** See SimulatorOptions.createDelayMs. */
  createDelayMs: number;
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
  unknownTask: 'task_not_exist' | 'not_found' = 'task_not_exist';
  /** Video downloads being answered now: a download ends when its last byte is sent or its connection closes. */
  openDownloads = 0;
  readonly kind: 'newapi' | 'xai';
  /** How long xai media URLs handed out from now on stay valid. */
  mediaUrlTtlMs: number;
  private readonly routes: KindRoutes;
  /** Where the simulator listens, once `listen` has answered. */
  origin = '';

  constructor(private readonly opts: SimulatorOptions) {
    this.completeAfterMs = opts.completeAfterMs ?? 3_000;
    this.videoBytes = opts.videoBytes ?? 1024 * 1024;
    this.createDelayMs = opts.createDelayMs ?? 0;
    this.kind = opts.kind ?? 'newapi';
    this.mediaUrlTtlMs = opts.mediaUrlTtlMs ?? 60 * 60 * 1000;
    this.routes = this.kind === 'xai' ? new XaiRoutes(this) : new NewApiRoutes(this);
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.routes.error(res, 500, (err as Error).message);
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
  readonly extraOf = (model: string): ExtraModel | undefined =>
    IMAGINE.test(model) || GROK_VIDEO.test(model) ? undefined : this.opts.models?.find((m) => m.id === model);

  familyOf(model: string): ExtraModel['family'] | undefined {
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
    if (now) t.completeAfterMs = Math.min(t.completeAfterMs, Date.now() - t.createdAtMs);
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

  status(t: SimTask) {
    const elapsed = Date.now() - t.createdAtMs;
    if (elapsed >= t.completeAfterMs) return { status: t.outcome, progress: 100 };
    if (elapsed < t.completeAfterMs / 4) return { status: 'queued', progress: 0 };
    return { status: 'processing', progress: Math.floor((elapsed / t.completeAfterMs) * 100) };
  }

  async json(res: ServerResponse, body: unknown, status = 200) {
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
    if (this.routes.answerWithoutKey(req, res, url)) return;
    const token = bearerToken(req);
    if (!token || !this.opts.apiKeys.includes(token)) return this.routes.error(res, 401, 'invalid token');
    if (req.method === 'GET' && url.pathname === TASKS_PATH) return this.json(res, { object: 'list', data: [...this.tasks.values()].map((t) => this.inspection(t)) });
    return this.routes.handle(req, res, url, body);
  }

  private inspection(t: SimTask) {
    return { id: t.id, model: t.model, seconds: t.seconds, prompt: t.prompt ?? null, created_at_ms: t.createdAtMs, status: this.status(t).status, deleted: t.deleted, derived_from: t.derivedFrom ?? null };
  }

  /** Answers the next queued failure, if any; true when it did. */
  async failed(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
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
  derivedTask(id: string, source: SimTask, operation: 'remix' | 'extension' | 'edit', prompt: string, seconds: string): SimTask {
    const task: SimTask = {
      id,
      model: source.model,
      seconds,
      size: source.size,
      prompt,
      createdAtMs: Date.now(),
      completeAfterMs: this.completeAfterMs,
      outcome: outcomeOf(prompt),
      deleted: false,
      seed: derivedSeed(prompt),
      derivedFrom: { task: source.id, operation },
    };
    this.addTask(task);
    return task;
  }

  jsonBody(req: IncomingMessage, body: Buffer): Record<string, unknown> {
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

  addTask(task: SimTask): void {
    this.tasks.set(task.id, task);
    if (this.tasks.size > TASKS_MAX) this.tasks.delete(this.tasks.keys().next().value!);
  }

  content(req: IncomingMessage, res: ServerResponse, seed: number) {
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
