import { describe, expect, it } from 'vitest';
import { clientSafeUpstreamParam, clientSafeUpstreamText, UPSTREAM_MESSAGE_MAX_CHARS, UPSTREAM_PARAM_MAX_CHARS } from '../../src/observability/redact.js';
import { decodeTask } from '../../src/upstream/dialects/task.js';

const KEY = 'sk-upstream-secret-0123456789abcdef';

describe('clientSafeUpstreamText: the one rule for upstream text shown to clients', () => {
  it.each<[string, string, string]>([
    ['a moderation reason passes as is', 'content policy violation: the prompt depicts violence', 'content policy violation: the prompt depicts violence'],
    ['a field the upstream disliked passes', 'seconds must be a whole number from 1 to 15 (got 16:9)', 'seconds must be a whole number from 1 to 15 (got 16:9)'],
    ['a known key', `invalid key ${KEY.slice(0, 3)}${KEY.slice(3)}`, 'invalid key [redacted]'],
    ['a known key inside a word', `x${KEY}y`, 'x[redacted]y'],
    ['a bearer token', 'auth header was Bearer abc.def.ghi', 'auth header was Bearer [redacted]'],
    ['an unknown sk- key', 'key sk-proj-a1b2c3d4e5 rejected', 'key [redacted] rejected'],
    ['a long key-like run', 'token Zx81kQp0aB12cD34eF56gH78iJ90 expired', 'token [redacted] expired'],
    ['a URL with a query', 'fetch https://storage.internal.corp:9000/bucket/v.mp4?sig=abc failed', 'fetch [url] failed'],
    ['a bare host and port', 'connect to redis-0.redis.svc.cluster.local:6379 refused', 'connect to [host] refused'],
    ['a host at the end of a sentence', 'rejected by worker.example.com.', 'rejected by [host].'],
    ['an IPv4 address and port', 'dial tcp 10.0.3.17:8443: i/o timeout', 'dial tcp [ip]: i/o timeout'],
    ['an IPv6 address', 'peer fe80::1ff:fe23:4567:890a reset', 'peer [ip] reset'],
    ['a file path', 'cannot open /srv/app/models/weights.bin', 'cannot open [path]'],
    ['a host with a path', 'GET gpu-7.int.example:81/run/42 failed', 'GET [host] failed'],
    ['a JS stack trace is dropped', 'TypeError: x is undefined\n    at render (/app/dist/worker.js:10:5)\n    at next (node:internal/x:1:2)', 'TypeError: x is undefined'],
    ['a Python traceback is dropped', 'worker crashed Traceback (most recent call last):\n  File "/app/x.py", line 3', 'worker crashed'],
    ['control characters and newlines fold to one space', 'line one\r\n\u0007line\ttwo\u2028end', 'line one line two end'],
    ['nothing useful left: empty', '   \n  ', ''],
  ])('%s', (_name, input, expected) => {
    expect(clientSafeUpstreamText(input, [KEY])).toBe(expected);
  });

  it.each<[string, number]>([
    ['a long message', 10_000],
    ['a one-megabyte message', 1024 * 1024],
  ])('%s is cut to the bound', (_name, length) => {
    const out = clientSafeUpstreamText('moderation said no. '.repeat(Math.ceil(length / 20)).slice(0, length), []);
    expect(out.length).toBeLessThanOrEqual(UPSTREAM_MESSAGE_MAX_CHARS);
    expect(out.startsWith('moderation said no.')).toBe(true);
    expect(out.endsWith('…')).toBe(true);
  });

  it('a secret straddling the point where scanning stops leaves no piece behind', () => {
    // URLs shrink to `[url]`, so text from near the scanning limit (4096) ends up within the bound.
    const urls = `https://cdn.example/${'a'.repeat(100)} `.repeat(33);
    // Each `inside` puts the point where scanning stops on another character of the key.
    for (let inside = 1; inside < KEY.length; inside++) {
      const text = `${urls}${'w'.repeat(4096 - inside - urls.length - 1)} ${KEY} more words`;
      expect(text.indexOf(KEY)).toBe(4096 - inside);
      const out = clientSafeUpstreamText(text, [KEY]);
      expect(out.length).toBeLessThan(UPSTREAM_MESSAGE_MAX_CHARS);
      for (let i = 0; i + 6 <= KEY.length; i++) expect(out).not.toContain(KEY.slice(i, i + 6));
    }
  });

  it('failed-task reasons follow the same rule as HTTP error messages', () => {
    const reason = `nsfw content; retry via https://api.internal:8443/v1/retry with ${KEY}`;
    const task = decodeTask({ id: 't', status: 'failed', error: { message: reason + ' pad'.repeat(100_000) } }, [KEY]);
    expect(task.error?.message).toBe(`The video generation failed. Upstream said: ${clientSafeUpstreamText(reason + ' pad'.repeat(100_000), [KEY])}`);
    expect(task.error?.message).toContain('nsfw content');
    expect(task.error?.message).not.toContain(KEY);
    expect(task.error?.message).not.toContain('internal');
    const failReason = decodeTask({ id: 't', status: 'failed', fail_reason: `boom at 10.1.2.3` }, [KEY]);
    expect(failReason.error?.message).toBe('The video generation failed. Upstream said: boom at [ip]');
  });
});

describe('clientSafeUpstreamParam: an upstream error param passes only as a field name', () => {
  it.each<[string, string | null, string | null]>([
    ['a field name', 'prompt', 'prompt'],
    ['a nested field', 'video[0]', 'video[0]'],
    ['a dotted name reads as a host, as in the text: dropped', 'video.url', null],
    ['none', null, null],
    ['a known key', KEY, null],
    ['a known key inside a name', `x${KEY}y`, null],
    ['an unknown key', 'sk-proj-a1b2c3d4e5f6', null],
    ['a host', 'gpu-7.pool.internal:8443', null],
    ['a URL', 'https://storage.internal.example/bucket', null],
    ['prose', 'the prompt is too long', null],
    ['control characters are folded away, as in the text', '\u0000prompt\u001b', 'prompt'],
    ['a name at the bound', 'p'.repeat(UPSTREAM_PARAM_MAX_CHARS), 'p'.repeat(UPSTREAM_PARAM_MAX_CHARS)],
    ['a name past the bound', 'p'.repeat(UPSTREAM_PARAM_MAX_CHARS + 1), null],
    ['megabytes of it', 'p'.repeat(2_000_000), null],
  ])('%s', (_name, input, expected) => {
    expect(clientSafeUpstreamParam(input, [KEY])).toBe(expected);
  });
});
