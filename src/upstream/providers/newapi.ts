import { unsupportedOperation } from '../../domain/errors.js';
import { ENCODERS } from '../dialects/index.js';
import { decodeTask, type UpstreamTask } from '../dialects/task.js';
import type { NormalizedVideoRequest } from '../../domain/request.js';
import type { BufferedResponse } from '../buffered-exchange.js';
import { decodeAnswer, encodedPost, jsonPost, type CallContext, type ContentStream, type UpstreamTiming, type UpstreamTransport } from '../client.js';
import { StatusAnswers } from './status-answers.js';
import type { ContentOptions, DerivedCall, JobRef, Provider } from './types.js';

const path = (upstreamId: string) => `/v1/videos/${encodeURIComponent(upstreamId)}`;

/**
 * `newapi`: a new-api style reseller. One `POST /v1/videos` speaking two dialects (the model table's
 * `family` picks the encoder in ../dialects), an OpenAI-like task object with quirks, content
 * and deletes at the task's own paths. Derived videos as resellers document them for the grok-video-3
 * family: a remix at the source task's own path, an extension naming the source task by id; no edit.
 */
export class NewApiProvider implements Provider {
  private readonly answers = new StatusAnswers();
  /** A task answer in our terms, the upstream's keys kept out of its failure reasons: creates and status alike. */
  private readonly decode = (body: unknown) => decodeTask(body, this.secrets);

  constructor(
    private readonly transport: UpstreamTransport,
    private readonly secrets: readonly string[],
  ) {}

  async create(req: NormalizedVideoRequest, model: string, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const body = ENCODERS[req.model.family](req, model);
    const res = await this.transport.exchange(encodedPost('/v1/videos', body), key, ctx, timing, 'create');
    return this.readCreated(res);
  }

  async derive(call: DerivedCall, source: JobRef, model: string, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const [target, body] = this.derivedRequest(call, source, model);
    const res = await this.transport.exchange(jsonPost(target, body), key, ctx, timing, 'create');
    return this.readCreated(res);
  }

  private derivedRequest(call: DerivedCall, source: JobRef, model: string): [string, Record<string, unknown>] {
    switch (call.operation) {
      case 'remix':
        return [`${path(source.upstreamId)}/remix`, { prompt: call.prompt }];
      case 'extension':
        return ['/v1/videos/extensions', { model, prompt: call.prompt, duration: call.seconds, start_time: call.sourceSeconds, video: { url: source.upstreamId } }];
      case 'edit':
        // The model table gives no new-api model an edit, so this is reached only through a misconfigured table.
        throw unsupportedOperation('edit', 'This upstream cannot edit videos.', 'video');
    }
  }

  async status(job: JobRef, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const res = await this.transport.exchange({ method: 'GET', path: path(job.upstreamId), headers: { accept: 'application/json' } }, key, ctx, timing, 'status');
    return this.answers.decode(job.upstreamId, res, this.decode);
  }

  async delete(job: JobRef, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<void> {
    await this.transport.exchange({ method: 'DELETE', path: path(job.upstreamId), headers: { accept: 'application/json' } }, key, ctx, timing, 'delete');
  }

  content(job: JobRef, key: string, opts: ContentOptions, ctx: CallContext, timing?: UpstreamTiming): Promise<ContentStream> {
    const query = opts.variant ? `?variant=${encodeURIComponent(opts.variant)}` : '';
    const headers: Record<string, string> = { accept: '*/*' };
    if (opts.range) headers.range = opts.range;
    return this.transport.stream({ method: 'GET', path: `${path(job.upstreamId)}/content${query}`, headers }, key, ctx, timing, [416]);
  }

  ping(key: string, signal: AbortSignal): Promise<boolean> {
    return this.transport.ping('/v1/models', key, signal);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  private readCreated(res: BufferedResponse): UpstreamTask {
    return decodeAnswer(res, true, this.decode);
  }
}
