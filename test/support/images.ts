/** Small but real image byte strings: the gateway sniffs magic numbers, the simulator checks data URIs. */
export const PNG_1x1 = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
export const JPEG_BYTES = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10]), Buffer.from('JFIF\0test-jpeg-body'), Buffer.from([0xff, 0xd9])]);
export const WEBP_BYTES = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x1a, 0, 0, 0]), Buffer.from('WEBPVP8 '), Buffer.alloc(14, 7)]);
export const GIF_BYTES = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');

export const dataUri = (bytes: Buffer, mime = 'image/png') => `data:${mime};base64,${bytes.toString('base64')}`;

/** A PNG of about `size` bytes: a real signature followed by filler, enough for sniffing and size limits. */
export function bigPng(size: number): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  PNG_1x1.copy(b, 0, 0, 16);
  return b;
}
