import { randomBytes } from 'node:crypto';
import {
  ApiError,
  firstAttemptLost,
  IDEMPOTENCY_KEY_PARAM,
  idempotencyKeyReused,
  idempotentVideoDeleted,
  invalidRequest,
  mayHaveStartedJob,
  requestInProgress,
  type ErrorType,
} from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { JobRecord } from '../domain/job.js';
import type { IdempotencyClaim, IdempotencyClaimRequest, IdempotentAnswer, Principal, Store, StoredError } from '../store/types.js';
import { newVideoId, type RequestContext, type VideoJobs } from './jobs.js';
import { IDEMPOTENCY_KEY_FORMAT } from './schemas.js';

/** How long a key and its answer are kept from the key's first use (§2, as Stripe keeps them). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** How long a repeat waits for the first request's answer before it answers 409 `request_in_progress`. */
export const IN_PROGRESS_WAIT_MS = 5_000;
/** How often a waiting repeat looks at the key again. */
const IN_PROGRESS_POLL_MS = 200;
/** What a 409 `request_in_progress` asks the client to wait before it asks again. */
const IN_PROGRESS_RETRY_MS = 1_000;

/** The request's `Idempotency-Key`, checked before its body is read; undefined without one. */
export function idempotencyKeyOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!IDEMPOTENCY_KEY_FORMAT.test(header)) throw invalidRequest('The Idempotency-Key header must be 1 to 255 printable ASCII characters.', IDEMPOTENCY_KEY_PARAM, 'invalid_idempotency_key');
  return header;
}

export interface IdempotentCreatesDeps {
  readonly store: Store;
  readonly jobs: Pick<VideoJobs, 'get' | 'isCreating'>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** See Config.idempotencyLeaseMs. */
  readonly leaseMs: number;
}

/** A create's answer under its key, and whether it is a repeat's (the first request's answer again). */
export interface IdempotentResult {
  readonly job: JobRecord;
  readonly replayed: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const storedError = (err: ApiError): StoredError => ({
  status: err.status,
  type: err.type,
  code: err.code,
  message: err.message,
  param: err.param,
  headers: err.headers,
});

/**
 * Creates with an `Idempotency-Key` (§2), with Stripe's semantics, kept per team in the store so that every
 * replica honours them: the first request with a key works under it; a repeat of the same request gets the
 * first one's answer and never starts a second job; a different request with the key is refused.
 *
 * What a key keeps as its answer: a video, or an error after which the upstream may have the job (the errors
 * answered with `x-should-retry: false`). Stripe keeps the answer of every request that began executing; here
 * a refusal known to have started nothing (invalid input, a quota, an upstream that said no and was refunded)
 * releases the key instead, so that the same request may be sent again once the cause is gone — as Stripe
 * does with requests refused before they executed. A repeat while the first request works waits for its
 * answer a few seconds, then answers 409 `request_in_progress` with `retry-after`.
 *
 * The first request holds its key under a lease it renews while it works. A key left held past its lease was
 * held by a process that died; the next repeat takes it over and finds the job the first request admitted
 * (under the video id the key carries): none (nothing happened: the repeat runs the request itself), one the
 * upstream accepted (its video is the answer), or one without the upstream's answer (the upstream may or may
 * not have it: the job is refunded and the answer is `create_outcome_unknown`, as for a create whose upstream
 * answer never came). Never a second upstream call for one key.
 */
export class IdempotentCreates {
  constructor(private readonly deps: IdempotentCreatesDeps) {}

  /** `start` makes the job under the video id it is given, and is called at most once per team and key. */
  async run(principal: Principal, key: string, fingerprint: string, ctx: RequestContext, start: (videoId: string) => Promise<JobRecord>): Promise<IdempotentResult> {
    const teamId = principal.teamId;
    const holder = randomBytes(12).toString('hex');
    const claim = await this.claim({ teamId, key, fingerprint, jobId: newVideoId(), holder, leaseMs: this.deps.leaseMs, ttlMs: IDEMPOTENCY_TTL_MS });
    switch (claim.kind) {
      case 'mismatch':
        throw idempotencyKeyReused();
      case 'in_progress':
        throw requestInProgress(IN_PROGRESS_RETRY_MS);
      case 'answered':
        return { job: await this.replay(principal, claim.answer, ctx), replayed: true };
    }
    const { jobId, orphan } = claim;
    if (orphan === undefined || orphan === 'absent') return { job: await this.hold(teamId, key, holder, ctx, () => start(jobId)), replayed: false };
    this.deps.logger.warn({ requestId: ctx.requestId, teamId, videoId: jobId, job: orphan }, 'idempotency key taken over from a request that stopped mid-flight');
    if (orphan === 'placed') {
      await this.answer(teamId, key, holder, { kind: 'video', jobId }, ctx);
      return { job: await this.video(principal, jobId, ctx), replayed: true };
    }
    // Still being created by this very process (its renewals failed, say): its own answer will come.
    if (this.deps.jobs.isCreating(jobId)) throw requestInProgress(IN_PROGRESS_RETRY_MS);
    await this.deps.store.abandonJob(jobId, this.deps.clock.now());
    const lost = firstAttemptLost();
    await this.answer(teamId, key, holder, { kind: 'error', error: storedError(lost) }, ctx);
    throw lost;
  }

  /** A claim, retried while the key's holder works, for up to IN_PROGRESS_WAIT_MS. */
  private async claim(req: IdempotencyClaimRequest): Promise<IdempotencyClaim> {
    const until = performance.now() + IN_PROGRESS_WAIT_MS;
    for (;;) {
      const claim = await this.deps.store.claimIdempotencyKey(req, this.deps.clock.now());
      if (claim.kind !== 'in_progress' || performance.now() + IN_PROGRESS_POLL_MS > until) return claim;
      await sleep(IN_PROGRESS_POLL_MS);
    }
  }

  /** Runs the request under the key, renewing the lease meanwhile, and keeps its answer or releases the key. */
  private async hold(teamId: string, key: string, holder: string, ctx: RequestContext, start: () => Promise<JobRecord>): Promise<JobRecord> {
    const { store, clock, logger, leaseMs } = this.deps;
    const renewal = setInterval(() => {
      store.renewIdempotencyKey(teamId, key, holder, leaseMs, clock.now()).then(
        (held) => held || logger.warn({ requestId: ctx.requestId, teamId }, 'idempotency key lost its lease to a repeat while its request still ran'),
        (err: unknown) => logger.warn({ requestId: ctx.requestId, teamId, err: { message: (err as Error).message } }, 'could not renew an idempotency key lease'),
      );
    }, leaseMs / 3);
    renewal.unref();
    try {
      const job = await start();
      await this.answer(teamId, key, holder, { kind: 'video', jobId: job.id }, ctx);
      return job;
    } catch (err) {
      // Anything but an ApiError is unexpected (the store down, say): the key stays held until its lease runs
      // out, and the repeat after that looks at what the job became.
      if (!(err instanceof ApiError)) throw err;
      if (mayHaveStartedJob(err)) await this.answer(teamId, key, holder, { kind: 'error', error: storedError(err) }, ctx);
      else await store.releaseIdempotencyKey(teamId, key, holder).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(renewal);
    }
  }

  /**
   * Keeps the key's answer. The client's own answer stands if this fails: the key then stays held until its
   * lease runs out, and the next repeat finds the job and answers from it.
   */
  private async answer(teamId: string, key: string, holder: string, answer: IdempotentAnswer, ctx: RequestContext): Promise<void> {
    const kept = await this.deps.store.answerIdempotencyKey(teamId, key, holder, answer).catch((err: unknown) => {
      this.deps.logger.warn({ requestId: ctx.requestId, teamId, err: { message: (err as Error).message } }, 'could not record the answer of an idempotency key');
      return true;
    });
    if (!kept) this.deps.logger.warn({ requestId: ctx.requestId, teamId }, 'idempotency key was taken over before its answer was recorded');
  }

  /** The first request's answer: its video as it is now, or its error. */
  private async replay(principal: Principal, answer: IdempotentAnswer, ctx: RequestContext): Promise<JobRecord> {
    if (answer.kind === 'video') return this.video(principal, answer.jobId, ctx);
    const { status, type, code, message, param, headers } = answer.error;
    throw new ApiError({ status, type: type as ErrorType, code, message, param, headers: { ...headers } });
  }

  /** The key's video as it is now; deleted since, it is gone for the repeat as for anyone (a 404 that names the key). */
  private async video(principal: Principal, id: string, ctx: RequestContext): Promise<JobRecord> {
    try {
      return await this.deps.jobs.get(principal, id, ctx);
    } catch (err) {
      throw err instanceof ApiError && err.status === 404 ? idempotentVideoDeleted(id) : err;
    }
  }
}
