import busboy from 'busboy';
import { ApiError, invalidRequest, tooLarge, unsupportedMediaType } from '../domain/errors.js';
import { readCapped, readCappedBuffer } from '../domain/read-capped.js';
import { quoted } from '../domain/text.js';
// Image fields may carry a data URI, and so may be longer than an ordinary text field.
import { IMAGE_FIELDS, LIST_FIELDS } from './schemas.js';

/**
 * Body decoding only: JSON or multipart in, plain fields and file parts out. Knows nothing of models;
 * `normalize.ts` decides what the fields mean.
 */
export interface RawFile {
  /** The field's name with list suffixes removed (`input_reference[]` → `input_reference`). */
  readonly field: string;
  /** As the parser delivered them: an image is never joined into one buffer. */
  readonly chunks: readonly Buffer[];
}

export interface RawRequest {
  readonly fields: Record<string, unknown>;
  readonly files: readonly RawFile[];
}

export interface ParseLimits {
  readonly maxBodyBytes: number;
  readonly maxImageBytes: number;
  readonly maxReferenceImages: number;
}

/** Which fields of a multipart body may be file parts (and long text, a data URI); a file anywhere else is refused. */
export interface FileRules {
  readonly fields: ReadonlySet<string>;
  refuse(field: string, rawName: string): ApiError;
}

/** A create's: reference images. */
export const CREATE_FILES: FileRules = {
  fields: IMAGE_FIELDS,
  refuse: (field, rawName) => invalidRequest(`Unexpected file in field '${rawName}'; reference images go in 'input_reference'.`, field, 'unexpected_file'),
};

export const MAX_JSON_DEPTH = 32;
export const MAX_MULTIPART_PARTS = 32;
export const MAX_TEXT_FIELD_BYTES = 64 * 1024;

export async function parseVideoBody(
  contentType: string | undefined,
  body: AsyncIterable<Uint8Array> | null,
  limits: ParseLimits,
  files: FileRules = CREATE_FILES,
): Promise<RawRequest> {
  const type = mediaType(contentType);
  if (type === 'application/json') return parseJson(await readAll(body, limits.maxBodyBytes));
  if (type === 'multipart/form-data') return parseMultipart(contentType as string, body, limits, files);
  throw unsupportedMediaType(
    `Content-Type must be application/json or multipart/form-data, not '${quoted(type) || '(none)'}'.`,
  );
}

/** `Multipart/Form-Data; boundary=x` → `multipart/form-data`. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function bodyTooLarge(limit: number) {
  return tooLarge(`Request body exceeds the limit of ${limit} bytes.`);
}

/** Reads a stream whole while counting, so a chunked body is stopped at the limit rather than after it. */
export function readAll(body: AsyncIterable<Uint8Array> | null, limit: number): Promise<Buffer> {
  return body ? readCappedBuffer(body, limit, () => bodyTooLarge(limit)) : Promise.resolve(Buffer.alloc(0));
}

function parseJson(buf: Buffer): RawRequest {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    const reason = err instanceof RangeError ? 'it is nested too deeply' : 'it is not valid JSON';
    throw invalidRequest(`Could not parse the request body: ${reason}.`, null, 'invalid_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidRequest('The request body must be a JSON object.', null, 'invalid_json');
  }
  if (depthExceeds(value, MAX_JSON_DEPTH)) {
    throw invalidRequest(`The request body is nested more than ${MAX_JSON_DEPTH} levels deep.`, null, 'invalid_json');
  }
  return { fields: value as Record<string, unknown>, files: [] };
}

function depthExceeds(root: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (d > max) return true;
    if (typeof v === 'object' && v !== null) for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return false;
}

/** `images[]`, `images[0]` → `images`; `input_reference[image_url]` → `input_reference` (a data URI). */
function canonicalName(name: string): string {
  return name.replace(/\[(\d*|image_url)\]$/, '');
}

function parseMultipart(
  contentType: string,
  body: AsyncIterable<Uint8Array> | null,
  limits: ParseLimits,
  rules: FileRules,
): Promise<RawRequest> {
  const maxDataUriChars = Math.ceil(limits.maxImageBytes / 3) * 4 + 256;
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      limits: {
        parts: MAX_MULTIPART_PARTS,
        fieldSize: Math.max(MAX_TEXT_FIELD_BYTES, maxDataUriChars),
        fileSize: limits.maxImageBytes,
        fieldNameSize: 200,
      },
    });
  } catch {
    throw invalidRequest('Malformed multipart/form-data body (missing boundary?).', null, 'invalid_multipart');
  }

  const fields: Record<string, unknown> = {};
  const files: RawFile[] = [];
  let failure: ApiError | undefined;
  const fail = (err: ApiError) => {
    failure ??= err;
  };

  // busboy reports a part without a name (or with an empty one) as `undefined`, whatever its types say.
  const unnamed = () => fail(invalidRequest('Every multipart part needs a field name.', null, 'invalid_multipart'));

  parser.on('field', (rawName: string | undefined, value, info) => {
    if (!rawName) return unnamed();
    const name = canonicalName(rawName);
    if (info.valueTruncated) return fail(tooLarge(`Field '${rawName}' is too long.`, name));
    if (!rules.fields.has(name) && Buffer.byteLength(value) > MAX_TEXT_FIELD_BYTES) {
      return fail(tooLarge(`Field '${rawName}' exceeds ${MAX_TEXT_FIELD_BYTES} bytes.`, name));
    }
    if (LIST_FIELDS.has(name)) {
      const list = (fields[name] ??= []) as unknown[];
      list.push(value);
    } else if (name in fields) {
      fail(invalidRequest(`Field '${name}' is given more than once.`, name, 'duplicate_field'));
    } else {
      fields[name] = value;
    }
  });

  parser.on('file', (rawName: string | undefined, stream) => {
    if (!rawName) {
      stream.resume();
      return unnamed();
    }
    const name = canonicalName(rawName);
    if (!rules.fields.has(name)) {
      stream.resume();
      return fail(rules.refuse(name, rawName));
    }
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('limit', () => fail(tooLarge(`A reference image exceeds ${limits.maxImageBytes} bytes.`, name)));
    stream.on('end', () => {
      if (!(stream as unknown as { truncated?: boolean }).truncated) files.push({ field: name, chunks });
    });
  });
  parser.on('partsLimit', () => fail(invalidRequest(`A multipart body may hold at most ${MAX_MULTIPART_PARTS} parts.`, null, 'too_many_parts')));

  const finished = new Promise<void>((resolve, reject) => {
    parser.on('close', resolve);
    parser.on('error', (err: Error) => reject(invalidRequest(`Malformed multipart/form-data body: ${err.message}.`, null, 'invalid_multipart')));
  });
  // Observed below once the body is read; this only stops an early parser error from counting as unhandled.
  finished.catch(() => undefined);

  return (async () => {
    if (body) {
      try {
        for await (const chunk of readCapped(body, limits.maxBodyBytes, () => bodyTooLarge(limits.maxBodyBytes))) {
          if (!parser.write(chunk)) await new Promise((r) => parser.once('drain', r));
        }
      } catch (err) {
        parser.destroy();
        throw err;
      }
    }
    parser.end();
    await finished;
    if (failure) throw failure;
    return { fields, files };
  })();
}
