import { Agent, request } from 'undici';
import { USER_AGENT } from '../upstream/client.js';
import { RefusedDestinationError, type DestinationPolicy } from './destination.js';

/** What a receiver may answer is read this far and discarded; a larger answer closes the connection. */
export const MAX_RESPONSE_BYTES = 64 * 1024;

export type AttemptOutcome = 'delivered' | 'http_error' | 'timeout' | 'network_error' | 'refused';

export interface Attempt {
  readonly outcome: AttemptOutcome;
  readonly status: number | null;
  /** For the operator: a status, a timeout, a refusal reason; never the receiver's body. */
  readonly error: string | null;
  readonly latencyMs: number;
}

/** A send cut short by the gateway itself (shutdown): not an attempt, and not recorded. */
export class SendAbortedError extends Error {}

/**
 * One POST of a signed event. No redirect is followed (a 3xx is a failed attempt), the receiver's answer is
 * capped and thrown away, and the request carries the event, its signature headers and nothing else.
 */
export class WebhookSender {
  private readonly agent: Agent;

  constructor(
    private readonly policy: DestinationPolicy,
    private readonly timeoutMs: number,
  ) {
    this.agent = new Agent({
      connect: { lookup: policy.lookup, timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connections: 8,
    });
  }

  async send(url: string, headers: Record<string, string>, body: string, stop: AbortSignal): Promise<Attempt> {
    const started = performance.now();
    const took = () => performance.now() - started;
    try {
      const u = new URL(url);
      this.policy.checkBeforeSend(u);
      const res = await request(u, {
        dispatcher: this.agent,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...headers },
        body,
        signal: AbortSignal.any([stop, AbortSignal.timeout(this.timeoutMs)]),
      });
      const latencyMs = took();
      await res.body.dump({ limit: MAX_RESPONSE_BYTES }).catch(() => undefined);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return { outcome: ok ? 'delivered' : 'http_error', status: res.statusCode, error: ok ? null : `HTTP ${res.statusCode}`, latencyMs };
    } catch (err) {
      if (stop.aborted) throw new SendAbortedError('stopped');
      return { ...failure(err), status: null, latencyMs: took() };
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

function failure(err: unknown): { outcome: AttemptOutcome; error: string } {
  // undici wraps what the lookup refused in its connect error.
  const refused = [err, (err as { cause?: unknown })?.cause].find((e) => e instanceof RefusedDestinationError);
  if (refused) return { outcome: 'refused', error: `refused: ${(refused as Error).message}` };
  const e = err as { name?: string; code?: string; message?: string };
  if (e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
    return { outcome: 'timeout', error: 'timeout' };
  }
  const code = e.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  return { outcome: 'network_error', error: code ? `network error: ${code}` : 'network error' };
}
