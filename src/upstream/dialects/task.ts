import { isTerminal, type VideoError, type VideoStatus } from '../../domain/job.js';
import { clientSafeUpstreamText } from '../../observability/redact.js';

/**
 * Decoding the upstream's task object (the same for both families) into our own terms. Its quirks —
 * `processing`/`cancelled` statuses, `completed_at: 0`, an empty `error` object on success, `720P` sizes,
 * string seconds — stop here.
 */
export interface UpstreamTask {
  readonly id: string;
  readonly status: VideoStatus;
  readonly progress: number;
  readonly error: VideoError | null;
  /** Where the finished video lies, for kinds that name it (xAI's `video.url`); never shown to a client. */
  readonly mediaUrl?: string | undefined;
  /** When the upstream says the task ended (new-api's `completed_at`), for the notice-lag metric only. */
  readonly finishedAtMs?: number | undefined;
  /** What the upstream charged for the job, in micro-dollars, for kinds that say (xAI's `usage`). */
  readonly costMicros?: number | undefined;
}

type Mapping = { status: VideoStatus; errorCode?: string; errorMessage?: string };

/** The status table, after new-api's: every word the upstream kinds are known to use (xAI's among them). */
const STATUS_WORDS: Readonly<Record<string, Mapping>> = {
  queued: { status: 'queued' },
  pending: { status: 'queued' },
  submitted: { status: 'queued' },
  created: { status: 'queued' },
  starting: { status: 'queued' },
  processing: { status: 'in_progress' },
  in_progress: { status: 'in_progress' },
  running: { status: 'in_progress' },
  generating: { status: 'in_progress' },
  completed: { status: 'completed' },
  succeeded: { status: 'completed' },
  success: { status: 'completed' },
  done: { status: 'completed' },
  finished: { status: 'completed' },
  failed: { status: 'failed', errorCode: 'generation_failed', errorMessage: 'The video generation failed.' },
  error: { status: 'failed', errorCode: 'generation_failed', errorMessage: 'The video generation failed.' },
  cancelled: { status: 'failed', errorCode: 'cancelled', errorMessage: 'The video generation was cancelled upstream.' },
  canceled: { status: 'failed', errorCode: 'cancelled', errorMessage: 'The video generation was cancelled upstream.' },
  expired: { status: 'failed', errorCode: 'expired', errorMessage: 'The video generation expired before it finished.' },
};

export class GarbledTaskError extends Error {}

export const str = (v: unknown) => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');

/** Task ids run to a few dozen characters; media URLs (signed) to a few hundred. */
export const MAX_UPSTREAM_ID_CHARS = 256;
export const MAX_MEDIA_URL_CHARS = 8192;

/**
 * A value of an upstream's answer that the gateway stores and sends back upstream (a task id, a media URL):
 * one that is overlong or holds control characters would fail the store (PostgreSQL refuses a NUL) after the
 * upstream accepted the job, so the answer counts as garbled instead, as the caller's rules for that say.
 */
export function storable(v: unknown, max: number, what: string): string {
  const s = str(v);
  if (s.length > max || /[\u0000-\u001f\u007f]/.test(s)) throw new GarbledTaskError(`${what} is overlong or holds control characters`);
  return s;
}

/** `secrets`: the upstream keys, never to be echoed back in a failure reason. */
export function decodeTask(body: unknown, secrets: readonly string[] = []): UpstreamTask {
  if (typeof body !== 'object' || body === null) throw new GarbledTaskError('task is not a JSON object');
  const t = body as Record<string, unknown>;
  const id = storable(t.id, MAX_UPSTREAM_ID_CHARS, 'task id') || storable(t.task_id, MAX_UPSTREAM_ID_CHARS, 'task id');
  if (!id) throw new GarbledTaskError('task has no id');
  const task = taskFromWord(id, str(t.status), t.progress, t, secrets);
  const finishedAtMs = isTerminal(task.status) ? epochMs(t.completed_at) : undefined;
  return finishedAtMs === undefined ? task : { ...task, finishedAtMs };
}

/** Resellers give unix seconds or milliseconds (`0` or nothing while running). */
function epochMs(v: unknown): number | undefined {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) return undefined;
  return n < 1e11 ? n * 1000 : n;
}

/**
 * A task in our terms from an upstream's status word, progress and the object carrying its failure reason
 * (`error.message`, a string `error`, or `fail_reason`), whichever kind sent them.
 */
export function taskFromWord(id: string, statusWord: string, rawProgress: unknown, t: Record<string, unknown>, secrets: readonly string[]): UpstreamTask {
  const word = statusWord.trim().toLowerCase();
  // An unknown word is treated as still running: the tracker's age limit ends it if it never settles.
  const mapping = STATUS_WORDS[word] ?? { status: 'in_progress' };
  const error = mapping.status === 'failed' ? failure(t, mapping, secrets) : null;
  const n = Number(rawProgress);
  const progress = mapping.status === 'completed' ? 100 : Number.isFinite(n) ? Math.min(99, Math.max(0, Math.round(n))) : 0;
  return { id, status: mapping.status, progress, error };
}

/** Why a task failed: our word for its status, then the upstream's own reason, made fit for a client. */
function failure(t: Record<string, unknown>, mapping: Mapping, secrets: readonly string[]): VideoError {
  const upstreamError = typeof t.error === 'object' && t.error !== null ? (t.error as Record<string, unknown>) : undefined;
  const raw = str(upstreamError?.message) || (typeof t.error === 'string' ? t.error : '') || str(t.fail_reason);
  const said = raw ? clientSafeUpstreamText(raw, secrets) : '';
  const ours = mapping.errorMessage ?? 'The video generation failed.';
  return { code: mapping.errorCode ?? 'generation_failed', message: said ? `${ours} Upstream said: ${said}` : ours };
}
