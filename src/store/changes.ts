import type { ChangeListener, StoreChange } from './types.js';

/** The in-process half of `Store.onChange`, shared by both stores: who listens, and telling them. */
export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  emit(change: StoreChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

/**
 * Claims of the reconciler's worklist held in this process (the embedded store has one process): job id →
 * until when, on the caller's clock.
 */
export class LocalClaims {
  private readonly until = new Map<string, number>();

  get size(): number {
    return this.until.size;
  }

  held(id: string, nowMs: number): boolean {
    const until = this.until.get(id);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.until.delete(id);
    return false;
  }

  take(ids: readonly string[], untilMs: number): void {
    for (const id of ids) this.until.set(id, untilMs);
  }

  release(ids: readonly string[]): void {
    for (const id of ids) this.until.delete(id);
  }
}
