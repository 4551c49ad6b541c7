/**
 * A lean fake upstream for the benchmark, run as its own process (forked with an IPC channel; no loader,
 * no imports beyond node:http). It answers the upstream dialect as cheaply as Node allows, so that the
 * gateway, not the upstream, is what the benchmark measures:
 *   POST   /v1/videos              JSON or multipart (both dialects accepted, not validated): a new task
 *   GET    /v1/videos/:id          the task JSON (pre-serialised; re-rendered only when it changes)
 *   GET    /v1/videos/:id/content  BENCH_VIDEO_BYTES of video (byte i is i % 251), with Range
 *   DELETE /v1/videos/:id, GET /v1/models
 * and, for the xai kind (scenario 7), in the same process so that both kinds share one upstream's costs:
 *   POST   /v1/videos/generations  xAI's create: a new task, answered `{request_id}`
 *   GET    /v1/videos/:id          for such a task, xAI's status shape; when done, `video.url` names
 *   GET    /media/:id.mp4?…        the media route on this same host:port: the same video, no key taken
 * Tasks stay `processing` until settled over IPC, except those whose create body mentions `bench-complete`
 * (done at once) or `bench-finish-<ms>-<tag>` (done <ms> after the create, by time, as real upstreams are:
 * queued for the first quarter, then progressing linearly, with `completed_at` their real end; scenario 8).
 * It counts what it receives, per task, so the bench can tell how many polls reached the upstream.
 * Self-contained on purpose: run.ts transpiles this file alone and runs it with plain `node`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const KEY = process.env.BENCH_UPSTREAM_KEY ?? 'bench-upstream-key';
const AUTH = `Bearer ${KEY}`;
const VIDEO_BYTES = Number(process.env.BENCH_VIDEO_BYTES ?? 256 * 1024 * 1024);

interface Task {
  readonly id: string;
  readonly kind: 'newapi' | 'xai';
  readonly model: string;
  readonly createdAt: number;
  status: 'processing' | 'completed' | 'failed';
  json: Buffer;
  gets: number;
  /** A task that ends by time: when (epoch ms), and the tag the bench gave it. */
  readonly timed?: { readonly finishAtMs: number; readonly startMs: number; readonly tag: string };
}

const tasks = new Map<string, Task>();
/** `mediaWithKey`: media requests that carried an Authorization header (the gateway must never send one). */
const stats = { gets: 0, creates: 0, contents: 0, other: 0, unauthorized: 0, createBytes: 0, mediaWithKey: 0 };
/** This server's own origin, for the media URLs it hands out (known once listening). */
let origin = '';
let lastCreate = { id: '', contentType: '', bytes: 0, head: '' };
let seq = 0;
/** Arrival times (ms, monotonic) of GETs for one watched task: shows how far apart coalesced polls are. */
let watched = '';
let watchTimes: number[] = [];

/** A timed task's state now; its JSON is rendered again only when that changes. */
function timedState(t: Task & { timed: NonNullable<Task['timed']> }): { word: string; progress: number } {
  const { startMs, finishAtMs } = t.timed;
  const now = Date.now();
  if (now >= finishAtMs) return { word: 'completed', progress: 100 };
  const progress = Math.floor(((now - startMs) / (finishAtMs - startMs)) * 100);
  return progress < 25 ? { word: 'queued', progress: 0 } : { word: 'processing', progress };
}
const timedRendered = new Map<string, string>();

function timedJson(t: Task & { timed: NonNullable<Task['timed']> }): Buffer {
  const state = timedState(t);
  const key = `${state.word}:${state.progress}`;
  if (timedRendered.get(t.id) !== key) {
    timedRendered.set(t.id, key);
    if (state.word === 'completed') t.status = 'completed';
    t.json = render(t, state);
  }
  return t.json;
}

function render(t: Task, state?: { word: string; progress: number }): Buffer {
  if (t.kind === 'xai') return renderXai(t);
  const done = t.status === 'completed';
  const finished = t.timed ? Math.floor(t.timed.finishAtMs / 1000) : t.createdAt + 30;
  return Buffer.from(
    JSON.stringify({
      id: t.id,
      object: 'video',
      model: t.model,
      status: state?.word ?? t.status,
      progress: state?.progress ?? (done ? 100 : 42),
      created_at: t.createdAt,
      completed_at: done ? finished : 0,
      seconds: '6',
      size: '720P',
      video_url: done ? `https://cdn.upstream.invalid/${t.id}.mp4` : '',
      error: t.status === 'failed' ? { message: 'content policy violation', code: 'failed' } : { message: '', code: '' },
    }),
  );
}

/** xAI's status answer: its own words; when done, the video on the media route with a signed-looking query. */
function renderXai(t: Task): Buffer {
  const word = t.status === 'completed' ? 'done' : t.status === 'failed' ? 'failed' : 'pending';
  const answer: Record<string, unknown> = { status: word, model: t.model };
  if (word === 'done') answer.video = { url: `${origin}/media/${t.id}.mp4?exp=4102444800000&sig=${'ab'.repeat(32)}`, duration: 6, respect_moderation: true };
  if (word === 'failed') answer.error = { code: 'content_moderated', message: 'content policy violation' };
  return Buffer.from(JSON.stringify(answer));
}

function sendJson(res: ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

const NOT_FOUND = Buffer.from('{"error":{"message":"task not found","type":"new_api_error","param":null,"code":"error"}}');
const UNAUTHORIZED = Buffer.from('{"error":{"message":"invalid token","type":"new_api_error","param":null,"code":"error"}}');
const BAD = Buffer.from('{"error":{"message":"unsupported request","type":"new_api_error","param":null,"code":"invalid_request"}}');
const NOT_READY = Buffer.from('{"error":{"message":"video is not ready","type":"new_api_error","param":null,"code":"invalid_request"}}');
const MODELS = Buffer.from('{"object":"list","data":[{"id":"grok-imagine-video","object":"model"}]}');

const JSON_MODEL = /"model"\s*:\s*"([^"]{1,100})"/;
const FINISH = /bench-finish-(\d+)-([\w-]{1,40})/;
const MULTIPART_MODEL = /name="model"\r\n(?:[^\r\n]*\r\n)*\r\n([^\r\n]{1,100})/;

function create(req: IncomingMessage, res: ServerResponse, kind: Task['kind']): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
  const head: Buffer[] = [];
  let headBytes = 0;
  let bytes = 0;
  req.on('data', (c: Buffer) => {
    bytes += c.length;
    if (headBytes < 4096) {
      head.push(c.subarray(0, 4096 - headBytes));
      headBytes += Math.min(c.length, 4096 - headBytes);
    }
  });
  req.on('end', () => {
    const text = Buffer.concat(head).toString('latin1');
    const model = (type === 'application/json' ? JSON_MODEL : MULTIPART_MODEL).exec(text)?.[1];
    if (!model || (type !== 'application/json' && type !== 'multipart/form-data')) return sendJson(res, 400, BAD);
    const id = `task_${process.pid.toString(36)}_${(++seq).toString(36)}`;
    const now = Date.now();
    const finish = FINISH.exec(text);
    const timed = finish ? { startMs: now, finishAtMs: now + Number(finish[1]), tag: finish[2]! } : undefined;
    const task: Task = { id, kind, model, createdAt: Math.floor(now / 1000), status: text.includes('bench-complete') ? 'completed' : 'processing', json: Buffer.alloc(0), gets: 0, ...(timed ? { timed } : {}) };
    task.json = task.timed ? timedJson(task as Task & { timed: NonNullable<Task['timed']> }) : render(task);
    tasks.set(id, task);
    stats.creates++;
    stats.createBytes += bytes;
    lastCreate = { id, contentType: type, bytes, head: text.slice(0, 200) };
    sendJson(res, 200, kind === 'xai' ? Buffer.from(JSON.stringify({ request_id: id })) : task.json);
  });
}

/** 4096 periods of the 251-byte pattern: any offset can be served as one slice of it. */
const PATTERN = Buffer.from(Array.from({ length: 251 * 4096 }, (_, i) => i % 251));

function content(req: IncomingMessage, res: ServerResponse): void {
  stats.contents++;
  const total = VIDEO_BYTES;
  let start = 0;
  let end = total - 1;
  const base = { 'content-type': 'video/mp4', 'accept-ranges': 'bytes', etag: '"bench-video"' };
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
      return void res.end();
    }
    res.writeHead(206, { ...base, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${total}` });
  } else {
    res.writeHead(200, { ...base, 'content-length': total });
  }
  let pos = start;
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const pump = () => {
    while (pos <= end && !closed) {
      const offset = pos % 251;
      const n = Math.min(PATTERN.length - offset, end - pos + 1);
      pos += n;
      if (!res.write(PATTERN.subarray(offset, offset + n))) return void res.once('drain', pump);
    }
    if (!closed) res.end();
  };
  pump();
}

const MEDIA = /^\/media\/([^/?]+)\.mp4(?:\?|$)/;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const media = req.method === 'GET' ? MEDIA.exec(url) : null;
  if (media) {
    // The media host takes no credentials: a key sent here would be a leak, which the bench checks for.
    if (req.headers.authorization !== undefined) stats.mediaWithKey++;
    req.resume();
    const task = tasks.get(decodeURIComponent(media[1]!));
    if (!task || task.kind !== 'xai' || task.status !== 'completed') return sendJson(res, 404, NOT_FOUND);
    return content(req, res);
  }
  if (req.headers.authorization !== AUTH) {
    stats.unauthorized++;
    req.resume();
    return sendJson(res, 401, UNAUTHORIZED);
  }
  if (req.method === 'POST' && url === '/v1/videos') return create(req, res, 'newapi');
  if (req.method === 'POST' && url === '/v1/videos/generations') return create(req, res, 'xai');
  if (url.startsWith('/v1/videos/')) {
    const q = url.indexOf('?');
    const rest = url.slice(11, q === -1 ? undefined : q);
    const slash = rest.indexOf('/');
    const id = decodeURIComponent(slash === -1 ? rest : rest.slice(0, slash));
    const task = tasks.get(id);
    req.resume();
    if (!task) return sendJson(res, 404, NOT_FOUND);
    if (slash === -1) {
      if (req.method === 'GET') {
        stats.gets++;
        task.gets++;
        if (id === watched) watchTimes.push(performance.now());
        return sendJson(res, 200, task.timed ? timedJson(task as Task & { timed: NonNullable<Task['timed']> }) : task.json);
      }
      if (req.method === 'DELETE') {
        stats.other++;
        tasks.delete(id);
        return sendJson(res, 200, Buffer.from(JSON.stringify({ id, object: 'video', deleted: true })));
      }
    } else if (rest.slice(slash) === '/content' && req.method === 'GET' && task.kind === 'newapi') {
      if (task.status !== 'completed') return sendJson(res, 400, NOT_READY);
      return content(req, res);
    }
    return sendJson(res, 404, NOT_FOUND);
  }
  req.resume();
  stats.other++;
  if (req.method === 'GET' && url === '/v1/models') return sendJson(res, 200, MODELS);
  return sendJson(res, 404, NOT_FOUND);
});
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

type Message = { rpc: number; op: string; id?: string; ids?: string[]; status?: Task['status'] };

process.on('message', (m: Message) => {
  const reply = (result: unknown) => process.send?.({ rpc: m.rpc, result });
  switch (m.op) {
    case 'stats':
      return reply({ ...stats, tasks: tasks.size, lastCreate });
    case 'gets':
      return reply((m.ids ?? []).reduce((n, id) => n + (tasks.get(id)?.gets ?? 0), 0));
    case 'settle': {
      const t = tasks.get(m.id ?? '');
      if (t) {
        t.status = m.status ?? 'completed';
        t.json = render(t);
      }
      return reply(Boolean(t));
    }
    case 'watch':
      watched = m.id ?? '';
      watchTimes = [];
      return reply(true);
    case 'watchTimes':
      return reply(watchTimes);
    case 'timed':
      return reply([...tasks.values()].flatMap((t) => (t.timed ? [{ tag: t.timed.tag, finishAtMs: t.timed.finishAtMs, gets: t.gets }] : [])));
    default:
      return reply(null);
  }
});
process.on('disconnect', () => process.exit(0));

server.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${port}`;
  process.send?.({ ready: true, port });
});
