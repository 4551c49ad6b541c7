import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../domain/quota-policy.js';
import type { ClaimedDelivery, Store, WebhookEndpoint } from '../store/types.js';
import { eventBody } from './event.js';
import { SendAbortedError, type Attempt, type WebhookSender } from './sender.js';
import { activeSecrets, signatureHeader } from './signing.js';
import { Wakeup } from '../domain/wakeup.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
/**
 * The wait after each failed attempt; the last attempt is the one after the last wait. Twelve attempts over
 * about 32 hours: a receiver down for a day still gets every event.
 */
export const RETRY_DELAYS_MS: readonly number[] = [5 * S, 30 * S, 2 * M, 10 * M, 30 * M, 1 * H, 2 * H, 4 * H, 6 * H, 8 * H, 10 * H];
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;
/** Each wait is stretched or shrunk by up to this much, so that retries of many events do not arrive in step. */
const JITTER = 0.2;

/** The wait after `attempts` ended attempts, or null when that was the last. */
export function retryDelay(attempts: number, random: () => number = Math.random): number | null {
  const base = RETRY_DELAYS_MS[attempts - 1];
  return base === undefined ? null : Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

export interface WebhookWorkerOptions {
  /** How often the outbox is looked at when nothing wakes the worker sooner; 0 leaves delivery to other replicas. */
  readonly pollIntervalMs: number;
  /** The longest a send takes; a claim is leased for longer (see leaseMs). */
  readonly timeoutMs: number;
}

/** Sends in flight at once in one process. */
export const MAX_SENDS_IN_FLIGHT = 64;
/** Sends of one team in flight at once in one process: a team whose endpoint hangs holds no more than these. */
export const MAX_SENDS_PER_TEAM = 4;
/**
 * After a claim that found events, the next waits this long: a claim ranks every due event across teams,
 * which under a backlog of thousands is worth doing for the sends that ended meanwhile, not for each one.
 */
const CLAIM_PAUSE_MS = 25;

/** Why an event cannot be sent at all (the endpoint changed since it was queued); the operator may replay it. */
const undeliverable = (endpoint: WebhookEndpoint | undefined) => (endpoint ? 'endpoint disabled' : 'endpoint deleted');

/**
 * Delivers the outbox, at least once per event: claims due deliveries under a lease, sends them, records each
 * attempt. A replica that dies mid-send recorded nothing; the lease runs out and a replica sends again, with
 * the same `webhook-id`, so a receiver may see an event twice and can tell.
 *
 * One team's slow or failing endpoint never delays another team's events (§11): the worker never waits for a
 * batch, but claims again as soon as there is room; a claim takes the teams in turns and no more of a team's
 * events than bring it to MAX_SENDS_PER_TEAM in flight here, so a hanging endpoint holds at most that many
 * sends while every other team's go out.
 */
export class WebhookWorker {
  private readonly stopping = new AbortController();
  private readonly wakeup = new Wakeup();
  private loop: Promise<void> | undefined;
  /** Sends in flight here, per team and in all. */
  private readonly busy = new Map<string, number>();
  private inFlight = 0;
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly deps: { store: Store; sender: WebhookSender; clock: Clock; logger: Logger; metrics: Metrics },
    private readonly opts: WebhookWorkerOptions,
  ) {}

  /**
   * A send ends within the timeout, and its record follows at once: three times that is ample for a live
   * holder, and how long a dead one delays its deliveries. A holder that is merely late records nothing (its
   * lease was taken over), and the event goes out once more with the same id: at least once, never lost.
   */
  private get leaseMs() {
    return 3 * this.opts.timeoutMs;
  }

  start(): void {
    if (this.opts.pollIntervalMs <= 0) return;
    this.loop = this.run();
  }

  /** Looks at the outbox now: an event may have been queued here. */
  wake(): void {
    this.wakeup.wakeUp();
  }

  /** Sends in flight are cut short and left unrecorded: their leases run out and they are sent again. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wakeup.wakeUp();
    await this.loop;
    await Promise.all(this.sending);
  }

  /** One look, on demand (tests): claims what is due, waits for those sends, and returns how many it claimed. */
  async runOnce(): Promise<number> {
    const sends = await this.claim();
    await Promise.all(sends);
    return sends.length;
  }

  private async run(): Promise<void> {
    while (!this.stopping.signal.aborted) {
      let claimed = 0;
      try {
        claimed = (await this.claim()).length;
      } catch (err) {
        this.deps.logger.error({ err: { message: (err as Error).message } }, 'webhook delivery pass failed');
      }
      // Something was due, so more may be: look again shortly. Otherwise wait for the interval, a send that
      // ends (room again) or an event queued here.
      if (claimed > 0) await new Promise((resolve) => setTimeout(resolve, CLAIM_PAUSE_MS));
      else await this.wakeup.sleep(this.opts.pollIntervalMs);
    }
  }

  /** Claims what is due within this process's bounds and starts sending it; returns the sends. */
  private async claim(): Promise<Array<Promise<void>>> {
    const { store, clock } = this.deps;
    const room = MAX_SENDS_IN_FLIGHT - this.inFlight;
    if (room <= 0) return [];
    const claimed = await store.claimDeliveries(room, this.leaseMs, clock.now(), { perTeam: MAX_SENDS_PER_TEAM, busy: Object.fromEntries(this.busy) });
    const endpoints = new Map<string, Promise<WebhookEndpoint | undefined>>();
    const endpointOf = (teamId: string) => {
      let e = endpoints.get(teamId);
      if (!e) endpoints.set(teamId, (e = store.getWebhook(teamId)));
      return e;
    };
    return claimed.map((d) => this.launch(d, endpointOf(d.teamId)));
  }

  private launch(d: ClaimedDelivery, endpoint: Promise<WebhookEndpoint | undefined>): Promise<void> {
    this.busy.set(d.teamId, (this.busy.get(d.teamId) ?? 0) + 1);
    this.inFlight++;
    const send = endpoint
      .then((e) => this.deliver(d, e))
      .catch((err: unknown) => {
        this.deps.logger.error({ deliveryId: d.id, teamId: d.teamId, err: { message: (err as Error).message } }, 'webhook delivery failed to run');
      })
      .finally(() => {
        const left = this.busy.get(d.teamId)! - 1;
        if (left === 0) this.busy.delete(d.teamId);
        else this.busy.set(d.teamId, left);
        this.inFlight--;
        this.sending.delete(send);
        this.wakeup.wakeUp();
      });
    this.sending.add(send);
    return send;
  }

  private async deliver(d: ClaimedDelivery, endpoint: WebhookEndpoint | undefined): Promise<void> {
    const { clock } = this.deps;
    let attempt: Attempt;
    if (!endpoint?.enabled) {
      attempt = { outcome: 'refused', status: null, error: undeliverable(endpoint), latencyMs: 0 };
    } else {
      const body = eventBody(d);
      const now = clock.now();
      const timestamp = Math.floor(now / 1000);
      const headers = {
        'webhook-id': d.eventId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(activeSecrets(endpoint, now), d.eventId, timestamp, body),
      };
      try {
        attempt = await this.deps.sender.send(endpoint.url, headers, body, this.stopping.signal);
      } catch (err) {
        if (err instanceof SendAbortedError) return;
        throw err;
      }
    }
    const attempts = d.attempts + 1;
    const delivered = attempt.outcome === 'delivered';
    // An endpoint that is gone or disabled will not be back by itself: no point in retrying.
    const retryInMs = delivered || !endpoint?.enabled ? null : retryDelay(attempts);
    const recorded = await this.deps.store.recordAttempt(
      d.id,
      d.leaseToken,
      { delivered, status: attempt.status, error: attempt.error, latencyMs: attempt.latencyMs, retryInMs },
      clock.now(),
    );
    const result = delivered ? 'delivered' : retryInMs === null ? 'failed' : 'retrying';
    this.deps.metrics.webhookDelivery(result);
    const line = { deliveryId: d.id, eventId: d.eventId, teamId: d.teamId, type: d.type, attempts, status: attempt.status, outcome: attempt.outcome, latencyMs: Math.round(attempt.latencyMs) };
    if (!recorded) this.deps.logger.warn(line, 'webhook attempt made after its lease ran out; another replica has it');
    else if (result === 'failed') this.deps.logger.warn({ ...line, error: attempt.error }, 'webhook delivery failed for good');
    else if (result === 'retrying') this.deps.logger.info({ ...line, error: attempt.error, retryInMs }, 'webhook attempt failed; will retry');
    else this.deps.logger.debug(line, 'webhook delivered');
  }
}
