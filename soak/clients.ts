/**
 * The soak's clients: each one creates videos with an `Idempotency-Key` of its own, one after another, retries a
 * create carefully (on a connection error, a 5xx, 409 `request_in_progress` or a 429 that says when: always with
 * the same key), then follows the video to its end, downloads it, and lists its team's videos now and then.
 */
import { videoByte } from '../src/simulator/server.js';
import { FAIL_PROMPT_MARK } from '../src/simulator/shared.js';
import { retryDelayMs, sleep, type Answer, type Traffic } from './http.js';

export interface ClientPlan {
  /** How long a careful client keeps retrying one create before it gives up. */
  readonly createPatienceMs: number;
  /** How long it follows a video before it counts it as unfinished. */
  readonly followMs: number;
  readonly videoBytes: number;
}

export type Followed = 'completed' | 'failed' | 'cancelled' | 'lost' | 'unfinished';

/** Everything the soak learned about one create, by its Idempotency-Key. */
export interface KeyRecord {
  readonly team: string;
  readonly key: string;
  readonly prompt: string;
  readonly seconds: number;
  /** The prompt asks the simulator for a failed video. */
  readonly asksFailure: boolean;
  attempts: number;
  /** Every answer to the create, in order (labels as in the tally). */
  readonly answers: string[];
  /** Every video id a 200 named for the key, deliberate repeats included: one, if the key holds. */
  readonly videoIds: Set<string>;
  /** Deliberate repeats after the video was answered, and how many came back `idempotent-replayed: true`. */
  replays: number;
  replayedHeader: number;
  outcome: 'video' | 'refused' | 'gave up';
  /** What following the video showed: its end state, `lost` (404) or `unfinished`. */
  followed?: Followed;
  /** For a completed video: whether its bytes arrived whole and right. */
  downloaded?: boolean;
  /** Refusals (4xx) of its download after the client was told it completed: each is a client-visible error. */
  readonly downloadRefusals: string[];
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const label = (a: Answer) => (a.status === 0 ? `no answer (${a.code})` : a.code ? `${a.status} ${a.code}` : String(a.status));

/**
 * How often a careful client asks again after a 5xx that says `x-should-retry: false`: with its key it is safe to
 * (the key never starts a second job, and may by then answer the video), but such an answer may be the key's for good.
 */
const FINAL_LOOKING_RETRIES = 3;

/** A 429 of a rate or concurrency limit that says when to come back (not a spent budget): a client waits and asks again. */
const rateLimited = (a: Answer) => a.status === 429 && a.code !== 'insufficient_quota' && a.headers.has('retry-after');

/** Whether a careful client holding an Idempotency-Key asks again after this answer. */
function retryable(a: Answer, finalLooking: number): boolean {
  if (a.status === 0) return true;
  if (a.status >= 500) return a.headers.get('x-should-retry') !== 'false' || finalLooking <= FINAL_LOOKING_RETRIES;
  if (a.status === 409) return a.code === 'request_in_progress';
  return rateLimited(a);
}

export class Client {
  private n = 0;

  constructor(
    private readonly traffic: Traffic,
    private readonly team: string,
    private readonly apiKey: string,
    private readonly name: string,
    private readonly plan: ClientPlan,
    private readonly records: KeyRecord[],
    /** Where its first request goes (a burst aimed at one replica); then round-robin as every request. */
    private firstTo: string | undefined = undefined,
  ) {}

  private get auth() {
    return { authorization: `Bearer ${this.apiKey}` };
  }

  async run(stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      const rec = await this.one();
      // Refused for good (a spent budget): a client would not hammer it.
      if (rec.outcome !== 'video') await sleep(2_000);
      if (this.n % 3 === 0) await this.traffic.call('list', '/v1/videos?limit=20&order=desc', { headers: this.auth });
    }
  }

  /** One video: created under a new key, now and then asked for again under it, followed, downloaded. */
  async one(): Promise<KeyRecord> {
    this.n++;
    const rec = await this.create();
    if (rec.outcome === 'video') {
      if (this.n % 5 === 0) await this.repeat(rec);
      await this.follow(rec, [...rec.videoIds][0]!);
    }
    return rec;
  }

  /** Every third create is multipart (the OpenAI SDKs' encoding), the others JSON; every sixth asks for a failure. */
  private body(rec: KeyRecord): { body: FormData | string; headers: Record<string, string> } {
    if (this.n % 3 === 0) {
      const form = new FormData();
      form.set('model', 'grok-imagine-video');
      form.set('prompt', rec.prompt);
      form.set('seconds', String(rec.seconds));
      return { body: form, headers: {} };
    }
    return { body: JSON.stringify({ model: 'grok-imagine-video', prompt: rec.prompt, seconds: String(rec.seconds) }), headers: { 'content-type': 'application/json' } };
  }

  private send(kind: 'create' | 'replay', rec: KeyRecord): Promise<Answer> {
    const { body, headers } = this.body(rec);
    const to = this.firstTo;
    this.firstTo = undefined;
    return this.traffic.call(kind, '/v1/videos', { method: 'POST', body, headers: { ...this.auth, ...headers, 'idempotency-key': rec.key } }, to);
  }

  private async create(): Promise<KeyRecord> {
    const key = `${this.name}.${this.n}`;
    const asksFailure = this.n % 6 === 0;
    const rec: KeyRecord = {
      team: this.team,
      key,
      prompt: `soak video ${key}${asksFailure ? ` ${FAIL_PROMPT_MARK}` : ''}`,
      seconds: 1 + (this.n % 6),
      asksFailure,
      attempts: 0,
      answers: [],
      videoIds: new Set(),
      replays: 0,
      replayedHeader: 0,
      outcome: 'gave up',
      downloadRefusals: [],
    };
    this.records.push(rec);
    const giveUpAt = performance.now() + this.plan.createPatienceMs;
    let finalLooking = 0;
    for (;;) {
      rec.attempts++;
      const a = await this.send('create', rec);
      rec.answers.push(label(a));
      if (a.status === 200) {
        rec.videoIds.add(a.json<{ id: string }>().id);
        rec.outcome = 'video';
        return rec;
      }
      if (a.status >= 500 && a.headers.get('x-should-retry') === 'false') finalLooking++;
      if (!retryable(a, finalLooking)) {
        rec.outcome = 'refused';
        return rec;
      }
      if (performance.now() > giveUpAt) return rec;
      await sleep(retryDelayMs(a, Math.min(500 * rec.attempts, 3_000)));
    }
  }

  /** The same create again under its key, as a client that lost track of it would: one attempt. */
  private async repeat(rec: KeyRecord): Promise<void> {
    rec.replays++;
    const a = await this.send('replay', rec);
    if (a.status !== 200) return;
    rec.videoIds.add(a.json<{ id: string }>().id);
    if (a.headers.get('idempotent-replayed') === 'true') rec.replayedHeader++;
  }

  private async follow(rec: KeyRecord, id: string): Promise<void> {
    const until = performance.now() + this.plan.followMs;
    for (;;) {
      const a = await this.traffic.call('poll', `/v1/videos/${id}`, { headers: this.auth });
      if (a.status === 200) {
        const { status } = a.json<{ status: string }>();
        if (TERMINAL.has(status)) {
          rec.followed = status as Followed;
          break;
        }
      } else if (a.status === 404) {
        rec.followed = 'lost';
        return;
      }
      if (performance.now() > until) {
        rec.followed = 'unfinished';
        return;
      }
      await sleep(a.status === 200 ? Number(a.headers.get('openai-poll-after-ms') ?? 1_000) : retryDelayMs(a, 1_000));
    }
    if (rec.followed === 'completed') rec.downloaded = await this.download(rec, id);
  }

  /**
   * The video's bytes, checked against the simulator's pattern; a few attempts, as a downloader would make. A
   * key's per-minute limit may refuse a download as it refuses any request: that says nothing of the video, so
   * the client waits as told and it is not counted a refusal.
   */
  private async download(rec: KeyRecord, id: string): Promise<boolean> {
    for (let attempt = 1; attempt <= 5; attempt++) {
      const a = await this.traffic.call('download', `/v1/videos/${id}/content`, { headers: this.auth });
      if (a.status === 200) return a.body.length === this.plan.videoBytes && a.body.every((b, i) => b === videoByte(i));
      if (a.status >= 400 && a.status < 500 && !rateLimited(a)) rec.downloadRefusals.push(label(a));
      await sleep(retryDelayMs(a, 1_000));
    }
    return false;
  }
}
