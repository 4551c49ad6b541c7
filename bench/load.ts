/**
 * Load generation, in the bench's own process (the load generator shares the machine with what it measures).
 * - closedLoop: autocannon, N keep-alive connections each sending its next request when the last answered;
 *   latencies are taken from its per-response event at sub-millisecond precision (its own histogram keeps
 *   whole milliseconds, too coarse for the targets).
 * - fixedRate: an open-loop generator on an undici pool that sends at a steady rate (autocannon's
 *   `overallRate` sends each second's quota as a burst), timing each request from dispatch to last byte.
 */
import autocannon from 'autocannon';
import { Pool, request } from 'undici';

export interface LatencyStats {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export interface LoadResult extends LatencyStats {
  readonly rps: number;
  readonly durationS: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly sent: number;
}

/** One load run before summarising: runs of several rounds are merged sample by sample. */
export interface RawRun {
  readonly samples: Float64Array;
  /** Requests sent, answered or not (a run that stops leaves some unanswered). */
  readonly sent: number;
  readonly durationS: number;
  readonly errors: number;
  readonly non2xx: number;
}

export function summarise(runs: readonly RawRun[]): LoadResult {
  const all = new Float64Array(runs.reduce((n, r) => n + r.samples.length, 0));
  let at = 0;
  for (const r of runs) {
    all.set(r.samples, at);
    at += r.samples.length;
  }
  const durationS = runs.reduce((s, r) => s + r.durationS, 0);
  const stats = latencyStats(all);
  return {
    ...stats,
    rps: stats.count / durationS,
    durationS,
    errors: runs.reduce((s, r) => s + r.errors, 0),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
    sent: runs.reduce((s, r) => s + r.sent, 0),
  };
}

export function latencyStats(samples: ArrayLike<number>): LatencyStats {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  const at = (q: number) => (n ? sorted[Math.min(n - 1, Math.floor(q * n))]! : NaN);
  let sum = 0;
  for (const v of sorted) sum += v;
  return { count: n, min: n ? sorted[0]! : NaN, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: n ? sorted[n - 1]! : NaN, mean: n ? sum / n : NaN };
}

/** Samples are kept in a growable typed array: a 5 s run at 20k req/s is 100k doubles. */
class Samples {
  private buf = new Float64Array(1 << 16);
  private n = 0;
  push(v: number) {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.n++] = v;
  }
  view() {
    return this.buf.subarray(0, this.n);
  }
}

export async function closedLoop(opts: {
  url: string;
  /** Each connection polls one of these, in turn: distinct paths per connection keep their polls apart. */
  paths: readonly string[];
  connections: number;
  durationS: number;
  headers?: Record<string, string>;
  /** Each request a POST of this body instead of a GET (set its content-type in `headers`). */
  postBody?: string;
}): Promise<RawRun> {
  const samples = new Samples();
  let non2xx = 0;
  let i = 0;
  const started = performance.now();
  const inst = autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    pipelining: 1,
    timeout: 10,
    ...(opts.headers ? { headers: opts.headers } : {}),
    setupClient: (client) =>
      client.setRequests([
        opts.postBody === undefined
          ? { method: 'GET', path: opts.paths[i++ % opts.paths.length]! }
          : { method: 'POST', path: opts.paths[i++ % opts.paths.length]!, body: opts.postBody },
      ]),
  });
  inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) samples.push(ms);
    else non2xx++;
  });
  const result = await inst;
  return { samples: samples.view(), sent: result.requests.sent, durationS: (performance.now() - started) / 1000, errors: result.errors + result.timeouts, non2xx };
}

export async function fixedRate(opts: {
  origin: string;
  paths: readonly string[];
  rate: number;
  durationS: number;
  headers?: Record<string, string>;
}): Promise<RawRun> {
  const pool = new Pool(opts.origin, { connections: 64, pipelining: 1, keepAliveTimeout: 30_000 });
  const samples = new Samples();
  const total = Math.round(opts.rate * opts.durationS);
  let sent = 0;
  let done = 0;
  let errors = 0;
  let non2xx = 0;
  const started = performance.now();
  await new Promise<void>((resolve) => {
    const fire = () => {
      const path = opts.paths[sent % opts.paths.length]!;
      sent++;
      const t0 = performance.now();
      pool
        .request({ method: 'GET', path, headers: opts.headers ?? {} })
        .then(async (res) => {
          await res.body.arrayBuffer();
          if (res.statusCode >= 200 && res.statusCode < 300) samples.push(performance.now() - t0);
          else non2xx++;
        })
        .catch(() => {
          errors++;
        })
        .finally(() => {
          if (++done === total) resolve();
        });
    };
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * opts.rate));
      while (sent < due) fire();
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const durationS = (performance.now() - started) / 1000;
  await pool.close();
  return { samples: samples.view(), sent, durationS, errors, non2xx };
}

/** One request with a body; the time is from dispatch to the last byte of the answer. */
export async function send(
  url: string,
  init: { method: 'POST' | 'GET'; headers: Record<string, string>; body?: Buffer },
): Promise<{ ms: number; status: number; text: string }> {
  const t0 = performance.now();
  const res = await request(url, { method: init.method, headers: init.headers, body: init.body ?? null });
  const text = await res.body.text();
  return { ms: performance.now() - t0, status: res.statusCode, text };
}

/** Downloads and discards a body, counting bytes: throughput in MiB/s from dispatch to the last byte. */
export async function download(url: string, headers: Record<string, string>): Promise<{ ms: number; bytes: number; status: number; mibPerS: number; firstByteOk: boolean }> {
  const t0 = performance.now();
  const res = await request(url, { method: 'GET', headers });
  let bytes = 0;
  let firstByteOk = true;
  for await (const chunk of res.body) {
    const b = chunk as Buffer;
    // The fake's byte i is i % 251: spot-check the first byte of every chunk.
    if (b.length && b[0] !== bytes % 251) firstByteOk = false;
    bytes += b.length;
  }
  const ms = performance.now() - t0;
  return { ms, bytes, status: res.statusCode, mibPerS: bytes / (1024 * 1024) / (ms / 1000), firstByteOk };
}
