import type { Metrics } from '../observability/metrics.js';
import type { JobRecord } from '../store/types.js';
import type { UpstreamTask } from '../videos/dialects/task.js';
import { kindRefusal, type NormalizedVideoRequest } from '../videos/normalize.js';
import { fingerprint, type CallContext, type ContentStream, type UpstreamTiming } from './client.js';
import { makeProvider, type ProviderSettings } from './providers/index.js';
import type { ContentOptions, JobRef, Provider, UpstreamKind } from './providers/types.js';

export interface UpstreamSpec extends Omit<ProviderSettings, 'calls'> {
  readonly id: string;
  readonly kind: UpstreamKind;
}

/** Which upstream and key created a job: every later call about it goes to the same pair. */
export interface Placement {
  readonly task: UpstreamTask;
  readonly upstream: string;
  readonly keyFingerprint: string;
}

interface Key {
  readonly key: string;
  readonly fp: string;
}

class Upstream {
  readonly provider: Provider;
  readonly keys: readonly Key[];
  private next = 0;

  constructor(
    readonly spec: UpstreamSpec,
    metrics: Metrics,
  ) {
    this.provider = makeProvider(spec.kind, { ...spec, calls: metrics.upstreamCalls(spec.id) });
    this.keys = spec.keys.map((key) => ({ key, fp: fingerprint(key) }));
    if (this.keys.length === 0) throw new Error(`upstream ${spec.id}: at least one key is required`);
  }

  nextKey(): Key {
    return this.keys[this.next++ % this.keys.length]!;
  }

  /** The key that created the job; the first one when that key is gone from the configuration. */
  keyFor(fp: string | null): string {
    return (this.keys.find((k) => k.fp === fp) ?? this.keys[0]!).key;
  }
}

const refOf = (job: JobRecord): JobRef => ({ upstreamId: job.upstreamId as string, mediaUrl: job.mediaUrl });

/** Sends each call to its upstream: creates to one serving the model, everything else to the job's own. */
export class UpstreamRouter {
  private readonly upstreams: readonly Upstream[];

  constructor(specs: readonly UpstreamSpec[], metrics: Metrics) {
    if (specs.length === 0) throw new Error('at least one upstream is required');
    this.upstreams = specs.map((s) => new Upstream(s, metrics));
  }

  async create(req: NormalizedVideoRequest, ctx: CallContext, timing?: UpstreamTiming): Promise<Placement> {
    const up = this.upstreams[0]!;
    const refusal = kindRefusal(req, up.spec.kind);
    if (refusal) throw refusal;
    const key = up.nextKey();
    const task = await up.provider.create(req, req.model.id, key.key, ctx, timing);
    return { task, upstream: up.spec.id, keyFingerprint: key.fp };
  }

  status(job: JobRecord, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask> {
    const up = this.of(job);
    return up.provider.status(refOf(job), up.keyFor(job.upstreamKeyFp), ctx, timing);
  }

  content(job: JobRecord, opts: ContentOptions, ctx: CallContext, timing?: UpstreamTiming): Promise<ContentStream> {
    const up = this.of(job);
    return up.provider.content(refOf(job), up.keyFor(job.upstreamKeyFp), opts, ctx, timing);
  }

  delete(job: JobRecord, ctx: CallContext, timing?: UpstreamTiming): Promise<void> {
    const up = this.of(job);
    return up.provider.delete(refOf(job), up.keyFor(job.upstreamKeyFp), ctx, timing);
  }

  /** Readiness: some upstream answers. */
  async ping(signal: AbortSignal): Promise<boolean> {
    const answers = await Promise.all(this.upstreams.map((u) => u.provider.ping(u.keys[0]!.key, signal)));
    return answers.some(Boolean);
  }

  async close(): Promise<void> {
    await Promise.all(this.upstreams.map((u) => u.provider.close()));
  }

  private of(_job: JobRecord): Upstream {
    return this.upstreams[0]!;
  }
}
