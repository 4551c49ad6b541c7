import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../domain/quota-policy.js';
import type { JobRecord } from '../domain/job.js';
import type { Store } from '../store/types.js';
import type { Placement } from '../upstream/router.js';

/** An accepted create and its cost at the price of the upstream that took it (§10; null: no price). */
export type PricedPlacement = Placement & { readonly priceMicros: number | null };

/** The waits between attempts to record an accepted create while its client waits: about 3 s in all. */
export const ACTIVATION_RETRY_DELAYS_MS: readonly number[] = [100, 300, 800, 2_000];
/** After the client was answered, each background attempt waits twice as long as the last, up to this. */
export const ACTIVATION_BACKGROUND_MAX_MS = 60_000;

export interface ActivationSite {
  readonly requestId: string;
  readonly videoId: string;
  readonly teamId: string;
}

interface Unrecorded {
  readonly placement: PricedPlacement;
  readonly site: ActivationSite;
  waitMs: number;
  timer: NodeJS.Timeout | undefined;
  /** The attempt under way, so that the shutdown's last attempt never runs beside it. */
  attempt: Promise<boolean> | undefined;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Records the creates the upstream accepted (`Store.activateJob`). The upstream runs and bills such a job
 * whatever the store says, so a failed write is tried again: a few times while the client waits, then in the
 * background for as long as the process lives, each failure logged with the upstream task id. Until it is
 * recorded, the job counts as one being created here (`has`), which this replica's tracker leaves alone;
 * should another replica's abandon it meanwhile, its late activation brings it back (Store.activateJob).
 */
export class Activations {
  private readonly unrecorded = new Map<string, Unrecorded>();
  private closed = false;

  constructor(
    private readonly deps: { store: Store; clock: Clock; logger: Logger; metrics: Metrics },
    /** Told of each job recorded by a background attempt. */
    private readonly onRecorded: (job: JobRecord) => void,
  ) {}

  /** Whether the job was accepted upstream and is still waiting to be recorded. */
  has(id: string): boolean {
    return this.unrecorded.has(id);
  }

  /** The recorded job; undefined when every attempt made while the client waits failed (the background goes on). */
  async record(id: string, placement: PricedPlacement, site: ActivationSite): Promise<JobRecord | undefined> {
    for (let i = 0; ; i++) {
      try {
        return await this.activate(id, placement);
      } catch (err) {
        this.failed(site, placement, err, i + 1);
      }
      const wait = ACTIVATION_RETRY_DELAYS_MS[i];
      if (wait === undefined || this.closed) break;
      await sleep(wait);
    }
    const entry: Unrecorded = { placement, site, waitMs: 2 * ACTIVATION_RETRY_DELAYS_MS.at(-1)!, timer: undefined, attempt: undefined };
    if (this.closed) this.abandoned(entry);
    else {
      this.unrecorded.set(id, entry);
      this.schedule(id, entry);
    }
    return undefined;
  }

  /**
   * At shutdown: no more waiting, one last attempt for each job still unrecorded. What is left is logged with
   * its upstream task id, for the operator to reconcile, and counted.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const [id, entry] of this.unrecorded) {
      clearTimeout(entry.timer);
      if (entry.attempt && (await entry.attempt)) continue;
      if (!(await this.attempt(id, entry))) this.abandoned(entry);
    }
  }

  private abandoned(entry: Unrecorded): void {
    this.deps.metrics.unrecordedJob();
    this.deps.logger.error({ ...entry.site, upstream: entry.placement.upstream, upstreamId: entry.placement.task.id }, 'stopping with an upstream job the gateway could not record');
  }

  private schedule(id: string, entry: Unrecorded): void {
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      void this.attempt(id, entry).then((done) => {
        if (done || this.closed) return;
        entry.waitMs = Math.min(2 * entry.waitMs, ACTIVATION_BACKGROUND_MAX_MS);
        this.schedule(id, entry);
      });
    }, entry.waitMs);
    // The shutdown makes the last attempt itself: a pending timer must not hold the process.
    entry.timer.unref();
  }

  /** One background attempt; true once the job is recorded. */
  private attempt(id: string, entry: Unrecorded): Promise<boolean> {
    entry.attempt = this.activate(id, entry.placement).then(
      (job) => {
        this.unrecorded.delete(id);
        this.deps.logger.info({ ...entry.site, upstreamId: entry.placement.task.id }, 'upstream job recorded after the store came back');
        this.onRecorded(job);
        return true;
      },
      (err: unknown) => {
        this.failed(entry.site, entry.placement, err);
        return false;
      },
    );
    return entry.attempt;
  }

  private activate(id: string, p: PricedPlacement): Promise<JobRecord> {
    return this.deps.store.activateJob(id, p.task.id, p.keyFingerprint, p.task, this.deps.clock.now(), p.upstream, p.priceMicros);
  }

  /** The task id goes to every such line: until the store has it, the log is where an operator finds it. */
  private failed(site: ActivationSite, p: Placement, err: unknown, attempt?: number): void {
    this.deps.logger.error(
      { ...site, upstream: p.upstream, upstreamId: p.task.id, ...(attempt ? { attempt } : {}), err: { message: (err as Error).message } },
      'upstream accepted a create the gateway could not record yet; retrying',
    );
  }
}
