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
