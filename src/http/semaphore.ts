import { ApiError, rateLimited } from '../domain/errors.js';
import type { Principal } from '../store/types.js';

/** Counters of busy slots by name; `tryAcquire` never waits, so overload is refused instead of queued. */
export class Semaphore {
  /** Only names holding a slot have an entry, so the map stays as small as the work in flight. */
  private readonly used = new Map<string, number>();
  constructor(private readonly size: number) {}

  tryAcquire(name = ''): (() => void) | undefined {
    const n = this.used.get(name) ?? 0;
    if (n >= this.size) return undefined;
    this.used.set(name, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = this.used.get(name)! - 1;
      if (left === 0) this.used.delete(name);
      else this.used.set(name, left);
    };
  }
}

export interface CreateSlotLimits {
  readonly maxConcurrentCreates: number;
  readonly maxConcurrentCreatesPerKey: number;
  readonly maxConcurrentCreatesPerTeam: number;
}

/**
 * The slots of creates being read and sent: the global bound caps the memory their bodies take, and the
 * per-key and per-team bounds keep one caller with slow uploads from holding every slot. A caller over its
 * own bound gets a 429 (its doing, retried by the SDKs with backoff); only a full process answers 503.
 */
export class CreateSlots {
  private readonly all: Semaphore;
  private readonly byKey: Semaphore;
  private readonly byTeam: Semaphore;

  constructor(private readonly limits: CreateSlotLimits) {
    this.all = new Semaphore(limits.maxConcurrentCreates);
    this.byKey = new Semaphore(limits.maxConcurrentCreatesPerKey);
    this.byTeam = new Semaphore(limits.maxConcurrentCreatesPerTeam);
  }

  /** Takes a slot of each bound, or none; returns the release of all three. */
  acquire(principal: Principal): () => void {
    const key = this.byKey.tryAcquire(principal.keyId);
    if (!key) throw tooManyUploads('this API key', this.limits.maxConcurrentCreatesPerKey);
    const team = this.byTeam.tryAcquire(principal.teamId);
    if (!team) {
      key();
      throw tooManyUploads('your team', this.limits.maxConcurrentCreatesPerTeam);
    }
    const all = this.all.tryAcquire();
    if (!all) {
      team();
      key();
      throw new ApiError({ status: 503, type: 'server_error', code: 'server_busy', message: 'The gateway is handling too many uploads; retry shortly.', headers: { 'retry-after': '1' } });
    }
    return () => {
      all();
      team();
      key();
    };
  }
}

/** Slots free as soon as an upload ends, so a second is long enough to wait. */
const UPLOAD_RETRY_MS = 1_000;

const tooManyUploads = (who: string, limit: number) =>
  rateLimited(`Too many video requests in flight for ${who}: at most ${limit} are read at once. Retry when one has been answered.`, UPLOAD_RETRY_MS, 'too_many_concurrent_creates');
