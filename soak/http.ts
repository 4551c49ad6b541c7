/**
 * The soak's HTTP: every request it makes goes through `call`, which spreads them over the replicas the way a
 * round-robin load balancer would and tallies each answer by kind and status (a connection error included).
 */

export type Kind = 'create' | 'replay' | 'poll' | 'download' | 'list' | 'admin';

export interface Answer {
  /** 0: no answer (connection refused or reset, timeout). */
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
  /** The error's `code` (or the connection error's), for the tally; undefined on a 2xx. */
  readonly code: string | undefined;
  json<T>(): T;
}

/** How long one request may take before the soak counts it as unanswered. */
const REQUEST_TIMEOUT_MS = 30_000;

export class Traffic {
  private next = 0;
  /** kind → answer label (`200`, `503 store_unavailable`, `connection error`) → count. */
  readonly tally = new Map<Kind, Map<string, number>>();

  constructor(private readonly replicas: () => readonly string[]) {}

  /** One request to the next replica in turn (or to `base` when given). */
  async call(kind: Kind, path: string, init: RequestInit = {}, base?: string): Promise<Answer> {
    const urls = this.replicas();
    const url = base ?? urls[this.next++ % urls.length]!;
    let answer: Answer;
    try {
      const res = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const body = Buffer.from(await res.arrayBuffer());
      const code = res.ok ? undefined : errorCode(body);
      answer = { status: res.status, headers: res.headers, body, code, json: <T>() => JSON.parse(body.toString('utf8')) as T };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const code = (err as Error).name === 'TimeoutError' ? 'timeout' : (cause?.code ?? 'connection error');
      answer = { status: 0, headers: new Headers(), body: Buffer.alloc(0), code, json: () => { throw new Error('no answer'); } };
    }
    this.count(kind, answer);
    return answer;
  }

  private count(kind: Kind, a: Answer): void {
    const label = a.status === 0 ? `no answer (${a.code})` : a.code ? `${a.status} ${a.code}` : String(a.status);
    const byLabel = this.tally.get(kind) ?? new Map<string, number>();
    byLabel.set(label, (byLabel.get(label) ?? 0) + 1);
    this.tally.set(kind, byLabel);
  }
}

function errorCode(body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: string | null; type?: string } };
    return parsed.error?.code ?? parsed.error?.type ?? 'error';
  } catch {
    return 'not json';
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What an answer asks the client to wait before it tries again (`retry-after-ms`, `retry-after`), within bounds. */
export function retryDelayMs(a: Answer, fallbackMs: number): number {
  const ms = Number(a.headers.get('retry-after-ms') ?? NaN);
  const s = Number(a.headers.get('retry-after') ?? NaN);
  const asked = Number.isFinite(ms) ? ms : Number.isFinite(s) ? s * 1000 : fallbackMs;
  return Math.min(Math.max(asked, 100), 5_000);
}
