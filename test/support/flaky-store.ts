import { StoreUnavailableError, type Store } from '../../src/store/types.js';

type Method = { [K in keyof Store]: Store[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof Store];

export interface FlakyStore {
  readonly store: Store;
  /** The next `times` calls of `method` fail as an unreachable database does, before reaching the store. */
  failNext(method: Method, times: number): void;
  /** Every later call of `method` first waits for `hook`: a test's way to order two operations. */
  before(method: Method, hook: () => Promise<void>): void;
  /** How many calls of `method` were made, failed ones included. */
  calls(method: Method): number;
}

/**
 * A real store with a blip that the test places exactly: chosen calls fail as they would with the database
 * unreachable, or wait for something first; every other call, and every call after them, is the real store's.
 */
export function flaky(real: Store): FlakyStore {
  const failing = new Map<string, number>();
  const made = new Map<string, number>();
  const hooks = new Map<string, () => Promise<void>>();
  const store = new Proxy(real, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        made.set(prop, (made.get(prop) ?? 0) + 1);
        const left = failing.get(prop) ?? 0;
        const call = () => (value as (...a: unknown[]) => unknown).apply(target, args);
        if (left > 0) {
          failing.set(prop, left - 1);
          return Promise.reject(new StoreUnavailableError(`connection terminated (a blip this test made in ${prop})`));
        }
        const hook = hooks.get(prop);
        return hook ? hook().then(call) : call();
      };
    },
  });
  return {
    store,
    failNext: (method, times) => void failing.set(method, times),
    before: (method, hook) => void hooks.set(method, hook),
    calls: (method) => made.get(method) ?? 0,
  };
}
