import type { NormalizedVideoRequest } from '../../domain/request.js';
import { jsonWithReferences, type EncodedCreate } from './types.js';

/**
 * `grok-imagine-video` family: JSON, `seconds` as a string, `resolution` as `480P|720P`, one reference as
 * `image`, several as `images` (never both), each a data URI spliced in as it is sent.
 */
export function encodeImagine(req: NormalizedVideoRequest, model = req.model.id): EncodedCreate {
  const fields = { model, prompt: req.prompt, seconds: String(req.seconds), aspect_ratio: req.aspectRatio, resolution: `${req.resolution}P` };
  return jsonWithReferences(fields, req, { one: 'image', many: 'images', as: 'string' });
}
