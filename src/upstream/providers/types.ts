import type { DerivedOperation } from '../../domain/models.js';
import type { NormalizedVideoRequest } from '../../domain/request.js';
import type { UpstreamTask } from '../dialects/task.js';
import type { CallContext, ContentStream, UpstreamTiming } from '../client.js';

/** What a provider needs to know of an existing job: the upstream's id and, for xAI, where its video lies. */
export interface JobRef {
  readonly upstreamId: string;
  readonly mediaUrl: string | null;
}

/** A derived video as a provider needs it. */
export interface DerivedCall {
  readonly operation: DerivedOperation;
  readonly prompt: string;
  /** The seconds the call asks for: an extension's added seconds (remixes and edits ask for none). */
  readonly seconds: number;
  /** The source's length: where a reseller's extension starts. */
  readonly sourceSeconds: number;
}

export interface ContentOptions {
  readonly range?: string | undefined;
  readonly variant?: string | undefined;
}

/**
 * One upstream protocol ("kind"). A provider encodes the one normalized request its own way, decodes its
 * upstream's answers into our terms, and knows its paths; how calls travel and fail is the shared
 * transport's (../client.ts), and which upstream and key a call uses is the router's. Adding a kind is a new
 * file here, its name in src/domain/upstream-kinds.ts, an entry in ./index.ts, and the kind named in the
 * model table rows it serves.
 *
 * Derived videos (§9: remix, extension, edit) take the source job's `JobRef`, each kind encoding them its
 * own way (new-api's remix and extensions, xAI's edits and extensions), so that the routes above stay free
 * of per-kind branches; which kind can derive what from which model is the model table's (`derive`).
 */
export interface Provider {
  /** `model` is the name this upstream knows the model by (the gateway's unless the config renames it). */
  create(req: NormalizedVideoRequest, model: string, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask>;
  /**
   * Starts a derived video of `source`, which the same key created; `model` as for `create`. Answers like
   * a create (its failures say whether a job may have started).
   */
  derive(call: DerivedCall, source: JobRef, model: string, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask>;
  status(job: JobRef, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<UpstreamTask>;
  content(job: JobRef, key: string, opts: ContentOptions, ctx: CallContext, timing?: UpstreamTiming): Promise<ContentStream>;
  /** Removes the job upstream where the kind can; a kind without deletes does nothing (the record goes all the same). */
  delete(job: JobRef, key: string, ctx: CallContext, timing?: UpstreamTiming): Promise<void>;
  /** Whether the upstream answers HTTP at all, for /readyz and the breaker's probe. */
  ping(key: string, signal: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}
