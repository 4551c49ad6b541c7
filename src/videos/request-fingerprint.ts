import { createHash } from 'node:crypto';
import type { DerivedRequest } from './derive.js';
import type { ImageRef } from '../domain/image-ref.js';
import type { NormalizedVideoRequest } from '../domain/request.js';

/**
 * What makes two requests with one Idempotency-Key "the same request": the route and the request as
 * normalized, never the bytes on the wire. An SDK's retry of one create may differ in every byte — another
 * multipart boundary, JSON keys in another order, `"8"` for `8`, a reference as a data URI or as a file part —
 * and is still the same request; a different prompt, model, length or image is not.
 */
export function createFingerprint(method: string, path: string, req: NormalizedVideoRequest): string {
  return fingerprint([method, path, req.requestedModel, req.model.id, req.prompt, req.seconds, req.resolution, req.aspectRatio], req.references);
}

export function derivedFingerprint(method: string, path: string, req: DerivedRequest): string {
  return fingerprint([method, path, req.operation, req.sourceId, req.prompt, req.seconds ?? null], []);
}

/** SHA-256 of the fields as JSON, then of each image's type, length and bytes (not their encoding). */
function fingerprint(fields: readonly unknown[], images: readonly ImageRef[]): string {
  const hash = createHash('sha256').update(JSON.stringify(fields));
  for (const image of images) {
    const bytes = image.bytes();
    hash.update(`\n${image.mime} ${bytes.length}\n`);
    for (const chunk of Buffer.isBuffer(bytes) ? [bytes] : bytes.chunks()) hash.update(chunk);
  }
  return hash.digest('hex');
}
