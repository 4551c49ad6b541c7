import busboy from 'busboy';

export interface ParsedMultipart {
  readonly fields: Array<[string, string]>;
  readonly files: Array<{ name: string; filename: string; mime: string; bytes: Buffer }>;
}

/** Reads a multipart body back with an independent parser, to check what was really sent. */
export function parseMultipart(headers: Record<string, unknown>, body: Buffer): Promise<ParsedMultipart> {
  return new Promise((resolve, reject) => {
    const fields: ParsedMultipart['fields'] = [];
    const files: ParsedMultipart['files'] = [];
    const bb = busboy({ headers: headers as Record<string, string> });
    bb.on('field', (n, v) => fields.push([n, v]));
    bb.on('file', (n, s, info) => {
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d)).on('end', () => files.push({ name: n, filename: info.filename ?? '', mime: info.mimeType, bytes: Buffer.concat(chunks) }));
    });
    bb.on('close', () => resolve({ fields, files }));
    bb.on('error', reject);
    bb.end(body);
  });
}
