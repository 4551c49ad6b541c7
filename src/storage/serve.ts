import { Readable } from 'node:stream';
import type { ContentStream } from '../upstream/client.js';
import type { ByteRange } from './backend.js';

/** What a download of a stored copy asked for: the request's conditional and range headers. */
export interface ContentRequest {
  readonly range?: string | undefined;
  readonly ifNoneMatch?: string | undefined;
  readonly ifRange?: string | undefined;
}

export interface StoredObject {
  readonly bytes: number;
  readonly contentType: string;
  readonly etag: string;
  /** Unix seconds. */
  readonly modifiedAt: number;
}

/** A range header's meaning against `size` bytes: a range, none (serve it all), or not satisfiable. */
export type RangeAnswer = ByteRange | 'all' | 'unsatisfiable';

/**
 * One `bytes=` range (RFC 9110 §14.1.2): `a-b`, `a-` or `-n`, the end capped at the last byte. A header that
 * is not one valid byte range (a syntax error, several ranges, another unit) is ignored, as the RFC allows:
 * the whole video is served. A valid range that starts past the end, or an empty suffix, cannot be satisfied.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return 'all';
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'all';
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && end < start) return 'all';
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

/** Whether an If-None-Match header names this entity tag (weak comparison, as RFC 9110 asks for it). */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const bare = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => bare(t) === bare(etag));
}

const empty = () => Readable.from([]);

/**
 * A stored copy answered as the upstream route answers (same headers, same statuses): 304 for a matching
 * If-None-Match, 416 for a range past the end, 206 for a range (unless an If-Range names another version),
 * 200 for the whole. `open` is called only when bytes are to be sent.
 */
export async function storedContent(object: StoredObject, req: ContentRequest, open: (range: ByteRange | undefined) => Promise<Readable>): Promise<ContentStream> {
  const headers: Record<string, string> = {
    'content-type': object.contentType,
    'accept-ranges': 'bytes',
    etag: object.etag,
    'last-modified': new Date(object.modifiedAt * 1000).toUTCString(),
  };
  if (matches(req.ifNoneMatch, object.etag)) return { status: 304, headers, body: empty() };
  // If-Range with a date, or another tag: the client's partial copy is of another version, so all of it is sent.
  const range = req.ifRange !== undefined && req.ifRange.trim() !== object.etag ? 'all' : parseRange(req.range, object.bytes);
  if (range === 'unsatisfiable') return { status: 416, headers: { ...headers, 'content-range': `bytes */${object.bytes}` }, body: empty() };
  if (range === 'all') {
    headers['content-length'] = String(object.bytes);
    return { status: 200, headers, body: await open(undefined) };
  }
  headers['content-length'] = String(range.end - range.start + 1);
  headers['content-range'] = `bytes ${range.start}-${range.end}/${object.bytes}`;
  return { status: 206, headers, body: await open(range) };
}
