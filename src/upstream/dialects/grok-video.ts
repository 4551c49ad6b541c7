import { randomBytes } from 'node:crypto';
import type { NormalizedVideoRequest } from '../../domain/request.js';
import { fromParts, type EncodedCreate } from './types.js';
import type { BodyPart } from '../../domain/image-ref.js';

/**
 * `grok-video-*` family: multipart, `size` as a tier (`720P`), `seconds` as a whole number, each reference
 * image as its own `input_reference` file part.
 */
export function encodeGrokVideo(req: NormalizedVideoRequest, model = req.model.id): EncodedCreate {
  const boundary = `----grok-gateway-${randomBytes(12).toString('hex')}`;
  const chunks: BodyPart[] = [];
  const text = (name: string, value: string) =>
    chunks.push(Buffer.from(`--${boundary}\r\ncontent-disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  text('model', model);
  text('prompt', req.prompt);
  text('seconds', String(req.seconds));
  text('size', `${req.resolution}P`);
  text('aspect_ratio', req.aspectRatio);
  req.references.forEach((ref, i) => {
    chunks.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name="input_reference"; filename="reference-${i + 1}.${ref.extension}"\r\n` +
          `content-type: ${ref.mime}\r\n\r\n`,
      ),
      ref.bytes(),
      Buffer.from('\r\n'),
    );
  });
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return fromParts(`multipart/form-data; boundary=${boundary}`, chunks);
}
