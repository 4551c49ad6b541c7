import type { NormalizedVideoRequest } from '../../domain/request.js';
import type { BodyPart } from '../../domain/image-ref.js';

/** A create request in the exact wire form one upstream family wants. */
export interface EncodedCreate {
  readonly contentType: string;
  readonly length: number;
  /**
   * The body, produced as it is sent (one pass only): the other form of an 8 MB image never exists whole,
   * only the slice being written.
   */
  readonly chunks: Iterable<Buffer>;
}

/** `model`: the name the upstream knows the model by. */
export type CreateEncoder = (req: NormalizedVideoRequest, model: string) => EncodedCreate;

export function fromParts(contentType: string, parts: readonly BodyPart[]): EncodedCreate {
  return {
    contentType,
    length: parts.reduce((n, p) => n + p.length, 0),
    chunks: (function* () {
      for (const p of parts) {
        if (Buffer.isBuffer(p)) yield p;
        else yield* p.chunks();
      }
    })(),
  };
}

/** How a JSON body names its reference images: the key for one and for several, and each as a bare string or as `{"url": …}`. */
export interface JsonReferences {
  readonly one: string;
  readonly many: string;
  readonly as: 'string' | 'url';
}

/**
 * A JSON body with the request's reference images spliced in as it is sent: data URIs need no JSON escaping
 * (base64), so the original base64 of a JSON request is forwarded undecoded and raw bytes are encoded slice
 * by slice, never the whole body at once.
 */
export function jsonWithReferences(fields: Record<string, unknown>, req: NormalizedVideoRequest, names: JsonReferences): EncodedCreate {
  const [open, close] = names.as === 'url' ? ['{"url":"', '"}'] : ['"', '"'];
  const chunks: BodyPart[] = [Buffer.from(JSON.stringify(fields).slice(0, -1))];
  if (req.references.length === 1) {
    chunks.push(Buffer.from(`,"${names.one}":${open}`), req.references[0]!.dataUri(), Buffer.from(close));
  } else if (req.references.length > 1) {
    chunks.push(Buffer.from(`,"${names.many}":[`));
    req.references.forEach((ref, i) => chunks.push(Buffer.from(i === 0 ? open : `,${open}`), ref.dataUri(), Buffer.from(close)));
    chunks.push(Buffer.from(']'));
  }
  chunks.push(Buffer.from('}'));
  return fromParts('application/json', chunks);
}
