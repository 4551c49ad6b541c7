import { describe, expect, it } from 'vitest';
import { SharedProbe } from '../../src/http/readiness.js';

/** A probe that counts its runs and ends only when the test says so. */
function gatedProbe() {
  const runs: Array<(ok: boolean) => void> = [];
  return { runs, probe: () => new Promise<boolean>((resolve) => runs.push(resolve)) };
}

describe('SharedProbe', () => {
  it('concurrent checks share the probe in flight, later ones its result until the interval passes', async () => {
    const { runs, probe } = gatedProbe();
    const shared = new SharedProbe(probe, 60_000);
    const first = Array.from({ length: 50 }, () => shared.check());
    expect(runs).toHaveLength(1);
    runs[0]!(true);
    expect(await Promise.all(first)).toEqual(Array(50).fill(true));
    for (let i = 0; i < 50; i++) expect(await shared.check()).toBe(true);
    expect(runs).toHaveLength(1);
  });

  it('never runs two probes at once, even once the interval has passed', async () => {
    const { runs, probe } = gatedProbe();
    const shared = new SharedProbe(probe, 0);
    const a = shared.check();
    const b = shared.check();
    expect(runs).toHaveLength(1);
    runs[0]!(false);
    expect([await a, await b]).toEqual([false, false]);
    // Ended and the (zero) interval passed: the next check probes again.
    const c = shared.check();
    expect(runs).toHaveLength(2);
    runs[1]!(true);
    expect(await c).toBe(true);
  });

  it('a probe that throws counts as down', async () => {
    const shared = new SharedProbe(() => Promise.reject(new Error('boom')), 0);
    expect(await shared.check()).toBe(false);
  });
});
