import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { checkCommon, checkExtra, DATA_URI, exactFields, IMAGINE, IMAGINE_15, intIn, outcomeOf, reject, Rejection, videoUrlOf, type ExtraModel, type KindRoutes, type SimCore, type SimTask } from './shared.js';

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

/** xAI edits take a source of at most ~8.7 s. */
const XAI_EDIT_MAX_SOURCE_S = 8.7;

/**
 * xAI's own API, as documented: creates at /v1/videos/generations answering `{request_id}`, its status words,
 * no list, no delete, and videos on a media route of this same server behind signed URLs that expire.
 */
export class XaiRoutes implements KindRoutes {
  private readonly mediaSecret = randomBytes(16);

  constructor(private readonly sim: SimCore) {}

  answerWithoutKey(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    if (!url.pathname.startsWith('/media/')) return false;
    this.media(req, res, url);
    return true;
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    if (req.method === 'GET' && url.pathname === '/v1/models') return this.sim.json(res, { data: [{ id: 'grok-imagine-video', object: 'model' }] });
    if (req.method === 'POST' && url.pathname === '/v1/videos/edits') return this.deriveXai(req, res, body, 'edit');
    if (req.method === 'POST' && url.pathname === '/v1/videos/extensions') return this.deriveXai(req, res, body, 'extension');
    if (req.method === 'POST' && url.pathname === '/v1/videos/generations') {
      if (await this.sim.failed(req, res)) return;
      try {
        if ((req.headers['content-type'] ?? '').split(';')[0]!.trim() !== 'application/json') throw new Rejection(415, 'content type must be application/json');
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body.toString('utf8'));
        } catch {
          throw new Rejection(400, 'invalid JSON body');
        }
        const spec = validateXai(parsed, this.sim.extraOf);
        const prompt = parsed.prompt as string;
        const task: SimTask = { id: randomBytes(16).toString('hex'), ...spec, prompt, createdAtMs: Date.now(), completeAfterMs: this.sim.completeAfterMs, outcome: outcomeOf(prompt), deleted: false };
        this.sim.addTask(task);
        if (this.sim.createDelayMs) await new Promise((r) => setTimeout(r, this.sim.createDelayMs));
        return this.sim.json(res, { request_id: task.id });
      } catch (err) {
        if (err instanceof Rejection) return this.error(res, err.status === 400 ? 422 : err.status, err.message);
        throw err;
      }
    }
    const m = /^\/v1\/videos\/([^/]+)$/.exec(url.pathname);
    const task = m && req.method === 'GET' ? this.sim.tasks.get(decodeURIComponent(m[1]!)) : undefined;
    if (!task) return this.error(res, 404, 'not found');
    task.statusCalls = (task.statusCalls ?? 0) + 1;
    if (task.statusFailure) return this.error(res, task.statusFailure, 'simulated status failure');
    const elapsed = Date.now() - task.createdAtMs;
    // Early on, xAI answers 202 with nothing but the request id.
    if (elapsed < task.completeAfterMs / 8) return this.sim.json(res, { request_id: task.id }, 202);
    const { status, progress } = this.sim.status(task);
    const word = status === 'completed' ? 'done' : status === 'cancelled' ? 'expired' : status === 'queued' ? 'pending' : status;
    const answer: Record<string, unknown> = { status: word, model: task.model };
    if (word === 'processing') answer.progress = progress;
    if (word === 'done') {
      answer.video = { url: this.mediaUrl(task.id), duration: Number(task.seconds), respect_moderation: true };
      const ticks = this.sim.costTicks(task);
      if (ticks !== undefined) answer.usage = { cost_in_usd_ticks: ticks };
    }
    if (word === 'failed') answer.error = { code: 'content_moderated', message: task.failMessage ?? 'content policy violation' };
    return this.sim.json(res, answer);
  }

  /** xAI's own shape: a code and the message as a string. */
  error(res: ServerResponse, status: number, message: string) {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code: status === 401 ? 'unauthenticated' : status === 404 ? 'not-found' : 'invalid-argument', error: message }));
  }


  /** xAI's edit (`POST /v1/videos/edits`) and extension (`POST /v1/videos/extensions`), the source by its media URL. */
  private async deriveXai(req: IncomingMessage, res: ServerResponse, body: Buffer, operation: 'edit' | 'extension') {
    if (await this.sim.failed(req, res)) return;
    try {
      const b = this.sim.jsonBody(req, body);
      exactFields(b, operation === 'edit' ? ['model', 'prompt', 'video'] : ['model', 'prompt', 'duration', 'video']);
      if (!IMAGINE.test(String(b.model))) reject(`unknown model ${String(b.model)}`, 'model');
      if (IMAGINE_15.test(String(b.model))) reject(`${String(b.model)} does not support ${operation}s`, 'model');
      checkCommon('', b.prompt);
      const url = videoUrlOf(b.video);
      const found = url.startsWith(`${this.sim.origin}/`) ? this.mediaTask(url) : await this.taskByContent(url);
      if (typeof found === 'string') reject(`video.url: ${found}`, 'video');
      const source = found as SimTask;
      if (this.sim.status(source).status !== 'completed') reject('the source video is not done', 'video');
      let seconds = source.seconds;
      if (operation === 'edit') {
        if (Number(source.seconds) > XAI_EDIT_MAX_SOURCE_S) reject(`the source video must be at most ${XAI_EDIT_MAX_SOURCE_S} s`, 'video');
      } else {
        seconds = String(intIn(b.duration, 1, 10, 'duration'));
      }
      const task = this.sim.derivedTask(randomBytes(16).toString('hex'), source, operation, b.prompt as string, seconds);
      return this.sim.json(res, { request_id: task.id });
    } catch (err) {
      if (err instanceof Rejection) return this.error(res, err.status === 400 ? 422 : err.status, err.message);
      throw err;
    }
  }

  private signature(id: string, exp: string): Buffer {
    return createHmac('sha256', this.mediaSecret).update(`${id}.${exp}`).digest();
  }

  /** A signed, expiring URL on this server's media route, as xAI's media host hands out. */
  private mediaUrl(id: string): string {
    const exp = String(Date.now() + this.sim.mediaUrlTtlMs);
    return `${this.sim.origin}/media/${id}.mp4?exp=${exp}&sig=${this.signature(id, exp).toString('hex')}`;
  }

  /** The task a media URL of this server names, or why it names none. */
  private mediaTask(raw: string): SimTask | 'bad signature' | 'url expired' | 'not found' {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return 'bad signature';
    }
    if (url.origin !== this.sim.origin) return 'not found';
    const id = /^\/media\/([0-9a-f]+)\.mp4$/.exec(url.pathname)?.[1];
    const exp = url.searchParams.get('exp') ?? '';
    const sig = Buffer.from(url.searchParams.get('sig') ?? '', 'hex');
    const expected = id ? this.signature(id, exp) : Buffer.alloc(0);
    if (!id || sig.length !== expected.length || !timingSafeEqual(sig, expected)) return 'bad signature';
    if (Number(exp) < Date.now()) return 'url expired';
    return this.sim.tasks.get(id) ?? 'not found';
  }

  /**
   * The task whose video a foreign source holds: a data URI, or a URL elsewhere (a gateway's stored copy),
   * fetched without credentials as xAI would. Its first byte is the task's seed (see videoByteOf); the
   * latest task with that seed and its length is taken.
   */
  private async taskByContent(url: string): Promise<SimTask | 'not found' | 'unreachable'> {
    let bytes: Buffer;
    const data = /^data:[\w/+.-]+;base64,(.*)$/s.exec(url);
    if (data) bytes = Buffer.from(data[1]!, 'base64');
    else {
      const res = await fetch(url).catch(() => undefined);
      if (!res?.ok) return 'unreachable';
      bytes = Buffer.from(await res.arrayBuffer());
    }
    if (bytes.length !== this.sim.videoBytes) return 'not found';
    const tasks = [...this.sim.tasks.values()].reverse();
    return tasks.find((t) => (t.seed ?? 0) === bytes[0] && !t.deleted) ?? 'not found';
  }

  /** The media host: no credentials taken (a key sent here is a leak), a valid unexpired signature required. */
  private media(req: IncomingMessage, res: ServerResponse, url: URL) {
    if (req.headers.authorization !== undefined) return this.error(res, 400, 'the media host takes no credentials');
    const task = this.mediaTask(`${this.sim.origin}${url.pathname}${url.search}`);
    if (typeof task === 'string') return this.error(res, task === 'not found' ? 404 : 403, task);
    return this.sim.content(req, res, task.seed ?? 0);
  }
}
