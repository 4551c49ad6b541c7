import type { NormalizedVideoRequest } from '../normalize.js';
import { fromParts, type BodyPart, type EncodedCreate } from './types.js';

/**
 * `grok-imagine-video` family: JSON, `seconds` as a string, `resolution` as `480P|720P`, one reference as
 * `image`, several as `images` (never both). Data URIs are spliced in as they are sent: base64 needs no
 * JSON escaping, the original base64 of a JSON request is forwarded without being decoded, and raw bytes are
 * encoded slice by slice.
 */
export function encodeImagine(req: NormalizedVideoRequest, model = req.model.id): EncodedCreate {
  const head = JSON.stringify({
    model,
    prompt: req.prompt,
    seconds: String(req.seconds),
    aspect_ratio: req.aspectRatio,
    resolution: `${req.resolution}P`,
  }).slice(0, -1);
  const chunks: BodyPart[] = [Buffer.from(head)];
  if (req.references.length === 1) {
    chunks.push(Buffer.from(',"image":"'), req.references[0]!.dataUri(), Buffer.from('"'));
  } else if (req.references.length > 1) {
    chunks.push(Buffer.from(',"images":['));
    req.references.forEach((ref, i) => chunks.push(Buffer.from(i === 0 ? '"' : ',"'), ref.dataUri(), Buffer.from('"')));
    chunks.push(Buffer.from(']'));
  }
  chunks.push(Buffer.from('}'));
  return fromParts('application/json', chunks);
}
