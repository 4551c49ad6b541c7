import type { Charge, DueChecks, JobRecord, MoneyMove, VideoError, VideoStatus } from '../domain/job.js';
import type { Admission, QuotaPolicy } from '../domain/quota-policy.js';
import type { WebhookEventType } from '../domain/webhook-event.js';
import type { CopyLedger } from './copies.js';

/**
 * The store behind the gateway. Every method that counts against a quota is atomic on its own: the
 * embedded store runs it as one SQLite transaction, the shared one as one PostgreSQL transaction.
 */
export interface Team {
  readonly id: string;
  readonly name: string | null;
  readonly quota: QuotaPolicy;
  readonly createdAt: number;
}

export interface ApiKeyRecord {
  readonly id: string;
  readonly teamId: string;
  readonly name: string | null;
  readonly prefix: string;
  readonly quota: QuotaPolicy;
  readonly createdAt: number;
  readonly expiresAt: number | null;
  readonly revokedAt: number | null;
}

/** Who is calling: resolved from a key, carried through every route. */
export interface Principal {
  readonly teamId: string;
  readonly keyId: string;
  readonly teamPolicy: QuotaPolicy;
  readonly keyPolicy: QuotaPolicy;
}

export interface RequestCount {
  readonly teamId: string;
  readonly keyId: string;
  /** A moment inside the minute the requests were made in. */
  readonly atMs: number;
  readonly count: number;
}

/**
 * Told of each move of a job's video-seconds (reserved, settled, refunded) and of the money that moved with
 * them, once per move, for the metrics and the spend log.
 */
export type ChargeListener = (teamId: string, charge: Charge, seconds: number, money: MoneyMove) => void;

export type NewJob = Pick<JobRecord, 'id' | 'teamId' | 'keyId' | 'model' | 'prompt' | 'seconds' | 'resolution' | 'aspectRatio'> &
  Partial<Pick<JobRecord, 'sourceVideoId' | 'derivation' | 'estimateMicros'>>;

export interface TaskUpdate {
  readonly status: VideoStatus;
  readonly progress: number;
  readonly error: VideoError | null;
  /** Recorded when given (a later update without it keeps the last one). */
  readonly mediaUrl?: string | undefined;
  /** What the upstream says it charged (xAI's `usage.cost_in_usd_ticks`), in micro-dollars: a completed job's actual cost. */
  readonly costMicros?: number | undefined;
}

export interface ListOptions {
  readonly after?: string | undefined;
  readonly limit: number;
  readonly order: 'asc' | 'desc';
}

export interface PeriodUsage {
  readonly start: string;
  readonly video_seconds: number;
  readonly video_seconds_reserved: number;
  /** Dollars settled and still reserved (what counts against a budget), and the reserved part. */
  readonly usd: number;
  readonly usd_reserved: number;
  readonly requests: number;
}

/** One model's share of a period's usage, from the jobs charged to it. */
export interface ModelPeriodUsage {
  readonly video_seconds: number;
  readonly video_seconds_reserved: number;
  readonly usd: number;
  readonly usd_reserved: number;
  readonly jobs: number;
}
export interface ModelUsage {
  readonly model: string;
  readonly day: ModelPeriodUsage;
  readonly month: ModelPeriodUsage;
}

/** Why a team could not be created: its id is taken by a live team, or belonged to a deleted one. */
export type CreateTeamResult = { readonly ok: true; readonly team: Team } | { readonly ok: false; readonly reason: 'exists' | 'deleted' };

/**
 * A job's next status check (§11), due `inMs` from now on the store's clock (null: the due time stays as it
 * is), the status calls made for it since the last such record, and what the latest of them saw of a job
 * still running (`seen`).
 */
export interface CheckSchedule {
  readonly id: string;
  readonly inMs: number | null;
  readonly checks: number;
  readonly seen?: ActiveStatus | undefined;
}

/** What a status call saw of a job still running: its progress is written with its next check (scheduleChecks). */
export interface ActiveStatus {
  readonly status: 'queued' | 'in_progress';
  readonly progress: number;
}

/** What the tracker's worklist holds beyond the jobs due now (tests and operators sweep everything). */
export interface DueJobsOptions {
  /** Jobs due within this long from now count as due. */
  readonly horizonMs: number;
  /** A create still without an upstream id is handed out once it is this old (it may have died with its process). */
  readonly pendingGraceMs: number;
}

/** How a webhook claim shares out among teams: at most `perTeam` of a team's deliveries in flight here. */
export interface DeliveryShares {
  readonly perTeam: number;
  /** Deliveries of each team already in flight here. */
  readonly busy: Readonly<Record<string, number>>;
}

/** What becomes of the reservation a deleted job still holds. */
export type HeldReservation = 'settle' | 'refund';
/**
 * A delete's decision on a reservation: given, or taken on the job as the delete's transaction finds it (so
 * that a create activated after the caller read the job is seen). Asked only of a job still holding one.
 */
export type ReservationOnDelete = HeldReservation | ((job: JobRecord) => HeldReservation);

export interface TeamUsage {
  readonly day: PeriodUsage;
  readonly month: PeriodUsage;
  readonly activeJobs: number;
  readonly requestsThisMinute: number;
  readonly daily: ReadonlyArray<{ date: string; video_seconds: number; usd: number; requests: number }>;
}

/** A counter row: what a scope (`team:<id>`, `key:<id>`) used in one minute, day or month bucket. */
export interface CounterRecord {
  readonly scope: string;
  readonly bucket: string;
  readonly requests: number;
  readonly secondsReserved: number;
  readonly secondsSettled: number;
  readonly usdReservedMicros: number;
  readonly usdSettledMicros: number;
}

/**
 * A store's whole content as store-neutral records, for copying one store into another (`migrate-sqlite`):
 * deleted teams (tombstones), revoked keys with their hashes, jobs in every state with their charges, the
 * usage counters, the webhook endpoints with their secrets (current and previous, so that receivers verify as
 * before), and the webhook outbox in every state. An export yields teams, then keys, then jobs in creation
 * order, then counters, then endpoints, then deliveries in creation order. A delivery carries no lease: a
 * lease is held by a worker of the store it was taken in, and none of those holds one on the copy.
 */
export type StoreRecord =
  | { readonly kind: 'team'; readonly team: Team; readonly deletedAt: number | null }
  | { readonly kind: 'key'; readonly key: ApiKeyRecord; readonly hash: string }
  | { readonly kind: 'job'; readonly job: JobRecord; readonly deletedAt: number | null }
  | { readonly kind: 'counter'; readonly counter: CounterRecord }
  | { readonly kind: 'webhook_endpoint'; readonly endpoint: WebhookEndpoint }
  | { readonly kind: 'webhook_delivery'; readonly delivery: WebhookDelivery };

/** Per kind of record: how many an import added, and how many were there already (and were left as they were). */
export type ImportSummary = Record<StoreRecord['kind'], { copied: number; existing: number }>;

/**
 * A budget alert (§10) for the outbox: `key` makes it once-only (one per team, period, period start and
 * threshold, on any replica), `data` is the event's data.
 */
export interface BudgetAlert {
  readonly key: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** A team's webhook endpoint. The secrets are kept because every delivery is signed with them. */
export interface WebhookEndpoint {
  readonly teamId: string;
  readonly url: string;
  readonly events: readonly WebhookEventType[];
  readonly enabled: boolean;
  readonly secret: string;
  /** The secrets that rotations replaced, newest first, each signing until its own `expiresAtMs`. */
  readonly previousSecrets: readonly RetiredSecret[];
  /** Unix seconds. */
  readonly createdAt: number;
}

export interface RetiredSecret {
  readonly secret: string;
  readonly expiresAtMs: number;
}

/** A rotation refused leaves the endpoint as it was: none there (undefined), or too many secrets still signing. */
export type SecretRotation = { readonly ok: true; readonly endpoint: WebhookEndpoint } | { readonly ok: false; readonly endpoint: WebhookEndpoint | undefined };

export type WebhookEndpointInput = Pick<WebhookEndpoint, 'url' | 'events' | 'enabled'>;

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/**
 * One event in the outbox and the state of its delivery. Written in the same transaction as the job's
 * terminal status; the event (its id, type, video and time) never changes, so every attempt sends the same
 * body under the same `webhook-id`.
 */
export interface WebhookDelivery {
  readonly id: string;
  readonly eventId: string;
  readonly teamId: string;
  /** The video the event is about; for an event about no video (a budget alert), the key that makes it once-only. */
  readonly videoId: string;
  readonly type: WebhookEventType;
  /** The event's `data` when it is about no video; null for a video event, whose data is `{id: videoId}`. */
  readonly data: Readonly<Record<string, unknown>> | null;
  /** Unix seconds: the event's `created_at`. */
  readonly createdAt: number;
  readonly status: DeliveryStatus;
  /** Attempts that ended (an attempt cut short by a dying process is not counted, and is made again). */
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastError: string | null;
  readonly lastLatencyMs: number | null;
  readonly lastAttemptAtMs: number | null;
  readonly nextAttemptAtMs: number | null;
  readonly deliveredAtMs: number | null;
}

/** A delivery handed to one worker until `leaseUntilMs`; only the holder of `leaseToken` may record its attempt. */
export interface ClaimedDelivery extends WebhookDelivery {
  readonly leaseToken: string;
}

/** How an attempt ended: delivered, to be retried after `retryInMs`, or failed for good (`retryInMs: null`). */
export interface AttemptResult {
  readonly delivered: boolean;
  readonly status: number | null;
  readonly error: string | null;
  readonly latencyMs: number;
  readonly retryInMs: number | null;
}

/**
 * The store did not answer (down, unreachable, or slower than its timeouts). Nothing was admitted without
 * being counted; the caller may retry shortly.
 */
/**
 * A change that a replica's caches would not show by themselves (see `Store.onChange`).
 * - `key`, `team`: a key revoked, a team's policy changed, a team deleted (and its keys revoked with it).
 * - `job`: a video deleted by its team (`deleted`), or a create abandoned and hidden (not `deleted`: it may
 *   still be brought back by its late activation, so a cached copy is dropped, never tombstoned).
 * - `reset`: changes may have been missed (the shared store's listening connection dropped): drop everything.
 */
export type StoreChange =
  | { readonly kind: 'key'; readonly keyId: string }
  | { readonly kind: 'team'; readonly teamId: string }
  | { readonly kind: 'job'; readonly jobId: string; readonly deleted: boolean }
  | { readonly kind: 'reset' };

export type ChangeListener = (change: StoreChange) => void;

/**
 * A request's claim on an `Idempotency-Key` (§2), which is kept per team. `fingerprint` identifies the
 * request (its normalized form), `jobId` is the video id its job is admitted under should it be the first,
 * and `holder` names this attempt: only the holder renews, answers or releases the key.
 */
export interface IdempotencyClaimRequest {
  readonly teamId: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly jobId: string;
  readonly holder: string;
  /** The holder renews its lease while it works; a lease left to run out means the holder died. */
  readonly leaseMs: number;
  /** How long the key and its answer are kept from its first use. */
  readonly ttlMs: number;
}

/** An error answer kept as the key's answer: the OpenAI error's fields and the headers it was sent with. */
export interface StoredError {
  readonly status: number;
  readonly type: string;
  readonly code: string | null;
  readonly message: string;
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;
}

/** The answer every repeat of a key gets: its video (as it is now), or the error it ended with. */
export type IdempotentAnswer = { readonly kind: 'video'; readonly jobId: string } | { readonly kind: 'error'; readonly error: StoredError };

/**
 * What became of the job of a key whose holder stopped renewing its lease: never admitted (`absent`: nothing
 * happened), admitted but no upstream id recorded (`unplaced`: the upstream may or may not have it), or
 * accepted by the upstream (`placed`).
 */
export type OrphanedJob = 'absent' | 'unplaced' | 'placed';

export type IdempotencyClaim =
  /** The key is the caller's to work under, with this job id; `orphan` when it was taken over from a dead holder. */
  | { readonly kind: 'claimed'; readonly jobId: string; readonly orphan?: OrphanedJob }
  /** The key was first used with a different request. */
  | { readonly kind: 'mismatch' }
  /** Its holder is still working (its lease runs). */
  | { readonly kind: 'in_progress' }
  | { readonly kind: 'answered'; readonly answer: IdempotentAnswer };

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
}

export interface Store {
  readonly kind: string;
  /** Stored results (§12): which videos are copied, and which copies are to go. */
  readonly copies: CopyLedger;

  /** Counts one request against the per-minute limits of the key and its team, or refuses it. */
  admitRequest(principal: Principal, nowMs: number): Promise<Admission>;
  /** Adds requests that no limit applies to, counted in memory and written in batches. */
  countRequests(counts: readonly RequestCount[]): Promise<void>;
  /**
   * Reserves the seconds and a concurrency slot and records the job — or refuses both. The create's request
   * was already counted on arrival (admitRequest or countRequests), so no per-minute limit is checked or
   * counted here, and the admission carries no rate (`rate: null`).
   */
  admitJob(principal: Principal, job: NewJob, nowMs: number): Promise<Admission>;
  /**
   * The upstream accepted the create. A job abandoned meanwhile (its answer came later than another
   * replica's tracker would wait) is brought back as if it had never been: visible again, its seconds
   * and its slot reserved again, whatever the limits now say, since the upstream runs and bills it anyway.
   * `upstreamName`: which configured upstream accepted it (with `upstreamKeyFp`, the job's placement), and
   * `priceMicros` the job's cost at that upstream's price (`JobRecord.priceMicros`).
   */
  activateJob(id: string, upstreamId: string, upstreamKeyFp: string, task: TaskUpdate, nowMs: number, upstreamName: string, priceMicros?: number | null): Promise<JobRecord>;
  /**
   * The upstream refused the create or its answer never came: refund the job and hide it from its team
   * (the record stays, for the operator and for a late activation). Does nothing to a job that already
   * has its upstream id: an activation that won the race stands.
   */
  abandonJob(id: string, nowMs: number): Promise<void>;
  /**
   * Records the latest status; a terminal one settles (completed) or refunds (failed) the reservation once
   * (a completed job at its actual cost: the upstream's `costMicros` where given, else its price) and, in the
   * same transaction, puts the event in the webhook outbox when the team's enabled endpoint
   * subscribes to it: exactly one event per job, whichever caller saw the end first.
   */
  updateJob(id: string, task: TaskUpdate, nowMs: number): Promise<JobRecord | undefined>;
  getJob(teamId: string, id: string): Promise<JobRecord | undefined>;
  listJobs(teamId: string, opts: ListOptions): Promise<{ jobs: JobRecord[]; hasMore: boolean }>;
  /**
   * Marks the job deleted for its team (it vanishes from `getJob`, `listJobs` and `activeJobs`). A
   * reservation it still holds is settled (`'settle'`: the job was running) or refunded (`'refund'`: its
   * outcome could not be learned), once, in the same transaction; a job that had ended keeps its charge.
   */
  deleteJob(teamId: string, id: string, nowMs: number, held: ReservationOnDelete): Promise<boolean>;
  /** Jobs still running upstream, least recently refreshed first. */
  activeJobs(limit: number): Promise<JobRecord[]>;
  /**
   * The tracker's worklist (§11): up to `limit` active jobs whose next check is due (see DueJobsOptions) and
   * that no other claim holds, taken in turns across teams (each team's most overdue first, then the next of
   * each), so that one team's many jobs never starve another's few. Each is held until `scheduleChecks` ends
   * the claim or `leaseMs` have passed, so replicas never check one job at once and a replica that dies holds
   * nothing past its lease. Due times and leases run on the store's clock (the database's, when shared).
   */
  claimDueJobs(limit: number, leaseMs: number, nowMs: number, opts: DueJobsOptions): Promise<JobRecord[]>;
  /**
   * Records each job's next check and the status calls made for it, marks a job with calls as looked at
   * (its refreshed-at time), and ends this process's claim on it. What a call saw of a running job (`seen`)
   * only moves it forward (queued to in_progress, progress up) and never touches an ended job, so that a
   * write that comes late (another replica's, or this one's after an end) cannot undo a newer one.
   */
  scheduleChecks(items: readonly CheckSchedule[], nowMs: number): Promise<void>;
  /** The tracker's backlog, for the metrics and the admin view. */
  dueChecks(nowMs: number): Promise<DueChecks>;
  /** Its `nextInMs` alone, for the tracker's sleep: no count of a backlog of thousands at each look. */
  nextCheckInMs(nowMs: number): Promise<number | null>;
  /** The same, for one team. */
  activeJobsOfTeam(teamId: string, limit: number): Promise<JobRecord[]>;
  /** Per team with active jobs: how many (metrics). */
  activeJobStats(): Promise<Array<{ teamId: string; jobs: number }>>;

  /** Refuses an id held by a live team and, for ever, the id of a deleted team (see `deleteTeam`). */
  createTeam(team: { id: string; name: string | null; quota: QuotaPolicy }, nowMs: number): Promise<CreateTeamResult>;
  /** Live teams only: a deleted team is not found by `getTeam`, `listTeams`, `updateTeam` or `findKeyByHash`. */
  getTeam(id: string): Promise<Team | undefined>;
  listTeams(): Promise<Team[]>;
  updateTeam(id: string, patch: { name?: string | null; quota?: QuotaPolicy }): Promise<Team | undefined>;
  /**
   * Revokes the team's keys and tombstones its id: jobs, counters and usage stay keyed by the id (the
   * record of what the team used), so the id is never given to a new team, which would inherit them. Its
   * webhook endpoint is removed: no event is sent for a deleted team.
   */
  deleteTeam(id: string, nowMs: number): Promise<boolean>;

  createKey(key: Omit<ApiKeyRecord, 'revokedAt'> & { hash: string }): Promise<ApiKeyRecord>;
  listKeys(teamId: string): Promise<ApiKeyRecord[]>;
  revokeKey(id: string, nowMs: number): Promise<ApiKeyRecord | undefined>;
  findKeyByHash(hash: string): Promise<{ key: ApiKeyRecord; team: Team } | undefined>;

  /**
   * Creates the team's endpoint (with `secret`) or replaces its url, events and enabled flag (keeping its
   * secrets); `created` says which.
   */
  putWebhook(teamId: string, input: WebhookEndpointInput, secret: string, nowMs: number): Promise<{ endpoint: WebhookEndpoint; created: boolean }>;
  getWebhook(teamId: string): Promise<WebhookEndpoint | undefined>;
  deleteWebhook(teamId: string): Promise<boolean>;
  /**
   * The new secret signs from now on; the current one joins the previous secrets, signing for `overlapMs` more,
   * and those past their own expiry are dropped. Refused while `maxPrevious` previous secrets still sign.
   */
  rotateWebhookSecret(teamId: string, secret: string, overlapMs: number, maxPrevious: number, nowMs: number): Promise<SecretRotation>;
  /**
   * Hands out up to `limit` pending deliveries that are due and not leased, leasing each for `leaseMs`
   * under a fresh token, in turns across teams (each team's earliest first), and with `shares` no more of a
   * team's than bring it to `perTeam` in flight here. Replicas claiming at once never get the same delivery;
   * one whose holder died is handed out again once its lease has run out.
   */
  claimDeliveries(limit: number, leaseMs: number, nowMs: number, shares?: DeliveryShares): Promise<ClaimedDelivery[]>;
  /** Records an attempt and ends the lease; false (nothing written) when the lease was lost meanwhile. */
  recordAttempt(id: string, leaseToken: string, result: AttemptResult, nowMs: number): Promise<boolean>;
  /** The team's most recent deliveries, newest first. */
  listDeliveries(teamId: string, limit: number): Promise<WebhookDelivery[]>;
  /** Makes a delivery due now with a fresh set of attempts, whatever its state. */
  replayDelivery(teamId: string, id: string, nowMs: number): Promise<WebhookDelivery | undefined>;
  /**
   * Puts a budget alert in the outbox when the team's enabled endpoint subscribes to `budget.threshold` and no
   * alert with its key was ever queued; true if it was queued now.
   */
  enqueueBudgetAlert(teamId: string, alert: BudgetAlert, nowMs: number): Promise<boolean>;


  /**
   * Claims an `Idempotency-Key`, atomically across replicas: a key unknown, or past its time, becomes the
   * caller's; one first used with another fingerprint is a `mismatch`; an answered one gives its answer; one
   * whose holder's lease still runs is `in_progress`; one whose holder let the lease run out (died) is taken
   * over, its job id kept and `orphan` saying what became of that job. Leases and times run on the store's clock.
   */
  claimIdempotencyKey(request: IdempotencyClaimRequest, nowMs: number): Promise<IdempotencyClaim>;
  /** Extends the holder's lease; false when the key is no longer its own (taken over, answered or gone). */
  renewIdempotencyKey(teamId: string, key: string, holder: string, leaseMs: number, nowMs: number): Promise<boolean>;
  /** Records the key's answer, by its holder only; false when the key is no longer its own. */
  answerIdempotencyKey(teamId: string, key: string, holder: string, answer: IdempotentAnswer): Promise<boolean>;
  /** Forgets a key whose request changed nothing, so that the same request may be made again; its holder's only. */
  releaseIdempotencyKey(teamId: string, key: string, holder: string): Promise<void>;
  /** Deletes up to `limit` keys past their time; returns how many it deleted. */
  sweepIdempotencyKeys(nowMs: number, limit: number): Promise<number>;

  usage(teamId: string, nowMs: number, days: number): Promise<TeamUsage>;
  /** The current day's and month's usage per model, from the jobs charged to them (refunded ones left out). */
  usageByModel(teamId: string, nowMs: number): Promise<ModelUsage[]>;
  /**
   * Hears every change made through this store once it has committed, synchronously; on the shared store
   * also those made by any other replica or CLI on the same database, as they commit (LISTEN/NOTIFY), and a
   * `reset` whenever some may have been missed. Returns what unsubscribes.
   */
  onChange(listener: ChangeListener): () => void;
  /** Whether the store answers; for /readyz. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
