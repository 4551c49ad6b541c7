import { describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/http/context.js';

describe('request ids (issue 20: cut from a pool of random bytes)', () => {
  it('are req_ and 32 hex digits, and never repeat, across many refills of the pool', () => {
    const ids = Array.from({ length: 5_000 }, newRequestId);
    for (const id of ids) expect(id).toMatch(/^req_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Not a counter: consecutive ids share no long prefix.
    const sharedPrefix = (a: string, b: string) => [...a].findIndex((ch, i) => ch !== b[i]);
    expect(Math.max(...ids.slice(1).map((id, i) => sharedPrefix(id, ids[i]!)))).toBeLessThan(14);
  });
});
