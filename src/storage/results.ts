import { Readable } from 'node:stream';
import { retentionExpired } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { JobRecord } from '../domain/job.js';
import type { Store } from '../store/types.js';
import type { ContentStream } from '../upstream/client.js';
import type { UpstreamKind } from '../domain/upstream-kinds.js';
import { CopyMissingError, objectKey, type StorageBackend } from './backend.js';
import type { Copier } from './copier.js';
import type { StorageMetrics } from './metrics.js';
import { storedContent, type ContentRequest } from './serve.js';
import type { Sweeper } from './sweeper.js';

const DAY_S = 86_400;
/** A stored source handed to xAI for a derived video: it fetches it some time after the create, not at once. */
const DERIVED_SOURCE_TTL_S = 3_600;

export interface StoredResultsOptions {
  /** The default of the team policy's `video_retention_days`. */
  readonly retentionDays: number;
  /** Answer downloads with a 302 to a presigned URL (S3) instead of the bytes. */
  readonly redirect: boolean;
  readonly redirectTtlS: number;
  /** Derived videos of stored xAI sources on a backend without URLs: the copy as a data URI up to this size. */
  readonly dataUriMaxBytes: number;
}

/** A stored copy's entity tag: its video never changes, so the id and the length name this version for good. */
const etagOf = (job: JobRecord, bytes: number) => `"${job.id.replace(/^video_/, '')}-${bytes.toString(16)}"`;

/**
 * Stored results (§12), as the job lifecycle sees them: schedules a completed video's copy once (with its
 * expiry from the team's retention), serves content from the copy when there is one, refuses content past
 * its expiry, and hands a derived video the stored source. The copying and the removing happen in the
 * Copier and the Sweeper, in the background.
 */
export class StoredResults {
  constructor(
    private readonly deps: { store: Store; backend: StorageBackend; copier: Copier; sweeper: Sweeper; clock: Clock; logger: Logger; metrics: StorageMetrics },
    private readonly opts: StoredResultsOptions,
  ) {}

  /**
   * Schedules the copy of a completed video that has none yet (once: a job already scheduled is left as it
   * is), its expiry counted from its completion by the team's `video_retention_days`.
   */
  async schedule(job: JobRecord): Promise<JobRecord> {
    if (job.status !== 'completed' || job.storage || job.completedAt === null) return job;
    const { store, clock, copier } = this.deps;
    const team = await store.getTeam(job.teamId);
    const days = team?.quota.video_retention_days ?? this.opts.retentionDays;
    const scheduled = await store.copies.schedule(job.id, job.completedAt + days * DAY_S, clock.now());
    copier.wake();
    return scheduled ?? job;
  }

  private expired(job: JobRecord): boolean {
    return job.expiresAt !== null && this.deps.clock.now() >= job.expiresAt * 1000;
  }

  /**
   * The download of a completed video from its stored copy, or undefined when it is to stream from the
   * upstream (not stored yet, a variant other than the video, or the copy missing from the backend).
   * Throws `video_expired` past its expiry.
   */
  async content(job: JobRecord, req: ContentRequest & { variant?: string | undefined }): Promise<ContentStream | undefined> {
    let current = job;
    if (!this.expired(current) && current.storage?.state !== 'stored') {
      // The cached record may predate the copy (made here or on another replica): the store says.
      current = (await this.deps.store.getJob(job.teamId, job.id)) ?? job;
      current = await this.schedule(current);
    }
    if (this.expired(current)) throw retentionExpired(current.id, current.expiresAt as number);
    const copy = current.storage;
    if (copy?.state !== 'stored' || (req.variant !== undefined && req.variant !== 'video')) {
      this.deps.metrics.download('upstream');
      return undefined;
    }
    const key = objectKey(current.id);
    const { backend } = this.deps;
    try {
      if (this.opts.redirect && backend.presign) {
        const location = await backend.presign(key, this.opts.redirectTtlS);
        this.deps.metrics.download('redirect');
        return { status: 302, headers: { location }, body: Readable.from([]) };
      }
      const object = { bytes: copy.bytes ?? 0, contentType: copy.contentType ?? 'video/mp4', etag: etagOf(current, copy.bytes ?? 0), modifiedAt: current.completedAt ?? current.createdAt };
      const stream = await storedContent(object, req, (range) => backend.open(key, range));
      this.deps.metrics.download('stored');
      return stream;
    } catch (err) {
      if (!(err instanceof CopyMissingError)) throw err;
      this.deps.logger.warn({ videoId: current.id, backend: backend.kind }, 'the store records a copy the backend does not have; streaming from the upstream');
      this.deps.metrics.download('upstream');
      return undefined;
    }
  }

  /**
   * The source a derived video (§9) of `source` sends to an xAI upstream: the stored copy, whose URL does not
   * expire as xAI's own does, as a presigned URL or, on a backend without URLs, as a data URI when small
   * enough; undefined (the upstream's own URL) otherwise. Other kinds name their sources by id.
   */
  async derivedSource(source: JobRecord, kind: UpstreamKind): Promise<string | undefined> {
    if (kind !== 'xai') return undefined;
    const current = (await this.deps.store.getJob(source.teamId, source.id)) ?? source;
    const copy = current.storage;
    if (copy?.state !== 'stored' || this.expired(current)) return undefined;
    const { backend } = this.deps;
    const key = objectKey(current.id);
    if (backend.presign) return backend.presign(key, DERIVED_SOURCE_TTL_S);
    if (copy.bytes === null || copy.bytes > this.opts.dataUriMaxBytes) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of await backend.open(key, undefined)) chunks.push(chunk as Buffer);
    return `data:${copy.contentType ?? 'video/mp4'};base64,${Buffer.concat(chunks).toString('base64')}`;
  }

  /** A video was deleted: its copy goes (the sweeper finds it by the deletion). */
  deleted(): void {
    this.deps.sweeper.wake();
  }
}
