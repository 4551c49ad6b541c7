import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { boundHistogramChild } from '../../src/observability/bound-histogram.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

function histogram() {
  const registry = new Registry();
  const h = new Histogram({ name: 'test_seconds', help: 'A test histogram.', labelNames: ['method', 'route'], buckets: BUCKETS, registers: [registry] });
  return { registry, h };
}

/** Below, on and between the bounds, above the last one, zero, and a sum that floating point rounds. */
const VALUES = [0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 0.3, 1, 1.5, 42, 0.1, 0.2, 0.7, 1e-9];

describe('a histogram child bound to one label set (issue 20: no label hashing per observation)', () => {
  it("writes the same exposition as prom-client's own child, series appearing with their first observation", async () => {
    const plain = histogram();
    const bound = histogram();
    const a = { plain: plain.h.labels('GET', '/a'), bound: boundHistogramChild(bound.h, { method: 'GET', route: '/a' }, BUCKETS) };
    const b = { plain: plain.h.labels('POST', '/b'), bound: boundHistogramChild(bound.h, { method: 'POST', route: '/b' }, BUCKETS) };
    expect(await bound.registry.metrics()).toBe(await plain.registry.metrics());
    for (const v of VALUES) {
      a.plain.observe(v);
      a.bound.observe(v);
    }
    // The second series is born after the first has many observations.
    expect(await bound.registry.metrics()).toBe(await plain.registry.metrics());
    for (const v of VALUES.slice(3)) {
      b.plain.observe(v);
      b.bound.observe(v);
    }
    const text = await bound.registry.metrics();
    expect(text).toBe(await plain.registry.metrics());
    expect(text).toContain('test_seconds_bucket{le="0.001",method="POST",route="/b"} 1');
    expect(text).toContain('test_seconds_count{method="GET",route="/a"} 15');
  });

  it("counts straight into prom-client's record from the second observation on, and still refuses a value that is no number", () => {
    const { h } = histogram();
    const child = boundHistogramChild(h, { method: 'GET', route: '/a' }, BUCKETS);
    expect(child.direct).toBe(false);
    child.observe(0.5);
    expect(child.direct).toBe(true);
    expect(() => child.observe(Number.NaN)).toThrow(TypeError);
    expect(() => child.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
