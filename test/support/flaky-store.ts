import { StoreUnavailableError, type Store } from '../../src/store/types.js';

type Method = { [K in keyof Store]: Store[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof Store];

export interface FlakyStore {
  readonly store: Store;
  /** The next `times` calls of `method` fail as an unreachable database does, before reaching the store. */
  failNext(method: Method, times: number): void;
  /** How many calls of `method` were made, failed ones included. */
  calls(method: Method): number;
}

/**
 * A real store with a blip that the test places exactly: chosen calls fail as they would with the database
 * unreachable; every other call, and every call after them, is the real store's.
 */
export function flaky(real: Store): FlakyStore {
  const failing = new Map<string, number>();
  const made = new Map<string, number>();
  const store = new Proxy(real, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        made.set(prop, (made.get(prop) ?? 0) + 1);
        const left = failing.get(prop) ?? 0;
        if (left === 0) return (value as (...a: unknown[]) => unknown).apply(target, args);
        failing.set(prop, left - 1);
        return Promise.reject(new StoreUnavailableError(`connection terminated (a blip this test made in ${prop})`));
      };
    },
  });
  return {
    store,
    failNext: (method, times) => void failing.set(method, times),
    calls: (method) => made.get(method) ?? 0,
  };
}
