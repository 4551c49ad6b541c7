import { ApiError, rateLimited } from '../domain/errors.js';

export interface CreateBufferLimits {
  /** Bytes of create bodies the process holds at most: read from clients and not yet sent upstream. */
  readonly bytes: number;
  /** The fraction of `bytes` one team's creates may hold at once. */
  readonly teamShare: number;
  /** How long a create waits for room before it is refused. */
  readonly waitMs: number;
}

/** A body of at most this many bytes is small: a JSON prompt, or a multipart form without a large image. */
export const SMALL_BODY_BYTES = 64 * 1024;
/**
 * The part of the buffer kept for small bodies: larger ones fill at most the rest, so that however many
 * teams upload at their share at once, a small create never waits behind their uploads.
 */
export const SMALL_BODY_HEADROOM = 1 / 8;

/** A refused create is retried by the SDKs; room frees as uploads reach the upstream, within seconds. */
const RETRY_AFTER_MS = 1_000;

type Blocked = 'team' | 'buffer';

interface Waiter {
  readonly team: string;
  readonly bytes: number;
  readonly small: boolean;
  readonly grant: () => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * The bytes of create bodies the process holds (§7): in-flight creates are bounded by their bytes, not by
 * their number, so a burst of small creates is judged by the quota policy alone. Each team holds at most
 * its share; bodies over SMALL_BODY_BYTES leave the headroom to small ones. A body that finds no room
 * waits for it, at most `waitMs`, then is refused: 429 when its own team's share is what is full (its
 * doing), else 503. Whoever fits goes first, in whatever order: a small create never queues behind a
 * large one that is waiting.
 */
export class CreateBuffer {
  private held = 0;
  /** Only teams holding bytes have an entry, so the map stays as small as the uploads in flight. */
  private readonly byTeam = new Map<string, number>();
  private readonly waiting = new Set<Waiter>();
  private readonly teamBytes: number;
  private readonly largeBytes: number;

  constructor(private readonly limits: CreateBufferLimits) {
    this.teamBytes = teamBytesOf(limits);
    this.largeBytes = largeBytesOf(limits);
  }

  /** A new body's account, for the team sending it. */
  open(team: string, maxBodyBytes: number): BodyLease {
    return new BodyLease(this, team, maxBodyBytes);
  }

  /** Bytes held now, in all or by one team. */
  usage(team?: string): number {
    return team === undefined ? this.held : (this.byTeam.get(team) ?? 0);
  }

  /** Takes `bytes` more for `team`; a body whose total stays small may use the headroom. */
  reserve(team: string, bytes: number, small: boolean): Promise<void> | undefined {
    if (!this.blocked(team, bytes, small)) {
      this.take(team, bytes);
      return undefined;
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        team,
        bytes,
        small,
        grant: resolve,
        timer: setTimeout(() => {
          this.waiting.delete(waiter);
          reject(this.refusal(this.blocked(team, bytes, small) ?? 'buffer'));
        }, this.limits.waitMs),
      };
      this.waiting.add(waiter);
    });
  }

  free(team: string, bytes: number): void {
    if (bytes === 0) return;
    this.held -= bytes;
    const left = this.byTeam.get(team)! - bytes;
    if (left === 0) this.byTeam.delete(team);
    else this.byTeam.set(team, left);
    for (const w of this.waiting) {
      if (this.blocked(w.team, w.bytes, w.small)) continue;
      clearTimeout(w.timer);
      this.waiting.delete(w);
      this.take(w.team, w.bytes);
      w.grant();
    }
  }

  private take(team: string, bytes: number): void {
    this.held += bytes;
    this.byTeam.set(team, (this.byTeam.get(team) ?? 0) + bytes);
  }

  private blocked(team: string, bytes: number, small: boolean): Blocked | undefined {
    if ((this.byTeam.get(team) ?? 0) + bytes > this.teamBytes) return 'team';
    if (this.held + bytes > (small ? this.limits.bytes : this.largeBytes)) return 'buffer';
    return undefined;
  }

  private refusal(blocked: Blocked): ApiError {
    if (blocked === 'team') {
      return rateLimited(
        `Your team's requests being uploaded hold its share of the gateway's upload buffer (${this.teamBytes} bytes). Retry when one of them has been answered.`,
        RETRY_AFTER_MS,
        'too_many_uploads',
      );
    }
    return new ApiError({
      status: 503,
      type: 'server_error',
      code: 'server_busy',
      message: 'The gateway is receiving too many uploads; retry shortly.',
      headers: { 'retry-after': String(RETRY_AFTER_MS / 1000) },
    });
  }
}

/**
 * What one create's body holds of the buffer. A declared length is held whole before the first byte is read
 * (so that uploads never stall half-read, each waiting for another's room); a chunked body grows its hold as
 * it arrives, doubling, up to the body limit. `release` gives it all back, at once and only once.
 */
export class BodyLease {
  private held = 0;
  private read = 0;
  private released = false;

  constructor(
    private readonly buffer: CreateBuffer,
    private readonly team: string,
    private readonly maxBodyBytes: number,
  ) {}

  /** Holds at least `total` bytes for this body, waiting for room if need be. */
  async hold(total: number): Promise<void> {
    if (total <= this.held || this.released) return;
    const more = total - this.held;
    await this.buffer.reserve(this.team, more, total <= SMALL_BODY_BYTES);
    // Released while waiting (the request ended): what was just granted goes straight back.
    if (this.released) return this.buffer.free(this.team, more);
    this.held = total;
  }

  /** Counts a chunk read from the body; a body past the limit is the reader's to refuse, not held for. */
  count(bytes: number): Promise<void> | undefined {
    this.read += bytes;
    if (this.read <= this.held || this.read > this.maxBodyBytes) return undefined;
    return this.hold(Math.max(this.read, Math.min(2 * this.held, this.maxBodyBytes)));
  }

  /** Arrow: handed on as the upstream's "body sent" callback. */
  readonly release = (): void => {
    if (this.released) return;
    this.released = true;
    this.buffer.free(this.team, this.held);
    this.held = 0;
  };
}

/** The body as it is read, each chunk counted against the lease before it is passed on. */
export async function* metered(body: AsyncIterable<Uint8Array>, lease: BodyLease): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of body) {
    await lease.count(chunk.byteLength);
    yield chunk;
  }
}

const teamBytesOf = (l: CreateBufferLimits) => Math.floor(l.bytes * l.teamShare);
const largeBytesOf = (l: CreateBufferLimits) => l.bytes - Math.floor(l.bytes * SMALL_BODY_HEADROOM);

/** The largest body the buffer can ever hold; a body limit above it would refuse bodies it allows. */
export const largestBufferedBody = (l: CreateBufferLimits): number => Math.min(teamBytesOf(l), largeBytesOf(l));
