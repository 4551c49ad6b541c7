import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApiError } from '../domain/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Clock } from '../domain/quota-policy.js';
import type { ClaimedCopy, CopyLedger } from '../store/copies.js';
import type { UpstreamRouter } from '../upstream/router.js';
import { objectKey, type StorageBackend } from './backend.js';
import type { Bandwidth } from './bandwidth.js';
import type { StorageMetrics } from './metrics.js';
import { Periodic } from './periodic.js';

/**
 * How long a claimed copy is held: a copy longer than this (a slow upstream, a tight bandwidth budget) may be
 * claimed again by another replica, which then writes the same object once more; the first one's outcome is
 * not recorded (its lease was lost). Nothing is lost either way.
 */
export const COPY_LEASE_MS = 15 * 60_000;
/** Retries back off exponentially up to this, then keep trying at this pace until the video expires. */
const MAX_RETRY_MS = 60 * 60_000;
const JITTER = 0.2;
const DEFAULT_CONTENT_TYPE = 'video/mp4';

export interface CopierOptions {
  readonly concurrency: number;
  readonly retryMs: number;
  /** 0: this replica copies nothing. */
  readonly pollIntervalMs: number;
}

/** The wait after `attempts` failed attempts: retryMs, doubled each time, capped, with jitter. */
export function copyRetryDelay(attempts: number, retryMs: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

/** A failure that no retry can mend: the upstream no longer has the video, or sends it in a form not kept. */
class PermanentFailure extends Error {}

const isPermanent = (err: unknown) => err instanceof PermanentFailure || (err instanceof ApiError && (err.status === 404 || err.status === 410));

/**
 * Copies completed videos from their upstream into storage, in the background only: claims due copies (at
 * most `concurrency` at once on this replica), streams each from the upstream through the shared bandwidth
 * budget into the backend, and records the outcome. A failure is retried with backoff while the video has
 * not expired; meanwhile its content streams from the upstream as before.
 */
export class Copier {
  private readonly loop: Periodic;
  private readonly active = new Set<Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly deps: {
      ledger: CopyLedger;
      backend: StorageBackend;
      upstream: Pick<UpstreamRouter, 'content'>;
      bandwidth: Bandwidth;
      clock: Clock;
      logger: Logger;
      metrics: StorageMetrics;
    },
    private readonly opts: CopierOptions,
  ) {
    this.loop = new Periodic(() => this.pass(), opts.pollIntervalMs, (err) =>
      deps.logger.error({ err: { message: (err as Error).message } }, 'storage copy pass failed'),
    );
  }

  start(): void {
    if (this.opts.pollIntervalMs > 0) this.loop.start();
  }

  /** A video was just scheduled: look now rather than at the next interval. */
  wake(): void {
    this.loop.wake();
  }

  /** Copies in flight are cut short and given back untried: another replica (or the next start) makes them. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop.stop();
    await Promise.all(this.active);
  }

  /**
   * Claims as many due copies as there are free slots and starts them. Never asks to run again at once: with
   * every slot taken, the next pass comes when a copy ends (each wakes the loop).
   */
  private async pass(): Promise<boolean> {
    const free = this.opts.concurrency - this.active.size;
    if (free <= 0) return false;
    const claimed = await this.deps.ledger.claimCopies(free, COPY_LEASE_MS, this.deps.clock.now());
    for (const c of claimed) {
      const run = this.copy(c).finally(() => {
        this.active.delete(run);
        this.loop.wake();
      });
      this.active.add(run);
    }
    return false;
  }

  private async copy({ job, token }: ClaimedCopy): Promise<void> {
    const { ledger, backend, clock, logger, metrics } = this.deps;
    const started = performance.now();
    const line = { videoId: job.id, teamId: job.teamId, attempt: (job.storage?.attempts ?? 0) + 1 };
    try {
      const { bytes, contentType } = await this.transfer(job, objectKey(job.id));
      if (!(await ledger.recordStored(job.id, token, { bytes, contentType }, clock.now()))) {
        logger.warn(line, 'stored a copy after its claim ran out; another replica has it');
        return;
      }
      metrics.copy('stored', bytes);
      logger.info({ ...line, bytes, ms: Math.round(performance.now() - started), backend: backend.kind }, 'video copied to storage');
    } catch (err) {
      if (this.stopping.signal.aborted) {
        await ledger.release(job.id, token).catch(() => undefined);
        return;
      }
      const reason = err instanceof ApiError ? `${err.status} ${err.code ?? ''}`.trim() : (err as Error).message;
      const gone = isPermanent(err);
      const retryAt = gone ? null : clock.now() + copyRetryDelay(line.attempt, this.opts.retryMs);
      await ledger.recordFailure(job.id, token, reason.slice(0, 500), retryAt).catch((e: unknown) =>
        logger.error({ ...line, err: { message: (e as Error).message } }, 'could not record a failed copy; it is tried again once its claim runs out'),
      );
      metrics.copy(gone ? 'failed' : 'retrying');
      logger.warn({ ...line, reason, retryAt }, gone ? 'video copy failed for good; content streams from the upstream' : 'video copy failed; will retry');
    }
  }

  /** The upstream's bytes into the backend, counted; a body shorter than announced is a failure. */
  private async transfer(job: ClaimedCopy['job'], key: string): Promise<{ bytes: number; contentType: string }> {
    const signal = this.stopping.signal;
    const source = await this.deps.upstream.content(job, {}, { requestId: `copy_${randomBytes(6).toString('hex')}`, signal });
    if (source.status !== 200) {
      source.body.resume();
      throw new Error(`the upstream answered ${source.status} to a plain download`);
    }
    const encoding = source.headers['content-encoding'];
    if (encoding && encoding !== 'identity') {
      source.body.resume();
      // Served from storage, the bytes would lose the encoding that describes them.
      throw new PermanentFailure(`the upstream sends the video ${encoding}-encoded`);
    }
    let bytes = 0;
    const bandwidth = this.deps.bandwidth;
    // Counted and kept to the bandwidth budget on the way; destroying it (a failed write) ends the upstream read.
    const body = Readable.from(
      (async function* () {
        for await (const chunk of source.body as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          await bandwidth.take(chunk.length);
          yield chunk;
        }
      })(),
      { objectMode: false },
    );
    const contentType = source.headers['content-type'] ?? DEFAULT_CONTENT_TYPE;
    await this.deps.backend.put(key, body, contentType, signal);
    const declared = source.headers['content-length'];
    if (declared !== undefined && Number(declared) !== bytes) {
      await this.deps.backend.remove(key).catch(() => undefined);
      throw new Error(`the upstream sent ${bytes} of ${declared} bytes`);
    }
    return { bytes, contentType };
  }
}
