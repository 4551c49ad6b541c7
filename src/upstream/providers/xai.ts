import { contentExpired, notFound, upstreamBadGateway } from '../../domain/errors.js';
import { jsonWithReferences } from '../dialects/types.js';
import { GarbledTaskError, MAX_MEDIA_URL_CHARS, MAX_UPSTREAM_ID_CHARS, storable, str, taskFromWord, type UpstreamTask } from '../dialects/task.js';
import type { NormalizedVideoRequest } from '../../domain/request.js';
import { ticksToMicros } from '../../domain/money.js';
import { decodeAnswer, encodedPost, garbled, jsonPost, UpstreamTransport, type CallContext, type ContentStream, type TransportOptions, type UpstreamTiming } from '../client.js';
import { StatusAnswers } from './status-answers.js';
import type { ContentOptions, DerivedCall, JobRef, Provider } from './types.js';

export const DEFAULT_MEDIA_HOSTS = ['vidgen.x.ai'] as const;

/**
 * The create body xAI wants: JSON, an integer `duration`, a lower-case `resolution`, one reference as
 * `image` (the first frame), several as `reference_images` (guides), each `{url}` holding a data URI that is
 * spliced in as it is sent, as the imagine dialect does.
 */
export function encodeXaiCreate(req: NormalizedVideoRequest, model: string) {
  const fields = { model, prompt: req.prompt, duration: req.seconds, aspect_ratio: req.aspectRatio, resolution: `${req.resolution}p` };
  return jsonWithReferences(fields, req, { one: 'image', many: 'reference_images', as: 'url' });
}

/**
 * A derived video's path and body: an edit (which also serves OpenAI's remix: the source edited by the new
 * prompt) or an extension, each naming the source by the media URL xAI gave for it.
 */
export function encodeXaiDerived(call: DerivedCall, model: string, sourceUrl: string): [string, Record<string, unknown>] {
  const video = { url: sourceUrl };
  if (call.operation === 'extension') return ['/v1/videos/extensions', { model, prompt: call.prompt, duration: call.seconds, video }];
  return ['/v1/videos/edits', { model, prompt: call.prompt, video }];
}

/** A create's answer: `{request_id}`. */
export function decodeXaiCreated(body: unknown): UpstreamTask {
  const id = typeof body === 'object' && body !== null ? storable((body as Record<string, unknown>).request_id, MAX_UPSTREAM_ID_CHARS, 'request_id') : '';
  if (!id) throw new GarbledTaskError('create answer has no request_id');
  return { id, status: 'queued', progress: 0, error: null };
}

/**
 * A status answer: `{status, progress?, video?: {url}, usage?: {cost_in_usd_ticks}, error?}`, or early on only
 * `{request_id}` (still queued). Its words go through the one status table; the video's URL is kept for the
 * content route, and what xAI charged for a finished video becomes its actual cost (§10).
 */
export function decodeXaiStatus(upstreamId: string, body: unknown, secrets: readonly string[]): UpstreamTask {
  if (typeof body !== 'object' || body === null) throw new GarbledTaskError('status answer is not a JSON object');
  const t = body as Record<string, unknown>;
  const word = str(t.status);
  if (!word && !str(t.request_id)) throw new GarbledTaskError('status answer has neither status nor request_id');
  const task = taskFromWord(upstreamId, word || 'queued', t.progress, t, secrets);
  const video = typeof t.video === 'object' && t.video !== null ? (t.video as Record<string, unknown>) : undefined;
  const url = storable(video?.url, MAX_MEDIA_URL_CHARS, 'video.url');
  if (task.status === 'completed' && !url) throw new GarbledTaskError('a done video has no url');
  const costMicros = task.status === 'completed' ? chargedMicros(t.usage) : undefined;
  return { ...task, ...(url ? { mediaUrl: url } : {}), ...(costMicros !== undefined ? { costMicros } : {}) };
}

/** `usage.cost_in_usd_ticks` in micro-dollars; absent or unreadable, the job's price stands in for it. */
function chargedMicros(usage: unknown): number | undefined {
  const ticks = typeof usage === 'object' && usage !== null ? (usage as Record<string, unknown>).cost_in_usd_ticks : undefined;
  return typeof ticks === 'number' && Number.isFinite(ticks) && ticks >= 0 ? ticksToMicros(ticks) : undefined;
}

/** The media host may answer these for a URL past its expiry. */
const EXPIRED_STATUSES = [403, 404, 410];

/**
 * `xai`: xAI's own API. Creates at `/v1/videos/generations`, status at `/v1/videos/{request_id}`, the video
 * at the URL the status names on a media host, fetched without the key and only from the hosts the
 * operator lists; there is no list and no delete upstream.
 */
export class XaiProvider implements Provider {
  private readonly answers = new StatusAnswers();
  /** One transport per media origin, made on first use; origins come only from the operator's list. */
  private readonly media = new Map<string, UpstreamTransport>();
  private readonly mediaHosts: ReadonlySet<string>;

  constructor(
    private readonly api: UpstreamTransport,
    private readonly mediaOptions: Omit<TransportOptions, 'baseUrl'>,
    mediaHosts: readonly string[],
  ) {
    this.mediaHosts = new Set(mediaHosts.map((h) => h.toLowerCase()));
  }

  async create(req: NormalizedVideoRequest, model: string, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const body = encodeXaiCreate(req, model);
    const res = await this.api.exchange(encodedPost('/v1/videos/generations', body), key, ctx, timing, 'create');
    return decodeAnswer(res, true, decodeXaiCreated);
  }

  async derive(call: DerivedCall, source: JobRef, model: string, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    // The gateway's own record of where the source lies, never anything the client sent.
    const url = await this.mediaUrlOf(source, key, ctx, timing);
    const [target, body] = encodeXaiDerived(call, model, url);
    const res = await this.api.exchange(jsonPost(target, body), key, ctx, timing, 'create');
    return decodeAnswer(res, true, decodeXaiCreated);
  }

  /** The recorded media URL; a job recorded before URLs were kept asks the upstream once. */
  private async mediaUrlOf(job: JobRef, key: string, ctx: CallContext, timing: UpstreamTiming | undefined): Promise<string> {
    const url = job.mediaUrl ?? (await this.status(job, key, ctx, timing)).mediaUrl;
    if (!url) throw garbled(false);
    return url;
  }

  async status(job: JobRef, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const res = await this.api.exchange({ method: 'GET', path: `/v1/videos/${encodeURIComponent(job.upstreamId)}`, headers: { accept: 'application/json' } }, key, ctx, timing, 'status');
    return this.answers.decode(job.upstreamId, res, (body) => decodeXaiStatus(job.upstreamId, body, this.mediaOptions.secrets));
  }

  async content(job: JobRef, key: string, opts: ContentOptions, ctx: CallContext, timing?: UpstreamTiming): Promise<ContentStream> {
    // Only the video itself exists on xAI's side: no thumbnail or spritesheet variant.
    if (opts.variant && opts.variant !== 'video') throw notFound(`Videos made through this upstream have no '${opts.variant}' variant.`, 'variant', 'variant_not_found');
    const target = this.mediaTarget(await this.mediaUrlOf(job, key, ctx, timing));
    const headers: Record<string, string> = { accept: '*/*' };
    if (opts.range) headers.range = opts.range;
    // No key: the media host is not xAI's API and must never see it. Redirects are not followed (undici's
    // pool does not), so a 3xx is an upstream failure like any other unexpected status.
    const res = await target.transport.stream({ method: 'GET', path: target.path, headers }, null, ctx, timing, [416, ...EXPIRED_STATUSES]);
    if (EXPIRED_STATUSES.includes(res.status)) {
      res.body.resume();
      throw contentExpired();
    }
    return res;
  }

  /** xAI has no delete: the gateway's record is all there is to remove. */
  async delete(): Promise<void> {}

  ping(key: string, signal: AbortSignal): Promise<boolean> {
    return this.api.ping('/v1/models', key, signal);
  }

  async close(): Promise<void> {
    await Promise.all([this.api.close(), ...[...this.media.values()].map((t) => t.close())]);
  }

  private mediaTarget(raw: string): { transport: UpstreamTransport; path: string } {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw garbled(false);
    }
    if (!/^https?:$/.test(url.protocol) || !this.mediaHosts.has(url.host.toLowerCase())) {
      // Not shown to the client (it would name the operator's upstream); the status says enough.
      throw upstreamBadGateway('The upstream named a video location outside its configured media hosts.');
    }
    let transport = this.media.get(url.origin);
    if (!transport) {
      transport = new UpstreamTransport({ ...this.mediaOptions, baseUrl: url.origin });
      this.media.set(url.origin, transport);
    }
    return { transport, path: url.pathname + url.search };
  }
}

