import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { Bandwidth } from '../../src/storage/bandwidth.js';
import { copyRetryDelay } from '../../src/storage/copier.js';
import { parseRange } from '../../src/storage/serve.js';
import { parseStorageUrl } from '../../src/storage/target.js';

describe('parseRange (one bytes= range against a stored copy)', () => {
  const size = 1000;
  it.each([
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=900-', { start: 900, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=-10', { start: 990, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    // Not one valid range: ignored, the whole video (RFC 9110 lets a server do so).
    ['bytes=5-3', 'all'],
    ['bytes=0-1,5-6', 'all'],
    ['items=0-1', 'all'],
    ['bytes=-', 'all'],
  ] as const)('%s', (header, expected) => {
    expect(parseRange(header, size)).toEqual(expected);
  });
  it('no header: all', () => expect(parseRange(undefined, size)).toBe('all'));
});

describe('STORAGE_URL', () => {
  it('defaults to DATA_DIR/videos, and none turns it off', () => {
    expect(parseStorageUrl(undefined, '/srv/data')).toEqual({ kind: 'file', dir: '/srv/data/videos' });
    expect(parseStorageUrl('none', '/srv/data')).toBeUndefined();
  });
  it('reads directories and buckets with a prefix', () => {
    expect(parseStorageUrl('file:///var/videos', 'x')).toEqual({ kind: 'file', dir: '/var/videos' });
    expect(parseStorageUrl('s3://my-bucket/a/b/', 'x')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: 'a/b/' });
    expect(parseStorageUrl('s3://my-bucket', 'x')).toEqual({ kind: 's3', bucket: 'my-bucket', prefix: '' });
  });
  it.each(['file://host/path', 's3://key:secret@bucket/p', 'ftp://x/y', 'videos'])('refuses %s', (url) => {
    expect(() => parseStorageUrl(url, 'x')).toThrow();
  });
  it('CONTENT_REDIRECT=presigned needs an S3 URL', () => {
    expect(() => loadConfig({ CONTENT_REDIRECT: 'presigned' })).toThrow(/needs an s3:\/\/ STORAGE_URL/);
    expect(loadConfig({ CONTENT_REDIRECT: 'presigned', STORAGE_URL: 's3://bkt/p' }).storage.contentRedirect).toBe('presigned');
  });
});

describe('copy retries and bandwidth', () => {
  it('backs off exponentially from STORAGE_COPY_RETRY_MS, capped at an hour', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4].map((a) => copyRetryDelay(a, 1000, mid))).toEqual([1000, 2000, 4000, 8000]);
    expect(copyRetryDelay(40, 1000, mid)).toBe(3_600_000);
  });
  it('lets a burst through at once, then holds copies to the rate', async () => {
    const bw = new Bandwidth(1_000_000);
    const started = performance.now();
    await bw.take(1_000_000);
    expect(performance.now() - started).toBeLessThan(50);
    await bw.take(300_000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  });
});
